"""What background tasks share besides the queue: per-domain writer leases, delivery
counts, progress, task records and live workers.

Kept in the broker's Redis when the broker is Redis (so every machine sees it), else in
``tasks.sqlite`` in the state dir next to the embedded broker. Both stores hold ids,
names, counts and timestamps only — never document text or questions.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from fourfold.errors import FourfoldError
from fourfold.files import network_disk_problem
from fourfold.settings import Settings, get_settings

__all__ = [
    "LeaseHolder",
    "WorkerState",
    "RedisState",
    "SqliteState",
    "open_state",
    "FINAL_STATES",
    "IN_FLIGHT_STATES",
    "RECORD_SECONDS",
    "process_alive",
    "process_started",
    "worker_alive",
]

FINAL_STATES = frozenset({"succeeded", "failed", "skipped", "dead", "released"})
"""Task states after which nothing more happens to a task. ``released``: its worker
died and a newer request took over its work (see the record's ``requeued_as``)."""

IN_FLIGHT_STATES = frozenset({"queued", "running", "requeued", "retrying"})
"""States of a task that is waiting for, or doing, its work."""

RECORD_SECONDS = 7 * 24 * 3600  # how long task records and delivery counts are kept
_MAX_LISTED = 1000  # newest task records kept in the recent / dead listings


def _now() -> float:
    return time.time()


def process_started(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), or None."""
    try:
        import psutil

        return psutil.Process(pid).create_time()
    except Exception:
        return None


def process_alive(host: str | None, pid: int | None, started: float | None) -> bool | None:
    """Whether process ``pid`` (started at ``started``) still runs on ``host``.

    :returns: True or False for a process on this machine; None for one on another
        machine (only its renewals, i.e. an expiry, can tell).
    """
    if host != socket.gethostname() or not pid:
        return None
    try:
        import psutil

        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(proc.create_time() - started) <= 0.01
    except Exception:  # NoSuchProcess, or psutil missing: fall back to a signal probe
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def worker_alive(info: dict | None) -> bool:
    """Whether the worker whose heartbeat record is ``info`` still runs.

    A worker that stopped renewing its record (killed, machine gone) has none: its
    record expires three heartbeats after the last. One on this machine is also checked
    by its main process's id and start time, so a worker killed a moment ago counts as
    dead at once.
    """
    if not info:
        return False
    return process_alive(info.get("host"), info.get("pid"), info.get("pid_started")) is not False


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds a domain's writer lease: one execution of one task."""

    token: str  # unique per execution: two deliveries of one task hold different tokens
    task_id: str
    host: str
    pid: int
    pid_started: float | None
    acquired_at: float
    node: str | None = None  # the worker (Celery node name) whose child runs it
    fence: int = 0  # fencing token: higher for every later holder of the same lease

    @classmethod
    def for_this_process(cls, task_id: str, *, node: str | None = None, fence: int = 0) -> "LeaseHolder":
        pid = os.getpid()
        return cls(uuid.uuid4().hex, task_id, socket.gethostname(), pid, process_started(pid), _now(), node, fence)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> "LeaseHolder":
        data = json.loads(text)
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def died_here(self) -> bool:
        """True when the holder ran on this machine and its process is gone.

        Lets a re-delivered task take over at once from the worker child that was
        killed, instead of waiting for the lease to expire. Holders on other machines
        are only ever replaced by expiry.
        """
        return process_alive(self.host, self.pid, self.pid_started) is False


class WorkerState(ABC):
    """The shared state of background tasks. All methods are safe across processes."""

    # -- leases: one writer per domain ---------------------------------------------

    @abstractmethod
    def acquire_lease(self, domain: str, holder: LeaseHolder, ttl: float) -> LeaseHolder | None:
        """Take ``domain``'s lease for ``ttl`` seconds.

        :returns: None when taken; otherwise the current holder.
        """

    @abstractmethod
    def renew_lease(self, domain: str, token: str, ttl: float) -> bool:
        """Extend the lease held with ``token``; False when it is no longer held with it."""

    @abstractmethod
    def release_lease(self, domain: str, token: str) -> None:
        """Give up the lease if it is still held with ``token``."""

    @abstractmethod
    def lease(self, domain: str) -> LeaseHolder | None:
        """The current holder of ``domain``'s lease."""

    @abstractmethod
    def leases(self) -> dict[str, LeaseHolder]:
        """Every held lease by domain."""

    @abstractmethod
    def next_fence(self, domain: str, at_least: int = 0) -> int:
        """A fencing token for ``domain``'s lease, higher than every one issued before
        (Redis ``INCR``) and than ``at_least``: a new holder takes one, and publishing
        refuses a token lower than one that already published. ``at_least`` (the token
        the index last published with) keeps tokens rising after a Redis that lost its
        data."""

    # -- follow-up runs: requests that arrived while the domain was being written ------

    @abstractmethod
    def mark_dirty(self, domain: str, task_id: str, ttl: float) -> str | None:
        """Record ``task_id`` as the run to follow the one writing ``domain`` now,
        unless one is recorded.

        :returns: None when recorded; otherwise the follow-up already recorded.
        """

    @abstractmethod
    def dirty(self, domain: str) -> str | None:
        """The follow-up recorded for ``domain``."""

    @abstractmethod
    def take_dirty(self, domain: str) -> str | None:
        """Remove and return ``domain``'s follow-up (one caller gets it)."""

    @abstractmethod
    def dirty_domains(self) -> dict[str, str]:
        """Every recorded follow-up by domain."""

    # -- requests waiting in the queue -----------------------------------------------

    @abstractmethod
    def claim_pending(self, domain: str, task_id: str, ttl: float, replace: str | None = None) -> str | None:
        """Record ``task_id`` as ``domain``'s queued request unless another is recorded
        (``replace`` names a finished one that may be overwritten).

        :returns: None when recorded; otherwise the id already recorded.
        """

    @abstractmethod
    def pending(self, domain: str) -> str | None:
        """The queued request recorded for ``domain``."""

    @abstractmethod
    def clear_pending(self, domain: str, task_id: str) -> None:
        """Forget ``domain``'s queued request if it is ``task_id``."""

    # -- deliveries, records, progress ------------------------------------------------

    @abstractmethod
    def count_delivery(self, task_id: str) -> int:
        """Count one more delivery of ``task_id``; returns the count including this one."""

    @abstractmethod
    def update_task(self, task_id: str, **fields: Any) -> None:
        """Create or update the record of ``task_id`` (fields are JSON values)."""

    @abstractmethod
    def task(self, task_id: str) -> dict | None:
        """The record of ``task_id``."""

    @abstractmethod
    def recent_tasks(self, limit: int = 20) -> list[dict]:
        """Newest records first."""

    @abstractmethod
    def dead_tasks(self, limit: int = 20) -> list[dict]:
        """Records of tasks given up as dead, newest first."""

    @abstractmethod
    def set_progress(self, domain: str, task_id: str, data: dict, ttl: float) -> None:
        """Publish how far ``task_id`` got on ``domain``."""

    @abstractmethod
    def progress(self, domain: str) -> dict | None:
        """The latest progress on ``domain`` (with ``task_id``), if a task reports any."""

    @abstractmethod
    def clear_progress(self, domain: str, task_id: str) -> None:
        """Drop ``domain``'s progress if ``task_id`` reported it."""

    # -- workers ---------------------------------------------------------------------

    @abstractmethod
    def worker_seen(self, node: str, info: dict, ttl: float) -> None:
        """Record that worker ``node`` is alive for the next ``ttl`` seconds."""

    @abstractmethod
    def worker_gone(self, node: str) -> None:
        """Forget worker ``node`` (it shut down)."""

    @abstractmethod
    def workers(self) -> dict[str, dict]:
        """Live workers by node name."""

    def describe(self) -> str:
        """Where this state lives, for messages."""
        return type(self).__name__


def _record(data: dict, task_id: str) -> dict:
    data.setdefault("id", task_id)
    return data


# -------------------------------------------------------------------------
# Redis
# -------------------------------------------------------------------------

_LEASE_TOKEN_IS = """
local v = redis.call('get', KEYS[1])
if not v then return 0 end
if cjson.decode(v)['token'] ~= ARGV[1] then return 0 end
"""
_RENEW = _LEASE_TOKEN_IS + "redis.call('pexpire', KEYS[1], ARGV[2]) return 1"
_RELEASE = _LEASE_TOKEN_IS + "redis.call('del', KEYS[1]) return 1"
_CLAIM = """
local v = redis.call('get', KEYS[1])
if v and v ~= ARGV[3] then return v end
redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
"""
_DELETE_IF = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
_DELETE_PROGRESS_IF = (
    "if redis.call('hget', KEYS[1], 'task_id') == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)


_NEXT_FENCE = """
local n = redis.call('incr', KEYS[1])
local floor = tonumber(ARGV[1])
if n <= floor then n = floor + 1 redis.call('set', KEYS[1], n) end
return n
"""
_TAKE = "local v = redis.call('get', KEYS[1]) if v then redis.call('del', KEYS[1]) end return v"


class RedisState(WorkerState):
    """State in Redis, under keys ``<namespace>:lease:<domain>``, ``…:task:<id>`` etc."""

    def __init__(self, url: str, namespace: str):
        import redis
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry

        self.url = url
        self.ns = namespace
        # Ride out a Redis restart (about 30 s of retries): a task that finished while
        # Redis was away must still record its outcome.
        self.redis = redis.Redis.from_url(
            url,
            socket_timeout=10,
            socket_connect_timeout=5,
            health_check_interval=30,
            decode_responses=True,
            retry=Retry(ExponentialBackoff(cap=2.0, base=0.1), retries=20),
            retry_on_error=[redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
        )
        self._renew = self.redis.register_script(_RENEW)
        self._release = self.redis.register_script(_RELEASE)
        self._claim = self.redis.register_script(_CLAIM)
        self._delete_if = self.redis.register_script(_DELETE_IF)
        self._delete_progress_if = self.redis.register_script(_DELETE_PROGRESS_IF)
        self._take = self.redis.register_script(_TAKE)
        self._next_fence = self.redis.register_script(_NEXT_FENCE)

    def describe(self) -> str:
        return f"Redis ({self.ns}:*)"

    def _k(self, *parts: str) -> str:
        return ":".join((self.ns, *parts))

    def acquire_lease(self, domain, holder, ttl):
        key = self._k("lease", domain)
        for _ in range(5):
            if self.redis.set(key, holder.to_json(), nx=True, px=int(ttl * 1000)):
                return None
            current = self.redis.get(key)
            if current is not None:
                return LeaseHolder.from_json(current)
        return self.lease(domain)

    def renew_lease(self, domain, token, ttl):
        return bool(self._renew(keys=[self._k("lease", domain)], args=[token, int(ttl * 1000)]))

    def release_lease(self, domain, token):
        self._release(keys=[self._k("lease", domain)], args=[token])

    def lease(self, domain):
        value = self.redis.get(self._k("lease", domain))
        return LeaseHolder.from_json(value) if value else None

    def leases(self):
        out = {}
        prefix = self._k("lease", "")
        for key in self.redis.scan_iter(match=prefix + "*", count=200):
            value = self.redis.get(key)
            if value:
                out[key[len(prefix):]] = LeaseHolder.from_json(value)
        return out

    def next_fence(self, domain, at_least=0):
        return int(self._next_fence(keys=[self._k("fence", domain)], args=[int(at_least)]))

    def mark_dirty(self, domain, task_id, ttl):
        if self.redis.set(self._k("dirty", domain), task_id, nx=True, px=int(ttl * 1000)):
            return None
        return self.redis.get(self._k("dirty", domain)) or self.mark_dirty(domain, task_id, ttl)

    def dirty(self, domain):
        return self.redis.get(self._k("dirty", domain))

    def take_dirty(self, domain):
        return self._take(keys=[self._k("dirty", domain)]) or None

    def dirty_domains(self):
        out = {}
        prefix = self._k("dirty", "")
        for key in self.redis.scan_iter(match=prefix + "*", count=200):
            value = self.redis.get(key)
            if value:
                out[key[len(prefix):]] = value
        return out

    def claim_pending(self, domain, task_id, ttl, replace=None):
        return self._claim(keys=[self._k("pending", domain)], args=[task_id, int(ttl * 1000), replace or ""]) or None

    def pending(self, domain):
        return self.redis.get(self._k("pending", domain))

    def clear_pending(self, domain, task_id):
        self._delete_if(keys=[self._k("pending", domain)], args=[task_id])

    def count_delivery(self, task_id):
        key = self._k("deliveries", task_id)
        pipe = self.redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, RECORD_SECONDS)
        return int(pipe.execute()[0])

    def update_task(self, task_id, **fields):
        key = self._k("task", task_id)
        now = _now()
        pipe = self.redis.pipeline()
        pipe.hset(key, mapping={k: json.dumps(v) for k, v in {**fields, "updated_at": now}.items()})
        pipe.expire(key, RECORD_SECONDS)
        pipe.zadd(self._k("recent"), {task_id: now})
        pipe.zremrangebyrank(self._k("recent"), 0, -_MAX_LISTED - 1)
        if fields.get("state") == "dead":
            pipe.zadd(self._k("dead"), {task_id: now})
            pipe.zremrangebyrank(self._k("dead"), 0, -_MAX_LISTED - 1)
        pipe.execute()

    def task(self, task_id):
        data = self.redis.hgetall(self._k("task", task_id))
        return _record({k: json.loads(v) for k, v in data.items()}, task_id) if data else None

    def _listed(self, zkey: str, limit: int) -> list[dict]:
        ids = self.redis.zrevrange(self._k(zkey), 0, max(0, limit - 1))
        out = []
        for task_id in ids:
            rec = self.task(task_id)
            if rec is not None:
                out.append(rec)
        return out

    def recent_tasks(self, limit=20):
        return self._listed("recent", limit)

    def dead_tasks(self, limit=20):
        return self._listed("dead", limit)

    def set_progress(self, domain, task_id, data, ttl):
        key = self._k("progress", domain)
        pipe = self.redis.pipeline()
        pipe.hset(key, mapping={"task_id": task_id, "data": json.dumps(data)})
        pipe.pexpire(key, int(ttl * 1000))
        pipe.execute()

    def progress(self, domain):
        data = self.redis.hgetall(self._k("progress", domain))
        if not data:
            return None
        return {**json.loads(data.get("data", "{}")), "task_id": data.get("task_id")}

    def clear_progress(self, domain, task_id):
        self._delete_progress_if(keys=[self._k("progress", domain)], args=[task_id])

    def worker_seen(self, node, info, ttl):
        self.redis.set(self._k("worker", node), json.dumps(info), px=int(ttl * 1000))

    def worker_gone(self, node):
        self.redis.delete(self._k("worker", node))

    def workers(self):
        out = {}
        prefix = self._k("worker", "")
        for key in self.redis.scan_iter(match=prefix + "*", count=200):
            value = self.redis.get(key)
            if value:
                out[key[len(prefix):]] = json.loads(value)
        return out


# -------------------------------------------------------------------------
# SQLite (embedded broker: one machine)
# -------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (domain TEXT PRIMARY KEY, token TEXT NOT NULL, holder TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS pending (domain TEXT PRIMARY KEY, task_id TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS progress (domain TEXT PRIMARY KEY, task_id TEXT NOT NULL, data TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS deliveries (task_id TEXT PRIMARY KEY, n INTEGER NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (task_id TEXT PRIMARY KEY, data TEXT NOT NULL, updated REAL NOT NULL, dead REAL);
CREATE INDEX IF NOT EXISTS tasks_updated ON tasks (updated);
CREATE TABLE IF NOT EXISTS workers (node TEXT PRIMARY KEY, data TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS fences (domain TEXT PRIMARY KEY, n INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dirty (domain TEXT PRIMARY KEY, task_id TEXT NOT NULL, expires REAL NOT NULL);
"""

_initialised: set[tuple[str, int]] = set()
_init_lock = threading.Lock()


class SqliteState(WorkerState):
    """State in an SQLite file (``tasks.sqlite`` in the state dir).

    A connection per call keeps it safe across threads and forked worker children.
    """

    def __init__(self, path: Path):
        self.path = Path(path)

    def describe(self) -> str:
        return str(self.path)

    def _connect(self) -> sqlite3.Connection:
        key = (str(self.path), os.getpid())
        if key not in _initialised:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            problem = network_disk_problem(self.path.parent, "the task records (tasks.sqlite)")
            if problem:
                raise FourfoldError(problem)
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        if key not in _initialised:
            with _init_lock:
                con.execute("PRAGMA journal_mode=WAL")
                con.executescript(_SCHEMA)
                _initialised.add(key)
        return con

    def _write(self, fn):
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                result = fn(con)
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
            return result
        finally:
            con.close()

    def _read(self, sql: str, args: tuple = ()) -> list[tuple]:
        con = self._connect()
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def acquire_lease(self, domain, holder, ttl):
        def tx(con):
            now = _now()
            row = con.execute("SELECT holder FROM leases WHERE domain = ? AND expires > ?", (domain, now)).fetchone()
            if row:
                return LeaseHolder.from_json(row[0])
            con.execute(
                "INSERT OR REPLACE INTO leases (domain, token, holder, expires) VALUES (?, ?, ?, ?)",
                (domain, holder.token, holder.to_json(), now + ttl),
            )
            return None

        return self._write(tx)

    def renew_lease(self, domain, token, ttl):
        def tx(con):
            now = _now()
            cur = con.execute(
                "UPDATE leases SET expires = ? WHERE domain = ? AND token = ? AND expires > ?", (now + ttl, domain, token, now)
            )
            return cur.rowcount == 1

        return self._write(tx)

    def release_lease(self, domain, token):
        self._write(lambda con: con.execute("DELETE FROM leases WHERE domain = ? AND token = ?", (domain, token)))

    def lease(self, domain):
        rows = self._read("SELECT holder FROM leases WHERE domain = ? AND expires > ?", (domain, _now()))
        return LeaseHolder.from_json(rows[0][0]) if rows else None

    def leases(self):
        return {d: LeaseHolder.from_json(h) for d, h in self._read("SELECT domain, holder FROM leases WHERE expires > ?", (_now(),))}

    def next_fence(self, domain, at_least=0):
        def tx(con):
            con.execute(
                "INSERT INTO fences (domain, n) VALUES (?, ?) ON CONFLICT(domain) DO UPDATE SET n = MAX(n + 1, excluded.n)",
                (domain, int(at_least) + 1),
            )
            return int(con.execute("SELECT n FROM fences WHERE domain = ?", (domain,)).fetchone()[0])

        return self._write(tx)

    def mark_dirty(self, domain, task_id, ttl):
        def tx(con):
            now = _now()
            row = con.execute("SELECT task_id FROM dirty WHERE domain = ? AND expires > ?", (domain, now)).fetchone()
            if row:
                return row[0]
            con.execute("INSERT OR REPLACE INTO dirty (domain, task_id, expires) VALUES (?, ?, ?)", (domain, task_id, now + ttl))
            return None

        return self._write(tx)

    def dirty(self, domain):
        rows = self._read("SELECT task_id FROM dirty WHERE domain = ? AND expires > ?", (domain, _now()))
        return rows[0][0] if rows else None

    def take_dirty(self, domain):
        def tx(con):
            row = con.execute("SELECT task_id FROM dirty WHERE domain = ? AND expires > ?", (domain, _now())).fetchone()
            con.execute("DELETE FROM dirty WHERE domain = ?", (domain,))
            return row[0] if row else None

        return self._write(tx)

    def dirty_domains(self):
        return dict(self._read("SELECT domain, task_id FROM dirty WHERE expires > ?", (_now(),)))

    def claim_pending(self, domain, task_id, ttl, replace=None):
        def tx(con):
            now = _now()
            row = con.execute("SELECT task_id FROM pending WHERE domain = ? AND expires > ?", (domain, now)).fetchone()
            if row and row[0] != replace:
                return row[0]
            con.execute("INSERT OR REPLACE INTO pending (domain, task_id, expires) VALUES (?, ?, ?)", (domain, task_id, now + ttl))
            return None

        return self._write(tx)

    def pending(self, domain):
        rows = self._read("SELECT task_id FROM pending WHERE domain = ? AND expires > ?", (domain, _now()))
        return rows[0][0] if rows else None

    def clear_pending(self, domain, task_id):
        self._write(lambda con: con.execute("DELETE FROM pending WHERE domain = ? AND task_id = ?", (domain, task_id)))

    def count_delivery(self, task_id):
        def tx(con):
            now = _now()
            con.execute("DELETE FROM deliveries WHERE at < ?", (now - RECORD_SECONDS,))
            con.execute(
                "INSERT INTO deliveries (task_id, n, at) VALUES (?, 1, ?) "
                "ON CONFLICT(task_id) DO UPDATE SET n = n + 1, at = excluded.at",
                (task_id, now),
            )
            return con.execute("SELECT n FROM deliveries WHERE task_id = ?", (task_id,)).fetchone()[0]

        return self._write(tx)

    def update_task(self, task_id, **fields):
        def tx(con):
            now = _now()
            row = con.execute("SELECT data FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
            data = json.loads(row[0]) if row else {}
            data.update(fields, updated_at=now)
            dead = now if fields.get("state") == "dead" else None
            con.execute(
                "INSERT INTO tasks (task_id, data, updated, dead) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(task_id) DO UPDATE SET data = excluded.data, updated = excluded.updated, "
                "dead = COALESCE(excluded.dead, tasks.dead)",
                (task_id, json.dumps(data), now, dead),
            )
            con.execute("DELETE FROM tasks WHERE updated < ?", (now - RECORD_SECONDS,))

        self._write(tx)

    def task(self, task_id):
        rows = self._read("SELECT data FROM tasks WHERE task_id = ?", (task_id,))
        return _record(json.loads(rows[0][0]), task_id) if rows else None

    def recent_tasks(self, limit=20):
        rows = self._read("SELECT task_id, data FROM tasks ORDER BY updated DESC LIMIT ?", (limit,))
        return [_record(json.loads(d), t) for t, d in rows]

    def dead_tasks(self, limit=20):
        rows = self._read("SELECT task_id, data FROM tasks WHERE dead IS NOT NULL ORDER BY dead DESC LIMIT ?", (limit,))
        return [_record(json.loads(d), t) for t, d in rows]

    def set_progress(self, domain, task_id, data, ttl):
        self._write(
            lambda con: con.execute(
                "INSERT OR REPLACE INTO progress (domain, task_id, data, expires) VALUES (?, ?, ?, ?)",
                (domain, task_id, json.dumps(data), _now() + ttl),
            )
        )

    def progress(self, domain):
        rows = self._read("SELECT task_id, data FROM progress WHERE domain = ? AND expires > ?", (domain, _now()))
        return {**json.loads(rows[0][1]), "task_id": rows[0][0]} if rows else None

    def clear_progress(self, domain, task_id):
        self._write(lambda con: con.execute("DELETE FROM progress WHERE domain = ? AND task_id = ?", (domain, task_id)))

    def worker_seen(self, node, info, ttl):
        self._write(
            lambda con: con.execute(
                "INSERT OR REPLACE INTO workers (node, data, expires) VALUES (?, ?, ?)", (node, json.dumps(info), _now() + ttl)
            )
        )

    def worker_gone(self, node):
        self._write(lambda con: con.execute("DELETE FROM workers WHERE node = ?", (node,)))

    def workers(self):
        return {n: json.loads(d) for n, d in self._read("SELECT node, data FROM workers WHERE expires > ?", (_now(),))}


# -------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _open(kind: str, where: str, namespace: str) -> WorkerState:
    if kind == "redis":
        return RedisState(where, namespace)
    return SqliteState(Path(where))


def open_state(settings: Settings | None = None) -> WorkerState:
    """The state store that goes with the configured broker."""
    from fourfold.worker.app import uses_redis

    settings = settings or get_settings()
    if uses_redis(settings):
        return _open("redis", settings.broker_url, settings.namespace)  # type: ignore[arg-type]
    return _open("sqlite", str(settings.state_dir / "tasks.sqlite"), settings.namespace)
