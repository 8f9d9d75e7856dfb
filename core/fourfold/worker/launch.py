"""Command lines that start a worker or beat as a child process (``fourfold up`` uses
these), so every launcher starts them the same way."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

__all__ = ["worker_argv", "beat_argv"]


def _fourfold() -> list[str]:
    return [sys.executable, "-m", "fourfold"]


def worker_argv(
    manifests: Sequence[str | Path] = (),
    *,
    concurrency: int | None = None,
    pool: str = "prefork",
    queues: Sequence[str] = (),
    loglevel: str = "info",
) -> list[str]:
    """``python -m fourfold worker MANIFEST… [--concurrency N] [--pool P]``."""
    argv = [*_fourfold(), "worker", *(str(Path(m).resolve()) for m in manifests), "--pool", pool, "--loglevel", loglevel]
    if concurrency:
        argv += ["--concurrency", str(concurrency)]
    if queues:
        argv += ["--queues", ",".join(queues)]
    return argv


def beat_argv(manifests: Sequence[str | Path] = (), *, loglevel: str = "info") -> list[str]:
    """``python -m fourfold beat MANIFEST…``."""
    return [*_fourfold(), "beat", *(str(Path(m).resolve()) for m in manifests), "--loglevel", loglevel]
