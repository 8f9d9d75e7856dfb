"""Writing a file so that no reader and no crash ever sees half of it.

Every file fourfold replaces while others may read it — an index's ``CURRENT`` and
catalogs, reports, the domain registry, an artifact's metadata, the answerability
calibration, a training checkpoint — is written the same way: to a temporary file
``.NAME.*.tmp`` beside it, flushed and fsynced, renamed over ``NAME``, then the folder
is fsynced so the rename itself survives a power cut. On any error the temporary file
is removed and ``NAME`` keeps its old content.

One permission policy: such files are read by the API, the worker and people, who may
run as different users, so they are ``0644`` whatever the umask. A secret says so with
``mode=0o600`` (the generated API token).

This module sits below everything else in fourfold (it imports only the standard
library), so any module may use it; plugins get :func:`write_atomic` and
:func:`write_json_atomic` as ``fourfold.write_atomic`` and ``fourfold.write_json_atomic``.
"""

from __future__ import annotations

import errno
import fnmatch
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator

__all__ = [
    "READABLE_MODE",
    "append_line",
    "atomic_file",
    "copy_tree",
    "describe_os_error",
    "file_system_of",
    "fsync_dir",
    "network_disk_problem",
    "open_shared",
    "remove_tree",
    "write_atomic",
    "write_json_atomic",
]

READABLE_MODE = 0o644
"""The mode of every file fourfold writes, unless the caller asks for less (a secret)."""


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in the folder ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_file(path: Path, *, mode: int = READABLE_MODE, exclusive: bool = False) -> Iterator[BinaryIO]:
    """A binary file to write that becomes ``path`` when the ``with`` block ends without
    an error; for content streamed out by a library (``np.save``, ``torch.save``).

    :param path: the file to write; its folder must exist.
    :param mode: the file's permission bits, exactly (the umask does not apply).
    :param exclusive: create ``path`` only if it does not exist yet, raising
        :class:`FileExistsError` otherwise, so that of several processes writing at
        once the first one wins and all agree on its content.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            os.link(tmp, path)  # unlike a rename, fails when path exists
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def write_atomic(path: Path, data: bytes | str, *, mode: int = READABLE_MODE, exclusive: bool = False) -> None:
    """Replace ``path`` with ``data`` (text is written as UTF-8) so that readers see the
    old or the new content, never a mix, even if the process dies half-way.

    :param mode: the file's permission bits: ``0o644`` by default, ``0o600`` for a secret.
    :param exclusive: fail with :class:`FileExistsError` instead of replacing an
        existing ``path``.

    .. versionadded:: 1.3
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    with atomic_file(path, mode=mode, exclusive=exclusive) as handle:
        handle.write(raw)


def write_json_atomic(path: Path, value: Any, *, mode: int = READABLE_MODE) -> None:
    """:func:`write_atomic` of ``value`` as JSON (keys sorted, one-space indent, values
    JSON does not know written as their ``str``).

    .. versionadded:: 1.3
    """
    write_atomic(path, json.dumps(value, indent=1, sort_keys=True, default=str) + "\n", mode=mode)


# -- appending, copying and removing ------------------------------------------------------


def describe_os_error(exc: OSError) -> str:
    """``[Errno 30 EROFS] Read-only file system``: the number, its name and its meaning."""
    if exc.errno is None:
        return str(exc)
    name = errno.errorcode.get(exc.errno, "?")
    return f"[Errno {exc.errno} {name}] {exc.strerror or os.strerror(exc.errno)}"


def open_shared(path: Path, flags: int) -> int:
    """``os.open(path, flags)``, creating ``path`` if missing as ``0644`` whatever the
    umask: for files that other processes, maybe other users, open too (a history
    log, a lock file that readers and writers ``flock``).

    :returns: the file descriptor.
    """
    for _ in range(3):
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, READABLE_MODE)
        except FileExistsError:
            try:
                return os.open(path, flags & ~os.O_CREAT)
            except FileNotFoundError:
                continue  # removed in between: create it
        os.fchmod(fd, READABLE_MODE)
        return fd
    return os.open(path, flags | os.O_CREAT, READABLE_MODE)


