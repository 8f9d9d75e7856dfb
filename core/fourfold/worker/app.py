"""The Celery app, configured from :class:`fourfold.Settings`.

Broker: Redis when ``FOURFOLD_BROKER_URL`` is set, else an SQLite database in the state
dir (kombu's sqlalchemy transport) so that one machine needs no Redis. The result
backend follows: the broker's Redis, or SQLite in the state dir.

This module imports no task code: the API and the CLI use it to enqueue by name.
"""

from __future__ import annotations

import fcntl
import sqlite3
import threading
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Iterator

from celery import Celery
from kombu import Queue

from fourfold.errors import FourfoldError
from fourfold.files import network_disk_problem
from fourfold.settings import Settings, get_settings
from fourfold.worker import names

__all__ = ["make_app", "get_app", "broker_url", "result_backend_url", "uses_redis", "prepare_broker", "visibility_timeout"]

# kombu's virtual transports poll; its default of 1 s adds up to a second to every
# hand-over on the embedded broker. A SELECT every 0.2 s per worker is cheap. kombu
# forwards transport options to SQLAlchemy's create_engine, so this is set on the class.
EMBEDDED_POLL_SECONDS = 0.2

_SQLITE_TIMEOUT = 30  # seconds a connection waits for a locked SQLite database


def uses_redis(settings: Settings) -> bool:
    """Whether the broker is Redis (else the embedded SQLite broker or another URL)."""
    url = settings.broker_url or ""
    return url.startswith(("redis://", "rediss://", "unix://"))


def broker_url(settings: Settings) -> str:
    if settings.broker_url:
        return settings.broker_url
    return f"sqla+sqlite:///{settings.state_dir / 'broker.sqlite'}"


def result_backend_url(settings: Settings) -> str:
    if settings.result_backend:
        return settings.result_backend
    if uses_redis(settings):
        return settings.broker_url  # type: ignore[return-value]
    return f"db+sqlite:///{settings.state_dir / 'results.sqlite'}"


def visibility_timeout(settings: Settings) -> int:
    """Seconds after which Redis re-delivers a task that was never acknowledged.

    Longer than the hard time limit, so a task that is merely slow is not run twice. It
    is a last resort: a worker that starts requeues the tasks of dead workers at once
    (:mod:`fourfold.worker.recovery`).
    """
    return settings.visibility_timeout or settings.task_time_limit + 600


