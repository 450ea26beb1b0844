"""Parameter parsing (docs/api.md §2), without a database."""

from __future__ import annotations

import datetime as dt

import pytest
from starlette.datastructures import QueryParams

from api.errors import InvalidParameters
from api.params import DateRange, Reader, parse_day

TODAY = dt.date(2026, 1, 10)


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("2026-01-04", "2026-01-04"),
        ("2026-01-04T00:00Z", "2026-01-04"),
        ("2026-01-04T23:59Z", "2026-01-04"),
        ("2026-01-04T00:00:00.000Z", "2026-01-04"),  # Grafana's ${__from:date}
        ("2026-01-04T23:59:59.999Z", "2026-01-04"),
        ("2026-01-04T23:30:00-02:00", "2026-01-05"),  # an offset: converted to UTC first
        ("2026-01-05T01:00:00.5+05:00", "2026-01-04"),
        ("2026-01-04T12:00:00", "2026-01-04"),  # no offset means UTC
        ("1767484800000", "2026-01-04"),  # Grafana's ${__from}: epoch milliseconds
        ("1767571199999", "2026-01-04"),
        ("0", "1970-01-01"),
    ],
)
def test_each_form_becomes_a_utc_day(text, day):
    assert parse_day(text) == dt.date.fromisoformat(day)


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "2026-13-01",
        "2026-02-30",
        "04/01/2026",
        "-1",
        "1e12",
        "9" * 30,
        "２０２６-01-01",
    ],
)
def test_what_is_not_a_date(text):
    assert parse_day(text) is None


def reader(query: str) -> Reader:
    return Reader(QueryParams(query))


def test_defaults_are_the_30_days_before_today():
    assert reader("").days(TODAY, 1100) == DateRange(dt.date(2025, 12, 11), TODAY)
    assert reader("to=2026-01-05").days(TODAY, 1100) == DateRange(
        dt.date(2025, 12, 6), dt.date(2026, 1, 5)
    )


def test_a_future_to_is_clamped_to_today_before_the_checks():
    assert reader("from=2026-01-09&to=2027-06-01").days(TODAY, 2) == DateRange(
        dt.date(2026, 1, 9), TODAY
    )


def test_every_problem_is_reported_at_once():
    r = reader("from=nope&to=2026-99-01&limit=0&format=xml")
    r.days(TODAY, 1100)
    r.limit()
    r.response_format("")
    with pytest.raises(InvalidParameters) as caught:
        r.done()
    assert [(p.name, p.type) for p in caught.value.problems] == [
        ("from", "date_parsing"),
        ("to", "date_parsing"),
        ("limit", "positive_integer"),
        ("format", "invalid_format"),
    ]


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("from=2026-01-06&to=2026-01-05", "date_order"),
        ("from=2025-01-01&to=2026-01-05", "range_too_long"),
    ],
)
def test_range_problems(query, problem):
    r = reader(query)
    assert r.days(TODAY, 100) is None
    assert [(p.name, p.type) for p in r.problems] == [("from", problem)]


def test_the_longest_range_allowed_is_max_range_days_inclusive():
    assert reader("from=2026-01-01&to=2026-01-10").days(TODAY, 10) is not None
    assert reader("from=2025-12-31&to=2026-01-10").days(TODAY, 10) is None


def test_a_range_ending_at_the_first_day_of_the_calendar_still_parses():
    r = reader("to=0001-01-05")
    assert r.days(TODAY, 100_000) == DateRange(dt.date.min, dt.date(1, 1, 5))


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("", None),
        ("hub=", None),
        ("hub=all", None),
        ("hub=ALL", None),
        ("hub={a,all}", None),
        ("hub={}", None),
        ("hub=a", ["a"]),
        ("hub={a,b}", ["a", "b"]),
        ("hub=a&hub=b&hub=a", ["a", "b"]),
        ("hub={a,b}&hub=c", ["a", "b", "c"]),
        ("hub=home%20storage", ["home storage"]),
    ],
)
def test_filters(query, names):
    r = reader(query)
    assert r.names("hub") == names
    assert r.problems == []


@pytest.mark.parametrize(
    ("query", "limit"),
    [
        ("", None),
        ("limit=", None),
        ("limit=all", None),
        ("limit=3", 3),
        ("limit=99999999999", 2**31 - 1),
    ],
)
def test_limit(query, limit):
    r = reader(query)
    assert r.limit() == limit
    assert r.problems == []


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "ten", "１"])
def test_limit_must_be_a_positive_integer(value):
    r = reader(f"limit={value}")
    assert r.limit() is None
    assert [p.type for p in r.problems] == ["positive_integer"]


@pytest.mark.parametrize(
    ("query", "accept", "expected"),
    [
        ("", "", "json"),
        ("", "text/csv", "csv"),
        ("", "text/csv;q=0.9, application/json", "csv"),
        ("", "application/json, text/csv", "json"),
        ("format=csv", "application/json", "csv"),
        ("format=JSON", "text/csv", "json"),
    ],
)
def test_response_format(query, accept, expected):
    assert reader(query).response_format(accept) == expected
