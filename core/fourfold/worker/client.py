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
from fourfold.worker.state import FINAL_STATES, IN_FLIGHT_STATES, WorkerState, open_state, worker_alive

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
    "delivery_alive",
    "dispatch_follow_up",
    "follow_up",
    "task_name_of",
    "send_again",
    "domain_tasks",
]

PENDING_SECONDS = 15 * 60
"""How long a queued request stands for its domain. A request whose message was lost
(e.g. a broker restarted without persistence) stops blocking new requests after this."""

FOLLOW_UP_SECONDS = 24 * 3600
"""How long a recorded follow-up waits for the run it follows before it is forgotten."""

_KIND_OF = {names.REFRESH: "refresh", names.TRAIN: "train", names.FINE_TUNE: "fine-tune"}
_NAME_OF = {v: k for k, v in _KIND_OF.items()}


def task_name_of(record: dict) -> str:
    """The task name (:mod:`fourfold.worker.names`) a task record is of."""
    return _NAME_OF.get(record.get("name") or "refresh", names.REFRESH)


def _kwargs_of(record: dict) -> dict:
    """The task's keyword arguments as recorded (flags and artifact names only)."""
    kwargs = record.get("kwargs")
    if isinstance(kwargs, dict):
        return kwargs
    if record.get("name") in (None, "refresh"):
        return {"full": bool(record.get("full"))}
    return {"force": bool(record.get("force"))}


