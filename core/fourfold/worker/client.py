"""Ask for background work and read how it goes — for the API and the CLI.

Enqueues by task name and reads the shared worker state; imports no task code and no
models, so it is cheap to use from any process::

    from fourfold.worker import client

    info = client.request_refresh("legal")        # or the running one, if any
    client.task_progress("legal")                 # {"task_id", "stage", "done", "total", …}
    client.wait(info.id, timeout=600)             # the final TaskInfo
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from fourfold.errors import FourfoldError
from fourfold.settings import Settings, get_settings
from fourfold.worker import names
from fourfold.worker.state import FINAL_STATES, open_state

__all__ = [
    "TaskInfo",
    "request_refresh",
    "request_training",
    "request_fine_tuning",
    "request_task",
    "task_info",
    "task_progress",
    "running_tasks",
    "recent_tasks",
    "dead_tasks",
    "live_workers",
    "wait",
    "WaitTimeout",
    "FINAL_STATES",
]

PENDING_SECONDS = 15 * 60
"""How long a queued request stands for its domain. A request whose message was lost
(e.g. a broker restarted without persistence) stops blocking new requests after this."""

_KIND_OF = {names.REFRESH: "refresh", names.TRAIN: "train", names.FINE_TUNE: "fine-tune"}


@dataclass
class TaskInfo:
    """One background task as the shared state knows it.

    :ivar state: ``queued``, ``running``, ``succeeded``, ``failed``, ``skipped`` (another
        task was already writing the domain; see ``running``) or ``dead`` (given up after
        its worker died on every delivery).
    :ivar existing: True when a request returned a task that was already queued or
        running for the domain instead of starting another.
    :ivar progress: ``{"stage", "done", "total", …}`` while it runs.
    :ivar result: counts and version names once it succeeded.
    """

    id: str
    name: str
    domain: str
    state: str
    existing: bool = False
    progress: dict | None = None
    result: dict | None = None
    error: str | None = None
    running: str | None = None
    deliveries: int = 0
    worker: str | None = None
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_record(cls, rec: dict, **overrides: Any) -> "TaskInfo":
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        values = {k: rec.get(k) for k in known if k in rec}
        values.setdefault("name", "refresh")
        values.setdefault("domain", "")
        values.setdefault("state", "queued")
        values["deliveries"] = int(values.get("deliveries") or 0)
        extra = {k: v for k, v in rec.items() if k not in known and k != "updated_at"}
        return cls(**{**values, **overrides}, extra=extra)


class WaitTimeout(FourfoldError):
    """A task did not finish within the time waited for it."""


def _settings(settings: Settings | None) -> Settings:
    return settings or get_settings()


def request_refresh(domain: str, *, full: bool = False, settings: Settings | None = None) -> TaskInfo:
    """Queue a refresh of ``domain`` — unless one is already queued or running for it,
    in which case that task is returned (``existing=True``).

    :param full: rebuild from scratch instead of applying only what changed.
    """
    return request_task(names.REFRESH, domain, kwargs={"full": bool(full)}, settings=settings)


def request_training(domain: str, *, force: bool = False, settings: Settings | None = None) -> TaskInfo:
    """Queue the domain's ``training:`` stage (or return the training task already
    queued or running for it)."""
    return request_task(names.TRAIN, domain, kwargs={"force": bool(force)}, settings=settings)


def request_fine_tuning(
    domain: str, *, force: bool = False, only: str | None = None, settings: Settings | None = None
) -> TaskInfo:
    """Queue the domain's ``fine_tuning:`` stages (``only``: the one producing that
    artifact), or return the training task already queued or running for it."""
    kwargs: dict = {"force": bool(force)}
    if only:
        kwargs["only"] = only
    return request_task(names.FINE_TUNE, domain, kwargs=kwargs, settings=settings)


def request_task(
    task_name: str, domain: str, *, kwargs: dict | None = None, settings: Settings | None = None
) -> TaskInfo:
    """Queue task ``task_name`` (one of :mod:`fourfold.worker.names`) for ``domain``,
    or return the task already queued or running for the domain.

    Refreshes and training stages of a domain hold separate leases
    (:func:`fourfold.worker.names.lease_key`): a training request while a refresh runs
    is queued, a second refresh is not.
    """
    settings = _settings(settings)
    if task_name not in names.TASK_NAMES:
        raise FourfoldError(f"unknown task '{task_name}'; expected one of {', '.join(names.TASK_NAMES)}")
    state = open_state(settings)
    key = names.lease_key(task_name, domain)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        holder = state.lease(key)
        if holder is not None and not holder.died_here():
            rec = state.task(holder.task_id)
            if rec is not None and rec.get("state") in FINAL_STATES:
                time.sleep(0.05)  # it has finished and is letting go of the lease
                continue
            return _existing(state, holder.task_id, key, "running")
        current = state.pending(key)
        stale = None
        if current is not None:
            rec = state.task(current)
            if rec is not None and rec.get("state") not in FINAL_STATES:
                return _existing(state, current, key, rec.get("state") or "queued")
            stale = current
        task_id = str(uuid.uuid4())
        record = {
            "name": _KIND_OF[task_name],
            "domain": domain,
            "state": "queued",
            "queued_at": time.time(),
            **{k: v for k, v in (kwargs or {}).items() if isinstance(v, (bool, int, float))},
        }
        state.update_task(task_id, **record)
        if state.claim_pending(key, task_id, PENDING_SECONDS, replace=stale) is not None:
            state.update_task(task_id, state="skipped", finished_at=time.time(), error="superseded by a request made at the same time")
            continue  # someone queued one at the same moment: return theirs
        from fourfold.worker.app import get_app

        try:
            get_app(settings).send_task(task_name, args=[domain], kwargs=kwargs or {}, task_id=task_id)
        except Exception as exc:
            state.clear_pending(key, task_id)
            state.update_task(task_id, state="failed", finished_at=time.time(), error=f"could not be queued: {type(exc).__name__}")
            raise FourfoldError(f"cannot queue a {_KIND_OF[task_name]} of domain '{domain}': the broker said {type(exc).__name__}: {exc}") from None
        return TaskInfo.from_record({**record, "id": task_id})
    raise FourfoldError(f"cannot queue a {_KIND_OF[task_name]} of domain '{domain}': requests keep colliding")


def _domain_of(key: str) -> str:
    return key.split("#", 1)[0]


def _existing(state, task_id: str, key: str, fallback_state: str) -> TaskInfo:
    rec = state.task(task_id) or {"name": "refresh", "domain": _domain_of(key), "state": fallback_state}
    info = TaskInfo.from_record({**rec, "id": task_id}, existing=True)
    if info.state == "running":
        info.progress = _progress_of(state, key, task_id)
    return info


def _progress_of(state, domain: str, task_id: str) -> dict | None:
    p = state.progress(domain)
    return p if p and p.get("task_id") == task_id else None


def task_info(task_id: str, *, settings: Settings | None = None) -> TaskInfo | None:
    """What is known of ``task_id`` (None: never heard of it)."""
    state = open_state(_settings(settings))
    rec = state.task(task_id)
    if rec is None:
        return None
    info = TaskInfo.from_record(rec)
    if info.state == "running":
        kind = {v: k for k, v in _KIND_OF.items()}.get(info.name, names.REFRESH)
        info.progress = _progress_of(state, names.lease_key(kind, info.domain), task_id)
    return info


def task_progress(domain: str, *, settings: Settings | None = None) -> dict | None:
    """How far the task writing ``domain`` got: ``{"task_id", "stage", "done", "total",
    "started_at", "updated_at"}``, or None when no task is running for it."""
    return open_state(_settings(settings)).progress(domain)


def running_tasks(*, settings: Settings | None = None) -> list[TaskInfo]:
    """Tasks holding a domain's lease right now, with their progress."""
    state = open_state(_settings(settings))
    out = []
    for key, holder in sorted(state.leases().items()):
        rec = state.task(holder.task_id) or {"name": "refresh", "domain": _domain_of(key), "state": "running"}
        info = TaskInfo.from_record({**rec, "id": holder.task_id, "state": "running"})
        info.worker = info.worker or f"{holder.host}:{holder.pid}"
        info.progress = _progress_of(state, key, holder.task_id)
        out.append(info)
    return out


