"""Geometry for the small server-rendered SVG charts of the admin pages.

Coordinates are SVG user units in a `viewBox` of `width` x `height`; the SVG scales to its
container, so the numbers only fix proportions (the defaults keep 15-unit text legible when
a phone shrinks the chart to about 340 px). Bars are proportional to their values, the
largest value filling the plot; an all-zero chart draws no bars (never divides by zero).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    x: float
    y: float
    width: float
    height: float
    label_x: float
    label_y: float
    value_x: float
    value_y: float


@dataclass(frozen=True)
class Chart:
    width: float
    height: float
    maximum: float
    bars: list[Bar]
    baseline: tuple[float, float, float, float]
    """The axis line (x1, y1, x2, y2) the bars grow from."""


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def horizontal_bars(
    data: Sequence[tuple[str, float]],
    *,
    width: float = 480,
    label_width: float = 180,
    value_width: float = 50,
    bar_height: float = 24,
    gap: float = 10,
    label_chars: int = 19,
) -> Chart:
    """One horizontal bar per (label, value), top to bottom in the given order. Labels sit
    left of the bars (shortened to `label_chars`), values just right of each bar's end."""
    plot = width - label_width - value_width
    maximum = max((value for _, value in data), default=0.0)
    bars = []
    for index, (label, value) in enumerate(data):
        y = gap + index * (bar_height + gap)
        length = plot * value / maximum if maximum > 0 else 0.0
        bars.append(
            Bar(
                label=_short(label, label_chars),
                value=value,
                x=label_width,
                y=y,
                width=length,
                height=bar_height,
                label_x=label_width - 8,
                label_y=y + bar_height * 0.7,
                value_x=label_width + length + 6,
                value_y=y + bar_height * 0.7,
            )
        )
    height = gap + len(data) * (bar_height + gap)
    return Chart(
        width=width,
        height=height,
        maximum=maximum,
        bars=bars,
        baseline=(label_width, 0, label_width, height),
    )


def columns(
    data: Sequence[tuple[str, float]],
    *,
    width: float = 480,
    height: float = 220,
    top: float = 24,
    bottom: float = 36,
    gap_ratio: float = 0.3,
) -> Chart:
    """One vertical column per (label, value), left to right. Labels sit under the
    baseline, values above each column."""
    plot_height = height - top - bottom
    slot = width / len(data) if data else width
    column_width = slot * (1 - gap_ratio)
    maximum = max((value for _, value in data), default=0.0)
    baseline_y = height - bottom
    bars = []
    for index, (label, value) in enumerate(data):
        length = plot_height * value / maximum if maximum > 0 else 0.0
        x = index * slot + (slot - column_width) / 2
        bars.append(
            Bar(
                label=label,
                value=value,
                x=x,
                y=baseline_y - length,
                width=column_width,
                height=length,
                label_x=x + column_width / 2,
                label_y=baseline_y + 18,
                value_x=x + column_width / 2,
                value_y=baseline_y - length - 6,
            )
        )
    return Chart(
        width=width,
        height=height,
        maximum=maximum,
        bars=bars,
        baseline=(0, baseline_y, width, baseline_y),
    )
