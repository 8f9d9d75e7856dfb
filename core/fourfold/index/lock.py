"""One writer per domain.

On one host: an advisory ``flock`` on the index folder's lock file. The kernel drops the
lock when its holder dies, even by SIGKILL, so a crashed refresh never blocks the next
one. The holder writes who it is into the file, so a second writer can say whom it
waits for.

When the index records are shared by several hosts (:mod:`fourfold.index.shared`) and
the broker is Redis: a Redis lease (``<namespace>:index:<domain>:writer``) renewed while
the writer works and expiring ``lease_seconds`` after its holder stops, with a fencing
token from ``<namespace>:index:<domain>:token`` that rises with every holder. Publishing
checks the token atomically where the records live.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from fourfold.errors import IndexVersionError
from fourfold.files import describe_os_error, open_shared

__all__ = ["WriterLock", "RedisWriterLock", "writer_lock_factory"]

log = logging.getLogger("fourfold.index")



def busy_message(domain: str, who: dict[str, Any] | None, where: str) -> str:
    """Why a writer cannot start: who holds the lock (as it wrote of itself), and where."""
    detail = (
        f"pid {who.get('pid')} on {who.get('host')} since {who.get('since')} ({who.get('command') or 'unknown command'})"
        if who
        else "another process"
    )
    return f"the index of domain '{domain}' is being written by {detail}; wait for it to finish ({where})"


class WriterLock:
    """The writer lock of one domain's index.

    :param path: the lock file (created when missing).
    :param domain: the domain's name, for messages.
    :param wait: False: fail at once when another writer holds it; True: wait as long as
        it takes; a number: wait at most that many seconds.
    """

    def __init__(self, path: Path, domain: str, *, wait: bool | float = False):
        self.path = Path(path)
        self.domain = domain
        self.wait = wait
        self._fd: int | None = None
        self.token = 0
        self.lost = False  # the kernel holds a flock as long as the process lives

    def holder(self) -> dict[str, Any] | None:
        """Who holds (or last held) the lock, as written by that process."""
        try:
            text = self.path.read_text(encoding="utf-8").strip()
            return json.loads(text) if text else None
        except (OSError, ValueError):
            return None

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = open_shared(self.path, os.O_RDWR)
        except OSError as exc:
            raise IndexVersionError(
                f"{exc.filename or self.path}: cannot open the writer lock of domain '{self.domain}': "
                f"{describe_os_error(exc)}"
            ) from None
        deadline = None if self.wait is True else time.monotonic() + float(self.wait or 0)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise IndexVersionError(self._busy_message()) from None
                    time.sleep(0.05)
        except BaseException:
            os.close(fd)
            raise
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv[:4])),
        }
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode("utf-8"), 0)
        except OSError as exc:
            os.close(fd)
            raise IndexVersionError(
                f"{self.path}: cannot write the writer lock of domain '{self.domain}': {describe_os_error(exc)}"
            ) from None
        self._fd = fd
        self.token = time.time_ns() // 1000  # rises with every later holder on this host

    def current_holder(self) -> dict[str, Any] | None:
        """Who holds the lock now (None: nobody)."""
        if not self.path.exists():
            return None
        fd = os.open(self.path, os.O_RDONLY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return self.holder() or {"pid": None}
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _busy_message(self) -> str:
        return busy_message(self.domain, self.holder(), f"lock file {self.path}")

    def __enter__(self) -> "WriterLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('pexpire', KEYS[1], ARGV[2]) return 1 end
return 0
"""
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
_NEXT_TOKEN = """
local n = redis.call('incr', KEYS[1])
local floor = tonumber(ARGV[1])
if n <= floor then n = floor + 1 redis.call('set', KEYS[1], n) end
return n
"""
_SET_TOKEN = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('set', KEYS[1], ARGV[2], 'KEEPTTL')
return 1
"""


class RedisWriterLock:
    """The writer lease of one domain's index in Redis, shared by every host.

    :param ttl: seconds the lease outlives its holder's last renewal; it is renewed
        every third of that while held.
    """

    def __init__(
        self, url: str, namespace: str, domain: str, *, wait: bool | float = False, ttl: float = 30.0,
        floor: "Callable[[], int] | None" = None,
    ):
        import redis

        self.floor = floor  # the highest token the records saw: a Redis that lost its data restarts above it
        self.url = url
        self.domain = domain
        self.wait = wait
        self.ttl = float(ttl)
        self.key = f"{namespace}:index:{domain}:writer"
        self.token_key = f"{namespace}:index:{domain}:token"
        self.redis = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5, decode_responses=True)
        self.token = 0
        self.lost = False
        self._value: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _describe(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv[:4])),
            "id": os.urandom(8).hex(),
        }

    def acquire(self) -> None:
        import redis

        me = self._describe()
        value = json.dumps(me)
        deadline = None if self.wait is True else time.monotonic() + float(self.wait or 0)
        try:
            while not self.redis.set(self.key, value, nx=True, px=int(self.ttl * 1000)):
                if deadline is not None and time.monotonic() >= deadline:
                    raise IndexVersionError(self._busy_message())
                time.sleep(0.1)
            # The token is taken once the lease is ours, so it rises with every holder.
            floor = int(self.floor()) if self.floor is not None else 0
            self.token = int(self.redis.eval(_NEXT_TOKEN, 1, self.token_key, floor))
            me["token"] = self.token
            new_value = json.dumps(me)
            self.redis.eval(_SET_TOKEN, 1, self.key, value, new_value)
        except redis.exceptions.RedisError as exc:
            raise IndexVersionError(
                f"domain '{self.domain}': cannot take the writer lease in Redis ({self.url}): {type(exc).__name__}: {exc}"
            ) from None
        self._value = new_value
        self.lost = False
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew, name=f"fourfold-writer-lease-{self.domain}", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        import redis

        failures_since: float | None = None
        while not self._stop.wait(self.ttl / 3):
            try:
                if not self.redis.eval(_RENEW, 1, self.key, self._value, int(self.ttl * 1000)):
                    # Expired (a long pause) or gone with a restarted Redis: if nobody took
                    # it meanwhile it is ours again — a writer that took it and published
                    # since raised the fence, which refuses this one's publish anyway.
                    if self.redis.set(self.key, self._value, nx=True, px=int(self.ttl * 1000)):
                        log.warning("the writer lease of domain %s had expired; nobody else took it, so it holds it again", self.domain)
                    else:
                        self.lost = True
                        log.error("the writer lease of domain %s was taken over (this writer's token %s)", self.domain, self.token)
                        return
                failures_since = None
            except redis.exceptions.RedisError:
                # Redis away: the lease may expire meanwhile; past its ttl, count it lost.
                failures_since = failures_since or time.monotonic()

    def release(self) -> None:
        import redis

        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._value is not None:
            try:
                self.redis.eval(_RELEASE, 1, self.key, self._value)
            except redis.exceptions.RedisError:
                log.warning("could not release the writer lease of domain %s; it expires in %.0f s", self.domain, self.ttl)
            self._value = None

    def holder(self) -> dict[str, Any] | None:
        try:
            text = self.redis.get(self.key)
            return json.loads(text) if text else None
        except Exception:  # noqa: BLE001 - a status line, not an operation
            return None

    current_holder = holder

    def _busy_message(self) -> str:
        return busy_message(self.domain, self.holder(), f"Redis lease {self.key}")

    def __enter__(self) -> "RedisWriterLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def writer_lock_factory(domain: Any, lock_file: Path, floor: "Callable[[], int] | None" = None):
    """How the writers of ``domain``'s shared index lock it: a Redis lease when the
    broker is Redis (every host sees it), else a ``flock`` (one host)."""
    settings = domain.settings
    url = settings.broker_url or ""
    if url.startswith(("redis://", "rediss://", "unix://")):
        def make(*, wait: bool | float = False) -> RedisWriterLock:
            return RedisWriterLock(url, settings.namespace, domain.name, wait=wait, ttl=settings.lease_seconds, floor=floor)
    else:
        def make(*, wait: bool | float = False) -> WriterLock:  # type: ignore[misc]
            return WriterLock(lock_file, domain.name, wait=wait)
    return make