def recent_tasks(limit: int = 20, *, settings: Settings | None = None) -> list[TaskInfo]:
    """The newest task records (queued, running and finished), newest first."""
    return [TaskInfo.from_record(r) for r in open_state(_settings(settings)).recent_tasks(limit)]


def dead_tasks(limit: int = 20, *, settings: Settings | None = None) -> list[TaskInfo]:
    """Tasks given up as dead, newest first."""
    return [TaskInfo.from_record(r) for r in open_state(_settings(settings)).dead_tasks(limit)]


def live_workers(*, settings: Settings | None = None) -> dict[str, dict]:
    """Workers that announced themselves recently, by node name."""
    return open_state(_settings(settings)).workers()


def wait(
    task_id: str,
    *,
    timeout: float | None = None,
    poll: float = 0.2,
    on_update: Callable[[TaskInfo], None] | None = None,
    settings: Settings | None = None,
) -> TaskInfo:
    """Wait until ``task_id`` finished and return its final record.

    A task that was ``skipped`` because another task was writing the domain is followed
    to that task: the outcome returned is the writer's (``extra["followed"]`` lists the
    ids followed).

    :raises WaitTimeout: after ``timeout`` seconds (None: no limit).
    """
    settings = _settings(settings)
    deadline = None if timeout is None else time.monotonic() + timeout
    followed: list[str] = []
    current = task_id
    while True:
        try:
            info = task_info(current, settings=settings)
        except Exception as exc:  # the broker's Redis restarting: keep waiting
            if isinstance(exc, FourfoldError):
                raise
            info = None
        if info is not None:
            if on_update is not None:
                on_update(info)
            if info.state == "skipped" and info.running and info.running not in followed and info.running != current:
                followed.append(current)
                current = info.running
                continue
            if info.finished:
                if followed:
                    info.extra["followed"] = followed
                return info
        if deadline is not None and time.monotonic() > deadline:
            raise WaitTimeout(f"task {current} did not finish within {timeout:g}s")
        time.sleep(poll)
