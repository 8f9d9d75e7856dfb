"""A number with its derivation: every figure the advisor shows says how it was made.

A :class:`Figure` holds a value, its unit, the formula that produced it and the inputs
that went into the formula (each with where it came from: a measurement, the manifest,
a flag, an assumption). ``explain()`` writes that as one line a person can check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Figure", "Input", "human_number", "human_seconds", "human_money", "human_flops", "format_value"]


@dataclass
class Input:
    """One input of a formula.

    :ivar value: the number (or text) used.
    :ivar unit: what it counts (``tokens``, ``s``, ``FLOP/s``…).
    :ivar source: where it came from: ``measured``, ``calibration``, ``manifest``,
        ``flag``, ``assumption``, ``derived`` or a longer phrase.
    """

    value: Any
    unit: str = ""
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "unit": self.unit, "source": self.source}

    def text(self) -> str:
        shown = format_value(self.value, self.unit)
        return f"{shown} ({self.source})" if self.source else shown


@dataclass
class Figure:
    """An estimated or measured quantity and how it was derived.

    :ivar value: the number (None when it cannot be estimated; ``note`` says why).
    :ivar unit: ``s``, ``FLOPs``, ``$``, ``tokens``…
    :ivar formula: the formula in words and symbols, e.g. ``6 · N · D``.
    :ivar inputs: the symbols of the formula with their values and sources.
    :ivar note: anything a reader must know (an assumption, a limit).
    """

    value: float | None
    unit: str
    formula: str = ""
    inputs: dict[str, Input] = field(default_factory=dict)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": None if self.value is None else _json_number(self.value),
            "unit": self.unit,
            "formula": self.formula,
            "inputs": {k: v.to_dict() for k, v in self.inputs.items()},
            "note": self.note,
            "text": self.text(),
            "explain": self.explain(),
        }

    def text(self) -> str:
        """The value for people (``3.2 min``, ``1.9e18 FLOPs``, ``$4.10``)."""
        if self.value is None:
            return "n/a"
        return format_value(self.value, self.unit)

    def explain(self) -> str:
        """``formula = value, with A = … (source), B = …``; the note after a semicolon."""
        parts = []
        if self.formula:
            parts.append(f"{self.formula} = {self.text()}")
        else:
            parts.append(self.text())
        if self.inputs:
            parts.append("with " + ", ".join(f"{k} = {v.text()}" for k, v in self.inputs.items()))
        line = "; ".join(parts[:1]) + (" " + parts[1] if len(parts) > 1 else "")
        return f"{line}; {self.note}" if self.note else line


def _json_number(value: float) -> float | int:
    if isinstance(value, int):
        return value
    if math.isnan(value) or math.isinf(value):
        return None  # type: ignore[return-value]
    return float(f"{value:.6g}")


def human_number(value: float) -> str:
    """``1234`` → ``1,234``; ``2.5e6`` → ``2.5 M``; ``3.1e10`` → ``31 G`` (3 significant digits)."""
    if value is None:
        return "n/a"
    if isinstance(value, int) and abs(value) < 100_000:
        return f"{value:,}"
    v = float(value)
    if v == 0:
        return "0"
    for limit, suffix in ((1e15, " P"), (1e12, " T"), (1e9, " G"), (1e6, " M"), (1e5, " k")):
        if abs(v) >= limit:
            return f"{v / (limit if suffix != ' k' else 1e3):.3g}{suffix}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:.3g}"
    return f"{v:.3g}"


def human_flops(value: float) -> str:
    return f"{value:.2e}" if value >= 1e6 else f"{value:.3g}"


def human_seconds(seconds: float) -> str:
    """Seconds as the largest sensible unit: ``850 ms``, ``42 s``, ``3.5 min``, ``2.1 h``,
    ``4.3 days``, ``12 years``."""
    s = float(seconds)
    if s < 1:
        return f"{s * 1000:.3g} ms"
    if s < 120:
        return f"{s:.3g} s"
    if s < 7200:
        return f"{s / 60:.3g} min"
    if s < 3 * 86400:
        return f"{s / 3600:.3g} h"
    if s < 2 * 365 * 86400:
        return f"{s / 86400:.3g} days"
    return f"{s / (365.25 * 86400):.3g} years"


def human_money(dollars: float) -> str:
    d = float(dollars)
    if d == 0:
        return "$0"
    if d < 0.01:
        return f"${d:.2g}"
    if d < 1000:
        return f"${d:,.2f}"
    return f"${d:,.0f}"


def format_value(value: Any, unit: str) -> str:
    """A value with its unit, in the form people read fastest."""
    if value is None:
        return "n/a"
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return f"{value} {unit}".strip()
    if unit == "s":
        return human_seconds(value)
    if unit == "$":
        return human_money(value)
    if unit in ("FLOPs", "FLOP", "FLOP/s"):
        return f"{human_flops(value)} {unit}"
    if unit in ("%",):
        return f"{value:.3g}%"
    if unit in ("", "x", "×"):
        return f"{value:.3g}{unit}"
    return f"{human_number(value)} {unit}".strip()