def _transport_options(settings: Settings) -> dict:
    if uses_redis(settings):
        vt = visibility_timeout(settings)
        return {
            "visibility_timeout": vt,
            "global_keyprefix": f"{settings.namespace}:",
            # Sweep for the messages of vanished workers often enough for the timeout.
            "unacked_restore_interval": max(1, min(10, vt // 4)),
            "unacked_restore_throttle": 1 if vt < 300 else 10,
        }
    if not settings.broker_url:
        return {"connect_args": {"timeout": _SQLITE_TIMEOUT}}
    return {}


def make_app(settings: Settings | None = None, *, include_tasks: bool = False) -> Celery:
    """A Celery app for ``settings``.

    :param include_tasks: register fourfold's task implementations (worker processes
        only; they import the index lifecycle and its dependencies).
    """
    settings = settings or get_settings()
    if not settings.broker_url:
        from kombu.transport.sqlalchemy import Transport

        Transport.polling_interval = EMBEDDED_POLL_SECONDS
    ns = settings.namespace
    refresh_q = names.queue_name(ns, names.REFRESH_QUEUE)
    training_q = names.queue_name(ns, names.TRAINING_QUEUE)
    app = Celery("fourfold", set_as_current=False)
    app.conf.update(
        broker_url=broker_url(settings),
        result_backend=result_backend_url(settings),
        broker_transport_options=_transport_options(settings),
        result_backend_transport_options=(
            {"global_keyprefix": f"{ns}:"} if result_backend_url(settings).startswith(("redis", "rediss")) else {}
        ),
        database_engine_options={"connect_args": {"timeout": _SQLITE_TIMEOUT}},
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # a worker outlives a broker restart
        # Arguments and results are JSON: ids and counts only, never documents or questions.
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        result_extended=False,  # keep task arguments out of the result backend
        result_expires=timedelta(days=7),
        result_backend_always_retry=True,
        result_backend_max_retries=20,
        # A task is acknowledged when it finished; one whose worker died goes back to the queue.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_deduplicate_successful_tasks=True,
        task_track_started=True,
        task_time_limit=settings.task_time_limit,
        task_soft_time_limit=max(5, int(settings.task_time_limit * 0.9)),
        worker_max_memory_per_child=settings.worker_max_memory_mb * 1024,  # KiB
        worker_lost_wait=3.0,  # a killed child's task goes back to the queue after this, not 10 s
        worker_cancel_long_running_tasks_on_connection_loss=False,
        # Task events for Flower and `celery events` (Redis only: the SQLite broker has no
        # broadcast, and Celery turns events off for it anyway).
        worker_send_task_events=uses_redis(settings),
        task_send_sent_event=uses_redis(settings),
        task_default_queue=refresh_q,
        task_queues=[Queue(refresh_q, routing_key=refresh_q), Queue(training_q, routing_key=training_q)],
        task_routes={
            names.REFRESH: {"queue": refresh_q, "routing_key": refresh_q},
            names.TRAIN: {"queue": training_q, "routing_key": training_q},
            names.FINE_TUNE: {"queue": training_q, "routing_key": training_q},
        },
        enable_utc=True,
        timezone="UTC",
        beat_schedule_filename=str(settings.state_dir / "beat-schedule"),
        worker_hijack_root_logger=True,
    )
    app.fourfold_settings = settings  # type: ignore[attr-defined]
    if include_tasks:
        app.conf.include = ["fourfold.worker.tasks"]
    return app


_apps: dict[int, Celery] = {}
_apps_lock = threading.Lock()


def get_app(settings: Settings | None = None) -> Celery:
    """A shared app for enqueueing and reading state (one per settings object)."""
    settings = settings or get_settings()
    with _apps_lock:
        app = _apps.get(id(settings))
        if app is None or app.fourfold_settings is not settings:  # type: ignore[attr-defined]
            app = make_app(settings)
            # An API or CLI process may be the first to touch a fresh embedded broker.
            prepare_broker(app, settings)
            _apps[id(settings)] = app
        return app


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def prepare_broker(app: Celery, settings: Settings | None = None) -> None:
    """Create the embedded broker's database and queues once, before processes race.

    Several processes creating a fresh SQLite broker at once collide on its tables and
    on ``kombu_queue.name``; this does it under a file lock. Also drops messages that
    were delivered long ago: the sqlalchemy transport marks delivered messages
    invisible and never deletes them. A no-op for Redis.
    """
    settings = settings or app.fourfold_settings  # type: ignore[attr-defined]
    if settings.broker_url:
        return
    state_dir = settings.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    problem = network_disk_problem(state_dir, "the embedded broker (broker.sqlite)")
    if problem:
        raise FourfoldError(problem)
    with _file_lock(state_dir / "broker.lock"):
        db = state_dir / "broker.sqlite"
        con = sqlite3.connect(db, timeout=_SQLITE_TIMEOUT)
        try:
            con.execute("PRAGMA journal_mode=WAL")  # readers and the writer stop blocking each other
        finally:
            con.close()
        with app.connection_for_write() as conn:
            channel = conn.default_channel
            for queue in app.conf.task_queues:
                queue(channel).declare()
        stale = 2 * settings.task_time_limit + 3600
        con = sqlite3.connect(db, timeout=_SQLITE_TIMEOUT)
        try:
            con.execute(
                "DELETE FROM kombu_message WHERE visible = 0 AND timestamp < datetime('now', 'localtime', ?)",
                (f"-{stale} seconds",),
            )
            con.commit()
        finally:
            con.close()
