"""Cost lines: one piece of work (a build, a day of refreshes, 1,000 answers) as FLOPs,
wall time on this machine, and time and money on the reference accelerator."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fourfold.advisor.accelerator import Accelerator
from fourfold.advisor.figures import Figure, Input

__all__ = ["CostLine", "MethodCosts", "PHASES", "ONE_TIME", "PER_DAY", "PER_1000", "cost_line", "accelerator_time", "money", "add_figures"]

ONE_TIME = "one-time"
PER_DAY = "per day"
PER_1000 = "per 1,000 questions"
PHASES = (ONE_TIME, PER_DAY, PER_1000)


@dataclass
class CostLine:
    """One piece of work and what it costs.

    :ivar key: stable identifier (``index-build``, ``training``, ``fine_tuning[0]``,
        ``refresh``, ``serving``…).
    :ivar phase: ``one-time``, ``per day`` or ``per 1,000 questions``.
    :ivar flops: model FLOPs of the work.
    :ivar here: wall time on this machine (from the calibration and measurements).
    :ivar accelerator: time on the reference accelerator.
    :ivar cost: dollars on the reference accelerator.
    :ivar parts: the pieces ``here`` adds up, each with its own derivation.
    """

    key: str
    phase: str
    what: str
    flops: Figure
    here: Figure
    accelerator: Figure
    cost: Figure
    parts: dict[str, Figure] = field(default_factory=dict)
    facts: dict[str, Figure] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "phase": self.phase,
            "what": self.what,
            "flops": self.flops.to_dict(),
            "here": self.here.to_dict(),
            "accelerator": self.accelerator.to_dict(),
            "cost": self.cost.to_dict(),
            "parts": {k: v.to_dict() for k, v in self.parts.items()},
            "facts": {k: v.to_dict() for k, v in self.facts.items()},
        }


@dataclass
class MethodCosts:
    """The cost lines of one method (or of the manifest's combination).

    :ivar key: ``retrieval``, ``prompting``, ``fine-tuning``, ``training``, ``combination``.
    :ivar option: the variant costed (``hybrid over minilm``, ``lora rank 8 on smollm2``…).
    :ivar in_manifest: whether the manifest uses this option.
    """

    key: str
    title: str
    option: str
    in_manifest: bool
    lines: list[CostLine] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def line(self, key: str) -> CostLine | None:
        return next((line for line in self.lines if line.key == key), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "option": self.option,
            "in_manifest": self.in_manifest,
            "lines": [line.to_dict() for line in self.lines],
            "notes": list(self.notes),
        }


def accelerator_time(flops: float, acc: Accelerator, *, bound: Figure | None = None) -> Figure:
    """``FLOPs / (peak × MFU)``, or ``bound`` when that is larger (e.g. memory-bound decoding)."""
    compute = flops / acc.effective_flops
    fig = Figure(
        compute, "s", "FLOPs / (peak × MFU)",
        {"FLOPs": Input(flops, "FLOPs", "derived"), "peak": Input(acc.peak_flops, "FLOP/s", acc.source), "MFU": Input(acc.mfu, "", "assumption")},
    )
    if bound is not None and bound.value is not None and bound.value > compute:
        return bound
    return fig


def money(seconds: Figure, acc: Accelerator) -> Figure:
    value = None if seconds.value is None else seconds.value / 3600 * acc.price_per_hour
    return Figure(value, "$", "accelerator hours × price per hour",
                  {"hours": Input(None if seconds.value is None else round(seconds.value / 3600, 6), "h", "above"),
                   "price": Input(acc.price_per_hour, "$/h", f"assumption: {acc.name} on demand")})


def add_figures(parts: dict[str, Figure], unit: str = "s", label: str = "sum of the parts") -> Figure:
    known = {k: v for k, v in parts.items() if v.value is not None}
    return Figure(sum(v.value for v in known.values()), unit, label + ": " + " + ".join(known), {k: Input(v.value, v.unit, v.formula or "measured") for k, v in known.items()})


def cost_line(
    key: str,
    phase: str,
    what: str,
    flops: Figure,
    parts: dict[str, Figure],
    acc: Accelerator,
    *,
    accelerator: Figure | None = None,
    facts: dict[str, Figure] | None = None,
) -> CostLine:
    """A line whose wall time here is the sum of ``parts`` and whose accelerator time
    comes from its FLOPs (or is given)."""
    here = add_figures(parts)
    acc_time = accelerator if accelerator is not None else accelerator_time(flops.value or 0.0, acc)
    return CostLine(key, phase, what, flops, here, acc_time, money(acc_time, acc), parts, facts or {})
