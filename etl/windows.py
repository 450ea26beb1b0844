"""Which days a run loads, and how they split into chunks (docs/attribution.md §7).

Pure functions of today's date and what the run log says was loaded; no clock, no database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

ONE_DAY = dt.timedelta(days=1)
PREVIOUS_MONTH_GRACE_DAYS = 5


@dataclass(frozen=True)
class Chunk:
    """The unit of loading: one source's days, replaced together in one transaction."""

    source: str  # "costs" or "usage"
    first: dt.date
    last: dt.date  # inclusive
    cluster: str | None = None  # set by the runner from the source that loads it

    def days(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=i) for i in range((self.last - self.first).days + 1)]

    def __str__(self) -> str:
        days = f"{self.first}" if self.first == self.last else f"{self.first}..{self.last}"
        where = f"{self.cluster} " if self.cluster else ""
        return f"{where}{self.source} {days}"


def costs_window(
    today: dt.date, *, last_loaded: dt.date | None, lookback_days: int, initial_days: int
) -> tuple[dt.date, dt.date]:
    """`hubcost etl`'s Cost Explorer window.

    From the first day not yet loaded (the day after the last succeeded one: days missed while
    the service was down are caught up) or today − (lookback − 1), whichever is earlier; the
    whole previous month during a month's first five days, when Cost Explorer still revises it;
    `initial_days` back on an empty database.
    """
    recent = today - dt.timedelta(days=lookback_days - 1)
    if last_loaded is None:
        first = min(today - dt.timedelta(days=initial_days), recent)
    else:
        first = min(last_loaded + ONE_DAY, recent)
    if today.day <= PREVIOUS_MONTH_GRACE_DAYS:
        first = min(first, _first_of_previous_month(today))
    return first, today


def usage_window(
    today: dt.date, *, last_loaded: dt.date | None, initial_days: int
) -> tuple[dt.date, dt.date]:
    """`hubcost etl`'s Prometheus window: the last succeeded day − 1 to today.

    The last succeeded day is usually today or yesterday, loaded while still partial, so it is
    loaded again; `initial_days` back on an empty database.
    """
    if last_loaded is None:
        return today - dt.timedelta(days=initial_days), today
    return min(last_loaded - ONE_DAY, today), today


def cost_chunks(first: dt.date, last: dt.date, today: dt.date) -> list[Chunk]:
    """The window's days cut at calendar-month boundaries, never past today."""
    last = min(last, today)
    chunks = []
    start = first
    while start <= last:
        month_end = _first_of_next_month(start) - ONE_DAY
        end = min(month_end, last)
        chunks.append(Chunk("costs", start, end))
        start = end + ONE_DAY
    return chunks


def usage_chunks(first: dt.date, last: dt.date, today: dt.date) -> list[Chunk]:
    """One chunk per day of the window, never past today."""
    last = min(last, today)
    return [
        Chunk("usage", first + dt.timedelta(days=i), first + dt.timedelta(days=i))
        for i in range((last - first).days + 1)
    ]


def _first_of_next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _first_of_previous_month(day: dt.date) -> dt.date:
    return (day.replace(day=1) - ONE_DAY).replace(day=1)
