"""A chart with its "table" view and the CSV of the endpoint that gives its numbers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from markupsafe import Markup

from api.ui.charts import Series, money


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Panel:
    id: str
    title: str
    svg: Markup
    legend: list[str]
    table: Table
    csv: str
    note: str = ""


def day_table(days: Sequence[dt.date], series: Sequence[Series], *, total: bool = False) -> Table:
    """One row per day with a value, one column per series (and their sum when `total`)."""
    columns = ["date", *(s.name for s in series)] + (["total"] if total else [])
    rows = []
    for day in days:
        values = [s.values.get(day) for s in series]
        if all(v is None for v in values):
            continue
        cells = [day.isoformat(), *("" if v is None else money(v) for v in values)]
        if total:
            cells.append(money(sum((v for v in values if v is not None), Decimal(0))))
        rows.append(cells)
    return Table(columns, rows)


def panel(
    id: str,
    title: str,
    draw: Callable[..., Markup],
    days: Sequence[dt.date],
    series: Sequence[Series],
    csv: str,
    *,
    total: bool = False,
    note: str = "",
) -> Panel:
    return Panel(
        id=id,
        title=title,
        svg=draw(days, series, label=title),
        legend=[s.name for s in series],
        table=day_table(days, series, total=total),
        csv=csv,
        note=note,
    )
