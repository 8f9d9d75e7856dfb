"""Fixtures for background work: a broker per test (the shared Redis under a private
namespace, or the embedded SQLite broker), real ``fourfold worker`` / ``fourfold beat``
subprocesses that are always killed at teardown, small corpora and a reader process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

REDIS_URL = "redis://127.0.0.1:6379/0"
IDLE_START = {"FOURFOLD_FIRST_BUILD": "false"}
"""Environment of a worker that starts idle instead of queueing the first build of its
domains: for tests that count, or kill, exactly the refreshes they request."""
READER_SCRIPT = Path(__file__).with_name("reader_process.py")

WORDS = (
    "contract clause liability indemnity warranty termination notice payment invoice breach remedy "
    "confidential disclosure party agreement renewal governing law arbitration damages license audit "
    "privacy consent data subject controller processor retention security incident report supplier"
).split()


def wait_until(predicate: Callable[[], object], timeout: float, what: str, *, interval: float = 0.1, log: Path | None = None):
    """Poll ``predicate`` until it returns something truthy; fail saying ``what`` did not happen."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            tail = ""
            if log is not None and log.exists():
                tail = "\n--- log tail ---\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:])
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}{tail}")
        time.sleep(interval)


# -------------------------------------------------------------------------
# Brokers
# -------------------------------------------------------------------------


def _redis_keys(namespace: str) -> list[str]:
    import redis

    r = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    return list(r.scan_iter(match=f"{namespace}:*", count=500))


@dataclass
class Broker:
    kind: str  # "redis" or "sqlite"
    namespace: str
    home: Path
    url: str | None = None

    def env(self) -> dict[str, str]:
        env = {"FOURFOLD_HOME": str(self.home), "FOURFOLD_NAMESPACE": self.namespace}
        if self.url:
            env["FOURFOLD_BROKER_URL"] = self.url
        return env

    def dump(self) -> str:
        """Everything the broker, result backend and shared worker state hold, as text."""
        if self.kind == "redis":
            return _dump_redis(self.url or REDIS_URL, self.namespace)
        out = []
        import sqlite3

        for name in ("broker.sqlite", "results.sqlite", "tasks.sqlite"):
            path = self.home / name
            if not path.exists():
                continue
            con = sqlite3.connect(path)
            try:
                for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
                    for row in con.execute(f'SELECT * FROM "{table}"'):
                        out.append(f"{name}:{table}: " + " | ".join(_text(v) for v in row))
            finally:
                con.close()
        return "\n".join(out)


def _text(value) -> str:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def _dump_redis(url: str, namespace: str) -> str:
    import redis

    r = redis.Redis.from_url(url)
    out = []
    for key in r.scan_iter(match=f"{namespace}:*", count=500):
        kind = r.type(key).decode()
        if kind == "string":
            value = r.get(key)
        elif kind == "list":
            value = b" ".join(r.lrange(key, 0, -1))
        elif kind == "hash":
            value = b" ".join(k + b"=" + v for k, v in r.hgetall(key).items())
        elif kind == "set":
            value = b" ".join(r.smembers(key))
        elif kind == "zset":
            value = b" ".join(m for m, _ in r.zrange(key, 0, -1, withscores=True))
        elif kind == "stream":
            value = repr(r.xrange(key)).encode()
        else:
            value = b""
        out.append(f"{_text(key)} ({kind}): {_text(value)}")
    return "\n".join(out)


@pytest.fixture(params=["redis", "sqlite"])
def broker(request, fourfold_home, monkeypatch) -> Broker:
    """The broker this test runs against; the environment (and so every subprocess)
    is set up for it."""
    namespace = f"fftest-{uuid.uuid4().hex[:10]}"
    b = Broker(request.param, namespace, Path(fourfold_home), REDIS_URL if request.param == "redis" else None)
    if b.kind == "redis":
        import redis

        try:
            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        except Exception as exc:  # CI starts Redis; say so plainly when it is missing
            pytest.fail(f"Redis is not answering at {REDIS_URL}: {exc}")
    for key, value in b.env().items():
        monkeypatch.setenv(key, value)
    _fast_settings(monkeypatch)
    from fourfold import settings

    settings.get_settings(fresh=True)
    yield b
    if b.kind == "redis":
        import redis

        r = redis.Redis.from_url(REDIS_URL)
        keys = list(r.scan_iter(match=f"{namespace}:*", count=500))
        if keys:
            r.delete(*keys)


