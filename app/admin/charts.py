"""The small bar charts of the admin pages, as numbers for HTML and CSS to draw.

A chart is a list of horizontal bars, one per (label, count), with the exact count printed
beside each bar. The labels and counts are page text, so they keep the page's font size at
any width (an SVG scaled to a phone shrank them to about 7 px) and never get clipped.

Counts on the admin pages span orders of magnitude (214 suggested matches next to 1
introduction): on a linear scale every small count is a hairline. When the largest count is
at least `LOG_RATIO` times the smallest non-zero one, bar lengths follow log10(1 + count),
and the chart says so and draws marks at 1, 10, 100, ...; every non-zero count then gets a
visible bar. Otherwise lengths are proportional to the counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

LOG_RATIO = 20
"""Largest / smallest non-zero count from which a chart uses a logarithmic scale: on a linear
one, the smallest bar would be under 5 % of the longest."""

Scale = Literal["linear", "log"]


@dataclass(frozen=True)
class Bar:
    """One row: `length` is the bar's share of the plot width, in percent (0-100)."""

    label: str
    value: float
    length: float


@dataclass(frozen=True)
class Tick:
    """A scale mark at `position` percent of the plot width."""

    label: str
    position: float


@dataclass(frozen=True)
class BarChart:
    bars: list[Bar]
    scale: Scale
    ticks: list[Tick]

    @property
    def empty(self) -> bool:
        """Nothing to draw: no rows, or every count is zero."""
        return not any(bar.value for bar in self.bars)


def choose_scale(values: Sequence[float], *, log_ratio: float = LOG_RATIO) -> Scale:
    """ "log" when the non-zero counts span a factor of `log_ratio` or more, else "linear"."""
    positive = [value for value in values if value > 0]
    if len(positive) < 2:
        return "linear"
    return "log" if max(positive) >= log_ratio * min(positive) else "linear"


def bar_chart(
    data: Sequence[tuple[str, float]], *, scale: Scale | None = None, log_ratio: float = LOG_RATIO
) -> BarChart:
    """Bars for (label, count) rows, in the given order; `scale` None chooses it
    (`choose_scale`). The longest bar fills the plot; a zero count has no bar; an all-zero
    chart divides by nothing."""
    values = [max(0.0, float(value)) for _, value in data]
    chosen = scale or choose_scale(values, log_ratio=log_ratio)
    maximum = max(values, default=0.0)

    def length(value: float) -> float:
        if maximum <= 0 or value <= 0:
            return 0.0
        if chosen == "log":
            return 100.0 * math.log10(1 + value) / math.log10(1 + maximum)
        return 100.0 * value / maximum

    bars = [Bar(label=label, value=value, length=length(value)) for label, value in data]
    ticks: list[Tick] = []
    if chosen == "log" and maximum > 0:
        power = 1
        while power <= maximum:
            ticks.append(Tick(label=f"{power:,}", position=length(power)))
            power *= 10
    return BarChart(bars=bars, scale=chosen, ticks=ticks)