def append_line(path: Path, line: str) -> None:
    """Append one line durably. A crash can at worst leave a torn last line, which
    readers of such logs skip."""
    fd = open_shared(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, (line.rstrip("\n") + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_file_sparse(src: Path, dst: Path) -> None:
    # Vector engines preallocate large files that are mostly holes (qdrant-edge: ~100 MB
    # apparent, ~1 MB on disk for a small shard). A plain copy writes every zero;
    # copying only the data extents keeps the copy as small and as fast as the data.
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        size = os.fstat(fi.fileno()).st_size
        offset = 0
        while offset < size:
            try:
                data = os.lseek(fi.fileno(), offset, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # only a hole is left
                    break
                raise
            hole = os.lseek(fi.fileno(), data, os.SEEK_HOLE)
            position, remaining = data, hole - data
            while remaining > 0:
                copied = os.copy_file_range(fi.fileno(), fo.fileno(), remaining, position, position)
                if copied == 0:
                    break
                position += copied
                remaining -= copied
            offset = hole
        fo.truncate(size)
    shutil.copystat(src, dst)


def copy_tree(src: Path, dst: Path, *, skip: Iterable[str] = ()) -> None:
    """Copy the folder ``src`` to ``dst`` (which must not exist), keeping sparse files
    sparse. ``skip`` names top-level entries of ``src`` to leave out, as names or shell
    patterns (``.atomicwrite*``)."""
    src, dst = Path(src), Path(dst)
    skipped = tuple(skip)
    dst.mkdir(parents=True)
    for root, dirs, files in os.walk(src):
        rel = Path(root).relative_to(src)
        if rel == Path("."):
            dirs[:] = [d for d in dirs if not any(fnmatch.fnmatchcase(d, pattern) for pattern in skipped)]
            files = [f for f in files if not any(fnmatch.fnmatchcase(f, pattern) for pattern in skipped)]
        for d in dirs:
            (dst / rel / d).mkdir(exist_ok=True)
        for f in files:
            source = Path(root) / f
            if source.is_symlink() or not source.is_file():
                continue
            try:
                _copy_file_sparse(source, dst / rel / f)
            except OSError as exc:
                if exc.errno in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                    shutil.copy2(source, dst / rel / f)
                else:
                    raise
    fsync_dir(dst.parent)


def remove_tree(path: Path) -> None:
    """Delete a folder; a folder that is already gone is fine."""
    shutil.rmtree(path, ignore_errors=False, onerror=_ignore_missing)


def _ignore_missing(func, path, exc_info) -> None:  # noqa: ANN001 - shutil's callback
    if not isinstance(exc_info[1], FileNotFoundError):
        raise exc_info[1]


NETWORK_FILE_SYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "lustre", "afs", "9p", "fuse.sshfs", "fuse.s3fs",
     "fuse.gcsfuse", "fuse.glusterfs", "fuse.cephfs", "beegfs", "gpfs"}
)


def file_system_of(path: Path, mounts: str | None = None) -> tuple[str, str] | None:
    """The file system type and mount point ``path`` lives on (from ``/proc/self/mounts``,
    or ``mounts`` in that format); None where that cannot be told."""
    if mounts is None:
        try:
            mounts = Path("/proc/self/mounts").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    target = str(Path(path).resolve())
    best: tuple[str, str] | None = None
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best[1])):
            best = (parts[2], point)
    return best


def network_disk_problem(path: Path, what: str, mounts: str | None = None) -> str | None:
    """Why ``path`` cannot hold ``what`` (SQLite with WAL: its shared-memory file is
    mapped, which network file systems do not support and can end in SIGBUS), or None
    when it is on a local disk."""
    found = file_system_of(path, mounts)
    if found is None or found[0] not in NETWORK_FILE_SYSTEMS:
        return None
    fs, point = found
    return (
        f"{path}: {what} needs a local disk, but {point} is a network file system ({fs}); SQLite's shared "
        "memory does not work there and can crash the process. Put FOURFOLD_HOME on a local disk, or run "
        "with FOURFOLD_BROKER_URL (Redis) and FOURFOLD_QDRANT_URL so that hosts share nothing on disk"
    )
