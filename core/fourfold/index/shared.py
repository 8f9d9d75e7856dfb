"""A domain's index records kept where every host sees them (server mode).

When the retriever's store is shared by several hosts (a Qdrant server), the records
that say what the index is — the published pointer, each version's catalog, report and
quality, the ``PUBLISHED`` and ``HELD`` marks, the history and the version numbers —
live in the store's :class:`~fourfold.components.IndexRecords` instead of the state dir,
and the writer lock is a Redis lease when the broker is Redis. The state dir keeps only
what may be lost at any time: the vector cache and empty version folders used as keys.

Records (keys of :class:`IndexRecords`)::

    current                  {"version": "v000004", "fence": 17}  the published pointer
    alloc/v000004            a version number, taken atomically by one writer
    catalog/v000004          the catalog (compressed); present = the version is complete
    report/v000004           what the refresh that built it did
    quality/v000004          what the quality gate measured
    held/v000004             the gate held it
    published/v000004        it served
    fence                    the highest worker-lease token that published
    history/<time>-<id>      one per publish, rollback, refusal, failure or no-change check

Publishing writes ``current`` with the writer lock's fencing token, atomically and only
when no higher token was seen there: a writer whose lease was taken over cannot publish,
since the new holder raised ``current``'s fence when it took the lock.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import time
import uuid
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from fourfold.errors import IndexVersionError
from fourfold.files import remove_tree
from fourfold.index.layout import HISTORY_KEPT, VERSION_PATTERN, Catalog, IndexLayout, version_name, version_number

if TYPE_CHECKING:
    from fourfold.components import IndexRecords

__all__ = ["SharedIndexLayout", "POINTER_TTL"]

log = logging.getLogger("fourfold.index")

POINTER_TTL = 0.5
"""Seconds a reader trusts the published pointer it read; a publish reaches every
serving host within this (plus one search)."""

_CURRENT = "current"


class SharedIndexLayout(IndexLayout):
    """:class:`IndexLayout` whose records live in shared :class:`IndexRecords`.

    :param root: the local cache folder (version folders are only keys there).
    :param records: the store's shared records.
    :param lock_factory: makes the writer lock (a Redis lease, or a local ``flock``
        when there is no Redis: one host).
    """

    shared = True

    def __init__(self, root: Path, domain: str, records: "IndexRecords", lock_factory: Callable[..., Any]):
        super().__init__(root, domain)
        self.records = records
        self._lock_factory = lock_factory
        self._held_lock: Any = None
        self._pointer_cache: tuple[float, tuple[Any, ...] | None] | None = None

    def describe(self) -> str:
        return self.records.location or "shared records"

    # -- versions ---------------------------------------------------------------------

    def _names(self, prefix: str) -> list[str]:
        names = {k[len(prefix) :] for k in self.records.keys(prefix)}
        return sorted((n for n in names if VERSION_PATTERN.match(n)), key=version_number)

    def version_names(self) -> list[str]:
        """Versions complete or being built (numbers of discarded builds stay taken, but
        are not listed)."""
        building = {k[len("alloc/") :] for k, v in self.records.items("alloc/") if not v.get("discarded")}
        names = {n for n in building if VERSION_PATTERN.match(n)} | set(self._names("catalog/"))
        return sorted(names, key=version_number)

    def is_complete(self, name: str) -> bool:
        return name in self._names("catalog/")

    def complete_versions(self) -> list[str]:
        return self._names("catalog/")

    def next_version_name(self) -> str:
        """Take the next number no writer took before, atomically (a record per number)."""
        used = [version_number(n) for n in set(self._names("alloc/")) | set(self._names("catalog/"))]
        for event in self.history():
            v = event.get("version")
            if isinstance(v, str) and VERSION_PATTERN.match(v):
                used.append(version_number(v))
        number = max(used, default=0) + 1
        me = {"owner": uuid.uuid4().hex, "pid": os.getpid(), "time": _now()}
        for _ in range(1000):
            name = version_name(number)
            if self.records.put_new(f"alloc/{name}", me):
                return name
            number += 1
        raise IndexVersionError(f"domain '{self.domain}': could not take a version number in {self.describe()}")

    def read_catalog(self, name: str) -> Catalog:
        record = self.records.get(f"catalog/{name}")
        if record is None:
            raise FileNotFoundError(f"catalog of {name} in {self.describe()}")
        return Catalog.from_json(_unpack(record))

    def write_catalog(self, catalog: Catalog) -> None:
        self.version_dir(catalog.version).mkdir(parents=True, exist_ok=True)
        self.records.put(f"catalog/{catalog.version}", _pack(catalog.to_json()))

    def read_report(self, name: str) -> dict[str, Any] | None:
        return self.records.get(f"report/{name}")

    def write_report(self, name: str, report: dict[str, Any]) -> None:
        self.records.put(f"report/{name}", report)

    def read_version_record(self, name: str, kind: str) -> dict[str, Any] | None:
        return self.records.get(f"{kind}/{name}")

    def write_version_record(self, name: str, kind: str, value: dict[str, Any]) -> None:
        self.records.put(f"{kind}/{name}", value)

    # -- the published pointer ------------------------------------------------------------

    def read_current(self) -> str | None:
        record = self.records.get(_CURRENT) or {}
        name = record.get("version")
        return name if isinstance(name, str) and VERSION_PATTERN.match(name) else None

    def write_current(self, name: str) -> None:
        """Publish ``name``: only a writer that holds the lock, with the highest token."""
        lock = self._held_lock
        if lock is None:
            raise IndexVersionError(f"domain '{self.domain}': publishing {name} needs the writer lock")
        if lock.lost:
            raise IndexVersionError(
                f"domain '{self.domain}': not publishing {name}: this writer lost its lock (token {lock.token}) "
                "while it worked; another writer may hold it now"
            )
        if not self.records.put_fenced(_CURRENT, {"version": name, "time": _now()}, lock.token):
            raise IndexVersionError(
                f"domain '{self.domain}': not publishing {name}: a writer with a newer fencing token took over the "
                f"index (this one holds token {lock.token}; {self.describe()})"
            )
        self._pointer_cache = None

    def pointer_key(self) -> tuple[Any, ...] | None:
        now = time.monotonic()
        cached = self._pointer_cache
        if cached is not None and now - cached[0] < POINTER_TTL:
            return cached[1]
        record = self.records.get(_CURRENT)
        key = None if not record or not record.get("version") else (record.get("version"), record.get("fence"), record.get("time"))
        self._pointer_cache = (now, key)
        return key

    def read_fence(self) -> int:
        record = self.records.get("fence") or {}
        try:
            return int(record.get("n") or 0)
        except (TypeError, ValueError):
            return 0

    def write_fence(self, token: int) -> None:
        self.records.put("fence", {"n": int(token)})

    # -- history ------------------------------------------------------------------------

    def append_history(self, event: str, **fields: Any) -> dict[str, Any]:
        record = {"time": _now(), "event": event, **fields}
        record = json.loads(json.dumps(record, default=str))
        key = f"history/{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        self.records.put(key, record)
        if random.random() < 0.02:  # trimming lists every line: now and then is enough
            keys = self.records.keys("history/")
            if len(keys) > 2 * HISTORY_KEPT:
                self.records.delete(keys[: len(keys) - HISTORY_KEPT])
        return record

    def history(self) -> list[dict[str, Any]]:
        return [value for _, value in self.records.items("history/")]

    def mark_published(self, name: str) -> None:
        self.records.put(f"published/{name}", {"time": _now()})

    def was_published(self, name: str) -> bool:
        return self.records.get(f"published/{name}") is not None  # one point, not a listing

    # -- writer lock, readers and deletion --------------------------------------------

    def writer_lock(self, *, wait: bool | float = False) -> Any:
        layout = self

        class _Bound:
            def __init__(self) -> None:
                self.lock = layout._lock_factory(wait=wait)

            def acquire(self) -> None:
                self.lock.acquire()
                try:
                    seen = layout.records.raise_fence(_CURRENT, self.lock.token)
                    if seen > self.lock.token:
                        raise IndexVersionError(
                            f"domain '{layout.domain}': a writer with a newer fencing token ({seen}) than this one "
                            f"({self.lock.token}) holds the index; try again"
                        )
                except BaseException:
                    self.lock.release()
                    raise
                layout._held_lock = self.lock

            def release(self) -> None:
                layout._held_lock = None
                self.lock.release()

            def holder(self) -> dict[str, Any] | None:
                return self.lock.holder()

            def __enter__(self) -> "_Bound":
                self.acquire()
                return self

            def __exit__(self, *exc: object) -> None:
                self.release()

        return _Bound()

    def writer_holder(self) -> dict[str, Any] | None:
        return self._lock_factory(wait=False).current_holder()

    def reader_lock(self, name: str) -> Callable[[], None]:
        """Readers on other hosts cannot be seen from here: a version is kept until
        ``keep_versions`` newer ones were published (readers follow within a second)."""
        if not self.is_complete(name):
            raise FileNotFoundError(f"{name} in {self.describe()}")
        return lambda: None

    def delete_version(self, name: str, *, only_if_unread: bool, before_remove: Callable[[], None] | None = None) -> bool:
        if before_remove is not None:
            before_remove()
        # The number's "alloc/" record stays, marked: it is never handed out again.
        self.records.delete([f"{kind}/{name}" for kind in ("catalog", "report", "quality", "held", "published", "answerability")])
        self.records.put(f"alloc/{name}", {"discarded": True, "time": _now()})
        remove_tree(self.version_dir(name))
        return True


def _pack(value: dict[str, Any]) -> dict[str, Any]:
    raw = json.dumps(value, separators=(",", ":")).encode("utf-8")
    return {"zlib": base64.b64encode(zlib.compress(raw, 6)).decode("ascii")}


def _unpack(record: dict[str, Any]) -> dict[str, Any]:
    if "zlib" in record:
        return json.loads(zlib.decompress(base64.b64decode(record["zlib"])).decode("utf-8"))
    return record


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
