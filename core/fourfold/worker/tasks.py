"""fourfold's background tasks. Imported by worker processes only.

Every task takes ids (a domain name, a flag), never document text or questions, and
returns counts and version names only, so nothing sensitive reaches the broker, the
result backend or the worker's log (Celery logs every return value).

Each task runs under :func:`run_exclusive`, which gives it the domain's writer lease,
counts its deliveries (a task that keeps killing its worker is recorded as dead instead
of being retried forever), keeps a record of it and publishes its progress.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Callable

from celery import shared_task
from celery.exceptions import Ignore

from fourfold import metrics
from fourfold.errors import FourfoldError
from fourfold.settings import Settings, get_settings
from fourfold.worker import names
from fourfold.worker.state import FINAL_STATES, LeaseHolder, WorkerState, open_state

__all__ = ["refresh_domain", "train_domain", "fine_tune_domain", "run_exclusive", "TaskProgress", "LeaseLostError", "TaskFailed", "safe_summary", "domain_for"]

log = logging.getLogger("fourfold.worker")

_WAIT_POLL = 0.2  # seconds between looks at a lease held by another delivery of the same task


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
    from fourfold.domain import Domain
    from fourfold.manifest import load_manifest
    from fourfold.plugins import get_host
    from fourfold.registry import manifest_path_for

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
    host = get_host()
    manifest = load_manifest(path, host)
    if manifest.domain != name:
        raise FourfoldError(f"{path}: expected the manifest of domain '{name}', found domain '{manifest.domain}'")
    domain = Domain(manifest, host, settings)
    _domains[name] = (key, domain)
    return domain


# -------------------------------------------------------------------------
# Lease keeping and progress
# -------------------------------------------------------------------------


class _LeaseKeeper:
    """Renews a held lease in the background until stopped."""

    def __init__(self, state: WorkerState, domain: str, holder: LeaseHolder, ttl: float):
        self.state, self.domain, self.holder, self.ttl = state, domain, holder, ttl
        self.lost = False
        self.on_renew: Callable[[], None] | None = None  # e.g. keep the progress record alive
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{domain}", daemon=True)

    def start(self) -> "_LeaseKeeper":
        self._thread.start()
        return self

    def _run(self) -> None:
        last_ok = time.monotonic()
        while not self._stop.wait(self.ttl / 3):
            try:
                if self.state.renew_lease(self.domain, self.holder.token, self.ttl):
                    last_ok = time.monotonic()
                    if self.on_renew is not None:
                        self.on_renew()
                else:
                    self.lost = True
                    log.warning("domain %s: the writer lease of task %s was taken over", self.domain, self.holder.task_id)
                    return
            except Exception as exc:
                # The store is unreachable (e.g. Redis restarting): keep trying. Should
                # the lease expire meanwhile and another delivery take it, the next
                # renewal says so and the work stops at its next progress report.
                log.warning(
                    "domain %s: cannot renew the writer lease (%s), last renewed %.0fs ago",
                    self.domain, type(exc).__name__, time.monotonic() - last_ok,
                )

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

    def _check_lease(self) -> None:
        if self.keeper is not None and self.keeper.lost:
            raise LeaseLostError(f"domain '{self.domain}': the writer lease was taken over by another task")

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
    return f"{type(exc).__name__}{where}"


def safe_summary(report: Any) -> dict:
    """The numbers of a report (counts, timings, version names): nothing that could
    carry document text. Lists and mappings become their lengths."""
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
        elif isinstance(value, (list, tuple, set, frozenset)):
            out[f"{key}_count"] = len(value)
    return out


def _base_record(task: Any, kind: str, domain: str) -> dict:
    return {"name": kind, "domain": domain, "worker": f"{socket.gethostname()}:{os.getpid()}"}


def run_exclusive(
    task: Any, kind: str, domain: str, work: Callable[[TaskProgress], dict], *, record: dict | None = None, lease_on: str | None = None
) -> dict:
    """Run ``work`` as the only writer of ``domain`` and record what happened.

    - Counts this delivery; past ``settings.max_deliveries`` the task is recorded as
      dead and acknowledged without running.
    - Takes the domain's lease. When another task holds it, that one is doing the work:
      this one is recorded as ``skipped`` and returns ``{"status": "skipped",
      "running": <id>}``. When another delivery of this same task holds it, this one
      waits and returns that delivery's outcome (or takes over if it died).
    - Renews the lease while ``work`` runs and publishes progress; records
      ``succeeded`` with the summary ``work`` returns, or ``failed`` with a safe error.
    """
    settings = get_settings()
    state = open_state(settings)
    task_id = task.request.id
    key = lease_on or domain  # the lease (and progress) key: see names.lease_key
    ttl = float(settings.lease_seconds)
    base = {**_base_record(task, kind, domain), **(record or {})}

    previous = state.task(task_id) or {}
    if previous.get("state") in FINAL_STATES:
        # A late duplicate of a task that already finished (a re-delivery after a
        # visibility timeout, a lost acknowledgement): its outcome stands.
        log.info("task %s (%s of domain %s) already %s; nothing to do", task_id, kind, domain, previous["state"])
        if previous["state"] == "dead":
            raise Ignore()
        return {**(previous.get("result") or {}), "status": previous["state"], "domain": domain}

    deliveries = state.count_delivery(task_id)
    state.update_task(task_id, name=kind, domain=domain, deliveries=deliveries)
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
        task.update_state(state="DEAD", meta={"domain": domain, "error": message, "deliveries": deliveries})
        raise Ignore()

    holder = LeaseHolder.for_this_process(task_id)
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
            state.update_task(
                task_id, **base, state="skipped", running=current.task_id, deliveries=deliveries, finished_at=time.time()
            )
            state.clear_pending(key, task_id)
            log.info("domain %s: task %s skipped, task %s is already writing it", domain, task_id, current.task_id)
            return {"status": "skipped", "domain": domain, "running": current.task_id}
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
            task_id, **base, state="running", deliveries=deliveries, started_at=time.time(), error=None, finished_at=None
        )
        progress = TaskProgress(state, key, task, keeper, ttl * 2)
        keeper.on_renew = progress.keep_alive
        try:
            summary = work(progress)
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            message = safe_error(exc)
            state.update_task(task_id, state="failed", finished_at=time.time(), error=message)
            log.error("task %s (%s of domain %s) failed: %s", task_id, kind, domain, message)
            # Raised from None: the original exception (and any data in its message or
            # traceback) stays out of the result backend and the log.
            raise TaskFailed(f"{kind} of domain '{domain}' failed: {message}") from None
        result = {"status": "succeeded", "domain": domain, **summary}
        state.update_task(task_id, state="succeeded", finished_at=time.time(), result=result)
        return result
    finally:
        keeper.stop()
        for cleanup in (
            lambda: state.clear_progress(key, task_id),
            lambda: state.clear_pending(key, task_id),
            lambda: state.release_lease(key, holder.token),
        ):
            try:
                cleanup()
            except Exception as exc:  # the lease then simply expires
                log.warning("domain %s: cleanup after task %s failed: %s", domain, task_id, type(exc).__name__)


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
            report = refresh(domain, progress, full=full, wait=300.0)
        except BaseException:
            metrics.observe_refresh(domain_name, None, time.monotonic() - started)
            raise
        metrics.observe_refresh(domain_name, report, time.monotonic() - started)
        return safe_summary(report)

    return run_exclusive(self, "refresh", domain_name, work, record={"full": bool(full)})


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
        self, "train", domain_name, work, record={"force": bool(force)}, lease_on=names.lease_key(names.TRAIN, domain_name)
    )


@shared_task(bind=True, name=names.FINE_TUNE)
def fine_tune_domain(self, domain_name: str, force: bool = False, only: str | None = None) -> dict:
    """Run ``domain_name``'s ``fine_tuning:`` blocks (``only``: the one producing that
    artifact) into artifacts."""

    def work(progress: TaskProgress) -> dict:
        from fourfold.training import run_fine_tuning

        return _stage_summary(run_fine_tuning(domain_for(domain_name), progress, force=force, only=only))

    return run_exclusive(
        self, "fine-tune", domain_name, work, record={"force": bool(force)}, lease_on=names.lease_key(names.FINE_TUNE, domain_name)
    )
