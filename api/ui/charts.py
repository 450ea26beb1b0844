"""Charts as inline SVG, drawn on the server from Decimal amounts (docs/pages.md, "Charts").

Four shapes: `line_chart` (lines, or a filled area, per day), `stacked_bars` (one stack of
series per day), `sparkline` (a small trend line) and `budget_bar` (a budget's spend and
forecast against its amount). Colours are classes (`c0` ... `c7`) that
the stylesheet maps to a palette, so the SVG carries no inline style and the pages' CSP needs
no 'unsafe-inline'. Every name drawn is escaped here: names come from the warehouse.

Geometry is computed in Decimal too and written to 0.1 px. A range longer than `MAX_BARS`
days is drawn in buckets of several days (their sum); the table beside a chart keeps every day.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from markupsafe import Markup, escape

CENT = Decimal("0.01")
PIXEL = Decimal("0.1")
PALETTE_SIZE = 8
MAX_BARS = 92
MAX_SPARK_POINTS = 60

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 72, 8, 10, 26
SPARK_WIDTH, SPARK_HEIGHT = 120, 24
BUDGET_WIDTH, BUDGET_HEIGHT = 160, 16
# A budget bar's scale runs to the amount, or past it to the spend or forecast, up to twice it.
BUDGET_SCALE_MAX = Decimal(2)
TICKS = 4


@dataclass(frozen=True)
class Series:
    name: str
    values: Mapping[dt.date, Decimal]
    # Drawn as an area down to zero instead of a line (line_chart only).
    filled: bool = False


def money(value: Decimal) -> str:
    """`$1,234.57`, `-$0.50`: rounded half up to cents."""
    cents = value.quantize(CENT, ROUND_HALF_UP)
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents):,.2f}"


def colour(index: int) -> str:
    return f"c{index % PALETTE_SIZE}"


def line_chart(days: Sequence[dt.date], series: Sequence[Series], *, label: str) -> Markup:
    """One line (or area) per series over the days; a day a series lacks breaks its line."""
    values = [v for s in series for v in s.values.values()]
    scale = Scale.of(min(values, default=Decimal(0)), max(values, default=Decimal(0)))
    band = Band(len(days))
    shapes = []
    for index, item in enumerate(series):
        for run in _runs(days, item.values):
            points = [(band.middle(i), scale.y(value)) for i, value in run]
            shapes.append(_line(points, item, colour(index), scale))
    return _svg(label, [*_axes(scale, days, band), *shapes])


def stacked_bars(days: Sequence[dt.date], series: Sequence[Series], *, label: str) -> Markup:
    """Per day (or bucket of days), the series stacked: positive amounts up, negative down."""
    buckets = _buckets(days, MAX_BARS)
    sums = [[_bucket_sum(s.values, bucket) for s in series] for bucket in buckets]
    highs = [sum((v for v in column if v > 0), Decimal(0)) for column in sums]
    lows = [sum((v for v in column if v < 0), Decimal(0)) for column in sums]
    scale = Scale.of(min(lows, default=Decimal(0)), max(highs, default=Decimal(0)))
    band = Band(len(buckets))
    shapes = []
    for i, (bucket, column) in enumerate(zip(buckets, sums, strict=True)):
        up = down = Decimal(0)
        for index, (item, value) in enumerate(zip(series, column, strict=True)):
            if value == 0:
                continue
            if value > 0:
                bottom, up = up, up + value
                top = up
            else:
                top, down = down, down + value
                bottom = down
            title = f"{_period(bucket)} {item.name}: {money(value)}"
            shapes.append(band.bar(i, scale.y(top), scale.y(bottom), colour(index), title))
    return _svg(label, [*_axes(scale, [b[0] for b in buckets], band), *shapes])


def sparkline(days: Sequence[dt.date], values: Mapping[dt.date, Decimal], *, label: str) -> Markup:
    """A small line of the values per day (per bucket on long ranges), missing days as zero."""
    buckets = _buckets(days, MAX_SPARK_POINTS)
    sums = [_bucket_sum(values, bucket) for bucket in buckets]
    low, high = min(sums, default=Decimal(0)), max(sums, default=Decimal(0))
    span = (high - low) or Decimal(1)
    step = Decimal(SPARK_WIDTH - 2) / max(len(sums) - 1, 1)
    points = [
        (1 + i * step, 1 + (high - value) * (SPARK_HEIGHT - 2) / span)
        for i, value in enumerate(sums)
    ]
    return Markup(
        f'<svg class="spark" viewBox="0 0 {SPARK_WIDTH} {SPARK_HEIGHT}" width="{SPARK_WIDTH}" '
        f'height="{SPARK_HEIGHT}" role="img" aria-label="{escape(label)}">'
        f'<polyline class="line c0" points="{_points(points)}"/></svg>'
    )


def budget_bar(
    spent_ratio: Decimal | None, forecast_ratio: Decimal | None, *, label: str
) -> Markup:
    """The spend as a bar and the forecast as a mark, in fractions of the amount (a line at 1);
    past the amount the bar turns `over`; beyond twice the amount both stop at the edge."""
    spent = max(spent_ratio or Decimal(0), Decimal(0))
    forecast = None if forecast_ratio is None else max(forecast_ratio, Decimal(0))
    scale = min(max(Decimal(1), spent, forecast or Decimal(0)), BUDGET_SCALE_MAX)

    def x(ratio: Decimal) -> str:
        return _px(min(ratio, scale) * BUDGET_WIDTH / scale)

    bar = BUDGET_HEIGHT - 6
    parts = [
        f'<rect class="track" x="0" y="3" width="{BUDGET_WIDTH}" height="{bar}"/>',
        f'<rect class="bar {"over" if spent >= 1 else "c0"}" x="0" y="3" width="{x(spent)}" '
        f'height="{bar}"/>',
        f'<line class="limit" x1="{x(Decimal(1))}" x2="{x(Decimal(1))}" y1="0" '
        f'y2="{BUDGET_HEIGHT}"/>',
    ]
    if forecast is not None:
        parts.append(
            f'<line class="forecast" x1="{x(forecast)}" x2="{x(forecast)}" y1="1" '
            f'y2="{BUDGET_HEIGHT - 1}"/>'
        )
    return Markup(
        f'<svg class="budget" viewBox="0 0 {BUDGET_WIDTH} {BUDGET_HEIGHT}" width="{BUDGET_WIDTH}" '
        f'height="{BUDGET_HEIGHT}" role="img" aria-label="{escape(label)}">'
        + "".join(parts)
        + "</svg>"
    )


@dataclass(frozen=True)
class Scale:
    """The y axis: from `low` to `high` (round numbers, zero included) over the plot's height."""

    low: Decimal
    high: Decimal
    step: Decimal

    @classmethod
    def of(cls, smallest: Decimal, largest: Decimal) -> Scale:
        smallest, largest = min(smallest, Decimal(0)), max(largest, Decimal(0))
        span = largest - smallest
        if span == 0:
            return cls(Decimal(0), Decimal(1), Decimal("0.25"))
        step = _round_step(span / TICKS)
        low = (smallest / step).to_integral_value(ROUND_FLOOR) * step
        high = (largest / step).to_integral_value(ROUND_CEILING) * step
        return cls(low, high, step)

    def y(self, value: Decimal) -> Decimal:
        plot = Decimal(HEIGHT - TOP - BOTTOM)
        return TOP + (self.high - value) * plot / (self.high - self.low)

    def ticks(self) -> list[Decimal]:
        count = int((self.high - self.low) / self.step)
        return [self.low + i * self.step for i in range(count + 1)]

    def tick_label(self, value: Decimal) -> str:
        if self.step == self.step.to_integral_value():
            sign = "-" if value < 0 else ""
            return f"{sign}${abs(value):,.0f}"
        return money(value)


