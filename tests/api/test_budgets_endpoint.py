"""`GET /budgets` (docs/api.md §6.12): every budget's status on a day, worked out by hand.

The warehouse (one cluster, `default`; the tests' today is 2026-01-10):

    costs   prod EC2 6 a day from 2025-12-31 to 2026-01-05; staging EC2 3.005 on 2026-01-05;
            an `account` row of 100 on 2026-01-05, which no budget counts
    usage   prod compute alice 1, bob 2 every day (alice 2, bob 4 a day); staging dave 1
    groups  prod alice g1; bob g1, g2, multiple; staging dave none

So the last loaded day is 2026-01-05 and the first 2025-12-31: on any later day the daily rate
is the sum of 2025-12-31..2026-01-05 over those 6 days (the warehouse is younger than 7 days).
"""

from __future__ import annotations

import contextlib
import datetime as dt

import jsonschema
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from api import queries
from api.app import create_app
from api.params import Listing
from core import schema
from core.database import create_engine
from tests.api.conftest import api_settings, fixed_clock
from tests.api.databases import loaded_database
from tests.conftest import READER_ROLE
from tests.rows import CLUSTER, add_costs, add_groups, add_usage

EC2 = "EC2 - Other"
DAYS = [dt.date(2025, 12, 31) + dt.timedelta(days=n) for n in range(6)]
COSTS = [
    *((d, "attributable", "prod", EC2, "6") for d in DAYS),
    ("2026-01-05", "attributable", "staging", EC2, "3.005"),
    ("2026-01-05", "account", None, EC2, "100"),
]
USAGE = [
    *((d, "prod", "compute", "alice", 1) for d in DAYS),
    *((d, "prod", "compute", "bob", 2) for d in DAYS),
    ("2026-01-05", "staging", "compute", "dave", 1),
]
GROUPS = [
    ("2025-12-31", "prod", "alice", "g1"),
    ("2025-12-31", "prod", "bob", "g1"),
    ("2025-12-31", "prod", "bob", "g2"),
    ("2025-12-31", "prod", "bob", "multiple"),
    ("2025-12-31", "staging", "dave", "none"),
]
DEFAULT_ALERTS = [50, 80, 100]


def budget(name, amount, period, *, start=None, alert_at=DEFAULT_ALERTS, **scope) -> dict:
    """A row of core.schema.budget; scope: any of cluster, hub, usergroup, username."""
    unscoped = dict.fromkeys(("cluster", "hub", "usergroup", "username"))
    return {
        **unscoped,
        **scope,
        "name": name,
        "amount": amount,
        "period": period,
        "start_date": start,
        "alert_at": alert_at,
    }


BUDGETS = [
    budget("all-month", "100", "month"),
    budget("prod-quarter", "20", "quarter", hub="prod", alert_at=[100]),
    budget("g2-year", "1000", "year", cluster=CLUSTER, usergroup="g2"),
    budget("g1-month", "40", "month", usergroup="g1"),
    budget("dave-staging", "10", "month", hub="staging", username="dave"),
    budget("zed-month", "5", "month", username="zed"),
    budget("alice-credits", "10", "total", start=dt.date(2025, 12, 31), username="alice"),
    budget("later-credits", "50", "total", start=dt.date(2026, 2, 1)),
]

KEYS = [
    "name",
    "cluster",
    "hub",
    "usergroup",
    "user",
    "period",
    "period_start",
    "period_end",
    "amount",
    "spent",
    "daily_rate",
    "forecast",
    "spent_ratio",
    "forecast_ratio",
    "amount_reached_on",
    "last_day",
    "alert_at",
]


def load(conn) -> None:
    add_costs(conn, COSTS)
    add_usage(conn, USAGE)
    add_groups(conn, GROUPS)
    conn.execute(sa.insert(schema.budget), BUDGETS)


@contextlib.contextmanager
def app_client(url):
    with TestClient(create_app(api_settings(), database_url=url, clock=fixed_clock)) as client:
        yield client


@pytest.fixture(scope="module")
def warehouse(admin_engine, admin_url, template_database):
    with loaded_database(admin_engine, admin_url, template_database, load) as url:
        yield url


