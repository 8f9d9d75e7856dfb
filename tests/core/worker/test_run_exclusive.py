"""``run_exclusive`` in-process, with the real SQLite task state: an infrastructure
failure is retried with backoff under the same lease, a fault in the work is not, and
a failure's record names the path and errno."""

from __future__ import annotations

import errno
from types import SimpleNamespace

import pytest

from fourfold.worker import tasks
from fourfold.worker.state import open_state


class _Task:
    """What run_exclusive reads of a Celery task: its request and app (the app is never
    asked to send anything in these tests)."""

    def __init__(self, task_id: str):
        self.request = SimpleNamespace(id=task_id, hostname="test-worker@here")
        self.app = None
        self.states: list[str] = []

    def update_state(self, task_id=None, state=None, meta=None):
        self.states.append(state)


@pytest.fixture
def sqlite_state(fourfold_home, monkeypatch):
    monkeypatch.delenv("FOURFOLD_BROKER_URL", raising=False)
    monkeypatch.setenv("FOURFOLD_LEASE_SECONDS", "3")
    from fourfold import settings

    settings.get_settings(fresh=True)
    return open_state()


def test_an_infrastructure_failure_is_retried_under_the_same_lease(sqlite_state, monkeypatch):
    monkeypatch.setattr(tasks, "INFRA_ATTEMPTS", 2)
    seen: list[str] = []
    tokens: list[int] = []

    def work(progress):
        seen.append(sqlite_state.task("retry-1")["state"])
        tokens.append(progress.fence())
        if len(seen) == 1:
            raise ConnectionError("Redis went away")  # what redis-py raises when it is down
        return {"published": True}

    result = tasks.run_exclusive(_Task("retry-1"), "refresh", "legal", work)
    record = sqlite_state.task("retry-1")
    assert result["status"] == "succeeded" and record["state"] == "succeeded"
    assert seen == ["running", "running"] and record["attempts"] == 1
    assert tokens[0] == tokens[1] > 0  # one lease, one fencing token, for both tries
    assert sqlite_state.lease("legal") is None


def test_a_fault_in_the_work_is_not_retried_and_its_record_names_path_and_errno(sqlite_state, tmp_path):
    calls = []

    def work(progress):
        calls.append(1)
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "index" / "writer.lock"))

    with pytest.raises(tasks.TaskFailed):
        tasks.run_exclusive(_Task("fault-1"), "refresh", "legal", work)
    record = sqlite_state.task("fault-1")
    assert len(calls) == 1 and record["state"] == "failed"
    assert "EACCES" in record["error"] and str(tmp_path / "index" / "writer.lock") in record["error"], record["error"]
