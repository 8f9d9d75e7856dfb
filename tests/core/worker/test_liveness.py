"""Refreshes that never stall and never drop an edit, in real ``fourfold worker``
processes against the real Redis and the embedded SQLite broker:

- a worker whose main process is SIGKILLed mid-refresh blocks nothing: a new request is
  queued at once, and the dead task's work is requeued when a worker starts again;
- an edit made while a refresh runs is indexed by the one follow-up run after it;
- a Redis outage longer than the writer lease does not fail the running refresh.

Scaled down from the figures they check (5 rounds, 60 s and 120 s outages): 2 rounds,
and an outage of 4 lease periods with ``FOURFOLD_LEASE_SECONDS=2``, so that each test
runs in well under a minute. ``tests/benchmarks/bench_liveness.py`` runs them at full
size (``FOURFOLD_LIVENESS_ROUNDS``, ``FOURFOLD_LIVENESS_LEASE_SECONDS``,
``FOURFOLD_LIVENESS_OUTAGE_SECONDS``); each prints ``FIGURE`` lines with what it measured.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid

import pytest

from .conftest import current_version, document_text, fourfold_argv, wait_until
from .test_background_refresh import doc_hashes, lease_pid, own_redis, publishes, run_cli  # noqa: F401 - fixture

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROUNDS = int(os.environ.get("FOURFOLD_LIVENESS_ROUNDS", "2"))
RESTART_TARGET_SECONDS = 60  # the change is indexed this soon after the worker restarts


def figure(text: str) -> None:
    print(f"FIGURE {text}", flush=True)


def _change_everything(corpus, round_: int) -> str:
    """Rewrite every document (so the refresh embeds for a while) and add one; returns
    the added document's name."""
    for name in [n for n in corpus.docs if n.startswith("doc")]:
        corpus.write(name, document_text(1000 * (round_ + 1) + int(name[3:5]), 5))
    added = f"added{round_}.md"
    corpus.write(added, f"# Added {round_}\n\nA supplier audit report, number {round_}, names a new remedy.\n")
    return added


def _indexed(home, corpus, name: str) -> bool:
    version = current_version(home, corpus.domain)
    return version is not None and name in doc_hashes(home, corpus, version)


def _wait_for_stage(domain: str, task_id: str, stage: str, timeout: float = 120) -> None:
    from fourfold.worker import client

    def reached():
        info = client.task_info(task_id)
        if info is not None and info.finished:
            pytest.fail(f"task {task_id} finished before reaching {stage}: {info}")
        return (client.task_progress(domain) or {}).get("stage") == stage

    wait_until(reached, timeout, f"task {task_id} to reach stage {stage}", interval=0.02)


# -------------------------------------------------------------------------
# The worker's main process killed mid-refresh
# -------------------------------------------------------------------------