@pytest.fixture(scope="module")
def api(warehouse):
    with app_client(warehouse) as client:
        yield client


def get(api, url):
    response = api.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    if url.startswith("/budgets"):
        assert all(list(row) == KEYS for row in body), body
    return body


def row(name, cluster, hub, usergroup, user, period, start, end, amount, *status, alerts=None):
    spent, rate, forecast, spent_ratio, forecast_ratio, reached_on, last_day = status
    values = [name, cluster, hub, usergroup, user, period, start, end, amount, spent, rate]
    values += [forecast, spent_ratio, forecast_ratio, reached_on, last_day]
    return dict(zip(KEYS, [*values, alerts or DEFAULT_ALERTS], strict=True))


# On 2026-01-10 (today): spend from each period's start through 2026-01-05.
TODAY = [
    # 6 x 2 from 2025-12-31 on; 10 reached on 01-04. A credit pool has no end to forecast at.
    row("alice-credits", None, None, None, "alice", "total", "2025-12-31", None, 10,
        12, 2, None, 1.2, None, "2026-01-04", "2026-01-05"),
    # 30 + 3.005 = 33.005 -> 33.01 (half up on numeric); rate 39.005 / 6 = 6.50083;
    # forecast 33.005 + 26 x 6.50083 = 202.0267; 100 is reached 11 days after 01-05.
    row("all-month", None, None, None, None, "month", "2026-01-01", "2026-01-31", 100,
        33.01, 6.5, 202.03, 0.3301, 2.0203, "2026-01-16", "2026-01-05"),
    # 3.005 -> 3.01; rate 3.005 / 6; forecast 3.005 + 26 x 0.50083 = 16.0267; 14 more days.
    row("dave-staging", None, "staging", None, "dave", "month", "2026-01-01", "2026-01-31", 10,
        3.01, 0.5, 16.03, 0.3005, 1.6027, "2026-01-19", "2026-01-05"),
    # g1 is alice + bob (6 a day), g2 is bob (4 a day): bob counts in both groups.
    row("g1-month", None, None, "g1", None, "month", "2026-01-01", "2026-01-31", 40,
        30, 6, 186, 0.75, 4.65, "2026-01-07", "2026-01-05"),
    # 360 days left in the year: 20 + 360 x 4; 980 more at 4 a day is 245 days after 01-05.
    row("g2-year", CLUSTER, None, "g2", None, "year", "2026-01-01", "2026-12-31", 1000,
        20, 4, 1460, 0.02, 1.46, "2026-09-07", "2026-01-05"),
    # 85 days left in the quarter; 20 was already reached on 01-04 (6 + 6 + 6 + 6).
    row("prod-quarter", None, "prod", None, None, "quarter", "2026-01-01", "2026-03-31", 20,
        30, 6, 540, 1.5, 27, "2026-01-04", "2026-01-05", alerts=[100]),
    # A scope with no cost: zero, never reached.
    row("zed-month", None, None, None, "zed", "month", "2026-01-01", "2026-01-31", 5,
        0, 0, 0, 0, 0, None, "2026-01-05"),
]  # fmt: skip


def test_as_of_defaults_to_today_one_row_per_budget_by_name(api):
    # later-credits starts on 2026-02-01: no period contains today.
    assert get(api, "/budgets") == TODAY


@pytest.mark.parametrize(
    "query",
    [
        "as_of=2026-01-10",
        "as_of=",
        "as_of=2026-01-10T23:30:00-02:00",  # 2026-01-11 in UTC, after today: today
        "as_of=2027-03-01",  # a future day is today, as `to` is
        "as_of=1999-01-01&as_of=2026-01-10",  # the last value counts
    ],
)
def test_today_in_every_form(api, query):
    assert get(api, f"/budgets?{query}") == TODAY


