"""One writer per domain: an advisory ``flock`` on the index folder's lock file.

The kernel drops the lock when its holder dies, even by SIGKILL, so a crashed refresh
never blocks the next one. The holder writes who it is into the file, so a second
writer can say whom it waits for.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from fourfold.errors import IndexVersionError
from fourfold.index.files import describe_os_error

__all__ = ["WriterLock"]



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
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
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

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _busy_message(self) -> str:
        who = self.holder()
        if who:
            detail = f"pid {who.get('pid')} on {who.get('host')} since {who.get('since')} ({who.get('command') or 'unknown command'})"
        else:
            detail = "another process"
        return (
            f"the index of domain '{self.domain}' is being written by {detail}; "
            f"wait for it to finish (lock file {self.path})"
        )

    def __enter__(self) -> "WriterLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
