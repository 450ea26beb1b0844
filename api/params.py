"""Query parameters → one validated object per endpoint (docs/api.md §2).

Every problem in a request is collected, then raised together as one 422. Grafana's forms are
accepted: `${__from:date}` (ISO date-time with `Z`), `${__from}` (epoch milliseconds), `{a,b}`
and repeated parameters for multi-value variables, the literal `all` for "All", and an empty
value for an empty text box.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.datastructures import QueryParams

from api.errors import InvalidParameters, Problem

DEFAULT_RANGE_DAYS = 30
# A limit above this keeps every user anyway; capping it keeps the bound value in bigint.
LIMIT_CAP = 2**31 - 1
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_DIGITS = re.compile(r"[0-9]+")
FORMATS = ("json", "csv")


@dataclass(frozen=True)
class DateRange:
    first: dt.date
    last: dt.date


@dataclass(frozen=True)
class Listing:
    """The parameters every list endpoint may take; unused ones stay None."""

    days: DateRange | None = None
    # The one day of a status endpoint (`as_of`).
    as_of: dt.date | None = None
    hubs: list[str] | None = None
    components: list[str] | None = None
    users: list[str] | None = None
    usergroups: list[str] | None = None
    limit: int | None = None
    # The `cluster` filter (root paths) or the path's cluster (/clusters/{cluster}/...).
    clusters: list[str] | None = None
    # Several clusters at a root path: one answer per cluster, each row with its `cluster`.
    by_cluster: bool = False


class Reader:
    """Reads one request's parameters, remembering every problem until `done()`."""

    def __init__(self, query: QueryParams):
        self.query = query
        self.problems: list[Problem] = []

    def problem(self, name: str, msg: str, type_: str) -> None:
        self.problems.append(Problem(name, msg, type_))

    def done(self) -> None:
        if self.problems:
            raise InvalidParameters(self.problems)

    def single(self, name: str) -> str | None:
        """The last value of a parameter, stripped; None when absent or empty."""
        values = self.query.getlist(name)
        if not values:
            return None
        value = values[-1].strip()
        return value or None

    def names(self, name: str) -> list[str] | None:
        """A multi-value filter; None means "no filter" (absent, empty or `all`)."""
        items: list[str] = []
        for raw in self.query.getlist(name):
            text = raw.strip()
            if text.startswith("{") and text.endswith("}"):
                parts: Iterable[str] = text[1:-1].split(",")
            else:
                parts = (text,)
            for part in parts:
                part = part.strip()
                if part.lower() == "all":
                    return None
                if "\x00" in part:
                    self.problem(name, "must not contain NUL characters", "invalid_value")
                    return None
                if part and part not in items:
                    items.append(part)
        return items or None

    def days(self, today: dt.date, max_range_days: int) -> DateRange | None:
        first = self._day("from")
        last = self._day("to")
        if last is _INVALID or first is _INVALID:
            return None
        # A future `to` (Grafana's "now" a few hours ahead of UTC) is today.
        last = today if last is None or last > today else last
        if first is None:
            first = _days_before(last, DEFAULT_RANGE_DAYS)
        if first > last:
            self.problem("from", f"must not be after to ({last.isoformat()})", "date_order")
            return None
        length = (last - first).days + 1
        if length > max_range_days:
            self.problem(
                "from",
                f"the range is {length} days, longer than the maximum of {max_range_days}",
                "range_too_long",
            )
            return None
        return DateRange(first, last)

    def as_of(self, today: dt.date) -> dt.date | None:
        """`as_of`: one day in the forms of `from` and `to`; default and upper bound today."""
        day = self._day("as_of")
        if day is _INVALID:
            return None
        # A future day clamps to today, as `to` does.
        return today if day is None or day > today else day

    def _day(self, name: str):
        value = self.single(name)
        if value is None:
            return None
        day = parse_day(value)
        if day is None:
            self.problem(
                name,
                "not a date: use YYYY-MM-DD, an ISO 8601 date-time or epoch milliseconds",
                "date_parsing",
            )
            return _INVALID
        return day

    def limit(self) -> int | None:
        value = self.single("limit")
        if value is None or value.lower() == "all":
            return None
        if not _DIGITS.fullmatch(value) or int(value) < 1:
            self.problem("limit", "must be a positive integer or 'all'", "positive_integer")
            return None
        return min(int(value), LIMIT_CAP)

    def check_components(self, wanted: list[str], known: set[str]) -> list[str] | None:
        """A component filter is valid when the service → component table knows every name."""
        unknown = [c for c in wanted if c not in known]
        if unknown:
            self.problem(
                "component", f"unknown component(s): {', '.join(unknown)}", "unknown_component"
            )
            return None
        return wanted

    def check_clusters(self, wanted: list[str], known: list[str]) -> list[str] | None:
        """A cluster filter is valid when the `clusters` view knows every name."""
        unknown = [c for c in wanted if c not in known]
        if unknown:
            self.problem("cluster", f"unknown cluster(s): {', '.join(unknown)}", "unknown_cluster")
            return None
        return wanted

    def response_format(self, accept: str) -> str:
        value = self.single("format")
        if value is None:
            return "csv" if _prefers_csv(accept) else "json"
        if value.lower() not in FORMATS:
            self.problem("format", "must be json or csv", "invalid_format")
            return "json"
        return value.lower()


_INVALID = object()


def parse_day(value: str) -> dt.date | None:
    """The UTC calendar day of a date, ISO 8601 date-time or epoch-milliseconds value."""
    try:
        if _DIGITS.fullmatch(value):
            return (EPOCH + dt.timedelta(milliseconds=int(value))).date()
        moment = dt.datetime.fromisoformat(value)
        if moment.tzinfo is not None:
            moment = moment.astimezone(dt.UTC)
        return moment.date()
    except (ValueError, OverflowError):
        return None


def _days_before(day: dt.date, days: int) -> dt.date:
    try:
        return day - dt.timedelta(days=days)
    except OverflowError:
        return dt.date.min


def _prefers_csv(accept: str) -> bool:
    """True when Accept names text/csv before (or without) application/json."""
    for item in accept.split(","):
        media = item.split(";", 1)[0].strip().lower()
        if media == "text/csv":
            return True
        if media in ("application/json", "application/*"):
            return False
    return False
