"""fourfold's background tasks. Imported by worker processes only.

Every task takes ids (a domain name, a flag), never document text or questions, and
returns counts and version names only, so nothing sensitive reaches the broker, the
result backend or the worker's log (Celery logs every return value).

Each task runs under :func:`run_exclusive`, which gives it the domain's writer lease,
counts its deliveries (a task that keeps killing its worker is recorded as dead instead
of being retried forever), keeps a record of it and publishes its progress.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import sqlite3
import threading
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Callable

from celery import shared_task
from celery.exceptions import Ignore

from fourfold import metrics
from fourfold.domain import Domain
from fourfold.domains import manifest_path_for
from fourfold.errors import FourfoldError
from fourfold.files import describe_os_error
from fourfold.settings import Settings, get_settings
from fourfold.worker import client, names
from fourfold.worker.state import FINAL_STATES, LeaseHolder, WorkerState, open_state

__all__ = [
    "refresh_domain", "train_domain", "fine_tune_domain", "run_exclusive", "TaskProgress", "LeaseLostError",
    "TaskFailed", "safe_summary", "domain_for", "is_infrastructure_error",
]

log = logging.getLogger("fourfold.worker")

_WAIT_POLL = 0.2  # seconds between looks at a lease held by another delivery of the same task

INFRA_ATTEMPTS = 5
"""Times a task whose work failed for an infrastructure reason (the broker's Redis
away, a database locked) is tried again, after 2, 4, 8, 16 and 32 s, before it fails."""

_STATE_PATIENCE = 600.0  # seconds a record write keeps retrying while the task state is unreachable

_TRANSIENT_ERRNOS = {errno.EAGAIN, errno.EBUSY, errno.ETIMEDOUT, errno.ECONNREFUSED, errno.ECONNRESET, errno.EPIPE}


def is_infrastructure_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure of the machinery around the work (a connection to
    Redis or the broker, a locked database, a transient system error) that trying again
    later can cure, rather than a fault in the domain's sources or manifest."""
    for cls in type(exc).__mro__:
        module = cls.__module__ or ""
        if module.startswith(("redis", "kombu", "amqp")) and cls.__name__ in ("ConnectionError", "TimeoutError", "OperationalError", "BusyLoadingError"):
            return True
    if isinstance(exc, sqlite3.OperationalError):
        return "locked" in str(exc) or "busy" in str(exc)
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    return isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS


def _persist(what: str, fn: Callable[[], Any], patience: float = _STATE_PATIENCE) -> Any:
    """``fn()``, tried again with growing pauses while the task state is unreachable
    (a Redis restart): an outcome must be recorded once it can be."""
    pause = 0.5
    deadline = time.monotonic() + patience
    while True:
        try:
            return fn()
        except Exception as exc:
            if not is_infrastructure_error(exc) or time.monotonic() > deadline:
                raise
            log.warning("%s: the task state is unreachable (%s); trying again in %.0fs", what, type(exc).__name__, pause)
            time.sleep(pause)
            pause = min(pause * 2, 10.0)


class LeaseLostError(FourfoldError):
    """The domain's writer lease was taken over (its renewals failed for too long)."""


class TaskFailed(FourfoldError):
    """A task failed; the message is safe to store and log (no document text)."""


# -------------------------------------------------------------------------
# Domains, cached per worker child
# -------------------------------------------------------------------------

_domains: dict[str, tuple[tuple, Any]] = {}


def domain_for(name: str, settings: Settings | None = None):
    """The :class:`fourfold.Domain` named ``name``, from the manifest the registry
    records for it. Cached while the manifest file is unchanged, so that models are
    loaded once per worker child rather than once per task."""
    settings = settings or get_settings()
    path = Path(manifest_path_for(name, settings))
    try:
        stat = path.stat()
    except OSError as exc:
        raise FourfoldError(f"{path}: the manifest recorded for domain '{name}' cannot be read: {exc.strerror}") from None
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    cached = _domains.get(name)
    if cached and cached[0] == key:
        return cached[1]
    domain = Domain.from_file(path, settings=settings, expect=name)
    _domains[name] = (key, domain)
    return domain


