"""File operations the index lifecycle relies on to survive a crash at any moment.

Atomic writes are :mod:`fourfold.files`'s, shared with the rest of fourfold; they are
re-exported here for the modules that import them from this one."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Iterable

from fourfold.files import fsync_dir, write_atomic, write_json_atomic

__all__ = ["write_atomic", "write_json_atomic", "append_line", "copy_tree", "remove_tree", "fsync_dir", "describe_os_error"]


def describe_os_error(exc: OSError) -> str:
    """``[Errno 30 EROFS] Read-only file system``: the number, its name and its meaning."""
    if exc.errno is None:
        return str(exc)
    name = errno.errorcode.get(exc.errno, "?")
    return f"[Errno {exc.errno} {name}] {exc.strerror or os.strerror(exc.errno)}"


def append_line(path: Path, line: str) -> None:
    """Append one line durably. A crash can at worst leave a torn last line, which
    readers of such logs skip."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
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
    sparse. ``skip`` names top-level entries of ``src`` to leave out."""
    src, dst = Path(src), Path(dst)
    skipped = set(skip)
    dst.mkdir(parents=True)
    for root, dirs, files in os.walk(src):
        rel = Path(root).relative_to(src)
        if rel == Path("."):
            dirs[:] = [d for d in dirs if d not in skipped]
            files = [f for f in files if f not in skipped]
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