# On 2025-12-31, the first loaded day and the last of December, of 2025's fourth quarter and of
# 2025: nothing left to forecast, and a rate of one day's cost.
LAST_DAY_OF_2025 = [
    # 8 more at 2 a day: reached on 2026-01-04, which is what happened.
    row("alice-credits", None, None, None, "alice", "total", "2025-12-31", None, 10,
        2, 2, None, 0.2, None, "2026-01-04", "2025-12-31"),
    # 94 more at 6 a day would be reached after the period: null.
    row("all-month", None, None, None, None, "month", "2025-12-01", "2025-12-31", 100,
        6, 6, 6, 0.06, 0.06, None, "2025-12-31"),
    row("dave-staging", None, "staging", None, "dave", "month", "2025-12-01", "2025-12-31", 10,
        0, 0, 0, 0, 0, None, "2025-12-31"),
    row("g1-month", None, None, "g1", None, "month", "2025-12-01", "2025-12-31", 40,
        6, 6, 6, 0.15, 0.15, None, "2025-12-31"),
    row("g2-year", CLUSTER, None, "g2", None, "year", "2025-01-01", "2025-12-31", 1000,
        4, 4, 4, 0.004, 0.004, None, "2025-12-31"),
    row("prod-quarter", None, "prod", None, None, "quarter", "2025-10-01", "2025-12-31", 20,
        6, 6, 6, 0.3, 0.3, None, "2025-12-31", alerts=[100]),
    row("zed-month", None, None, None, "zed", "month", "2025-12-01", "2025-12-31", 5,
        0, 0, 0, 0, 0, None, "2025-12-31"),
]  # fmt: skip


@pytest.mark.parametrize(
    "query",
    [
        "as_of=2025-12-31",
        "as_of=1767139200000",  # epoch milliseconds, Grafana's ${__to}
        "as_of=2025-12-31T23:59:59.999Z",
        "as_of=2026-01-01T01:00:00%2B02:00",  # 2025-12-31 23:00 UTC
    ],
)
def test_an_explicit_day(api, query):
    assert get(api, f"/budgets?{query}") == LAST_DAY_OF_2025


def test_a_day_before_any_data_has_spent_zero_and_nothing_to_forecast(api):
    body = get(api, "/budgets?as_of=2025-12-30")
    # alice-credits starts the next day: no row.
    assert [r["name"] for r in body] == [
        "all-month",
        "dave-staging",
        "g1-month",
        "g2-year",
        "prod-quarter",
        "zed-month",
    ]
    assert body[0] == row(
        "all-month", None, None, None, None, "month", "2025-12-01", "2025-12-31", 100,
        0, None, None, 0, None, None, None,
    )  # fmt: skip
    for budget in body:
        assert (budget["spent"], budget["spent_ratio"]) == (0, 0)
        assert budget["daily_rate"] is budget["forecast"] is budget["forecast_ratio"] is None
        assert budget["amount_reached_on"] is budget["last_day"] is None


def test_spent_is_the_sum_of_the_same_scope_in_the_other_endpoints(api):
    budgets = {b["name"]: b for b in get(api, "/budgets")}
    days = "from=2026-01-01&to=2026-01-10"
    groups = get(api, f"/total-costs-per-group?{days}")
    assert budgets["g1-month"]["spent"] == sum(r["cost"] for r in groups if r["usergroup"] == "g1")
    hubs = get(api, f"/total-costs-per-hub?{days}")
    assert budgets["prod-quarter"]["spent"] == sum(r["cost"] for r in hubs if r["name"] == "prod")


def test_csv_has_the_same_rows_and_the_thresholds_as_an_array_literal(api):
    response = api.get("/budgets?format=csv&as_of=2025-12-31")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.text.splitlines() == [
        ",".join(KEYS),
        'alice-credits,,,,alice,total,2025-12-31,,10,2,2,,0.2,,2026-01-04,2025-12-31,"{50,80,100}"',
        'all-month,,,,,month,2025-12-01,2025-12-31,100,6,6,6,0.06,0.06,,2025-12-31,"{50,80,100}"',
        "dave-staging,,staging,,dave,month,2025-12-01,2025-12-31,10,0,0,0,0,0,,2025-12-31,"
        '"{50,80,100}"',
        'g1-month,,,g1,,month,2025-12-01,2025-12-31,40,6,6,6,0.15,0.15,,2025-12-31,"{50,80,100}"',
        "g2-year,default,,g2,,year,2025-01-01,2025-12-31,1000,4,4,4,0.004,0.004,,2025-12-31,"
        '"{50,80,100}"',
        "prod-quarter,,prod,,,quarter,2025-10-01,2025-12-31,20,6,6,6,0.3,0.3,,2025-12-31,{100}",
        'zed-month,,,,zed,month,2025-12-01,2025-12-31,5,0,0,0,0,0,,2025-12-31,"{50,80,100}"',
    ]