# -------------------------------------------------------------------------
# Lease keeping and progress
# -------------------------------------------------------------------------


class _LeaseKeeper:
    """Renews a held lease in the background until stopped.

    Renewals that fail because the store is away are retried. When a renewal finds the
    lease gone (it expired while Redis was down), the keeper takes it again with the same
    holder and fencing token if nobody else took it; only a real takeover by another
    task marks the lease ``lost``.
    """

    def __init__(self, state: WorkerState, domain: str, holder: LeaseHolder, ttl: float):
        self.state, self.domain, self.holder, self.ttl = state, domain, holder, ttl
        self.lost = False
        self.taken_by: str | None = None
        self.reacquired = 0
        self.on_renew: Callable[[], None] | None = None  # e.g. keep the progress record alive
        self._stop = threading.Event()
        self._mutex = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"lease-{domain}", daemon=True)

    def start(self) -> "_LeaseKeeper":
        self._thread.start()
        return self

    def _renew_once(self) -> bool:
        """Renew, or take back a lease that expired meanwhile. False: taken over."""
        with self._mutex:
            if self.lost:
                return False
            if self.state.renew_lease(self.domain, self.holder.token, self.ttl):
                return True
            current = self.state.acquire_lease(self.domain, self.holder, self.ttl)
            if current is None or current.token == self.holder.token:
                self.reacquired += 1
                log.warning(
                    "domain %s: the writer lease of task %s had expired (the task state was unreachable); "
                    "nobody else took it, so it holds it again (fencing token %s)",
                    self.domain, self.holder.task_id, self.holder.fence,
                )
                return True
            self.lost, self.taken_by = True, current.task_id
            log.warning("domain %s: the writer lease of task %s was taken over by task %s", self.domain, self.holder.task_id, current.task_id)
            return False

    def _run(self) -> None:
        last_ok = time.monotonic()
        while not self._stop.wait(self.ttl / 3):
            try:
                if not self._renew_once():
                    return
                last_ok = time.monotonic()
                if self.on_renew is not None:
                    self.on_renew()
            except Exception as exc:
                # The store is unreachable (e.g. Redis restarting): keep trying. The
                # lease may expire meanwhile; the next renewal then takes it back
                # unless another task took it.
                log.warning(
                    "domain %s: cannot renew the writer lease (%s), last renewed %.0fs ago",
                    self.domain, type(exc).__name__, time.monotonic() - last_ok,
                )

    def confirm(self) -> int:
        """Make sure the lease is still held, waiting while the store is unreachable,
        and return its fencing token (what a publish is checked against).

        :raises LeaseLostError: another task took the lease, or the store stayed
            unreachable for longer than the keeper waits.
        """
        patience = max(300.0, 10 * self.ttl)
        deadline = time.monotonic() + patience
        pause = 0.5
        while True:
            try:
                if self._renew_once():
                    return self.holder.fence
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise LeaseLostError(
                        f"domain '{self.domain}': cannot confirm the writer lease before publishing; the task state was "
                        f"unreachable for {patience:.0f}s ({type(exc).__name__})"
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, 5.0)
                continue
            raise LeaseLostError(f"domain '{self.domain}': the writer lease was taken over by task {self.taken_by}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class TaskProgress:
    """A :class:`fourfold.Progress` that publishes stage and done/total for ``fourfold
    tasks``, ``fourfold refresh --wait`` and the API, and the Celery task state.

    Writes are throttled; a stage change is always written.
    """

    interval = 0.25  # seconds between progress writes within one stage

    def __init__(self, state: WorkerState, domain: str, task: Any, keeper: _LeaseKeeper | None, ttl: float):
        self.state, self.domain, self.task, self.keeper, self.ttl = state, domain, task, keeper, ttl
        self.task_id = task.request.id  # task.request is thread-local: read it here, once
        self.stage: str | None = None
        self.done = 0
        self.total: int | None = None
        self._written = 0.0
        self._celery_written = 0.0
        self.started = time.time()

    def start(self, stage: str, total: int | None = None) -> None:
        self._check_lease()
        self.stage, self.done, self.total = stage, 0, total
        self._write(force=True)

    def advance(self, n: int = 1) -> None:
        self._check_lease()
        self.done += n
        self._write()

    def snapshot(self) -> dict:
        return {
            "stage": self.stage,
            "done": self.done,
            "total": self.total,
            "started_at": self.started,
            "updated_at": time.time(),
        }

    def keep_alive(self) -> None:
        """Re-publish the current progress, so that a long stage with no advance (an
        index optimisation, say) does not look like no task at all."""
        if self.stage is not None:
            self._write(force=True, celery=False)

    def fence(self) -> int:
        """Confirm this task still holds the domain's lease and return its fencing
        token; the index refuses to publish with a token lower than one that published
        before (see :func:`fourfold.index.refresh`)."""
        if self.keeper is None:
            return 0
        return self.keeper.confirm()

    def _check_lease(self) -> None:
        if self.keeper is not None and self.keeper.lost:
            raise LeaseLostError(f"domain '{self.domain}': the writer lease was taken over by task {self.keeper.taken_by}")

    def _write(self, force: bool = False, celery: bool = True) -> None:
        now = time.monotonic()
        if not force and now - self._written < self.interval:
            return
        self._written = now
        snap = self.snapshot()
        try:
            self.state.set_progress(self.domain, self.task_id, snap, self.ttl)
        except Exception as exc:  # progress is informative; never fail the work over it
            log.warning("domain %s: cannot publish progress: %s", self.domain, type(exc).__name__)
        if celery and (force or now - self._celery_written >= 1.0):
            self._celery_written = now
            try:
                self.task.update_state(task_id=self.task_id, state="PROGRESS", meta={"domain": self.domain, **snap})
            except Exception as exc:
                log.warning("domain %s: cannot store task progress: %s", self.domain, type(exc).__name__)


# -------------------------------------------------------------------------
# Running one task exclusively
# -------------------------------------------------------------------------


def safe_error(exc: BaseException) -> str:
    """One line about ``exc`` that can be stored and logged.

    fourfold's own errors are written for people and name files, manifest paths and
    plugins, so their message is kept (shortened). Other exceptions may quote the data
    they choked on, so only their type and where they were raised are kept.
    """
    if isinstance(exc, FourfoldError):
        text = " ".join(str(exc).split())
        return text if len(text) <= 500 else text[:499] + "…"
    tb = exc.__traceback__
    where = ""
    while tb is not None:
        where = f" at {Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno}"
        tb = tb.tb_next
    if isinstance(exc, OSError) and exc.errno is not None:
        # A path and an errno say what failed where, and carry no document text.
        path = f" on {exc.filename}" if exc.filename else ""
        return f"{type(exc).__name__}: {describe_os_error(exc)}{path}{where}"
    return f"{type(exc).__name__}{where}"


_RECORD_WARNINGS = 20


def safe_summary(report: Any) -> dict:
    """The numbers of a report (counts, timings, version names) and its first warnings
    (file, line, problem): nothing that could carry document text. Other lists and
    mappings become their lengths."""
    if report is None:
        return {}
    if is_dataclass(report) and not isinstance(report, type):
        data = asdict(report)
    elif hasattr(report, "model_dump"):
        data = report.model_dump()
    elif isinstance(report, dict):
        data = dict(report)
    else:
        data = {k: v for k, v in vars(report).items() if not k.startswith("_")}
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, bool) or isinstance(value, (int, float)):
            out[key] = value
        elif value is None:
            continue
        elif isinstance(value, str) and ("version" in key or key in {"base", "status"}):
            out[key] = value[:100]
        elif isinstance(value, dict):
            # Nested counters (e.g. timings in seconds) keep their numbers.
            nested = {k: v for k, v in value.items() if isinstance(v, (int, float)) and not isinstance(k, bool)}
            if nested and len(nested) == len(value):
                out[key] = nested
            else:
                out[f"{key}_count"] = len(value)
        elif key == "warnings" and isinstance(value, (list, tuple)) and all(isinstance(w, str) for w in value):
            # Loader warnings name a file, a line and what was wrong with it: the task
            # record keeps the first ones (the version's report keeps all).
            out["warnings_count"] = len(value)
            out["warnings"] = [w[:300] for w in value[:_RECORD_WARNINGS]]
        elif isinstance(value, (list, tuple, set, frozenset)):
            out[f"{key}_count"] = len(value)
    return out