@dataclass
class TaskInfo:
    """One background task as the shared state knows it.

    :ivar state: ``queued``, ``running``, ``requeued`` (its worker died; handed to the
        queue again), ``retrying`` (an infrastructure failure; tried again after a
        pause), ``succeeded``, ``failed``, ``skipped`` (another task was writing the
        domain; ``covered_by`` names the follow-up run that does this one's work),
        ``released`` (its worker died and ``requeued_as`` does its work) or ``dead``
        (given up after its worker died on every delivery).
    :ivar existing: True when a request returned a task that was already queued or
        running for the domain instead of starting another.
    :ivar follows: a follow-up run waits for this task to finish, then runs.
    :ivar stuck: why nothing runs this task although it is not finished (its worker
        died and no worker has started since to requeue it).
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
    follows: str | None = None
    covered_by: str | None = None
    requeued_as: str | None = None
    stuck: str | None = None
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
    task_name: str,
    domain: str,
    *,
    kwargs: dict | None = None,
    settings: Settings | None = None,
    join_running: bool = False,
) -> TaskInfo:
    """Queue task ``task_name`` (one of :mod:`fourfold.worker.names`) for ``domain``,
    or return the task already queued for the domain.

    While a task of the same kind writes the domain, the request is recorded as a
    *follow-up*: one more run starts when the running one ends, so what changed since
    it started is not lost. Requests made meanwhile share that follow-up (coalesced).

    A queued or running task whose worker died stands in nobody's way: it is released
    (``requeued_as`` names the new task) and the work queued again.

    Refreshes and training stages of a domain hold separate leases
    (:func:`fourfold.worker.names.lease_key`): a training request while a refresh runs
    is queued, not deferred.

    Whether another request stands is decided in the shared worker state (Redis, or
    SQLite in the state dir) in one atomic step, so processes on any number of machines
    asking at once queue one task between them.

    :param join_running: while a task of the same kind writes the domain, return that
        task (``existing=True``) instead of recording a follow-up: for a request that
        needs *a* run rather than a run that sees the latest change (a first build).
    """
    settings = _settings(settings)
    if task_name not in names.TASK_NAMES:
        raise FourfoldError(f"unknown task '{task_name}'; expected one of {', '.join(names.TASK_NAMES)}")
    kwargs = dict(kwargs or {})
    state = open_state(settings)
    key = names.lease_key(task_name, domain)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        holder = state.lease(key)
        if holder is not None and holder.died_here():
            # Its process is gone: nobody renews it, so it goes now, not when it expires.
            state.release_lease(key, holder.token)
            continue
        if holder is not None:
            rec = state.task(holder.task_id)
            if rec is not None and rec.get("state") in FINAL_STATES:
                time.sleep(0.05)  # it has finished and is letting go of the lease
                continue
            if join_running:
                return _existing(state, holder.task_id, key, "running")
            return follow_up(state, task_name, key, domain, kwargs, holder.task_id, settings=settings)
        if state.dirty(key) is not None:
            # A follow-up whose writer ended without handing it over (its worker died).
            sent = dispatch_follow_up(state, key, settings=settings)
            if sent is not None:
                return _existing(state, sent, key, "queued")
            continue
        current = state.pending(key)
        stale = released = None
        if current is not None:
            rec = state.task(current)
            if rec is not None and rec.get("state") not in FINAL_STATES:
                if delivery_alive(state, rec, key, current):
                    return _existing(state, current, key, rec.get("state") or "queued")
                released = current
            stale = current
        task_id = str(uuid.uuid4())
        record = {
            "name": _KIND_OF[task_name],
            "domain": domain,
            "state": "queued",
            "queued_at": time.time(),
            "kwargs": kwargs,
            **{k: v for k, v in kwargs.items() if isinstance(v, (bool, int, float))},
        }
        if released:
            record["requeued_from"] = released
        state.update_task(task_id, **record)
        if state.claim_pending(key, task_id, PENDING_SECONDS, replace=stale) is not None:
            state.update_task(task_id, state="skipped", finished_at=time.time(), error="superseded by a request made at the same time")
            continue  # someone queued one at the same moment: return theirs
        if released:
            _release(state, released, task_id)
        try:
            _send(task_name, domain, kwargs, task_id, settings)
        except Exception as exc:
            state.clear_pending(key, task_id)
            state.update_task(task_id, state="failed", finished_at=time.time(), error=f"could not be queued: {type(exc).__name__}")
            raise FourfoldError(f"cannot queue a {_KIND_OF[task_name]} of domain '{domain}': the broker said {type(exc).__name__}: {exc}") from None
        return TaskInfo.from_record({**record, "id": task_id})
    raise FourfoldError(f"cannot queue a {_KIND_OF[task_name]} of domain '{domain}': requests keep colliding")


def _send(task_name: str, domain: str, kwargs: dict, task_id: str, settings: Settings, app=None) -> None:
    if app is None:
        from fourfold.worker.app import get_app  # Celery is imported only to send

        app = get_app(settings)
    app.send_task(task_name, args=[domain], kwargs=kwargs, task_id=task_id)


def send_again(record: dict, task_id: str, *, settings: Settings | None = None, app=None) -> None:
    """Send task ``task_id`` again, as its record describes it (its message was lost)."""
    _send(task_name_of(record), record.get("domain") or "", _kwargs_of(record), task_id, _settings(settings), app)


def _release(state: WorkerState, task_id: str, requeued_as: str) -> None:
    rec = state.task(task_id) or {}
    node = rec.get("delivered_to")
    why = f"its worker {node} died" if node else "no worker runs it"
    state.update_task(
        task_id, state="released", finished_at=time.time(), requeued_as=requeued_as,
        error=f"released: {why}; its work was queued again as task {requeued_as}",
    )


def delivery_alive(state: WorkerState, record: dict, key: str, task_id: str, workers: dict | None = None) -> bool:
    """Whether something still runs (or will run) the unfinished task ``task_id``.

    Decided by heartbeats, never by the record's age: the domain's lease held by a live
    process for this task, or the worker it was delivered to still announcing itself.
    A task never delivered waits in the queue, which is alive as long as the broker is.
    """
    holder = state.lease(key)
    if holder is not None and holder.task_id == task_id:
        return not holder.died_here()
    node = record.get("delivered_to")
    if not node:
        # Never taken by a worker (queued, or requeued after its worker died); a record
        # that says running always names its worker.
        return record.get("state") != "running"
    workers = state.workers() if workers is None else workers
    return worker_alive(workers.get(node))


def stuck_reason(state: WorkerState, record: dict, workers: dict | None = None) -> str | None:
    """Why nothing runs an unfinished task, or None when something does."""
    if record.get("state") not in IN_FLIGHT_STATES:
        return None
    key = names.lease_key(task_name_of(record), record.get("domain") or "")
    if delivery_alive(state, record, key, record["id"], workers):
        return None
    node = record.get("delivered_to")
    return (f"its worker {node} died" if node else "its worker died") + "; the next request or worker start requeues it"


def follow_up(
    state: WorkerState, task_name: str, key: str, domain: str, kwargs: dict, running: str,
    *, settings: Settings | None = None, app=None,
) -> TaskInfo:
    """Record that ``domain`` must be written once more after task ``running``: the
    follow-up recorded already (coalesced), or a new one. Returned as the task that
    covers the request.
    """
    settings = _settings(settings)
    for _ in range(5):
        current = state.dirty(key)
        if current is not None:
            rec = state.task(current)
            if rec is not None and rec.get("state") not in FINAL_STATES:
                wanted = {**_kwargs_of(rec)}
                for flag in ("full", "force"):  # one run that does what every request asked
                    if kwargs.get(flag) and not wanted.get(flag):
                        wanted[flag] = True
                if wanted != _kwargs_of(rec):
                    state.update_task(current, kwargs=wanted, **{k: v for k, v in wanted.items() if isinstance(v, bool)})
                return _existing(state, current, key, "queued")
            state.take_dirty(key)  # finished or forgotten: make room
            continue
        task_id = str(uuid.uuid4())
        record = {
            "name": _KIND_OF[task_name],
            "domain": domain,
            "state": "queued",
            "queued_at": time.time(),
            "follows": running,
            "kwargs": kwargs,
            **{k: v for k, v in kwargs.items() if isinstance(v, (bool, int, float))},
        }
        state.update_task(task_id, **record)
        if state.mark_dirty(key, task_id, FOLLOW_UP_SECONDS) is not None:
            state.update_task(task_id, state="skipped", finished_at=time.time(), error="joined a follow-up recorded at the same time")
            continue
        # The writer may have ended between our look at its lease and the mark; then
        # nobody would hand the follow-up over. Whoever takes it first sends it.
        holder = state.lease(key)
        if holder is None or holder.died_here():
            dispatch_follow_up(state, key, settings=settings, app=app)
        return TaskInfo.from_record({**(state.task(task_id) or record), "id": task_id})
    raise FourfoldError(f"cannot record a follow-up {_KIND_OF[task_name]} of domain '{domain}': requests keep colliding")


def dispatch_follow_up(state: WorkerState, key: str, *, settings: Settings | None = None, app=None) -> str | None:
    """Queue the follow-up recorded for ``key``, if any (exactly one caller does).

    Called by the task that held the lease when it ends, and by whoever finds a
    follow-up whose writer is gone. When another request was queued meanwhile, that one
    covers the follow-up.

    :returns: the id of the task that now covers the follow-up, or None.
    """
    settings = _settings(settings)
    task_id = state.take_dirty(key)
    if task_id is None:
        return None
    rec = state.task(task_id)
    if rec is None or rec.get("state") in FINAL_STATES:
        return None
    other = state.claim_pending(key, task_id, PENDING_SECONDS)
    if other is not None and other != task_id:
        orec = state.task(other)
        if orec is not None and orec.get("state") not in FINAL_STATES and delivery_alive(state, orec, key, other):
            state.update_task(task_id, state="skipped", covered_by=other, finished_at=time.time())
            return other
        state.claim_pending(key, task_id, PENDING_SECONDS, replace=other)
    try:
        _send(task_name_of(rec), rec.get("domain") or _domain_of(key), _kwargs_of(rec), task_id, settings, app)
    except Exception:
        state.clear_pending(key, task_id)
        state.mark_dirty(key, task_id, FOLLOW_UP_SECONDS)  # the next request or worker start sends it
        raise
    state.update_task(task_id, dispatched_at=time.time())
    return task_id


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
    if info.state in ("running", "retrying"):
        info.progress = _progress_of(state, names.lease_key(task_name_of(rec), info.domain), task_id)
    if info.state in IN_FLIGHT_STATES:
        info.stuck = stuck_reason(state, rec)
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
        info = TaskInfo.from_record({**rec, "id": holder.task_id, "state": rec.get("state") if rec.get("state") == "retrying" else "running"})
        info.worker = info.worker or f"{holder.host}:{holder.pid}"
        info.progress = _progress_of(state, key, holder.task_id)
        if holder.died_here():
            info.stuck = f"its process {holder.pid} died; the lease is released at the next request or worker start"
        out.append(info)
    return out


def domain_tasks(domain: str, task_name: str = names.REFRESH, *, settings: Settings | None = None) -> dict[str, TaskInfo]:
    """The tasks of one kind standing for ``domain`` now: ``running`` (holding its
    lease), ``queued`` (the request waiting in the queue) and ``follow_up`` (the run
    recorded to follow the running one); each with ``stuck`` set when nothing runs it."""
    state = open_state(_settings(settings))
    key = names.lease_key(task_name, domain)
    out: dict[str, TaskInfo] = {}
    holder = state.lease(key)
    if holder is not None:
        info = task_info(holder.task_id, settings=settings) or TaskInfo(holder.task_id, _KIND_OF[task_name], domain, "running")
        if holder.died_here():
            info.stuck = f"its process {holder.pid} died; the lease is released at the next request or worker start"
        out["running"] = info
    for role, task_id in (("queued", state.pending(key)), ("follow_up", state.dirty(key))):
        if task_id is None or (holder is not None and task_id == holder.task_id):
            continue
        info = task_info(task_id, settings=settings)
        if info is not None and not info.finished:
            out[role] = info
    return out


def recent_tasks(limit: int = 20, *, settings: Settings | None = None) -> list[TaskInfo]:
    """The newest task records (queued, running and finished), newest first. An
    unfinished task that nothing runs any more carries the reason in ``stuck``."""
    state = open_state(_settings(settings))
    workers = None
    out = []
    for rec in state.recent_tasks(limit):
        info = TaskInfo.from_record(rec)
        if info.state in IN_FLIGHT_STATES:
            workers = state.workers() if workers is None else workers
            info.stuck = stuck_reason(state, rec, workers)
        out.append(info)
    return out


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
    to the run that covers it (the follow-up, or else the writer), and a task
    ``released`` after its worker died to the task its work was queued as: the outcome
    returned is theirs (``extra["followed"]`` lists the ids followed).

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
            successor = None
            if info.state == "skipped":
                successor = info.covered_by or info.running
            elif info.state == "released":
                successor = info.requeued_as
            if successor and successor not in followed and successor != current:
                followed.append(current)
                current = successor
                continue
            if info.finished:
                if followed:
                    info.extra["followed"] = followed
                return info
        if deadline is not None and time.monotonic() > deadline:
            raise WaitTimeout(f"task {current} did not finish within {timeout:g}s")
        time.sleep(poll)
