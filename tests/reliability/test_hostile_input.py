"""Hostile values in every API parameter: refused (422) or matched literally, never executed.

Names that look like SQL, LIKE patterns, quotes, unicode and commas are stored as hubs, users
and groups and found again exactly; SQL fragments, 10,000-character strings, NUL bytes and
dates far in the past or future sent to every parameter of every list endpoint get a 200 or a
422 in the one shape, and the tables are untouched afterwards. Hypothesis then draws arbitrary
parameter sets for every endpoint on top of the schemathesis run of tests/api/test_fuzz.py.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from api.app import create_app
from api.endpoints import LIST_ENDPOINTS
from tests.api.conftest import api_settings, fixed_clock
from tests.rows import add_costs, add_groups, add_usage

DAY = "2026-01-05"
HOSTILE_HUB = "hub'); DELETE FROM cost; --"
HOSTILE_USERS = (
    "o'brien",
    "robert'); DROP TABLE usage; --",
    "x' OR '1'='1",
    "Zoë 李小龍",
    "emoji🙂user",
    "50%_off",
    "50X_off",  # what 50%_off would also match as a LIKE pattern
    "back\\slash",
    "semi;colon",
    "a,b",
    "$1",
    ":name",
)
HOSTILE_GROUP = "g'; TRUNCATE run_log; --"
TABLES = ("cost", "usage", "user_group_snapshot", "run_log", "component", "service_component")

SQL_FRAGMENTS = (
    "' OR '1'='1",
    "'; DROP TABLE cost; --",
    "1; DELETE FROM usage",
    '") OR 1=1 --',
    "compute' UNION SELECT version() --",
    "%",
    "_",
    "\\",
    "$$",
    "{compute,' OR 1=1 --}",
)
ODD_VALUES = (
    "x" * 10_000,
    "\x00",
    "a\x00b",
    "{a\x00,b}",
    "Zoë 李小龍",
    "🙂",
    "\u202eevil",
    "",
    " ",
    "{}",
    "{,}",
    "{",
    "ALL",
)
DATES = (
    "0001-01-01",
    "0001-01-01T00:00:00Z",
    "9999-12-31",
    "9999-12-31T23:59:59.999999+14:00",
    "-1",
    "0",
    "253402300800000",  # 10000-01-01 in epoch milliseconds: past datetime's range
    "99999999999999999999999999",
    "1e400",
    "NaN",
    "2026-13-01",
    "2026-02-30",
    "2026-01-01T25:00Z",
    "+275760-09-13",
)
LIMITS = ("0", "-1", "9" * 40, "1.0", "1e3", "0x10", "１２", "all", "ALL")


def listing_params(spec) -> list[str]:
    names = [*spec.filters, "format"]
    if spec.dates:
        names += ["from", "to"]
    if spec.limit:
        names.append("limit")
    return names


def load_hostile_names(conn) -> None:
    add_costs(
        conn,
        [
            (DAY, "account", None, "EC2 - Other", "30"),
            (DAY, "attributable", HOSTILE_HUB, "EC2 - Other", "12"),
            (DAY, "attributable", HOSTILE_HUB, "Amazon Elastic File System", "6"),
        ],
    )
    add_usage(
        conn,
        [(DAY, HOSTILE_HUB, "compute", user, i + 1) for i, user in enumerate(HOSTILE_USERS)]
        + [(DAY, HOSTILE_HUB, "home storage", user, 1) for user in HOSTILE_USERS],
    )
    add_groups(conn, [(DAY, HOSTILE_HUB, user, HOSTILE_GROUP) for user in HOSTILE_USERS])


def table_counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t: conn.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar_one() for t in TABLES
        }


@pytest.fixture
def api(engine, database_url):
    with engine.begin() as conn:
        load_hostile_names(conn)
    app = create_app(api_settings(), database_url=database_url, clock=fixed_clock)
    with TestClient(app) as client:
        yield client


def assert_refused_or_answered(response, context) -> None:
    assert response.status_code in (200, 422), (context, response.status_code, response.text)
    if response.status_code == 422:
        body = response.json()
        assert list(body) == ["detail"] and body["detail"], context
        for item in body["detail"]:
            assert list(item) == ["loc", "msg", "type"] and item["loc"][0] == "query", context
    elif response.headers["content-type"].startswith("application/json"):
        assert isinstance(response.json(), list), context


def url(path: str, **params: str) -> str:
    return f"{path}?{urllib.parse.urlencode(params)}"


def test_hostile_names_are_stored_and_matched_literally(api):
    window = {"from": DAY, "to": DAY}
    for user in HOSTILE_USERS:
        rows = api.get(url("/costs-per-user", user=user, **window)).json()
        assert {(r["user"], r["hub"], r["usergroup"]) for r in rows} == {
            (user, HOSTILE_HUB, HOSTILE_GROUP)
        }, user
        assert len(rows) == 2  # compute and home storage
        usage = api.get(url("/total-usage", user=user, hub=HOSTILE_HUB, **window)).json()
        assert {r["user"] for r in usage} == {user}
        groups = api.get(url("/user-groups", username=user, **window)).json()
        assert [(g["username"], g["usergroup"]) for g in groups] == [(user, HOSTILE_GROUP)]
    # Grafana's multi-value form takes several of them at once.
    both = "{o'brien,Zoë 李小龍}"
    rows = api.get(url("/costs-per-user", user=both, component="compute", **window)).json()
    assert sorted(r["user"] for r in rows) == sorted(["o'brien", "Zoë 李小龍"])
    assert api.get(url("/hub-names", **window)).json() == [HOSTILE_HUB]
    per_group = api.get(url("/total-costs-per-group", **window)).json()
    assert [(g["usergroup"], g["cost"]) for g in per_group] == [(HOSTILE_GROUP, 18.0)]
    # Near misses match nothing: no pattern matching, no case folding, no trimming inside.
    for near in ("o'brie", "O'BRIEN", "50%", "%", "_", "robert'); DROP TABLE usage; -"):
        assert api.get(url("/costs-per-user", user=near, **window)).json() == [], near


def test_hostile_values_in_every_parameter_are_refused_or_matched_literally(api, engine):
    before = table_counts(engine)
    sent = 0
    for spec in LIST_ENDPOINTS:
        for name in listing_params(spec):
            values = SQL_FRAGMENTS + ODD_VALUES
            if name == "format":  # checked against two words; a few values say enough
                values = SQL_FRAGMENTS[:2] + ODD_VALUES[:3]
            if name in ("from", "to"):
                values += DATES
            if name == "limit":
                values += LIMITS
            for value in values:
                response = api.get(spec.path, params={name: value})
                assert_refused_or_answered(response, (spec.path, name, value[:40]))
                sent += 1
                if name in spec.filters and value in SQL_FRAGMENTS and response.status_code == 200:
                    # A fragment is a name like any other: it matches nothing here.
                    assert response.json() == [], (spec.path, name, value)
    assert sent > 700
    assert table_counts(engine) == before


FAR_DATES = [
    ({"from": "0001-01-01", "to": "0001-01-31"}, 200, 0),  # long ago: nothing, not an error
    ({"from": DAY, "to": "9999-12-31"}, 200, 2),  # a future `to` is today
    ({"from": "9999-12-30", "to": "9999-12-31"}, 422, None),  # both clamped: from > to
    ({"from": "0001-01-01"}, 422, None),  # longer than MAX_RANGE_DAYS
    ({"to": "0001-01-01"}, 200, 0),  # the default `from` would be before year 1
    ({"from": "253402300800000"}, 422, None),
]


def test_dates_far_in_the_past_or_future(api):
    for query, status, rows in FAR_DATES:
        response = api.get("/total-costs", params=query)
        assert_refused_or_answered(response, query)
        assert response.status_code == status, query
        if rows is not None:
            assert len(response.json()) == rows, query


def values():
    text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
    dates = st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)).map(dt.date.isoformat)
    moments = st.datetimes(timezones=st.timezones()).map(dt.datetime.isoformat)
    numbers = st.integers(-(10**30), 10**30).map(str)
    names = st.lists(text, max_size=4).map(lambda items: "{" + ",".join(items) + "}")
    return st.one_of(text, dates, moments, numbers, names, st.sampled_from(SQL_FRAGMENTS))


EXAMPLES_PER_ENDPOINT = 40


def test_hypothesis_parameters_never_give_a_500(api):
    # One database for every endpoint: a database per endpoint would cost more than the cases.
    for spec in LIST_ENDPOINTS:
        names = st.sampled_from([*listing_params(spec), "colour", "from ", "hub[]"])
        fuzz(api, spec.path, st.lists(st.tuples(names, values()), max_size=6))


def fuzz(api, path, params_strategy):
    @settings(
        max_examples=EXAMPLES_PER_ENDPOINT,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(params=params_strategy)
    def run(params):
        response = api.get(path, params=params)
        assert_refused_or_answered(response, (path, params))

    run()
