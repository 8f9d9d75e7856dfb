"""Requeue the work of dead workers, when a worker starts and at its every heartbeat.

A worker whose main process is killed (SIGKILL, the OOM killer, a machine that
vanished) takes its children with it, and the task it was running stays unacknowledged:
Redis would hand it out again only after the visibility timeout (hours), the embedded
SQLite broker never. Every worker therefore looks, when it starts and then every
heartbeat (so a worker that dies while others live stalls nothing), for tasks that are
not finished and that nothing runs any more — decided by heartbeats (the lease holder's
process and its renewals, the worker's own record), never by a record's age — and:

- gives back the leases their dead processes held;
- returns each such task's message to its queue: on Redis by restoring the unacked
  message (kombu's ``QoS.restore_by_tag``), on the SQLite broker by making the delivered
  message visible again; when the message is gone, the task is sent again under the
  same id. The record says ``requeued``; its next delivery counts as one more (a task
  that keeps killing its worker is still given up as dead);
- drops the unacked messages of dead workers whose task already finished;
- queues the follow-up runs recorded while a now dead task was writing.

Running it twice, or on two workers starting at once, is harmless: a task delivered
twice is written by one delivery (the lease), and a follow-up is sent by whoever takes it.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from typing import Any

from celery import Celery

from fourfold.settings import Settings
from fourfold.worker import client, names
from fourfold.worker.app import uses_redis
from fourfold.worker.state import FINAL_STATES, IN_FLIGHT_STATES, WorkerState, open_state, worker_alive

__all__ = ["recover_dead_workers", "RECORDS_SCANNED"]

log = logging.getLogger("fourfold.worker")

RECORDS_SCANNED = 1000
"""Newest task records looked at for unfinished work."""

UNCLAIMED_SECONDS = 60.0
"""A message a worker took but never started (no record names that worker) counts as
lost after this long."""


def recover_dead_workers(app: Celery, settings: Settings, *, node: str | None = None) -> list[dict]:
    """Requeue what dead workers left (see the module docstring).

    :param node: this worker, for the records.
    :returns: one ``{"task", "domain", "action"}`` per thing done, for the log and tests.
    """
    state = open_state(settings)
    workers = state.workers()
    done: list[dict] = []

    for key, holder in state.leases().items():
        if holder.died_here():
            state.release_lease(key, holder.token)
            done.append({"task": holder.task_id, "domain": key, "action": "lease released"})

    messages = _BrokerMessages(app, settings)
    try:
        in_flight: set[str] = set()
        for rec in state.recent_tasks(RECORDS_SCANNED):
            task_id = rec["id"]
            if rec.get("state") not in IN_FLIGHT_STATES:
                continue
            key = names.lease_key(client.task_name_of(rec), rec.get("domain") or "")
            if client.delivery_alive(state, rec, key, task_id, workers):
                in_flight.add(key)
                continue
            fresh = state.task(task_id) or rec  # it may have moved on meanwhile
            if fresh.get("state") not in IN_FLIGHT_STATES or client.delivery_alive(state, fresh, key, task_id):
                continue
            how = messages.restore(task_id)
            if how is None:
                client.send_again(rec, task_id, settings=settings, app=app)
                how = "sent again"
            dead = rec.get("delivered_to") or "unknown"
            state.update_task(
                task_id, state="requeued", delivered_to=None, requeued_at=time.time(),
                requeues=int(rec.get("requeues") or 0) + 1,
                note=f"its worker {dead} died; requeued by {node or 'a starting worker'} ({how})",
            )
            in_flight.add(key)
            done.append({"task": task_id, "domain": rec.get("domain"), "action": f"requeued ({how})"})
            log.warning("task %s (%s of domain %s): its worker %s died; requeued (%s)", task_id, rec.get("name"), rec.get("domain"), dead, how)

        for task_id in messages.unclaimed(state, workers):
            rec = state.task(task_id) or {}
            if rec.get("state") in FINAL_STATES:
                messages.drop(task_id)
                done.append({"task": task_id, "domain": rec.get("domain"), "action": "stale message dropped"})
            elif messages.restore(task_id):
                state.update_task(task_id, state="requeued", delivered_to=None, requeued_at=time.time())
                done.append({"task": task_id, "domain": rec.get("domain"), "action": "requeued (never started)"})
    finally:
        messages.close()

    for key, follow_up in state.dirty_domains().items():
        holder = state.lease(key)
        if key in in_flight or (holder is not None and not holder.died_here()):
            continue  # the run it follows is alive or requeued, and hands it over when it ends
        sent = client.dispatch_follow_up(state, key, settings=settings, app=app)
        if sent:
            done.append({"task": sent, "domain": key, "action": "follow-up queued"})
    return done


class _BrokerMessages:
    """Messages that were delivered but never acknowledged, in either broker."""

    def __init__(self, app: Celery, settings: Settings):
        self.app, self.settings = app, settings
        self.redis = uses_redis(settings)
        self._conn = None
        self._channel: Any = None

    # -- Redis: kombu keeps them in the "unacked" hash until acknowledged ---------------

    def _kombu(self):
        if self._channel is None:
            self._conn = self.app.connection_for_write()
            self._channel = self._conn.default_channel
        return self._channel

    def _unacked(self) -> dict[str, tuple[str, float]]:
        """Delivery tag → (task id, delivered at) of every unacked message."""
        channel = self._kombu()
        client_ = channel.client
        when = dict(client_.zrange(channel.unacked_index_key, 0, -1, withscores=True))  # prefixed by kombu's client
        out = {}
        # kombu's client adds the namespace's key prefix to the commands kombu uses
        # itself (HGET, HDEL, ZRANGE, …) but not to HGETALL.
        prefix = getattr(channel, "global_keyprefix", "") or ""
        for tag, raw in client_.hgetall(prefix + channel.unacked_key).items():
            try:
                message = json.loads(raw)[0]
                task_id = message["headers"]["id"]
            except (ValueError, KeyError, IndexError, TypeError):
                continue
            tag = tag.decode() if isinstance(tag, bytes) else tag
            out[tag] = (task_id, float(when.get(tag, when.get(tag.encode(), 0.0)) or 0.0))
        return out

    # -- SQLite: the sqlalchemy transport marks a delivered message invisible ------------

    def _sqlite(self) -> sqlite3.Connection:
        return sqlite3.connect(self.settings.state_dir / "broker.sqlite", timeout=30)

    def _sqlite_find(self, con: sqlite3.Connection, task_id: str) -> int | None:
        rows = con.execute(
            "SELECT id, payload FROM kombu_message WHERE visible = 0 AND payload LIKE ?", (f"%{task_id}%",)
        ).fetchall()
        for row_id, payload in rows:
            try:
                if json.loads(payload)["headers"]["id"] == task_id:
                    return row_id
            except (ValueError, KeyError, TypeError):
                continue
        return None

    # -- both ---------------------------------------------------------------------------

    def restore(self, task_id: str) -> str | None:
        """Put ``task_id``'s unacknowledged message back in its queue.

        :returns: how, or None when no such message exists.
        """
        if self.redis:
            channel = self._kombu()
            for tag, (tid, _) in self._unacked().items():
                if tid == task_id:
                    channel.qos.restore_by_tag(tag, leftmost=True)
                    return "unacked message restored"
            return None
        if self.settings.broker_url:
            return None  # another broker: it re-delivers by its own rules
        con = self._sqlite()
        try:
            row_id = self._sqlite_find(con, task_id)
            if row_id is None:
                return None
            con.execute("UPDATE kombu_message SET visible = 1 WHERE id = ?", (row_id,))
            con.commit()
            return "delivered message made visible again"
        finally:
            con.close()

    def drop(self, task_id: str) -> None:
        """Forget the unacknowledged message of a task that finished (Redis)."""
        if not self.redis:
            return
        channel = self._kombu()
        for tag, (tid, _) in self._unacked().items():
            if tid == task_id:
                channel.client.pipeline().zrem(channel.unacked_index_key, tag).hdel(channel.unacked_key, tag).execute()

    def unclaimed(self, state: WorkerState, workers: dict) -> list[str]:
        """Tasks whose message a worker took (Redis: unacked) but that no live worker
        claims: finished ones (a lost acknowledgement), and ones whose record never
        named the worker that took them for :data:`UNCLAIMED_SECONDS`."""
        if not self.redis:
            return []
        now = time.time()
        out = []
        for tag, (task_id, delivered) in self._unacked().items():
            rec = state.task(task_id) or {}
            if rec.get("state") in FINAL_STATES:
                node = rec.get("delivered_to")
                if not node or not worker_alive(workers.get(node)):
                    out.append(task_id)
            elif not rec.get("delivered_to") and rec.get("state") != "requeued" and now - delivered > UNCLAIMED_SECONDS:
                out.append(task_id)
        return out

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.release()
            except Exception:
                pass