def _base_record(task: Any, kind: str, domain: str) -> dict:
    return {"name": kind, "domain": domain, "worker": f"{socket.gethostname()}:{os.getpid()}"}


def run_exclusive(
    task: Any,
    kind: str,
    domain: str,
    work: Callable[[TaskProgress], dict],
    *,
    record: dict | None = None,
    lease_on: str | None = None,
    fence_floor: Callable[[], int] | None = None,
) -> dict:
    """Run ``work`` as the only writer of ``domain`` and record what happened.

    - Records which worker took this delivery (so a dead worker's task is recognised by
      its heartbeat) and counts it; past ``settings.max_deliveries`` the task is recorded
      as dead and acknowledged without running.
    - Takes the domain's lease with a new fencing token. When another task holds it,
      this one's work is left to a follow-up run after that task (one for all such
      requests): this one is recorded as ``skipped`` with ``covered_by`` naming the
      follow-up. When another delivery of this same task holds it, this one waits and
      returns that delivery's outcome (or takes over if it died).
    - Renews the lease while ``work`` runs (riding out a Redis outage) and publishes
      progress; an infrastructure failure of ``work`` is retried with backoff
      (:data:`INFRA_ATTEMPTS`); records ``succeeded`` with the summary ``work`` returns,
      or ``failed`` with a safe error.
    - When it ends, queues the follow-up run recorded while it wrote, if any.

    :param fence_floor: the fencing token the domain's index last published with, so
        tokens keep rising even after the task state lost its data.
    """
    settings = get_settings()
    state = open_state(settings)
    task_id = task.request.id
    node = getattr(task.request, "hostname", None)
    key = lease_on or domain  # the lease (and progress) key: see names.lease_key
    ttl = float(settings.lease_seconds)
    base = {**_base_record(task, kind, domain), **(record or {})}
    task_name = client.task_name_of({"name": kind})

    previous = _persist(f"task {task_id}", lambda: state.task(task_id)) or {}
    if previous.get("state") in FINAL_STATES:
        # A late duplicate of a task that already finished (a re-delivery after a
        # visibility timeout, a lost acknowledgement) or was released after its worker
        # died: its outcome stands.
        log.info("task %s (%s of domain %s) already %s; nothing to do", task_id, kind, domain, previous["state"])
        if previous["state"] == "dead":
            raise Ignore()
        return {**(previous.get("result") or {}), "status": previous["state"], "domain": domain}

    deliveries = state.count_delivery(task_id)
    state.update_task(task_id, name=kind, domain=domain, deliveries=deliveries, delivered_to=node, delivered_at=time.time())
    twin = state.lease(key)
    twin_alive = twin is not None and twin.task_id == task_id and not twin.died_here()
    if deliveries > settings.max_deliveries and not twin_alive:
        message = (
            f"given up after {deliveries - 1} deliveries: each ended with its worker process dying "
            f"(FOURFOLD_MAX_DELIVERIES={settings.max_deliveries})"
        )
        state.update_task(task_id, **base, state="dead", deliveries=deliveries, finished_at=time.time(), error=message)
        state.clear_pending(key, task_id)
        current = state.lease(key)
        if current is not None and current.task_id == task_id and current.died_here():
            state.release_lease(key, current.token)  # held by the delivery that died last
        state.clear_progress(key, task_id)
        log.error("task %s (%s of domain %s) is dead: %s", task_id, kind, domain, message)
        _hand_over_follow_up(state, key, settings, task)
        task.update_state(state="DEAD", meta={"domain": domain, "error": message, "deliveries": deliveries})
        raise Ignore()

    floor = 0
    if fence_floor is not None:
        try:
            floor = int(fence_floor())
        except Exception as exc:  # an unreadable index fails the work itself, with its path
            log.warning("domain %s: cannot read the index's fencing token: %s", domain, type(exc).__name__)
    holder = LeaseHolder.for_this_process(task_id, node=node, fence=state.next_fence(key, floor))
    waited_for_twin = False
    lease_asked = time.monotonic()
    while True:
        current = state.acquire_lease(key, holder, ttl)
        if current is None:
            break
        if current.died_here():
            # The worker child that held it was killed; its lease need not run out.
            log.warning("domain %s: taking over the lease of task %s, whose process %s died", domain, current.task_id, current.pid)
            state.release_lease(key, current.token)
            continue
        if current.task_id != task_id:
            writer = state.task(current.task_id) or {}
            if writer.get("state") in FINAL_STATES:
                time.sleep(_WAIT_POLL)  # it has finished and is letting go of the lease
                continue
            kwargs = (record or {}).get("kwargs") or {}
            covering = client.follow_up(state, task_name, key, domain, kwargs, current.task_id, settings=settings, app=task.app)
            state.update_task(
                task_id, **base, state="skipped", running=current.task_id, covered_by=covering.id,
                deliveries=deliveries, finished_at=time.time(),
            )
            state.clear_pending(key, task_id)
            log.info(
                "domain %s: task %s is writing it; task %s is covered by the follow-up run %s",
                domain, current.task_id, task_id, covering.id,
            )
            return {"status": "skipped", "domain": domain, "running": current.task_id, "follow_up": covering.id}
        # Another delivery of this very task (e.g. re-delivered after a visibility
        # timeout) is running: wait for it rather than write twice.
        waited_for_twin = True
        time.sleep(_WAIT_POLL)

    metrics.observe_lease_wait(domain, kind, time.monotonic() - lease_asked)
    keeper = _LeaseKeeper(state, key, holder, ttl).start()
    try:
        if waited_for_twin:
            previous = state.task(task_id) or {}
            if previous.get("state") in FINAL_STATES and previous.get("state") != "dead":
                log.info("domain %s: task %s was completed by another delivery", domain, task_id)
                return {**(previous.get("result") or {}), "status": previous["state"], "domain": domain}
        state.update_task(
            task_id, **base, state="running", deliveries=deliveries, started_at=time.time(), error=None, finished_at=None,
            fence=holder.fence,
        )
        progress = TaskProgress(state, key, task, keeper, ttl * 2)
        keeper.on_renew = progress.keep_alive
        attempt = 0
        while True:
            try:
                summary = work(progress)
                break
            except BaseException as exc:
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                message = safe_error(exc)
                if is_infrastructure_error(exc) and attempt < INFRA_ATTEMPTS and not keeper.lost:
                    attempt += 1
                    pause = min(60.0, 2.0**attempt)
                    log.warning(
                        "task %s (%s of domain %s) failed for an infrastructure reason (%s); try %d of %d in %.0fs",
                        task_id, kind, domain, message, attempt + 1, INFRA_ATTEMPTS + 1, pause,
                    )
                    _persist(f"task {task_id}", lambda: state.update_task(
                        task_id, state="retrying", attempts=attempt, error=f"{message}; trying again in {pause:.0f}s"
                    ))
                    time.sleep(pause)  # the keeper keeps the lease meanwhile
                    _persist(f"task {task_id}", lambda: state.update_task(task_id, state="running", error=None))
                    continue
                _persist(f"task {task_id}", lambda: state.update_task(task_id, state="failed", finished_at=time.time(), error=message))
                log.error("task %s (%s of domain %s) failed: %s", task_id, kind, domain, message)
                # Raised from None: the original exception (and any data in its message or
                # traceback) stays out of the result backend and the log.
                raise TaskFailed(f"{kind} of domain '{domain}' failed: {message}") from None
        result = {"status": "succeeded", "domain": domain, **summary}
        _persist(f"task {task_id}", lambda: state.update_task(task_id, state="succeeded", finished_at=time.time(), result=result))
        return result
    finally:
        keeper.stop()
        for what, cleanup in (
            ("progress", lambda: state.clear_progress(key, task_id)),
            ("request", lambda: state.clear_pending(key, task_id)),
            ("lease", lambda: state.release_lease(key, holder.token)),
        ):
            try:
                _persist(f"task {task_id}", cleanup, patience=60.0)
            except Exception as exc:  # the lease then simply expires
                log.warning("domain %s: cleaning up the %s of task %s failed: %s", domain, what, task_id, type(exc).__name__)
        _hand_over_follow_up(state, key, settings, task)


