"""Background refreshes in real ``fourfold worker`` processes (prefork), against the real
Redis and the embedded SQLite broker: requested through the CLI, scheduled by beat,
surviving killed worker children, duplicate deliveries and a Redis restart, while a
separate reader process keeps serving queries."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import (
    catalog,
    document_text,
    clean_build,
    current_version,
    IDLE_START,
    fourfold_argv,
    published_history,
    read_lines,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

QUERIES = ["liability clause", "payment invoice", "termination notice", "privacy consent data"]


def run_cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(fourfold_argv(*args), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def publishes(home: Path, domain: str) -> list[str]:
    return [e["version"] for e in published_history(home, domain) if e.get("event") == "publish"]


def lease_pid(domain: str) -> int | None:
    from fourfold.worker.state import open_state

    holder = open_state().lease(domain)
    return holder.pid if holder else None


def assert_catalog_matches_files(home: Path, corpus, version: str, *, changed: dict[str, str] | None = None) -> None:
    """The published version holds exactly the corpus's current documents, and the
    documents in ``changed`` (name → content hash in the version before) were re-read."""
    cat = {Path(k).name: h for k, (h, _) in catalog(home, corpus.domain, version).items()}
    files = {p.name for p in corpus.knowledge.rglob("*.md")}
    assert set(cat) == files, f"{version} does not hold the current documents: {sorted(set(cat) ^ files)}"
    for name, old_hash in (changed or {}).items():
        assert cat[name] != old_hash, f"{version}: the change to {name} is missing"


def doc_hashes(home: Path, corpus, version: str) -> dict[str, str]:
    return {Path(k).name: h for k, (h, _) in catalog(home, corpus.domain, version).items()}


def reader_saw(out: Path, version: str) -> bool:
    return any(r.get("version") == version and r.get("hits", 0) > 0 for r in read_lines(out))


def assert_reader_never_failed(out: Path) -> list[dict]:
    """From its first answer on, every search of the reader found passages. (Before the
    first version is published it has nothing to serve.)"""
    lines = read_lines(out)
    first = next((i for i, r in enumerate(lines) if r.get("hits", 0) > 0), None)
    assert first is not None, "the reader process answered no query"
    lines = lines[first:]
    errors = [r for r in lines if r.get("error")]
    empty = [r for r in lines if not r.get("error") and r.get("hits", 0) == 0]
    assert not errors, f"{len(errors)} of {len(lines)} searches failed, e.g. {errors[0]}"
    assert not empty, f"{len(empty)} of {len(lines)} searches returned nothing, e.g. {empty[0]}"
    return lines


# -------------------------------------------------------------------------
# Requested through the CLI, served by another process
# -------------------------------------------------------------------------


def test_cli_refresh_runs_in_a_worker_and_a_reader_follows_without_restart(
    broker, make_corpus, start_worker, start_reader, tmp_path
):
    corpus = make_corpus("handbook", retriever="hybrid")  # the real minilm embedder and Qdrant engine
    worker = start_worker(corpus.manifest)

    done = run_cli("refresh", str(corpus.manifest), "--wait")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "succeeded" in done.stdout
    first = current_version(broker.home, corpus.domain)
    assert first is not None

    from fourfold.worker import client

    record = client.recent_tasks(1)[0]
    assert record.state == "succeeded" and record.domain == corpus.domain
    worker_pid = int(record.worker.rsplit(":", 1)[1])
    assert worker_pid in worker.children(), "the refresh did not run in a child of the worker process"
    assert worker_pid != os.getpid()

    out = tmp_path / "reader.jsonl"
    reader = start_reader(corpus, QUERIES + ["zyxwvut glossary"], out)
    wait_until(lambda: reader_saw(out, first), 60, f"the reader to serve {first}", log=reader.log)

    corpus.write("glossary.md", "# Glossary\n\nThe zyxwvut glossary term means a fictional clause used in tests.\n")
    done = run_cli("refresh", corpus.domain, "--wait")  # by domain name this time
    assert done.returncode == 0, done.stdout + done.stderr
    second = current_version(broker.home, corpus.domain)
    assert second != first

    wait_until(lambda: reader_saw(out, second), 30, f"the reader to follow the publish of {second}", log=reader.log)
    assert reader.alive() and {r["pid"] for r in read_lines(out)} == {reader.pid}  # never restarted

    # The reader closed the old version: no file of it is open or mapped any more.
    import psutil

    old_dir = str(broker.home / "domains" / corpus.domain / "index" / "versions" / first)

    def old_version_closed() -> bool:
        proc = psutil.Process(reader.pid)
        paths = [f.path for f in proc.open_files()] + [m.path for m in proc.memory_maps()]
        return not any(p.startswith(old_dir) for p in paths)

    wait_until(old_version_closed, 20, f"the reader to close {first}")
    assert_reader_never_failed(out)


def test_a_failed_refresh_exits_1_and_keeps_the_published_version(broker, make_corpus, start_worker):
    corpus = make_corpus("failing", retriever="bm25")
    start_worker(corpus.manifest)
    assert run_cli("refresh", str(corpus.manifest), "--wait").returncode == 0
    published = current_version(broker.home, corpus.domain)
    for name in list(corpus.docs):
        corpus.remove(name)  # a version with no chunks is refused by the gate

    done = run_cli("refresh", corpus.domain, "--wait")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "failed" in done.stderr and corpus.domain in done.stderr
    assert current_version(broker.home, corpus.domain) == published
    tasks = json.loads(run_cli("tasks", "--json").stdout)
    assert tasks["recent"][0]["state"] == "failed" and tasks["recent"][0]["error"]


# -------------------------------------------------------------------------
# Killed worker children
# -------------------------------------------------------------------------


def _kill_when(domain: str, task_id: str, point: tuple, timeout: float = 90) -> int | None:
    """SIGKILL the worker child running ``task_id`` at ``point``: ``("delay", seconds after
    it started, _)`` or ``("stage", name, seconds into that stage)``. Returns the killed
    pid, or None if the task finished first."""
    from fourfold.worker import client

    deadline = time.monotonic() + timeout
    started = stage_seen = None
    kind, value, into = point
    while time.monotonic() < deadline:
        info = client.task_info(task_id)
        if info is not None and info.finished:
            return None
        pid = lease_pid(domain)
        if pid is not None and info is not None and info.state == "running":
            now = time.monotonic()
            started = started or now
            if kind == "stage" and stage_seen is None and (client.task_progress(domain) or {}).get("stage") == value:
                stage_seen = now
            due = (kind == "delay" and now - started >= value) or (stage_seen is not None and now - stage_seen >= into)
            if due:
                os.kill(pid, signal.SIGKILL)
                return pid
        time.sleep(0.02)
    pytest.fail(f"task {task_id} never reached kill point {point}")


def test_killed_worker_child_is_redelivered_and_never_publishes_a_partial_version(
    broker, make_corpus, start_worker, start_reader, tmp_path
):
    from fourfold.worker import client

    corpus = make_corpus("policies", documents=8, retriever="hybrid")
    start_worker(corpus.manifest)
    first = client.request_refresh(corpus.domain)
    out = tmp_path / "reader.jsonl"
    reader = start_reader(corpus, QUERIES, out)  # loads its models while the first build runs
    assert client.wait(first.id, timeout=120).state == "succeeded"
    wait_until(lambda: reader_saw(out, current_version(broker.home, corpus.domain)), 60, "the reader to serve", log=reader.log)

    seed = int(os.environ.get("FOURFOLD_TEST_SEED", str(random.randrange(10**6))))
    rng = random.Random(seed)
    # A kill as soon as a stage begins, or a random moment into it or into the task. On a
    # fast machine a random moment may come after the refresh has finished; then one more
    # refresh is killed as its embedding begins (the longest stage), at most twice.
    points = [
        ("stage", rng.choice(["load", "embed"]), rng.uniform(0, 0.3)),
        ("delay", rng.uniform(0.2, 1.5), 0.0),
        ("stage", "embed", rng.uniform(0, 0.5)),
    ]
    killed = i = 0
    while i < len(points) or (killed < 2 and i < len(points) + 2):
        point = points[i] if i < len(points) else ("stage", "embed", 0.0)
        before = publishes(broker.home, corpus.domain)
        previous = doc_hashes(broker.home, corpus, before[-1])
        # Every document changes, so the refresh re-reads and re-embeds the whole corpus
        # and each stage lasts long enough to be hit.
        for name in [n for n in corpus.docs if n.startswith("doc")]:
            corpus.write(name, document_text(100 * (i + 1) + int(name[3:5]), 6) + f"\nAmendment {i}: a new remedy clause applies.\n")
        corpus.write(f"added{i}.md", f"# Added {i}\n\nA new supplier audit report, number {i}, with a security incident.\n")
        info = client.request_refresh(corpus.domain)
        pid = _kill_when(corpus.domain, info.id, point)
        killed += pid is not None
        final = client.wait(info.id, timeout=180)
        assert final.state == "succeeded", f"kill point {point} (FOURFOLD_TEST_SEED={seed}): {final}"
        if pid is not None:
            assert final.deliveries >= 2, "the killed task was not delivered again"
        after = publishes(broker.home, corpus.domain)
        assert len(after) == len(before) + 1, f"kill point {point}: expected one new publish, history has {after}"
        assert_catalog_matches_files(broker.home, corpus, after[-1], changed={f"doc{i:02d}.md": previous[f"doc{i:02d}.md"]})
        i += 1
    assert killed >= 2, f"the refreshes finished before most kill points were reached (FOURFOLD_TEST_SEED={seed})"

    # The recovered index equals a clean build of the same documents.
    version = current_version(broker.home, corpus.domain)
    assert catalog(broker.home, corpus.domain, version) == clean_build(corpus, tmp_path / "clean-home")
    assert_reader_never_failed(out)


def test_task_that_kills_its_worker_every_time_is_recorded_dead(broker, make_corpus, start_worker, monkeypatch):
    from fourfold.worker import client

    monkeypatch.setenv("FOURFOLD_MAX_DELIVERIES", "2")
    corpus = make_corpus("poison", retriever="bm25")
    start_worker(corpus.manifest, env=IDLE_START)
    info = client.request_refresh(corpus.domain)
    killed: set[int] = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        record = client.task_info(info.id)
        if record and record.finished:
            break
        pid = lease_pid(corpus.domain)
        if pid and pid not in killed and record and record.state == "running":
            os.kill(pid, signal.SIGKILL)
            killed.add(pid)
        time.sleep(0.02)
    final = client.task_info(info.id)
    assert final.state == "dead", final
    assert len(killed) == 2 and "2 deliveries" in final.error
    assert current_version(broker.home, corpus.domain) is None  # nothing half-built was published

    listed = json.loads(run_cli("tasks", "--json").stdout)
    assert [t["id"] for t in listed["dead"]] == [info.id]
    assert listed["running"] == []

    # The lease died with it: the next request runs.
    again = client.request_refresh(corpus.domain)
    assert not again.existing
    assert client.wait(again.id, timeout=120).state == "succeeded"


# -------------------------------------------------------------------------
# Duplicate deliveries
# -------------------------------------------------------------------------


def test_the_same_refresh_delivered_twice_at_once_has_one_writer(broker, make_corpus, start_worker):
    from fourfold.worker import client, names
    from fourfold.worker.app import get_app

    corpus = make_corpus("twins", documents=8, retriever="bm25")
    start_worker(corpus.manifest, concurrency=2)
    assert client.wait(client.request_refresh(corpus.domain).id, timeout=120).state == "succeeded"
    before = publishes(broker.home, corpus.domain)
    previous = doc_hashes(broker.home, corpus, before[-1])

    corpus.write("doc00.md", corpus.docs["doc00.md"] + "\nA late warranty amendment.\n")
    app = get_app()
    # Two deliveries of one task (what a visibility timeout or a lost ack produces) and a
    # third, separate request racing them.
    app.send_task(names.REFRESH, args=[corpus.domain], task_id="twin-refresh")
    app.send_task(names.REFRESH, args=[corpus.domain], task_id="twin-refresh")
    app.send_task(names.REFRESH, args=[corpus.domain], task_id="racing-refresh")

    twin = client.wait("twin-refresh", timeout=120)
    racer = client.wait("racing-refresh", timeout=120)
    wait_until(lambda: lease_pid(corpus.domain) is None, 30, "the lease to be released")
    after = publishes(broker.home, corpus.domain)
    assert len(after) == len(before) + 1, f"expected exactly one writer to publish, history has {after}"
    assert twin.state == "succeeded"
    assert racer.state in {"succeeded", "skipped"}  # skipped while the twin wrote, or a no-op after it
    assert_catalog_matches_files(broker.home, corpus, after[-1], changed={"doc00.md": previous["doc00.md"]})


@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_redelivery_after_a_visibility_timeout_waits_for_the_running_delivery(broker, make_corpus, start_worker):
    """Redis hands a task that is still running to a second worker child once its
    visibility timeout passes; the second delivery must neither write nor be counted as a
    crash, and late copies of the finished task do nothing."""
    from fourfold.worker import client

    corpus = make_corpus("slowdocs", documents=16, paragraphs=4, retriever="hybrid")
    worker = start_worker(corpus.manifest, concurrency=2, env={"FOURFOLD_VISIBILITY_TIMEOUT": "1", **IDLE_START})
    info = client.request_refresh(corpus.domain)
    final = client.wait(info.id, timeout=180)
    assert final.state == "succeeded", final
    wait_until(lambda: (client.task_info(info.id).deliveries or 0) >= 2, 30, "Redis to deliver the running task again", log=worker.log)
    wait_until(lambda: lease_pid(corpus.domain) is None, 30, "the lease to be released")
    time.sleep(3)  # late copies come and go
    assert client.task_info(info.id).state == "succeeded"  # never turned dead or failed
    assert len(publishes(broker.home, corpus.domain)) == 1, "a duplicate delivery wrote a second version"
    log = worker.log_text()
    assert "completed by another delivery" in log or "already succeeded" in log
    assert "is dead" not in log


def test_requests_while_a_refresh_runs_share_one_follow_up_run(broker, make_corpus, start_worker):
    from fourfold.worker import client

    corpus = make_corpus("busy", documents=8, retriever="hybrid")
    start_worker(corpus.manifest, env=IDLE_START)  # the first request below is the first refresh
    first = client.request_refresh(corpus.domain)
    again = client.request_refresh(corpus.domain)  # still queued: the same task
    assert again.existing and again.id == first.id
    wait_until(lambda: (client.task_info(first.id) or first).state == "running", 60, "the refresh to start")
    during = client.request_refresh(corpus.domain, full=True)
    assert during.id != first.id and during.follows == first.id and during.state == "queued"
    later = client.request_refresh(corpus.domain)
    assert later.existing and later.id == during.id  # coalesced into the one follow-up
    assert client.wait(first.id, timeout=120).state == "succeeded"
    follow = client.wait(during.id, timeout=120)
    assert follow.state == "succeeded" and follow.extra.get("full") is True  # the full rebuild asked for
    wait_until(lambda: lease_pid(corpus.domain) is None, 30, "the lease to be released")
    after = client.request_refresh(corpus.domain)
    assert not after.existing and after.id not in (first.id, during.id) and after.follows is None
    assert client.wait(after.id, timeout=120).state == "succeeded"


# -------------------------------------------------------------------------
# Many refreshes under query load
# -------------------------------------------------------------------------


def test_queries_during_twenty_refreshes_never_fail_or_come_back_empty(broker, make_corpus, start_worker, start_reader, tmp_path):
    from fourfold.worker import client

    corpus = make_corpus("busyindex", documents=6, retriever="bm25", keep_versions=2)
    start_worker(corpus.manifest)
    assert client.wait(client.request_refresh(corpus.domain).id, timeout=120).state == "succeeded"
    out = tmp_path / "reader.jsonl"
    reader = start_reader(corpus, QUERIES, out)
    wait_until(lambda: read_lines(out), 60, "the reader to start serving", log=reader.log)

    versions = set()
    for i in range(20):
        name = f"doc{i % 6:02d}.md"
        corpus.write(name, corpus.docs[name] + f"\nRevision {i}: the liability cap changes again.\n")
        final = client.wait(client.request_refresh(corpus.domain).id, timeout=60)
        assert final.state == "succeeded", final
        versions.add(final.result.get("version"))
    assert len(versions) == 20, f"expected 20 published versions, got {sorted(versions)}"
    last = current_version(broker.home, corpus.domain)
    wait_until(lambda: reader_saw(out, last), 30, "the reader to serve the last version")
    lines = assert_reader_never_failed(out)
    assert len({r["version"] for r in lines}) >= 5, "the reader followed too few of the publishes"


# -------------------------------------------------------------------------
# Beat, and nothing sensitive in broker, state or logs
# -------------------------------------------------------------------------


CANARY = "CANARY-7f3a9c1e-QUOKKA"


def test_beat_refreshes_on_schedule_and_no_document_or_question_text_leaks(
    broker, make_corpus, start_worker, start_reader, processes, tmp_path
):
    from fourfold.worker import client

    corpus = make_corpus("canary", retriever="bm25", refresh="10s", canary=CANARY)
    worker = start_worker(corpus.manifest)
    beat = processes("beat", fourfold_argv("beat", str(corpus.manifest), "--loglevel", "debug"))
    cli = run_cli("refresh", str(corpus.manifest), "--wait")
    assert cli.returncode == 0, cli.stdout + cli.stderr
    out = tmp_path / "reader.jsonl"
    reader = start_reader(corpus, [f"what does {CANARY} refer to", "liability clause"], out)
    wait_until(lambda: read_lines(out), 60, "the reader to start serving", log=reader.log)

    first = current_version(broker.home, corpus.domain)
    corpus.write("doc03.md", corpus.docs["doc03.md"] + f"\nA scheduled amendment mentions {CANARY} again.\n")
    # Nobody asks for this refresh: beat queues it within its 10 s interval.
    wait_until(lambda: current_version(broker.home, corpus.domain) != first, 45, "a scheduled refresh to publish", log=beat.log)
    # The publish came from a task nobody requested through the client (beat's).
    wait_until(
        lambda: [t for t in client.recent_tasks(50) if t.state == "succeeded" and t.queued_at is None],
        30,
        "the scheduled task to be recorded as succeeded",
    )
    assert reader_saw(out, current_version(broker.home, corpus.domain)) or wait_until(
        lambda: reader_saw(out, current_version(broker.home, corpus.domain)), 20, "the reader to follow"
    )

    # The document's and the question's text never reach the broker, the result backend,
    # the shared task state, or any worker/beat/CLI log.
    assert CANARY in (corpus.knowledge / "doc01.md").read_text()  # it is in the corpus
    time.sleep(0.5)
    places = {
        "broker, results and task state": broker.dump(),
        "worker log": worker.log_text(),
        "beat log": beat.log_text(),
        "refresh CLI output": cli.stdout + cli.stderr,
        "tasks CLI output": run_cli("tasks", "--json").stdout,
    }
    assert places["broker, results and task state"], "nothing found to inspect in the broker"
    assert "fourfold.refresh_domain" in places["worker log"]
    for where, text in places.items():
        assert CANARY not in text, f"the canary leaked into the {where}"
        assert "scheduled amendment" not in text, f"document text leaked into the {where}"


# -------------------------------------------------------------------------
# Redis restart
# -------------------------------------------------------------------------


@pytest.fixture
def own_redis(tmp_path, processes):
    """A private redis-server with an append-only file, started and stopped by PID."""
    import shutil
    import socket

    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed (apt-get install -y redis-server); the restart test needs its own")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = tmp_path / "redis-data"
    data.mkdir()
    argv = [exe, "--port", str(port), "--bind", "127.0.0.1", "--appendonly", "yes", "--appendfsync", "always",
            "--dir", str(data), "--save", "", "--daemonize", "no"]

    class Server:
        url = f"redis://127.0.0.1:{port}/0"
        proc = None

        def start(self):
            import redis

            self.proc = processes("redis", argv)
            wait_until(lambda: _pings(self.url), 20, f"redis-server on port {port}", log=self.proc.log)

        def stop(self):
            self.proc.popen.send_signal(signal.SIGTERM)  # by PID: writes its AOF and exits
            self.proc.popen.wait(timeout=20)

    server = Server()
    server.start()
    yield server
    server.stop() if server.proc.alive() else None


def _pings(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except Exception:
        return False


def test_queued_refreshes_complete_after_a_redis_restart(own_redis, fourfold_home, make_corpus, processes, monkeypatch):
    import uuid

    from fourfold import settings
    from fourfold.worker import client

    monkeypatch.setenv("FOURFOLD_BROKER_URL", own_redis.url)
    monkeypatch.setenv("FOURFOLD_NAMESPACE", f"fftest-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("FOURFOLD_LEASE_SECONDS", "6")
    settings.get_settings(fresh=True)
    corpora = [make_corpus(f"restart{i}", retriever="bm25") for i in range(3)]
    worker = processes(
        "worker", fourfold_argv("worker", *(str(c.manifest) for c in corpora), "--concurrency", "1", "--loglevel", "info")
    )
    wait_until(lambda: client.live_workers(), 60, "the worker to announce itself", log=worker.log)

    tasks = [client.request_refresh(c.domain) for c in corpora]
    wait_until(lambda: any(lease_pid(c.domain) for c in corpora), 60, "the first refresh to start", log=worker.log)
    own_redis.stop()
    time.sleep(1.0)
    own_redis.start()

    for info, corpus in zip(tasks, corpora):
        final = client.wait(info.id, timeout=180)
        assert final.state == "succeeded", f"{corpus.domain}: {final}\n{worker.log_text()[-3000:]}"
        assert current_version(fourfold_home, corpus.domain) is not None
    assert worker.alive()
