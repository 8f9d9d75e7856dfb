"""Several hosts on one machine: two API processes and two workers, each with its own
state dir, sharing only a Redis (its own port) and a Qdrant server — the stand-in under
tests/helpers, or a real Qdrant when FOURFOLD_TEST_QDRANT_URL is set.

Workers are SIGKILLed mid-refresh (FOURFOLD_MULTIHOST_KILLS times, 10 by default) and
Redis is restarted once; no refresh may be lost, no published version destroyed, and the
published index must equal a clean build of the same files. A second namespace then
builds the same domain on the same Qdrant without touching the first one's data.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

import fourfold

from .conftest import document_text, fourfold_argv, wait_until
from .test_background_refresh import own_redis  # noqa: F401 - fixture

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KILLS = int(os.environ.get("FOURFOLD_MULTIHOST_KILLS", "10"))
TOKEN = "multi-host-test-token"


def figure(text: str) -> None:
    print(f"FIGURE {text}", flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _domain(manifest: Path, home: Path, **settings) -> fourfold.Domain:
    from fourfold.plugins import get_host

    host = get_host()
    return fourfold.Domain(fourfold.load_manifest(manifest, host), host, fourfold.Settings(home=home, **settings))


def _documents(domain: fourfold.Domain, version: str | None = None) -> dict[str, tuple[str, int]]:
    """Published documents → (content hash, chunk count)."""
    from fourfold.index import IndexLayout

    layout = IndexLayout.for_domain(domain)
    version = version or layout.read_current()
    catalog = layout.read_catalog(version)
    return {Path(p).name: (e.hash, len(e.chunks)) for p, e in catalog.documents.items()}


def _files(corpus) -> dict[str, str]:
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in corpus.knowledge.glob("*.md")}


def _served(port: int, domain: str) -> str | None:
    try:
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/domains/{domain}/ask",
            json={"question": "Which remedy does the supplier audit report name?"},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
    except httpx.HTTPError:
        return None
    return r.json().get("index_version") if r.status_code == 200 else None


def _lags(ports: dict[str, int], domain: str, version: str, since: float, timeout: float = 15) -> dict[str, float]:
    """Seconds from ``since`` until each API host answers from ``version`` (asked side by side)."""
    from concurrent.futures import ThreadPoolExecutor

    def follow(port: int) -> float:
        deadline = time.monotonic() + timeout
        while _served(port, domain) != version:
            assert time.monotonic() < deadline, f"the API on port {port} did not serve {version} within {timeout}s"
            time.sleep(0.05)
        return time.monotonic() - since

    with ThreadPoolExecutor(len(ports)) as pool:
        futures = {name: pool.submit(follow, port) for name, port in ports.items()}
        return {name: f.result() for name, f in futures.items()}


def _snapshot(client, namespace: str, domain: str) -> dict:
    out = {}
    for name in (f"{namespace}--{domain}", f"{namespace}--{domain}--records"):
        points, offset = [], None
        while True:
            batch, offset = client.scroll(name, limit=1000, offset=offset, with_payload=True)
            points += batch
            if offset is None:
                break
        out[name] = {str(p.id): p.payload for p in points}
    return out


def test_two_api_hosts_and_two_workers_share_no_disk(
    tmp_path, own_redis, processes, make_corpus, monkeypatch, qdrant_server_url  # noqa: F811 - fixture
):
    from fourfold import settings as settings_module
    from fourfold.index import IndexLayout
    from fourfold.worker import client
    from fourfold_qdrant.server import client_for

    namespace = f"fftest-{uuid.uuid4().hex[:8]}"
    shared = {
        "FOURFOLD_BROKER_URL": own_redis.url,
        "FOURFOLD_QDRANT_URL": qdrant_server_url,
        "FOURFOLD_NAMESPACE": namespace,
        "FOURFOLD_LEASE_SECONDS": "4",
        "FOURFOLD_TORCH_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "MULTIHOST_TOKENS": TOKEN,
    }
    for key, value in shared.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("FOURFOLD_HOME", str(tmp_path / "client"))
    settings_module.get_settings(fresh=True)

    corpus = make_corpus("multihost", documents=10, paragraphs=4, retriever="hybrid")
    text = corpus.manifest.read_text().replace("generation: {use: extractive}", "generation: {use: extractive}\nserve: {tokens_env: MULTIHOST_TOKENS}\ntrust: {answerability: off}")
    corpus.manifest.write_text(text)
    domain = corpus.domain

    def start_worker(name: str):
        return processes(name, fourfold_argv("worker", str(corpus.manifest), "--concurrency", "1", "--loglevel", "info"),
                         {"FOURFOLD_HOME": str(tmp_path / name)})

    workers = {name: start_worker(name) for name in ("w1", "w2")}
    ports, apis = {}, {}
    for name in ("a1", "a2"):
        ports[name] = _free_port()
        apis[name] = processes(name, fourfold_argv("serve", str(corpus.manifest), "--port", str(ports[name]), "--log-level", "warning"),
                  {"FOURFOLD_HOME": str(tmp_path / name)})
    wait_until(lambda: len(client.live_workers()) >= 2, 120, "both workers to announce themselves")

    first = client.request_refresh(domain)
    assert client.wait(first.id, timeout=240).state == "succeeded"
    reader = _domain(corpus.manifest, tmp_path / "client")
    v1 = IndexLayout.for_domain(reader).read_current()
    assert v1 is not None
    for name, port in ports.items():
        wait_until(lambda: _served(port, domain) == v1, 180, f"API {name} to serve {v1}", log=apis[name].log)

    # A publish reaches both API hosts (no shared disk); how fast is bench_scaleout's figure.
    corpus.write("doc00.md", document_text(500, 4))
    info = client.request_refresh(domain)
    assert client.wait(info.id, timeout=240).state == "succeeded"
    published = time.monotonic()
    v2 = IndexLayout.for_domain(reader).read_current()
    assert v2 != v1
    lags = _lags(ports, domain, v2, published)
    figure(f"API hosts serving {v2} after publish: {', '.join(f'{k} {v:.2f}s' for k, v in lags.items())}")

    # Kill workers mid-refresh; restart Redis once half-way.
    kills = rounds = 0
    restarted_redis = False
    while kills < KILLS and rounds < 3 * KILLS:
        rounds += 1
        for name in [n for n in corpus.docs if n.startswith("doc")]:  # every document changes: the refresh embeds a while
            corpus.write(name, document_text(1000 * rounds + int(name[3:5]), 4))
        corpus.write(f"added{rounds:02d}.md", f"# Added {rounds}\n\nThe supplier audit report {rounds} names remedy {rounds}.\n")
        info = client.request_refresh(domain)

        def mid_refresh():
            progress = client.task_progress(domain) or {}
            holder = client_lease_pid(domain)
            return holder if progress.get("stage") in ("load", "embed", "write") and holder else None

        try:
            holder = wait_until(mid_refresh, 60, "a refresh to be under way", interval=0.02)
        except pytest.fail.Exception:
            continue
        victim = next((n for n, p in workers.items() if p.alive() and (holder == p.pid or holder in p.children())), None)
        if victim is None:
            continue
        os.killpg(workers[victim].pid, signal.SIGKILL)
        workers[victim].popen.wait(timeout=10)
        kills += 1
        workers[victim] = start_worker(victim)
        if kills == KILLS // 2 and not restarted_redis:
            own_redis.stop()
            own_redis.start()
            restarted_redis = True
    assert kills == KILLS, f"only {kills} of {KILLS} kills happened mid-refresh in {rounds} rounds"
    assert restarted_redis

    # Nothing lost: the published index ends up holding every file as it is now …
    def caught_up():
        documents = _documents(reader)
        return documents if {k: v[0] for k, v in documents.items()} == _files(corpus) else None

    final = wait_until(caught_up, 300, "the published index to hold the files as they are now", interval=0.5)
    # … exactly as a clean build of the same files does …
    clean = _domain(corpus.manifest, tmp_path / "clean", qdrant_url=None, broker_url=None)
    from fourfold.index import refresh

    refresh(clean, full=True)
    assert final == _documents(clean)
    # … and every version kept is whole: its points count what its catalog says.
    layout = IndexLayout.for_domain(reader)
    store = reader.retriever.open_store()
    for version in layout.complete_versions():
        r = store.open_version(layout.store_dir(version))
        assert r.count() == layout.read_catalog(version).chunk_count, version
    events = [e["event"] for e in layout.history()]
    figure(f"{kills} worker kills mid-refresh + a Redis restart: {events.count('publish')} publishes, "
           f"{events.count('failed')} failed attempts recorded, final index equals a clean build")
    for name, port in ports.items():
        wait_until(lambda: _served(port, domain) == layout.read_current(), 10, f"API {name} to serve the final version")
        status = httpx.get(f"http://127.0.0.1:{port}/v1/domains/{domain}/status", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).json()
        assert status["index"]["published"] == layout.read_current()
        assert status["index"]["documents"] == len(final) and status["index"]["last_refresh"]["event"] == "publish"

    # A second namespace on the same Qdrant leaves the first one's data alone.
    qdrant = client_for(qdrant_server_url, None)
    before = _snapshot(qdrant, namespace, domain)
    other = f"fftest-{uuid.uuid4().hex[:8]}"
    processes("other", fourfold_argv("worker", str(corpus.manifest), "--concurrency", "1", "--loglevel", "info"),
              {"FOURFOLD_HOME": str(tmp_path / "other"), "FOURFOLD_NAMESPACE": other})
    other_settings = fourfold.Settings(home=tmp_path / "other-client", namespace=other)
    wait_until(lambda: client.live_workers(settings=other_settings), 120, "the other namespace's worker")
    built = client.request_refresh(domain, settings=other_settings)
    assert client.wait(built.id, timeout=240, settings=other_settings).state == "succeeded"
    assert _snapshot(qdrant, namespace, domain) == before
    theirs = _domain(corpus.manifest, tmp_path / "other-client", namespace=other)
    assert _documents(theirs) == final


def client_lease_pid(domain: str) -> int | None:
    from fourfold.worker.state import open_state

    holder = open_state().lease(domain)
    return holder.pid if holder else None