def test_a_killed_worker_main_process_blocks_nothing_and_its_work_is_done_after_a_restart(
    broker, make_corpus, start_worker
):
    from fourfold.worker import client

    corpus = make_corpus("mainkill", documents=16, paragraphs=4, retriever="hybrid")
    worker = start_worker(corpus.manifest)
    assert client.wait(client.request_refresh(corpus.domain).id, timeout=180).state == "succeeded"

    for round_ in range(ROUNDS):
        added = _change_everything(corpus, round_)
        info = client.request_refresh(corpus.domain)
        _wait_for_stage(corpus.domain, info.id, "embed")
        os.kill(worker.pid, signal.SIGKILL)  # the main process; its children die with it
        worker.popen.wait(timeout=10)
        wait_until(lambda: lease_pid(corpus.domain) is None or not _pid_alive(lease_pid(corpus.domain)), 10, "the child to die")

        # Nothing runs it now, and the shared state says so rather than "running".
        stuck = client.task_info(info.id)
        assert stuck.state in ("running", "queued") and stuck.stuck, stuck
        tasks = json.loads(run_cli("tasks", "--json").stdout)
        listed = next(t for t in tasks["recent"] if t["id"] == info.id)
        assert listed["stuck"], listed

        if round_ == 0:
            # A request made now is not answered with the dead task: it is queued.
            again = client.request_refresh(corpus.domain)
            assert again.id != info.id and not again.existing, again
            assert client.task_info(info.id).state == "released"
            assert client.task_info(info.id).requeued_as == again.id
            covering = again.id
        else:
            covering = info.id  # nobody asks again: the starting worker requeues it

        restarted = time.monotonic()
        worker = start_worker(corpus.manifest)
        final = client.wait(covering, timeout=RESTART_TARGET_SECONDS)
        took = time.monotonic() - restarted
        assert final.state == "succeeded", final
        assert _indexed(broker.home, corpus, added), f"round {round_}: {added} is not in the published version"
        assert took < RESTART_TARGET_SECONDS
        figure(f"main-process kill, {broker.kind} broker, round {round_ + 1}: indexed {took:.1f}s after the worker restart "
               f"({'a new request released the dead task' if round_ == 0 else 'requeued by the starting worker'})")
        # `--wait` on the original request follows to the run that did its work.
        assert client.wait(info.id, timeout=5).state == "succeeded"
        if round_ == 1:
            record = client.task_info(info.id).extra
            assert record.get("requeues") == 1
            # Its own message went back to the queue (Redis: the unacked message restored;
            # SQLite: the delivered message made visible), not a copy.
            assert "sent again" not in record.get("note", ""), f"{record}\n{worker.log_text()[-4000:]}"

    wait_until(lambda: lease_pid(corpus.domain) is None, 30, "the lease to be released")
    assert client.running_tasks() == []
    if broker.kind == "redis":
        # No message of a dead worker waits for the visibility timeout to come back.
        import redis

        from .conftest import REDIS_URL

        # (A message the live worker is still settling — a duplicate delivery it discards —
        # is gone in moments; a dead worker's would stay for the visibility timeout, minutes.)
        unacked = redis.Redis.from_url(REDIS_URL)
        wait_until(lambda: unacked.hlen(f"{broker.namespace}:unacked") == 0, 15, "no unacknowledged message left behind")


def test_a_worker_killed_while_another_runs_is_noticed_by_the_live_one(broker, make_corpus, start_worker):
    """Nobody restarts the dead worker: the live one requeues its task at a heartbeat."""
    from fourfold.worker import client

    corpus = make_corpus("otherlives", documents=16, paragraphs=4, retriever="hybrid")
    workers = [start_worker(corpus.manifest), start_worker(corpus.manifest)]
    assert client.wait(client.request_refresh(corpus.domain).id, timeout=180).state == "succeeded"

    added = _change_everything(corpus, 0)
    info = client.request_refresh(corpus.domain)
    _wait_for_stage(corpus.domain, info.id, "embed")
    holder = lease_pid(corpus.domain)
    victim = next(w for w in workers if holder == w.pid or holder in w.children())
    os.killpg(victim.pid, signal.SIGKILL)
    victim.popen.wait(timeout=10)
    killed = time.monotonic()

    final = client.wait(info.id, timeout=RESTART_TARGET_SECONDS + 60)
    took = time.monotonic() - killed
    assert final.state == "succeeded", final
    assert _indexed(broker.home, corpus, added)
    assert took < RESTART_TARGET_SECONDS, f"the live worker took {took:.0f}s to take over"
    survivor = next(w for w in workers if w is not victim)
    assert "requeued" in survivor.log_text()
    figure(f"worker killed mid-refresh, {broker.kind} broker, the other worker alive: indexed {took:.1f}s after the kill")


def _pid_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# -------------------------------------------------------------------------
# Requests while a refresh runs
# -------------------------------------------------------------------------