def _hand_over_follow_up(state: WorkerState, key: str, settings: Settings, task: Any) -> None:
    """Queue the follow-up run recorded while this task wrote (after its lease is gone,
    so that a request racing the release is either seen here or sends it itself)."""
    try:
        sent = _persist(f"domain {key}", lambda: client.dispatch_follow_up(state, key, settings=settings, app=task.app))
    except Exception as exc:
        log.warning("domain %s: cannot queue the follow-up run now (%s); the next request or worker start does", key, type(exc).__name__)
        return
    if sent:
        log.info("domain %s: queued follow-up run %s for the requests made while it was written", key, sent)


# -------------------------------------------------------------------------
# Tasks
# -------------------------------------------------------------------------


@shared_task(bind=True, name=names.REFRESH)
def refresh_domain(self, domain_name: str, full: bool = False) -> dict:
    """Refresh ``domain_name``'s knowledge base and publish a new index version.

    Idempotent: a refresh of unchanged sources publishes nothing new.
    """

    def work(progress: TaskProgress) -> dict:
        from fourfold.index import refresh

        domain = domain_for(domain_name)
        # The lease keeps other tasks out; a `fourfold index build` run by hand may
        # still hold the index's own lock for a while: wait for it rather than fail.
        started = time.monotonic()
        try:
            report = refresh(domain, progress, full=full, wait=300.0, fence=progress.fence)
        except BaseException:
            metrics.observe_refresh(domain_name, None, time.monotonic() - started)
            raise
        metrics.observe_refresh(domain_name, report, time.monotonic() - started)
        if report.published:
            from fourfold.trust.service import calibrate_after_publish

            progress.start("calibrate")
            calibrate_after_publish(domain, report.version)
        return safe_summary(report)

    def fence_floor() -> int:
        from fourfold.index.layout import IndexLayout

        return IndexLayout.for_domain(domain_for(domain_name)).read_fence()

    return run_exclusive(
        self, "refresh", domain_name, work, record={"full": bool(full), "kwargs": {"full": bool(full)}}, fence_floor=fence_floor
    )