def _fast_settings(monkeypatch) -> None:
    # Short leases so that a lease whose holder died on "another machine" expires in
    # test time; everything else stays at its default.
    monkeypatch.setenv("FOURFOLD_LEASE_SECONDS", "6")
    monkeypatch.setenv("FOURFOLD_TORCH_THREADS", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


# -------------------------------------------------------------------------
# Processes
# -------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def children(self) -> list[int]:
        import psutil

        try:
            return [c.pid for c in psutil.Process(self.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        """Kill the process and everything it started (its own process group)."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)  # stragglers: pool children
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def _die_with_parent() -> None:
    """Runs in the child before exec: the kernel kills it if the test process dies
    without reaching teardown (killed, timed out), so no worker outlives its test."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


@pytest.fixture
def processes(tmp_path):
    """Start subprocesses in their own process groups; all are killed at teardown."""
    started: list[Proc] = []

    def start(name: str, argv: list[str], env: dict | None = None) -> Proc:
        log = tmp_path / f"{name}-{len(started)}.log"
        with open(log, "wb") as out:
            popen = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
        proc = Proc(name, popen, log)
        started.append(proc)
        return proc

    start.started = started  # type: ignore[attr-defined]
    yield start
    for proc in started:
        proc.stop()


def fourfold_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "fourfold", *args]


@pytest.fixture
def start_worker(processes, broker):
    """Start a real ``fourfold worker`` (prefork) and wait until it takes tasks.

    One child by default: consecutive tasks then reuse its loaded models."""

    def start(*manifests: Path, concurrency: int = 1, pool: str = "prefork", env: dict | None = None, wait: bool = True) -> Proc:
        from fourfold.worker import client

        before = set(client.live_workers())
        proc = processes(
            "worker",
            fourfold_argv("worker", *map(str, manifests), "--concurrency", str(concurrency), "--pool", pool, "--loglevel", "info"),
            env,
        )
        if wait:
            wait_until(
                lambda: (not proc.alive() and pytest.fail(f"the worker exited early:\n{proc.log_text()[-3000:]}"))
                or set(client.live_workers()) - before,
                60,
                "the worker to announce itself",
                log=proc.log,
            )
        return proc

    return start


# -------------------------------------------------------------------------
# Corpora and manifests
# -------------------------------------------------------------------------


@dataclass
class Corpus:
    root: Path
    manifest: Path
    domain: str
    canary: str | None = None
    docs: dict[str, str] = field(default_factory=dict)

    @property
    def knowledge(self) -> Path:
        return self.root / "kb"

    def write(self, name: str, text: str) -> None:
        self.docs[name] = text
        path = self.knowledge / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)

    def remove(self, name: str) -> None:
        self.docs.pop(name, None)
        (self.knowledge / name).unlink()


def document_text(seed: int, paragraphs: int = 3, canary: str | None = None) -> str:
    import random

    rng = random.Random(seed)
    title = f"# Document {seed}: {WORDS[seed % len(WORDS)]} {WORDS[(seed * 7) % len(WORDS)]}"
    body = []
    for p in range(paragraphs):
        sentence = " ".join(rng.choice(WORDS) for _ in range(40))
        body.append(f"Section {p} of document {seed}. {sentence.capitalize()}.")
    if canary:
        body.insert(1, f"The reference code for this matter is {canary}.")
    return "\n\n".join([title, *body]) + "\n"


@pytest.fixture
def make_corpus(tmp_path):
    """A small knowledge folder and its manifest (``retriever``: bm25 when the embedder
    does not matter to what is tested, hybrid for the real minilm + Qdrant path)."""

    def make(domain: str = "lawdocs", *, documents: int = 6, retriever: str = "bm25", refresh: str | None = None,
             canary: str | None = None, paragraphs: int = 3, keep_versions: int = 3) -> Corpus:
        root = tmp_path / domain
        root.mkdir(parents=True, exist_ok=True)
        refresh_line = f"  refresh: {{every: {refresh}}}\n" if refresh else ""
        manifest = root / "manifest.yaml"
        manifest.write_text(
            textwrap.dedent(
                f"""\
                fourfold: 1
                domain: {domain}
                title: Test corpus {domain}
                knowledge:
                  sources: [{{path: kb}}]
                  chunking: {{max_tokens: 64, overlap: 8}}
                  keep_versions: {keep_versions}
                """
            )
            + refresh_line
            + f"retrieval: {{use: {retriever}, with: {{top_k: 3}}}}\ngeneration: {{use: extractive}}\n",
            encoding="utf-8",
        )
        corpus = Corpus(root, manifest, domain, canary)
        for i in range(documents):
            corpus.write(f"doc{i:02d}.md", document_text(i, paragraphs, canary if i == 1 else None))
        return corpus

    return make


# -------------------------------------------------------------------------
# Reading the published index
# -------------------------------------------------------------------------


def index_dir(home: Path, domain: str) -> Path:
    return home / "domains" / domain / "index"


def current_version(home: Path, domain: str) -> str | None:
    path = index_dir(home, domain) / "CURRENT"
    return path.read_text().strip() if path.exists() else None


def published_history(home: Path, domain: str) -> list[dict]:
    path = index_dir(home, domain) / "history.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def catalog(home: Path, domain: str, version: str) -> dict:
    """The published version's documents → content hash and chunk ids (what a clean
    build must reproduce exactly)."""
    data = json.loads((index_dir(home, domain) / "versions" / version / "catalog.json").read_text())
    return {path: (entry["hash"], sorted(map(tuple, entry["chunks"]))) for path, entry in data["documents"].items()}


def clean_build(corpus: Corpus, home: Path) -> dict:
    """Build ``corpus`` from scratch into another state dir, in a subprocess, and return
    its catalog."""
    env = {**os.environ, "FOURFOLD_HOME": str(home)}
    env.pop("FOURFOLD_BROKER_URL", None)
    code = (
        "import fourfold\n"
        "from fourfold.index import refresh\n"
        f"d = fourfold.Domain.from_file({str(corpus.manifest)!r})\n"
        "print(refresh(d, full=True).version)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    return catalog(home, corpus.domain, done.stdout.strip().splitlines()[-1])


@pytest.fixture
def start_reader(processes):
    """Start a reader process that searches ``queries`` in a loop and writes one JSON
    line per search: ``{"version", "hits", "error"}``."""

    def start(corpus: Corpus, queries: list[str], out: Path) -> Proc:
        return processes("reader", [sys.executable, str(READER_SCRIPT), str(corpus.manifest), str(out), *queries])

    return start


def read_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass  # a line being written
    return out