def test_an_edit_made_while_a_refresh_runs_is_indexed_by_one_follow_up_run(broker, make_corpus, start_worker):
    from fourfold.worker import client

    corpus = make_corpus("followup", documents=16, paragraphs=4, retriever="hybrid")
    start_worker(corpus.manifest, concurrency=2)
    assert client.wait(client.request_refresh(corpus.domain).id, timeout=180).state == "succeeded"

    for round_ in range(ROUNDS):
        _change_everything(corpus, round_)
        before = len(publishes(broker.home, corpus.domain))
        running = client.request_refresh(corpus.domain)
        _wait_for_stage(corpus.domain, running.id, "embed")
        edited = f"doc{round_:02d}.md"
        corpus.write(edited, corpus.docs[edited] + f"\nEdit {round_} made during the refresh: a late indemnity clause.\n")

        # Many requests while it runs: one follow-up, which `--wait` waits for.
        follow = client.request_refresh(corpus.domain)
        assert follow.id != running.id and follow.follows == running.id, follow
        for _ in range(3):
            assert client.request_refresh(corpus.domain).id == follow.id  # coalesced
        done = run_cli("refresh", corpus.domain, "--wait", "--timeout", "120")
        assert done.returncode == 0, done.stdout + done.stderr
        assert follow.id in done.stdout, done.stdout

        assert client.task_info(running.id).state == "succeeded"
        final = client.task_info(follow.id)
        assert final.state == "succeeded" and final.started_at >= client.task_info(running.id).finished_at - 1
        after = publishes(broker.home, corpus.domain)
        assert len(after) == before + 2, f"expected the refresh and one follow-up to publish, history has {after}"
        text = (corpus.knowledge / edited).read_text()
        assert f"Edit {round_} made during the refresh" in text
        hashes = doc_hashes(broker.home, corpus, after[-1])
        previous = doc_hashes(broker.home, corpus, after[-2])
        assert hashes[edited] != previous[edited], f"round {round_}: the edit to {edited} is not indexed"
        figure(f"edit during a refresh, {broker.kind} broker, round {round_ + 1}: indexed by follow-up {follow.id}")

    # Nothing more is queued once everything is indexed.
    wait_until(lambda: lease_pid(corpus.domain) is None, 30, "the lease to be released")
    tasks = json.loads(run_cli("tasks", "--json").stdout)
    assert not [t for t in tasks["recent"] if t["state"] in ("queued", "running")], tasks["recent"][:3]


# -------------------------------------------------------------------------
# Redis away for longer than the writer lease
# -------------------------------------------------------------------------


# SIGKILL (no shutdown at all) in the suite; the benchmark adds SIGTERM.
@pytest.mark.parametrize("signal_name", os.environ.get("FOURFOLD_LIVENESS_SIGNALS", "SIGKILL").split(","))
def test_a_refresh_rides_out_a_redis_outage_longer_than_its_lease(
    own_redis, fourfold_home, make_corpus, processes, monkeypatch, signal_name
):
    from fourfold import settings
    from fourfold.worker import client

    lease = int(os.environ.get("FOURFOLD_LIVENESS_LEASE_SECONDS", "2"))
    outage = float(os.environ.get("FOURFOLD_LIVENESS_OUTAGE_SECONDS", str(4 * lease)))
    monkeypatch.setenv("FOURFOLD_BROKER_URL", own_redis.url)
    monkeypatch.setenv("FOURFOLD_NAMESPACE", f"fftest-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("FOURFOLD_LEASE_SECONDS", str(lease))
    monkeypatch.setenv("FOURFOLD_TORCH_THREADS", "1")
    settings.get_settings(fresh=True)
    corpus = make_corpus("outage", documents=24, paragraphs=5, retriever="hybrid")
    worker = processes("worker", fourfold_argv("worker", str(corpus.manifest), "--concurrency", "1", "--loglevel", "info"))
    wait_until(lambda: client.live_workers(), 60, "the worker to announce itself", log=worker.log)
    first = client.request_refresh(corpus.domain)
    assert client.wait(first.id, timeout=180).state == "succeeded"

    added = _change_everything(corpus, 0)
    info = client.request_refresh(corpus.domain)
    _wait_for_stage(corpus.domain, info.id, "embed")
    own_redis.proc.popen.send_signal(getattr(signal, signal_name))  # by PID
    own_redis.proc.popen.wait(timeout=20)
    time.sleep(outage)  # longer than the lease: it expires meanwhile; nobody else takes it
    own_redis.start()
    back = time.monotonic()

    final = client.wait(info.id, timeout=180 + outage)
    assert final.state == "succeeded", f"{final}\n{worker.log_text()[-3000:]}"
    assert _indexed(fourfold_home, corpus, added)
    log = worker.log_text()
    assert "nobody else took it, so it holds it again" in log  # the lease expired during the outage
    assert "taken over" not in log
    assert worker.alive()
    figure(f"Redis down {outage:.0f}s ({signal_name}, lease {lease}s): the refresh succeeded "
           f"{time.monotonic() - back:.1f}s after Redis returned, change indexed")
