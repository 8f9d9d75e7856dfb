"""Workers announce themselves in the shared state, so ``fourfold tasks`` can list
them, ``fourfold refresh --wait`` can say when no worker is running, and a task whose
worker died is recognised as such (by the worker's process id and start time, and by
its record expiring three heartbeats after the last). When a worker is ready, and at
every heartbeat after that, it requeues what dead workers left
(:mod:`fourfold.worker.recovery`)."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

from fourfold.settings import Settings
from fourfold.worker.recovery import recover_dead_workers
from fourfold.worker.state import process_started, open_state

__all__ = ["announce_worker", "HEARTBEAT_SECONDS"]

HEARTBEAT_SECONDS = 10.0
log = logging.getLogger("fourfold.worker")


def announce_worker(app: Celery, settings: Settings, *, queues: list[str], concurrency: int, pool: str) -> None:
    """Record this worker in the shared state from ready to shutdown."""
    stop = threading.Event()
    info = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "queues": queues,
        "concurrency": concurrency,
        "pool": pool,
        "started_at": time.time(),
        "pid_started": process_started(os.getpid()),
    }

    def beat(node: str) -> None:
        state = open_state(settings)
        recovered = False
        while True:
            try:
                state.worker_seen(node, {**info, "seen_at": time.time()}, HEARTBEAT_SECONDS * 3)
            except Exception as exc:  # the broker's Redis restarting: try again later
                log.warning("cannot record worker %s as alive: %s", node, type(exc).__name__)
            # Once this worker is on record (so it is not mistaken for a dead one), and
            # then at every heartbeat: a worker that dies while others live is noticed by
            # them, not only by the next worker to start.
            try:
                for action in recover_dead_workers(app, settings, node=node):
                    log.info("recovered: task %s of %s: %s", action["task"], action["domain"], action["action"])
                recovered = True
            except Exception as exc:
                log.warning("cannot requeue the work of dead workers yet (%s: %s); trying again", type(exc).__name__, exc)
            if stop.wait(HEARTBEAT_SECONDS if recovered else 1.0):
                return

    @worker_ready.connect(weak=False)
    def _ready(sender=None, **_):
        node = getattr(sender, "hostname", None) or f"worker@{socket.gethostname()}"
        info["node"] = node
        threading.Thread(target=beat, args=(node,), name="fourfold-heartbeat", daemon=True).start()

    @worker_shutdown.connect(weak=False)
    def _shutdown(sender=None, **_):
        stop.set()
        node = info.get("node")
        if node:
            try:
                open_state(settings).worker_gone(node)
            except Exception:
                pass