def _stage_summary(runs: list) -> dict:
    """Artifact names and whether each was reused: ids, never data."""
    return {
        "artifacts": [r.artifact.name for r in runs],
        "made": sum(1 for r in runs if not r.reused),
        "reused": sum(1 for r in runs if r.reused),
    }


@shared_task(bind=True, name=names.TRAIN)
def train_domain(self, domain_name: str, force: bool = False) -> dict:
    """Run ``domain_name``'s ``training:`` block into an artifact (reused when its inputs
    are unchanged, unless ``force``)."""

    def work(progress: TaskProgress) -> dict:
        from fourfold.training import run_training

        run = run_training(domain_for(domain_name), progress, force=force)
        return _stage_summary([run] if run is not None else [])

    return run_exclusive(
        self, "train", domain_name, work, record={"force": bool(force), "kwargs": {"force": bool(force)}},
        lease_on=names.lease_key(names.TRAIN, domain_name),
    )


@shared_task(bind=True, name=names.FINE_TUNE)
def fine_tune_domain(self, domain_name: str, force: bool = False, only: str | None = None) -> dict:
    """Run ``domain_name``'s ``fine_tuning:`` blocks (``only``: the one producing that
    artifact) into artifacts."""

    def work(progress: TaskProgress) -> dict:
        from fourfold.training import run_fine_tuning

        return _stage_summary(run_fine_tuning(domain_for(domain_name), progress, force=force, only=only))

    return run_exclusive(
        self, "fine-tune", domain_name, work,
        record={"force": bool(force), "kwargs": {"force": bool(force), **({"only": only} if only else {})}},
        lease_on=names.lease_key(names.FINE_TUNE, domain_name),
    )
