"""The SVG charts: what they draw for known amounts, names escaped, long ranges bucketed."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest

from api.ui.charts import (
    BOTTOM,
    HEIGHT,
    MAX_BARS,
    MAX_SPARK_POINTS,
    TOP,
    Scale,
    Series,
    budget_bar,
    line_chart,
    money,
    sparkline,
    stacked_bars,
)

SVG = "{http://www.w3.org/2000/svg}"
DAYS = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(4)]


def parse(svg: str) -> ET.Element:
    # Inline SVG in HTML needs no namespace; give it one to parse it as XML.
    text = str(svg)  # not Markup, whose replace() would escape its arguments
    return ET.fromstring(text.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("0", "$0.00"),
        ("1234.565", "$1,234.57"),
        ("0.005", "$0.01"),
        ("-0.005", "-$0.01"),
        ("-12.3", "-$12.30"),
        ("2.6667", "$2.67"),
    ],
)
def test_money_rounds_half_up_to_cents(value, shown):
    assert money(Decimal(value)) == shown


def test_the_scale_is_round_and_holds_zero():
    assert Scale.of(Decimal(3), Decimal("47.2")) == Scale(Decimal(0), Decimal(60), Decimal(20))
    assert Scale.of(Decimal(0), Decimal(0)).high == 1
    negative = Scale.of(Decimal("-3"), Decimal("5"))
    assert negative.low < 0 < negative.high
    assert negative.y(negative.high) == TOP and negative.y(negative.low) == HEIGHT - BOTTOM


def test_stacked_bars_stack_each_day_in_series_order():
    a = Series("compute", {DAYS[0]: Decimal(3), DAYS[1]: Decimal(1)})
    b = Series("home storage", {DAYS[0]: Decimal(1)})
    svg = parse(stacked_bars(DAYS, [a, b], label="cost"))
    bars = svg.findall(f"{SVG}rect")
    assert [bar.find(f"{SVG}title").text for bar in bars] == [
        "2026-01-01 compute: $3.00",
        "2026-01-01 home storage: $1.00",
        "2026-01-02 compute: $1.00",
    ]
    first, second = bars[0], bars[1]
    # home storage sits on compute: its bottom is compute's top, heights 1:3.
    assert float(second.get("y")) + float(second.get("height")) == pytest.approx(
        float(first.get("y")), abs=0.11
    )
    assert float(first.get("height")) == pytest.approx(3 * float(second.get("height")), abs=0.3)
    assert [bar.get("class") for bar in bars] == ["bar c0", "bar c1", "bar c0"]


def test_negative_amounts_hang_below_zero():
    credit = Series("credit", {DAYS[0]: Decimal(-2)})
    cost = Series("cost", {DAYS[0]: Decimal(2)})
    svg = parse(stacked_bars(DAYS, [cost, credit], label="x"))
    up, down = svg.findall(f"{SVG}rect")
    assert float(up.get("y")) + float(up.get("height")) == pytest.approx(float(down.get("y")))


def test_a_line_breaks_on_a_missing_day_and_an_area_reaches_zero():
    gappy = Series("account", {DAYS[0]: Decimal(1), DAYS[1]: Decimal(2), DAYS[3]: Decimal(2)})
    area = Series("attributable", {d: Decimal(1) for d in DAYS}, filled=True)
    svg = parse(line_chart(DAYS, [area, gappy], label="x"))
    assert len(svg.findall(f"{SVG}polygon")) == 1
    assert len(svg.findall(f"{SVG}polyline")) == 1  # days 1-2
    assert len(svg.findall(f"{SVG}circle")) == 1  # day 4 alone
    zero = svg.find(f"{SVG}line[@class='axis zero']").get("y1")
    points = svg.find(f"{SVG}polygon").get("points").split()
    assert points[0].split(",")[1] == points[-1].split(",")[1] == zero


def test_names_are_escaped_in_every_text():
    name = '<script>alert(1)</script>"&'
    svg = stacked_bars(DAYS, [Series(name, {DAYS[0]: Decimal(1)})], label=name)
    assert "<script" not in svg
    tree = parse(svg)
    assert tree.get("aria-label") == name
    assert tree.find(f"{SVG}rect/{SVG}title").text == f"2026-01-01 {name}: $1.00"


def test_long_ranges_are_drawn_in_buckets_and_stay_small():
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(1100)]
    series = [Series(f"s{i}", {d: Decimal("1.5") for d in days}) for i in range(8)]
    bars = stacked_bars(days, series, label="x")
    assert len(parse(bars).findall(f"{SVG}rect")) <= 8 * MAX_BARS
    assert "2024-01-01 to 2024-01-12 s0: $18.00" in bars
    spark = parse(sparkline(days, series[0].values, label="x"))
    assert len(spark.find(f"{SVG}polyline").get("points").split()) <= MAX_SPARK_POINTS
    assert len(bars) < 200_000
    assert len(line_chart(days, series[:2], label="x")) < 100_000


def test_no_inline_style_and_no_script():
    svg = line_chart(DAYS, [Series("a", {DAYS[0]: Decimal(1), DAYS[1]: Decimal(2)})], label="a")
    assert not re.search(r"\sstyle=|<script|\son\w+=", svg)


def test_a_budget_bar_scales_to_the_amount_or_past_it_up_to_twice():
    half_spent = str(budget_bar(Decimal("0.5"), Decimal("1.2"), label="b"))
    # The scale runs to the forecast, 1.2 × the amount: the amount's line at 160 / 1.2.
    assert 'class="bar c0" x="0" y="3" width="66.7"' in half_spent
    assert 'class="limit" x1="133.3"' in half_spent and 'class="forecast" x1="160"' in half_spent
    over = str(budget_bar(Decimal("3"), None, label="b"))
    assert 'class="bar over" x="0" y="3" width="160"' in over and 'x1="80"' in over
    assert "forecast" not in over
    unspent = str(budget_bar(None, Decimal("0.25"), label="<b>"))
    assert 'width="0"' in unspent and 'class="forecast" x1="40"' in unspent
    assert 'aria-label="&lt;b&gt;"' in unspent
