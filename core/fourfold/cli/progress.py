"""A :class:`fourfold.Progress` drawn as rich progress bars on stderr."""

from __future__ import annotations

import time
from typing import Any

from rich.markup import escape

from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from fourfold.cli.common import err_console

__all__ = ["RichProgress"]


class RichProgress:
    """One bar per stage (``scan``, ``embed``, ``write``, …); a stage without a known
    total shows a spinner. Use as a context manager around the work. When stderr is not
    a terminal (a log, ``make``), each stage is one line instead, with the time it took.

    :param label: what the work is for (a domain's name), shown before each stage.
    """

    def __init__(self, *, transient: bool = False, label: str | None = None):
        self._label = f"{label}: " if label else ""
        self._plain = not err_console.is_terminal
        self._stage_started: tuple[str, float] | None = None
        self._bars = Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=transient,
            disable=not err_console.is_terminal,
        )
        self._task: Any = None

    def _finish_current(self) -> None:
        if self._stage_started is not None:
            stage, started = self._stage_started
            self._stage_started = None
            took = time.perf_counter() - started
            if took >= 1:
                err_console.print(f"{escape(self._label)}{escape(stage)} done ({took:.1f}s)", highlight=False)
        if self._task is None:
            return
        task = next(t for t in self._bars.tasks if t.id == self._task)
        done = task.total if task.total is not None else max(int(task.completed), 1)
        self._bars.update(self._task, total=done, completed=done)
        self._bars.stop_task(self._task)

    def start(self, stage: str, total: int | None = None) -> None:
        self._finish_current()
        if self._plain:
            err_console.print(f"{escape(self._label)}{escape(stage)}…" + (f" ({total})" if total else ""), highlight=False)
            self._stage_started = (stage, time.perf_counter())
        self._task = self._bars.add_task(self._label + stage, total=total)

    def advance(self, n: int = 1) -> None:
        if self._task is not None:
            self._bars.advance(self._task, n)

    def __enter__(self) -> "RichProgress":
        self._bars.start()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self._finish_current()
        self._bars.stop()
