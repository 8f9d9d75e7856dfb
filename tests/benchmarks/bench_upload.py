"""Seconds from uploading a document over HTTP to the first answer citing it.

    python tests/benchmarks/bench_upload.py [--rounds N] [--retrieval hybrid|bm25]

A real deployment on this machine: ``fourfold up --no-beat`` (the API, and a real
``fourfold worker`` process doing the refreshes through the embedded SQLite broker) for
one domain with a seed folder and an ``upload`` source; MiniLM hybrid retrieval by
default. The write token is the one ``fourfold up`` prints. Each round:

1. ``PUT /v1/domains/kb/documents/round-N.md`` a document holding a fact found nowhere
   else (the clock starts before the request);
2. poll ``GET /status`` until a new index version is published, then ask the fact's
   question with ``POST /ask`` until an answer cites the upload (the clock stops).

Then the same for a ``DELETE``: seconds until answers no longer cite the document.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]

from tests.helpers.moto_s3 import free_port  # noqa: E402

# The upload source's plugin may be newer than the installed entry points: a
# sitecustomize adds the checkout's declared builtins in every process fourfold starts.
SITE = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from pathlib import Path
from tests.helpers.entry_points import add_declared_builtins
add_declared_builtins(Path({str(ROOT)!r}) / "pyproject.toml")
"""

WORDS = ["amber", "basalt", "cobalt", "dune", "ember", "fjord", "garnet", "harbor", "indigo", "juniper", "krypton", "lagoon"]


def manifest(work: Path, retrieval: str) -> Path:
    (work / "seed").mkdir(parents=True)
    (work / "seed" / "welcome.md").write_text("# Welcome\n\nThis assistant answers from uploaded project notes.\n")
    path = work / "kb.yaml"
    path.write_text(textwrap.dedent(f"""
        fourfold: 1
        domain: kb
        title: Uploaded project notes
        knowledge:
          sources: [{{path: seed}}, {{use: upload}}]
          gate: {{min_chunks: 1}}
        retrieval: {{use: {retrieval}, with: {{top_k: 3}}}}
        generation: {{use: extractive}}
        trust: {{answerability: off}}
    """).lstrip())
    return path


class Deployment:
    def __init__(self, work: Path, manifest_path: Path):
        site = work / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(SITE)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = work / "up.log"
        env = {
            **os.environ,
            "FOURFOLD_HOME": str(work / "home"),
            "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
            "PYTHONUNBUFFERED": "1",
            "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fourfold", "up", str(manifest_path), "--port", str(self.port), "--no-beat"],
            stdout=open(self.log, "wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"fourfold up exited:\n{self.output()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200 and "write token:" in self.output():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError("fourfold up did not start")

    def token(self, kind: str) -> str:
        found = re.search(rf"^\s+{kind}: (\S+)", self.output(), re.M)
        assert found, f"no {kind} printed:\n{self.output()}"
        return found.group(1)

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGINT)
            self.proc.wait(60)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def published(http: httpx.Client) -> str | None:
    return http.get("/v1/domains/kb/status").json()["index"]["published"]


def cites(http: httpx.Client, question: str, source: str) -> bool:
    answer = http.post("/v1/domains/kb/ask", json={"question": question}, timeout=120)
    return answer.status_code == 200 and any(c["source"] == source for c in answer.json()["citations"])


def wait_for(http: httpx.Client, before: str | None, question: str, source: str, present: bool, timeout: float = 300) -> float:
    """Seconds (from now) until answers to ``question`` cite ``source`` (or stop)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if published(http) != before and cites(http, question, source) == present:
            return time.perf_counter() - started
        time.sleep(0.2)
    raise RuntimeError(f"{source} was {'not ' if present else 'still '}cited after {timeout} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--retrieval", choices=["hybrid", "bm25"], default="hybrid")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fourfold-bench-upload-"))
    deployment = Deployment(work, manifest(work, args.retrieval))
    try:
        started = time.perf_counter()
        deployment.wait_ready()
        print(f"fourfold up ready in {time.perf_counter() - started:.1f} s (API + worker, {args.retrieval} retrieval)")
        read, write = deployment.token("token"), deployment.token("write token")
        writer = httpx.Client(base_url=deployment.url, headers={"Authorization": f"Bearer {write}"}, timeout=60)
        reader = httpx.Client(base_url=deployment.url, headers={"Authorization": f"Bearer {read}"}, timeout=60)
        upload_s, delete_s = [], []
        for n in range(args.rounds):
            word = f"{WORDS[n % len(WORDS)]}-{secrets.token_hex(3)}"
            project = f"Project {WORDS[(n + 5) % len(WORDS)].title()}{n}"
            question = f"What is the code word of {project}?"
            text = f"# {project}\n\nThe code word of {project} is {word}. It was chosen at the kickoff meeting.\n"
            source = f"upload/round-{n}.md"
            before = published(reader)
            clock = time.perf_counter()
            answer = writer.put(f"/v1/domains/kb/documents/round-{n}.md", content=text.encode())
            assert answer.status_code == 201 and answer.json()["refresh"]["queued"], answer.text
            seconds = (time.perf_counter() - clock) + wait_for(reader, before, question, source, True)
            upload_s.append(seconds)
            print(f"round {n}: upload → answered from it in {seconds:.2f} s")
            if n == args.rounds - 1:
                before = published(reader)
                clock = time.perf_counter()
                assert writer.delete(f"/v1/domains/kb/documents/round-{n}.md").status_code == 200
                seconds = (time.perf_counter() - clock) + wait_for(reader, before, question, source, False)
                delete_s.append(seconds)
                print(f"delete → no longer cited in {seconds:.2f} s")
        print(
            f"\nupload a document → answered from it: median {statistics.median(upload_s):.2f} s "
            f"(min {min(upload_s):.2f}, max {max(upload_s):.2f}, {len(upload_s)} rounds; first round includes the worker's first refresh)"
        )
        print(f"delete a document → no longer cited: {delete_s[0]:.2f} s")
        return 0
    finally:
        deployment.stop()


if __name__ == "__main__":
    sys.exit(main())
