"""Reference accelerators: what a FLOP count costs in time and money on rented hardware.

The defaults are stated assumptions, not measurements: datasheet peak throughput for
dense bf16 matrix products, a model FLOPs utilisation (MFU) typical of well-tuned
training, and an on-demand cloud price per accelerator-hour. Every one can be changed
on the command line (``--accelerator``, ``--tflops``, ``--mfu``, ``--price-per-hour``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from fourfold.errors import ConfigError

__all__ = ["Accelerator", "ACCELERATORS", "DEFAULT_ACCELERATOR", "accelerator"]


@dataclass(frozen=True)
class Accelerator:
    """One accelerator and the assumptions used to cost work on it.

    :ivar peak_flops: dense bf16 peak, FLOP/s (datasheet, without sparsity).
    :ivar mfu: share of the peak a real run achieves (model FLOPs utilisation).
    :ivar price_per_hour: on-demand price of one accelerator for one hour, in dollars.
    :ivar memory_bandwidth: bytes/s of its memory; generating one token at batch 1 reads
        every weight once, so decoding is bound by this rather than by FLOP/s.
    """

    key: str
    name: str
    peak_flops: float
    mfu: float
    price_per_hour: float
    memory_bandwidth: float
    source: str

    @property
    def effective_flops(self) -> float:
        return self.peak_flops * self.mfu

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "effective_flops": self.effective_flops}

    def describe(self) -> str:
        return (
            f"{self.name}: {self.peak_flops / 1e12:,.0f} TFLOP/s bf16 dense peak × {self.mfu:.0%} MFU = "
            f"{self.effective_flops / 1e12:,.0f} TFLOP/s effective, {self.memory_bandwidth / 1e12:.2f} TB/s memory, "
            f"${self.price_per_hour:.2f}/hour"
        )


# Prices: typical on-demand cloud list prices per GPU-hour in 2025; they vary by
# provider and commitment by a factor of two or more either way.
ACCELERATORS: dict[str, Accelerator] = {
    a.key: a
    for a in (
        Accelerator("h100", "NVIDIA H100 SXM", 989e12, 0.35, 3.00, 3.35e12, "NVIDIA H100 datasheet (SXM, bf16 dense)"),
        Accelerator("h200", "NVIDIA H200 SXM", 989e12, 0.35, 3.80, 4.8e12, "NVIDIA H200 datasheet (SXM, bf16 dense)"),
        Accelerator("a100", "NVIDIA A100 80GB SXM", 312e12, 0.35, 1.80, 2.04e12, "NVIDIA A100 datasheet (bf16 dense)"),
        Accelerator("l4", "NVIDIA L4", 121e12, 0.35, 0.80, 0.3e12, "NVIDIA L4 datasheet (bf16 dense)"),
    )
}
DEFAULT_ACCELERATOR = "h100"


def accelerator(
    key: str = DEFAULT_ACCELERATOR,
    *,
    tflops: float | None = None,
    mfu: float | None = None,
    price_per_hour: float | None = None,
) -> Accelerator:
    """A preset by name, with any of its assumptions overridden.

    :raises ConfigError: unknown preset or an override out of range.
    """
    found = ACCELERATORS.get(key.lower())
    if found is None:
        raise ConfigError(f"unknown accelerator '{key}'; choose one of {', '.join(ACCELERATORS)} (and adjust it with --tflops, --mfu, --price-per-hour)")
    changes: dict[str, Any] = {}
    if tflops is not None:
        if tflops <= 0:
            raise ConfigError(f"--tflops must be positive, not {tflops}")
        changes["peak_flops"] = tflops * 1e12
    if mfu is not None:
        if not 0 < mfu <= 1:
            raise ConfigError(f"--mfu is a share of the peak between 0 and 1, not {mfu}")
        changes["mfu"] = mfu
    if price_per_hour is not None:
        if price_per_hour < 0:
            raise ConfigError(f"--price-per-hour cannot be negative ({price_per_hour})")
        changes["price_per_hour"] = price_per_hour
    return replace(found, **changes) if changes else found