def test_no_budgets_is_an_empty_list(client):
    assert get(client, "/budgets") == []
    assert client.get("/budgets?format=csv").text == ",".join(KEYS) + "\n"


DATE_PROBLEM = "not a date: use YYYY-MM-DD, an ISO 8601 date-time or epoch milliseconds"


@pytest.mark.parametrize("value", ["yesterday", "2026-02-30", "%00", "2026-1-5x", "9" * 20])
def test_a_bad_day_is_a_422_with_the_reason(api, value):
    response = api.get(f"/budgets?as_of={value}")
    assert response.status_code == 422
    assert response.json() == {
        "detail": [{"loc": ["query", "as_of"], "msg": DATE_PROBLEM, "type": "date_parsing"}]
    }


def test_every_problem_at_once(api):
    response = api.get("/budgets?as_of=soon&format=xml")
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {"loc": ["query", "as_of"], "msg": DATE_PROBLEM, "type": "date_parsing"},
            {"loc": ["query", "format"], "msg": "must be json or csv", "type": "invalid_format"},
        ]
    }


def test_range_parameters_mean_nothing_here(api):
    # Unknown parameters are ignored (docs/api.md §1), `from` and `to` included.
    assert get(api, "/budgets?from=bad&to=2025-12-31&cluster=nope") == TODAY


@pytest.fixture
def reader(warehouse):
    engine = create_engine(warehouse, pool_size=1, role=READER_ROLE)
    yield engine
    engine.dispose()


def test_the_read_only_role_reads_budgets_only_through_the_function(api, reader):
    with reader.connect() as conn:
        assert conn.execute(sa.text("SELECT current_user")).scalar_one() == READER_ROLE
        select = queries.budgets(Listing(as_of=dt.date(2025, 12, 31)))
        names = [r[0] for r in queries.run_rows(conn, select)]
        assert names == [r["name"] for r in LAST_DAY_OF_2025]
    with reader.connect() as conn, pytest.raises(sa.exc.ProgrammingError, match="permission"):
        conn.execute(sa.select(schema.budget.c.name))
    # And the app itself answers as that role.
    with api.app.state.hubcost.connect() as conn:
        assert conn.execute(sa.text("SELECT current_user")).scalar_one() == READER_ROLE


def test_the_statement_is_built_once_whatever_the_day(api):
    first = queries.budgets(Listing(as_of=dt.date(2025, 12, 31)))
    second = queries.budgets(Listing(as_of=dt.date(2026, 1, 10)))
    assert first.rows is second.rows
    assert (first.params, second.params) == (
        {"as_of": dt.date(2025, 12, 31)},
        {"as_of": dt.date(2026, 1, 10)},
    )


def test_the_document_describes_the_endpoint_and_its_rows(api):
    document = get_document(api)
    operation = document["paths"]["/budgets"]["get"]
    assert [p["name"] for p in operation["parameters"]] == ["as_of", "format"]
    assert "422" in operation["responses"]
    assert "/clusters/{cluster}/budgets" not in document["paths"]
    schema_ = document["components"]["schemas"]["Budget"]
    assert list(schema_["properties"]) == KEYS and schema_["required"] == KEYS
    for day in ("2026-01-10", "2025-12-31", "2025-12-30"):
        jsonschema.validate(get(api, f"/budgets?as_of={day}"), {"type": "array", "items": schema_})
    assert "/budgets" in get_index(api)["endpoints"]


def get_document(api) -> dict:
    response = api.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def get_index(api) -> dict:
    response = api.get("/")
    assert response.status_code == 200
    return response.json()
