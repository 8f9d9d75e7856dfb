"""Plots as inline SVG, written by hand: a report must open without a network or a
server, so no charting library is fetched. Three kinds cover the reports: horizontal
bars (optionally on a log scale), a scatter of quality against cost, and box plots of
latency distributions. Every plot is an ``<svg class="plot" role="img">`` with a
``<title>`` and its values in ``<title>`` tooltips, so it is readable by people and
by tests."""

from __future__ import annotations

import math
from html import escape
from typing import Iterable, Sequence

__all__ = ["bar_chart", "scatter_plot", "box_plot", "PALETTE"]

PALETTE = ("#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6", "#dd4477", "#66aa00", "#b82e2e", "#316395")
_FONT = "font-family=\"system-ui, sans-serif\" font-size=\"12\""


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    a = abs(value)
    if a >= 1e4 or a < 1e-2:
        return f"{value:.2g}"
    return f"{value:.3g}"


def _log_ticks(lo: float, hi: float) -> list[float]:
    start, end = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    return [10.0**e for e in range(start, end + 1)]


def _linear_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    first = math.ceil(lo / step) * step
    out, v = [], first
    while v <= hi + step * 1e-9:
        out.append(round(v, 12))
        v += step
    return out


class _Scale:
    def __init__(self, lo: float, hi: float, a: float, b: float, log: bool):
        self.log = log
        if log:
            lo, hi = max(lo, 1e-12), max(hi, lo * 10)
            self.lo, self.hi = math.log10(lo), math.log10(hi)
        else:
            self.lo, self.hi = lo, hi if hi > lo else lo + 1
        self.a, self.b = a, b

    def __call__(self, v: float) -> float:
        if self.log:
            v = math.log10(max(v, 1e-12))
        return self.a + (v - self.lo) / (self.hi - self.lo) * (self.b - self.a)


def _svg(width: int, height: int, title: str, body: Iterable[str], kind: str) -> str:
    return (
        f'<svg class="plot plot-{kind}" role="img" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" {_FONT}><title>{escape(title)}</title>{"".join(body)}</svg>'
    )


def bar_chart(items: Sequence[tuple[str, float]], *, title: str, unit: str = "", log: bool = False, width: int = 720, groups: Sequence[str] | None = None) -> str:
    """Horizontal bars, one per ``(label, value)``; ``groups`` colours bars by group."""
    items = [(label, float(v)) for label, v in items if v is not None and (v > 0 or not log)]
    if not items:
        return _svg(width, 40, title, [f'<text x="8" y="24">{escape(title)}: no data</text>'], "bar")
    label_w, row_h, top = 280, 22, 28
    height = top + row_h * len(items) + 36
    hi = max(v for _, v in items)
    lo = min(v for _, v in items)
    scale = _Scale(lo / 2 if log else 0, hi * (1.15 if not log else 2), label_w, width - 20, log)
    body = [f'<text x="8" y="18" font-weight="bold">{escape(title)}</text>']
    ticks = _log_ticks(lo / 2, hi * 2) if log else _linear_ticks(0, hi * 1.15)
    axis_y = top + row_h * len(items) + 4
    for t in ticks:
        x = scale(t)
        if label_w <= x <= width - 10:
            body.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{axis_y}" stroke="#ddd"/>')
            body.append(f'<text x="{x:.1f}" y="{axis_y + 14}" text-anchor="middle" fill="#555">{_fmt(t)}</text>')
    body.append(f'<text x="{width - 20}" y="{axis_y + 28}" text-anchor="end" fill="#555">{escape(unit)}{" (log scale)" if log else ""}</text>')
    group_names = list(dict.fromkeys(groups or []))
    for i, (label, v) in enumerate(items):
        y = top + i * row_h
        colour = PALETTE[group_names.index(groups[i]) % len(PALETTE)] if groups else PALETTE[0]
        x0, x1 = scale(lo / 2) if log else scale(0), scale(v)
        body.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{escape(label[:44])}</text>')
        body.append(
            f'<rect class="bar" x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 1):.1f}" height="{row_h - 6}" fill="{colour}">'
            f'<title>{escape(label)}: {_fmt(v)} {escape(unit)}</title></rect>'
        )
        if x1 > width - 80:  # no room after the bar: the value goes inside it
            body.append(f'<text x="{x1 - 4:.1f}" y="{y + 15}" text-anchor="end" fill="#fff">{_fmt(v)}</text>')
        else:
            body.append(f'<text x="{x1 + 4:.1f}" y="{y + 15}" fill="#333">{_fmt(v)}</text>')
    return _svg(width, height, title, body, "bar")