@dataclass(frozen=True)
class Band:
    """The x axis: `count` equal bands across the plot's width."""

    count: int

    @property
    def width(self) -> Decimal:
        return Decimal(WIDTH - LEFT - RIGHT) / max(self.count, 1)

    def start(self, i: int) -> Decimal:
        return LEFT + i * self.width

    def middle(self, i: int) -> Decimal:
        return self.start(i) + self.width / 2

    def bar(self, i: int, top: Decimal, bottom: Decimal, css: str, title: str) -> str:
        gap = self.width / 8 if self.width >= 4 else Decimal(0)
        return (
            f'<rect class="bar {css}" x="{_px(self.start(i) + gap)}" y="{_px(top)}" '
            f'width="{_px(self.width - 2 * gap)}" height="{_px(bottom - top)}">'
            f"<title>{escape(title)}</title></rect>"
        )


def _round_step(rough: Decimal) -> Decimal:
    """The smallest of 1, 2, 5 × 10^k at least `rough`."""
    base = Decimal(1).scaleb(rough.adjusted())
    for multiple in (1, 2, 5, 10):
        if rough <= multiple * base:
            return multiple * base
    return 10 * base


def _axes(scale: Scale, days: Sequence[dt.date], band: Band) -> list[str]:
    parts = []
    for tick in scale.ticks():
        y = _px(scale.y(tick))
        css = "axis zero" if tick == 0 else "grid"
        parts.append(f'<line class="{css}" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}"/>')
        parts.append(
            f'<text class="tick" x="{LEFT - 6}" y="{y}" text-anchor="end" '
            f'dominant-baseline="middle">{escape(scale.tick_label(tick))}</text>'
        )
    if days:
        shown = sorted({0, len(days) // 2, len(days) - 1})
        for i in shown:
            if i == 0:
                anchor, x = "start", band.start(0)
            elif i == len(days) - 1:
                anchor, x = "end", band.start(len(days))
            else:
                anchor, x = "middle", band.middle(i)
            parts.append(
                f'<text class="tick" x="{_px(x)}" y="{HEIGHT - 6}" '
                f'text-anchor="{anchor}">{days[i].isoformat()}</text>'
            )
    return parts


def _line(points, item: Series, css: str, scale: Scale) -> str:
    title = f"<title>{escape(item.name)}</title>"
    if len(points) == 1:
        (x, y) = points[0]
        return f'<circle class="dot {css}" cx="{_px(x)}" cy="{_px(y)}" r="3">{title}</circle>'
    if item.filled:
        base = _px(scale.y(Decimal(0)))
        (x0, _), (x1, _) = points[0], points[-1]
        outline = [(x0, None), *points, (x1, None)]
        text = " ".join(f"{_px(x)},{base if y is None else _px(y)}" for x, y in outline)
        return f'<polygon class="area {css}" points="{text}">{title}</polygon>'
    return f'<polyline class="line {css}" points="{_points(points)}">{title}</polyline>'


def _runs(days: Sequence[dt.date], values: Mapping[dt.date, Decimal]):
    """The runs of consecutive days that have a value, as [(index, value), ...]."""
    run: list[tuple[int, Decimal]] = []
    for i, day in enumerate(days):
        if day in values:
            run.append((i, values[day]))
        elif run:
            yield run
            run = []
    if run:
        yield run


def _buckets(days: Sequence[dt.date], most: int) -> list[Sequence[dt.date]]:
    size = max(1, math.ceil(len(days) / most))
    return [days[i : i + size] for i in range(0, len(days), size)]


def _bucket_sum(values: Mapping[dt.date, Decimal], bucket: Sequence[dt.date]) -> Decimal:
    return sum((values.get(day, Decimal(0)) for day in bucket), Decimal(0))


def _period(bucket: Sequence[dt.date]) -> str:
    if len(bucket) == 1:
        return bucket[0].isoformat()
    return f"{bucket[0].isoformat()} to {bucket[-1].isoformat()}"


def _px(value: Decimal) -> str:
    text = f"{Decimal(value).quantize(PIXEL, ROUND_HALF_UP):f}"
    text = text.removesuffix(".0")
    return "0" if text == "-0" else text


def _points(points) -> str:
    return " ".join(f"{_px(x)},{_px(y)}" for x, y in points)


def _svg(label: str, parts: list[str]) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(label)}">' + "".join(parts) + "</svg>"
    )
