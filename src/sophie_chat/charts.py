"""Small server-side SVG charts for the analytics dashboard.

The SVG is written into the page: no script, no third-party library, and no
``style`` attribute (colours come from classes in
``sophie_chat/analytics.css``), so the charts work under a strict
Content-Security-Policy. Every bar and point carries a ``<title>`` with its
figure (a native tooltip), and the chart a title for screen readers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import count

from django.utils.formats import number_format
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 720, 230
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 30, 28
MAX_X_LABELS = 10

_ids = count(1)


@dataclass(frozen=True, slots=True)
class Series:
    """One named row of values; ``css_class`` is its colour (``sc-s1`` ... ``sc-s4``)."""

    name: str
    values: tuple[float | None, ...]
    css_class: str


def axis(value: float, max_steps: int = 5, *, whole: bool = False) -> tuple[float, float]:
    """The top of a y axis from 0 that holds ``value``, and its step: 1, 2 or 5 times a
    power of ten, with at most ``max_steps`` steps; ``whole`` steps for counts."""
    if value <= 0:
        return (1, 1) if whole else (1, 0.25)
    power = 10 ** math.floor(math.log10(value / max_steps))
    for factor in (1, 2, 5, 10, 20):
        step = factor * power
        if whole and step < 1:
            continue
        if math.ceil(value / step) <= max_steps:
            return step * math.ceil(value / step), step
    return value, value / max_steps


def _number(value: float, unit: str = "") -> str:
    decimals = 0 if float(value).is_integer() else 1
    text = number_format(value, decimal_pos=decimals, use_l10n=True, force_grouping=True)
    return f"{text} {unit}".strip()


def _frame(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    scale: tuple[float, float],
    unit: str,
) -> list[str]:
    chart_id = f"sc-chart-{next(_ids)}"
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg class="sc-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{chart_id}">{escape(title)}</title>',
    ]
    top, step = scale
    for index in range(round(top / step) + 1):
        value = step * index
        y = TOP + plot_h - plot_h * value / top
        parts.append(
            f'<line class="sc-grid" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        parts.append(
            f'<text class="sc-axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(_number(value, unit))}</text>"
        )
    every = max(1, math.ceil(len(labels) / MAX_X_LABELS))
    slot = plot_w / max(1, len(labels))
    for index, label in enumerate(labels):
        if index % every:
            continue
        x = LEFT + slot * (index + 0.5)
        parts.append(
            f'<text class="sc-axis" x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
    x = LEFT
    for item in series:
        parts.append(
            f'<rect class="{escape(item.css_class)}" x="{x}" y="8" width="10" height="10" rx="2"/>'
        )
        parts.append(f'<text class="sc-legend" x="{x + 14}" y="17">{escape(item.name)}</text>')
        x += 24 + 7 * len(item.name)
    return parts


def bar_chart(
    labels: Sequence[str], series: Sequence[Series], *, title: str, unit: str = ""
) -> SafeString:
    """Stacked bars, one per label (day), one segment per series."""
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(labels))]
    scale = axis(max(totals, default=0), whole=True)
    top = scale[0]
    parts = _frame(title, labels, series, scale, unit)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(labels))
    width = max(1.0, slot * 0.7)
    for index, label in enumerate(labels):
        base = TOP + plot_h
        x = LEFT + slot * index + (slot - width) / 2
        for item in series:
            value = item.values[index] or 0
            if value <= 0:
                continue
            height = plot_h * value / top
            base -= height
            parts.append(
                f'<rect class="{escape(item.css_class)}" x="{x:.1f}" y="{base:.1f}" '
                f'width="{width:.1f}" height="{height:.1f}">'
                f"<title>{escape(label)}: {escape(item.name)} {escape(_number(value, unit))}"
                "</title></rect>"
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped


def line_chart(
    labels: Sequence[str], series: Sequence[Series], *, title: str, unit: str = ""
) -> SafeString:
    """One line per series; a missing value (None) breaks the line."""
    values = [v for s in series for v in s.values if v is not None]
    scale = axis(max(values, default=0))
    top = scale[0]
    parts = _frame(title, labels, series, scale, unit)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(labels))
    lines: list[str] = []
    dots: list[str] = []
    for item in series:
        segment: list[str] = []
        for index, label in enumerate(labels):
            value = item.values[index]
            if value is None:
                segment = _end_segment(segment, item, lines)
                continue
            x = LEFT + slot * (index + 0.5)
            y = TOP + plot_h - plot_h * value / top
            segment.append(f"{x:.1f},{y:.1f}")
            dots.append(
                f'<circle class="{escape(item.css_class)}" cx="{x:.1f}" cy="{y:.1f}" r="3">'
                f"<title>{escape(label)}: {escape(item.name)} {escape(_number(value, unit))}"
                "</title></circle>"
            )
        _end_segment(segment, item, lines)
    parts.extend(lines)
    parts.extend(dots)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text above is escaped


def _end_segment(segment: list[str], item: Series, lines: list[str]) -> list[str]:
    if len(segment) > 1:
        lines.append(
            f'<polyline class="sc-line {escape(item.css_class)}" points="{" ".join(segment)}"/>'
        )
    return []
