"""The shared worker state behaves the same in Redis and in SQLite: one lease holder per
domain, expiry, compare-and-delete, delivery counts, task records and progress."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid

import pytest

from fourfold.worker.state import LeaseHolder, RedisState, SqliteState

from .conftest import REDIS_URL


@pytest.fixture(params=["redis", "sqlite"])
def state(request, tmp_path):
    if request.param == "sqlite":
        yield SqliteState(tmp_path / "tasks.sqlite")
        return
    ns = f"fftest-{uuid.uuid4().hex[:10]}"
    st = RedisState(REDIS_URL, ns)
    yield st
    keys = list(st.redis.scan_iter(match=f"{ns}:*"))
    if keys:
        st.redis.delete(*keys)


def test_one_holder_per_domain_until_released(state):
    first, second = LeaseHolder.for_this_process("task-1"), LeaseHolder.for_this_process("task-2")
    assert state.acquire_lease("legal", first, 10) is None
    assert state.acquire_lease("legal", second, 10) == first
    assert state.acquire_lease("medical", second, 10) is None  # other domains are independent
    assert state.renew_lease("legal", first.token, 10)
    assert not state.renew_lease("legal", second.token, 10)
    state.release_lease("legal", second.token)  # not the holder: nothing happens
    assert state.lease("legal") == first
    state.release_lease("legal", first.token)
    assert state.lease("legal") is None
    assert state.acquire_lease("legal", second, 10) is None
    assert set(state.leases()) == {"legal", "medical"}


def test_a_lease_nobody_renews_expires(state):
    dead = LeaseHolder.for_this_process("task-1")
    assert state.acquire_lease("legal", dead, 0.3) is None
    time.sleep(0.5)
    assert state.lease("legal") is None
    assert not state.renew_lease("legal", dead.token, 10)
    assert state.acquire_lease("legal", LeaseHolder.for_this_process("task-2"), 10) is None


def test_two_deliveries_of_one_task_hold_different_tokens(state):
    a, b = LeaseHolder.for_this_process("same-task"), LeaseHolder.for_this_process("same-task")
    assert a.token != b.token
    assert state.acquire_lease("legal", a, 10) is None
    assert state.acquire_lease("legal", b, 10).token == a.token


def test_holder_of_a_dead_local_process_is_recognised():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    gone = LeaseHolder("t", "task", socket.gethostname(), proc.pid, None, time.time())
    assert gone.died_here()
    assert not LeaseHolder.for_this_process("task").died_here()
    # A holder on another machine is never declared dead from here: only expiry frees it.
    assert not LeaseHolder("t", "task", "some-other-host", proc.pid, None, time.time()).died_here()


def test_pending_requests_are_claimed_once(state):
    assert state.claim_pending("legal", "a", 10) is None
    assert state.claim_pending("legal", "b", 10) == "a"
    assert state.claim_pending("legal", "b", 10, replace="a") is None  # a finished: b replaces it
    state.clear_pending("legal", "a")
    assert state.pending("legal") == "b"
    state.clear_pending("legal", "b")
    assert state.pending("legal") is None


def test_deliveries_records_and_progress(state):
    assert [state.count_delivery("t1") for _ in range(3)] == [1, 2, 3]
    assert state.count_delivery("t2") == 1
    state.update_task("t1", name="refresh", domain="legal", state="running")
    state.update_task("t2", name="refresh", domain="legal", state="queued")
    state.update_task("t1", state="dead", error="given up")
    assert state.task("t1")["state"] == "dead" and state.task("t1")["domain"] == "legal"
    assert [r["id"] for r in state.recent_tasks(10)] == ["t1", "t2"]
    assert [r["id"] for r in state.dead_tasks(10)] == ["t1"]
    assert state.task("missing") is None

    state.set_progress("legal", "t2", {"stage": "embed", "done": 3, "total": 9}, 10)
    assert state.progress("legal") == {"stage": "embed", "done": 3, "total": 9, "task_id": "t2"}
    state.clear_progress("legal", "t1")  # another task's: kept
    assert state.progress("legal") is not None
    state.clear_progress("legal", "t2")
    assert state.progress("legal") is None


def test_workers_announce_and_expire(state):
    state.worker_seen("w1@host", {"pid": 1}, 0.3)
    state.worker_seen("w2@host", {"pid": 2}, 10)
    assert set(state.workers()) == {"w1@host", "w2@host"}
    time.sleep(0.5)
    assert set(state.workers()) == {"w2@host"}
    state.worker_gone("w2@host")
    assert state.workers() == {}


def test_sqlite_state_is_shared_between_processes(tmp_path):
    path = tmp_path / "tasks.sqlite"
    SqliteState(path).acquire_lease("legal", LeaseHolder.for_this_process("parent"), 30)
    code = (
        "from pathlib import Path\n"
        "from fourfold.worker.state import SqliteState, LeaseHolder\n"
        f"h = SqliteState(Path({str(path)!r})).acquire_lease('legal', LeaseHolder.for_this_process('child'), 30)\n"
        "print(h.task_id)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, timeout=60)
    assert done.stdout.strip() == "parent", done.stderr


def test_fencing_tokens_only_rise(state):
    tokens = [state.next_fence("legal") for _ in range(3)]
    assert tokens == sorted(set(tokens)) and tokens[0] >= 1
    assert state.next_fence("medical") == 1  # per domain
    # A store that lost its data (a Redis restart without persistence) starts over; the
    # token the index last published with keeps the next one above it.
    assert state.next_fence("legal", at_least=100) == 101
    assert state.next_fence("legal") == 102


def test_a_follow_up_is_recorded_once_and_taken_once(state):
    assert state.mark_dirty("legal", "f1", 10) is None
    assert state.mark_dirty("legal", "f2", 10) == "f1"  # coalesced: the first one stands
    assert state.dirty("legal") == "f1" and state.dirty_domains() == {"legal": "f1"}
    assert state.take_dirty("legal") == "f1"
    assert state.take_dirty("legal") is None  # exactly one taker
    assert state.dirty("legal") is None


def test_a_holder_that_expired_can_take_its_lease_back_unless_taken(state):
    mine = LeaseHolder.for_this_process("task-1", node="w1@host", fence=state.next_fence("legal"))
    assert state.acquire_lease("legal", mine, 0.3) is None
    time.sleep(0.5)  # expired while the store was unreachable, say
    assert not state.renew_lease("legal", mine.token, 10)
    assert state.acquire_lease("legal", mine, 10) is None  # nobody took it: held again
    assert state.lease("legal") == mine and state.lease("legal").fence == mine.fence
    state.release_lease("legal", mine.token)
    other = LeaseHolder.for_this_process("task-2", fence=state.next_fence("legal"))
    assert state.acquire_lease("legal", other, 10) is None
    assert state.acquire_lease("legal", mine, 10) == other  # a real takeover: not given back
    assert other.fence > mine.fence


def test_a_dead_worker_is_recognised_by_its_heartbeat():
    from fourfold.worker.state import process_started, worker_alive

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    started = process_started(proc.pid)
    proc.wait()
    here = socket.gethostname()
    assert not worker_alive({"host": here, "pid": proc.pid, "pid_started": started})
    assert worker_alive({"host": here, "pid": os.getpid(), "pid_started": process_started(os.getpid())})
    assert worker_alive({"host": "some-other-host", "pid": proc.pid})  # only its record's expiry tells
    assert not worker_alive(None)  # no heartbeat record at all


def test_a_task_record_keeps_the_loaders_warnings_but_no_document_text():
    from fourfold.worker.tasks import safe_summary

    report = {"version": "v000002", "chunks_total": 12, "warnings": [f"notes/{i}.md:3: unreadable table" for i in range(25)],
              "documents": {"notes/a.md": "secret text"}, "timings": {"embed": 1.5}}
    summary = safe_summary(report)
    assert summary["warnings_count"] == 25 and summary["warnings"][0] == "notes/0.md:3: unreadable table"
    assert len(summary["warnings"]) == 20 and "secret text" not in str(summary)
    assert summary["documents_count"] == 1 and summary["timings"] == {"embed": 1.5}