def scatter_plot(
    points: Sequence[tuple[str, float, float]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    log_x: bool = True,
    y_range: tuple[float, float] | None = (0.0, 1.0),
    baselines: Sequence[tuple[str, float]] = (),
    width: int = 720,
    height: int = 380,
) -> str:
    """One labelled point per ``(label, x, y)``; ``baselines`` are horizontal lines."""
    pts = [(label, float(x), float(y)) for label, x, y in points if x is not None and y is not None and (x > 0 or not log_x)]
    left, right, top, bottom = 64, 24, 30, 48
    body = [f'<text x="8" y="18" font-weight="bold">{escape(title)}</text>']
    if not pts and not baselines:
        return _svg(width, 60, title, body + ['<text x="8" y="44">no data</text>'], "scatter")
    xs = [x for _, x, _ in pts] or [1.0]
    ys = [y for _, _, y in pts] + [v for _, v in baselines]
    x_lo, x_hi = (min(xs) / 2, max(xs) * 2) if log_x else (0.0, max(xs) * 1.1 or 1.0)
    y_lo, y_hi = y_range if y_range else (min(ys + [0.0]), max(ys + [1.0]) * 1.05)
    sx = _Scale(x_lo, x_hi, left, width - right, log_x)
    sy = _Scale(y_lo, y_hi, height - bottom, top, False)
    for t in (_log_ticks(x_lo, x_hi) if log_x else _linear_ticks(x_lo, x_hi)):
        x = sx(t)
        if left <= x <= width - right:
            body.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height - bottom}" stroke="#eee"/>')
            body.append(f'<text x="{x:.1f}" y="{height - bottom + 16}" text-anchor="middle" fill="#555">{_fmt(t)}</text>')
    for t in _linear_ticks(y_lo, y_hi):
        y = sy(t)
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#eee"/>')
        body.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{_fmt(t)}</text>')
    body.append(f'<text x="{(left + width - right) / 2:.0f}" y="{height - 10}" text-anchor="middle">{escape(x_label)}{" (log scale)" if log_x else ""}</text>')
    body.append(f'<text transform="translate(14,{(top + height - bottom) / 2:.0f}) rotate(-90)" text-anchor="middle">{escape(y_label)}</text>')
    for i, (label, v) in enumerate(baselines):
        y = sy(v)
        body.append(f'<line class="baseline" x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#888" stroke-dasharray="6 4"><title>{escape(label)}: {_fmt(v)}</title></line>')
        body.append(f'<text x="{width - right - 4}" y="{y - 4:.1f}" text-anchor="end" fill="#666">{escape(label)} {_fmt(v)}</text>')
    for i, (label, x, y) in enumerate(pts):
        colour = PALETTE[i % len(PALETTE)]
        cx, cy = sx(x), sy(y)
        body.append(f'<circle class="point" cx="{cx:.1f}" cy="{cy:.1f}" r="6" fill="{colour}"><title>{escape(label)}: {_fmt(x)}, {_fmt(y)}</title></circle>')
        anchor = "end" if cx > width * 0.7 else "start"
        dx = -9 if anchor == "end" else 9
        body.append(f'<text x="{cx + dx:.1f}" y="{cy - 8:.1f}" text-anchor="{anchor}" fill="{colour}">{escape(label[:48])}</text>')
    return _svg(width, height, title, body, "scatter")


def _quantile(data: Sequence[float], q: float) -> float:
    pos = (len(data) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def box_plot(series: Sequence[tuple[str, Sequence[float]]], *, title: str, unit: str = "ms", log: bool = True, width: int = 720) -> str:
    """One box per ``(label, values)``: quartiles, whiskers at the 5th and 95th
    percentiles, a tick per value beyond them."""
    series = [(label, sorted(float(v) for v in values if v is not None and (v > 0 or not log))) for label, values in series]
    series = [(label, values) for label, values in series if values]
    if not series:
        return _svg(width, 40, title, [f'<text x="8" y="24">{escape(title)}: no data</text>'], "box")
    label_w, row_h, top = 280, 30, 28
    height = top + row_h * len(series) + 36
    lo = min(v[0] for _, v in series)
    hi = max(v[-1] for _, v in series)
    scale = _Scale(lo / 1.5 if log else 0, hi * 1.5 if log else hi * 1.1, label_w, width - 20, log)
    body = [f'<text x="8" y="18" font-weight="bold">{escape(title)}</text>']
    axis_y = top + row_h * len(series) + 4
    for t in (_log_ticks(lo / 1.5, hi * 1.5) if log else _linear_ticks(0, hi * 1.1)):
        x = scale(t)
        if label_w <= x <= width - 10:
            body.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{axis_y}" stroke="#eee"/>')
            body.append(f'<text x="{x:.1f}" y="{axis_y + 14}" text-anchor="middle" fill="#555">{_fmt(t)}</text>')
    body.append(f'<text x="{width - 20}" y="{axis_y + 28}" text-anchor="end" fill="#555">{escape(unit)}{" (log scale)" if log else ""}</text>')
    for i, (label, values) in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        y = top + i * row_h
        mid = y + row_h / 2
        p5, q1, med, q3, p95 = (_quantile(values, q) for q in (0.05, 0.25, 0.5, 0.75, 0.95))
        summary = f"{label}: n={len(values)}, median {_fmt(med)} {unit}, quartiles {_fmt(q1)}–{_fmt(q3)}, p5–p95 {_fmt(p5)}–{_fmt(p95)}"
        body.append(f'<text x="{label_w - 6}" y="{mid + 4:.1f}" text-anchor="end">{escape(label[:44])}</text>')
        body.append(f'<g class="box"><title>{escape(summary)}</title>')
        body.append(f'<line x1="{scale(p5):.1f}" y1="{mid:.1f}" x2="{scale(p95):.1f}" y2="{mid:.1f}" stroke="{colour}"/>')
        body.append(f'<rect x="{scale(q1):.1f}" y="{y + 6}" width="{max(scale(q3) - scale(q1), 1):.1f}" height="{row_h - 12}" fill="{colour}" fill-opacity="0.35" stroke="{colour}"/>')
        body.append(f'<line x1="{scale(med):.1f}" y1="{y + 4}" x2="{scale(med):.1f}" y2="{y + row_h - 4}" stroke="{colour}" stroke-width="3"/>')
        for v in values:
            if v < p5 or v > p95:
                body.append(f'<line x1="{scale(v):.1f}" y1="{mid - 4:.1f}" x2="{scale(v):.1f}" y2="{mid + 4:.1f}" stroke="{colour}"/>')
        body.append("</g>")
    return _svg(width, height, title, body, "box")
