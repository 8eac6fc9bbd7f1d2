"""Server-side SVG charts: scaled axes, escaped text, gaps for missing values."""

from __future__ import annotations

import re

import pytest

from sophie_chat.charts import Series, axis, bar_chart, line_chart


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, (1, 1)), (3, (3, 1)), (7, (8, 2)), (23, (25, 5)), (26, (30, 10)), (4500, (5000, 1000))],
)
def test_count_axes_end_on_a_round_number_in_whole_steps(value, expected):
    assert axis(value, whole=True) == expected


def test_bars_stack_and_carry_their_figure_as_a_tooltip():
    svg = bar_chart(
        ["1 Mar", "2 Mar"],
        [Series("Model", (3, 1), "sc-s1"), Series("Cache", (1, 0), "sc-s2")],
        title="Answers",
    )

    assert svg.startswith('<svg class="sc-chart"')
    assert svg.count('<rect class="sc-s1" x=') == 3  # a legend swatch and two bars
    assert "<title>1 Mar: Cache 1</title>" in svg


def test_text_in_a_chart_is_escaped():
    svg = bar_chart(["<b>"], [Series("<script>alert(1)</script>", (1,), "sc-s1")], title="<i>x</i>")

    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert "<i>" not in svg


def test_a_missing_value_breaks_the_line():
    svg = line_chart(
        ["a", "b", "c", "d", "e"],
        [Series("p95", (100, 200, None, 300, 400), "sc-s1")],
        title="t",
        unit="ms",
    )

    assert len(re.findall(r"<polyline", svg)) == 2
    assert svg.count("<circle") == 4


def test_charts_use_no_style_attribute():
    svg = line_chart(["a", "b"], [Series("p50", (1, 2), "sc-s1")], title="t")

    assert "style=" not in svg
