"""budget_status(as_of) on hand-made warehouses with written-out answers (docs/budgets.md §2),
and its spend against the same scope's rows of the public views over random scopes and days."""

from __future__ import annotations

import datetime as dt
import decimal
import random
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from core import schema
from core.database import create_engine
from tests.conftest import READER_ROLE
from tests.rows import add_costs, add_groups, add_usage, day

COLUMNS = (
    "name",
    "cluster",
    "hub",
    "usergroup",
    "username",
    "period",
    "period_start",
    "period_end",
    "amount",
    "last_day",
    "spent",
    "daily_rate",
    "forecast",
    "spent_ratio",
    "forecast_ratio",
    "amount_reached_on",
    "alert_at",
)
STATUS = sa.text("SELECT * FROM budget_status(:as_of)")


def add_budget(conn, name, amount, period="month", start=None, **scope) -> None:
    conn.execute(
        sa.insert(schema.budget).values(
            name=name,
            amount=Decimal(str(amount)),
            period=period,
            start_date=day(start) if start else None,
            **scope,
        )
    )


def status(conn, as_of) -> dict[str, dict]:
    rows = conn.execute(STATUS, {"as_of": day(as_of) if isinstance(as_of, str) else as_of})
    return {r["name"]: dict(r) for r in rows.mappings()}


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return value.isoformat()


def figures(row: dict) -> tuple:
    """(period_start, period_end, last_day, spent, daily_rate, forecast, amount_reached_on)."""
    keys = ("period_start", "period_end", "last_day", "spent", "daily_rate", "forecast")
    return (*(_text(row[k]) for k in keys), _text(row["amount_reached_on"]))


def close(a: Decimal, b: Decimal) -> bool:
    """Equal but for numeric division's last digits (16 significant at least)."""
    return abs(a - b) <= Decimal("1e-12") * max(1, abs(b))


def check_ratios(row: dict) -> None:
    assert close(row["spent_ratio"], row["spent"] / row["amount"])
    if row["forecast"] is None:
        assert row["forecast_ratio"] is None
    else:
        assert close(row["forecast_ratio"], row["forecast"] / row["amount"])


# --- Periods at their edges: $10 a day of everything from 2023-12-01 to 2025-01-03 ----------

FIRST_DAY, LAST_DAY = day("2023-12-01"), day("2025-01-03")


@pytest.fixture
def ten_a_day(conn):
    days = [FIRST_DAY + dt.timedelta(days=n) for n in range((LAST_DAY - FIRST_DAY).days + 1)]
    add_costs(conn, [(d, "attributable", "a", "EC2 - Other", 10) for d in days])
    add_budget(conn, "m", 200)
    add_budget(conn, "q", 1000, "quarter")
    add_budget(conn, "y", 5000, "year")
    add_budget(conn, "t", 100, "total", start="2024-06-01")
    add_budget(conn, "late", 100, "total", start="2025-06-01")
    add_budget(conn, "idle", 50, hub="zz")
    return conn


# name: (period_start, period_end, last_day, spent, daily_rate, forecast, amount_reached_on)
EDGES = {
    "2023-11-15": {  # before any data: nothing loaded, so no rate and no forecast
        "m": ("2023-11-01", "2023-11-30", None, "0", None, None, None),
        "q": ("2023-10-01", "2023-12-31", None, "0", None, None, None),
        "y": ("2023-01-01", "2023-12-31", None, "0", None, None, None),
        "idle": ("2023-11-01", "2023-11-30", None, "0", None, None, None),
    },
    "2024-02-10": {  # leap February, mid-month: reached on the 20th, forecast 29 days
        "m": ("2024-02-01", "2024-02-29", "2024-02-10", "100", "10", "290", "2024-02-20"),
        "q": ("2024-01-01", "2024-03-31", "2024-02-10", "410", "10", "910", None),
        "y": ("2024-01-01", "2024-12-31", "2024-02-10", "410", "10", "3660", None),
        "idle": ("2024-02-01", "2024-02-29", "2024-02-10", "0", "0", "0", None),
    },
    "2024-02-29": {
        "m": ("2024-02-01", "2024-02-29", "2024-02-29", "290", "10", "290", "2024-02-20"),
        "q": ("2024-01-01", "2024-03-31", "2024-02-29", "600", "10", "910", None),
        "y": ("2024-01-01", "2024-12-31", "2024-02-29", "600", "10", "3660", None),
        "idle": ("2024-02-01", "2024-02-29", "2024-02-29", "0", "0", "0", None),
    },
    "2024-03-01": {
        "m": ("2024-03-01", "2024-03-31", "2024-03-01", "10", "10", "310", "2024-03-20"),
        "q": ("2024-01-01", "2024-03-31", "2024-03-01", "610", "10", "910", None),
        "y": ("2024-01-01", "2024-12-31", "2024-03-01", "610", "10", "3660", None),
        "idle": ("2024-03-01", "2024-03-31", "2024-03-01", "0", "0", "0", None),
    },
    "2024-03-31": {
        "m": ("2024-03-01", "2024-03-31", "2024-03-31", "310", "10", "310", "2024-03-20"),
        "q": ("2024-01-01", "2024-03-31", "2024-03-31", "910", "10", "910", None),
        "y": ("2024-01-01", "2024-12-31", "2024-03-31", "910", "10", "3660", None),
        "idle": ("2024-03-01", "2024-03-31", "2024-03-31", "0", "0", "0", None),
    },
    "2024-04-01": {
        "m": ("2024-04-01", "2024-04-30", "2024-04-01", "10", "10", "300", "2024-04-20"),
        "q": ("2024-04-01", "2024-06-30", "2024-04-01", "10", "10", "910", None),
        "y": ("2024-01-01", "2024-12-31", "2024-04-01", "920", "10", "3660", None),
        "idle": ("2024-04-01", "2024-04-30", "2024-04-01", "0", "0", "0", None),
    },
    "2024-06-01": {  # the total budget's first day
        "m": ("2024-06-01", "2024-06-30", "2024-06-01", "10", "10", "300", "2024-06-20"),
        "q": ("2024-04-01", "2024-06-30", "2024-06-01", "620", "10", "910", None),
        "y": ("2024-01-01", "2024-12-31", "2024-06-01", "1530", "10", "3660", None),
        "t": ("2024-06-01", None, "2024-06-01", "10", "10", None, "2024-06-10"),
        "idle": ("2024-06-01", "2024-06-30", "2024-06-01", "0", "0", "0", None),
    },
    "2024-12-31": {  # the last day of Q4 and of the year
        "m": ("2024-12-01", "2024-12-31", "2024-12-31", "310", "10", "310", "2024-12-20"),
        "q": ("2024-10-01", "2024-12-31", "2024-12-31", "920", "10", "920", None),
        "y": ("2024-01-01", "2024-12-31", "2024-12-31", "3660", "10", "3660", None),
        "t": ("2024-06-01", None, "2024-12-31", "2140", "10", None, "2024-06-10"),
        "idle": ("2024-12-01", "2024-12-31", "2024-12-31", "0", "0", "0", None),
    },
    "2025-01-01": {  # the next day: Q1 of 2025 (90 days)
        "m": ("2025-01-01", "2025-01-31", "2025-01-01", "10", "10", "310", "2025-01-20"),
        "q": ("2025-01-01", "2025-03-31", "2025-01-01", "10", "10", "900", None),
        "y": ("2025-01-01", "2025-12-31", "2025-01-01", "10", "10", "3650", None),
        "t": ("2024-06-01", None, "2025-01-01", "2150", "10", None, "2024-06-10"),
        "idle": ("2025-01-01", "2025-01-31", "2025-01-01", "0", "0", "0", None),
    },
    "2025-01-10": {  # after the last loaded day (01-03): spend through it, forecast from it
        "m": ("2025-01-01", "2025-01-31", "2025-01-03", "30", "10", "310", "2025-01-20"),
        "q": ("2025-01-01", "2025-03-31", "2025-01-03", "30", "10", "900", None),
        "y": ("2025-01-01", "2025-12-31", "2025-01-03", "30", "10", "3650", None),
        "t": ("2024-06-01", None, "2025-01-03", "2170", "10", None, "2024-06-10"),
        "idle": ("2025-01-01", "2025-01-31", "2025-01-03", "0", "0", "0", None),
    },
    "2025-06-01": {  # periods with nothing loaded yet: the rate of the last loaded days
        "m": ("2025-06-01", "2025-06-30", "2025-01-03", "0", "10", "300", "2025-06-20"),
        "q": ("2025-04-01", "2025-06-30", "2025-01-03", "0", "10", "910", None),
        "y": ("2025-01-01", "2025-12-31", "2025-01-03", "30", "10", "3650", None),
        "t": ("2024-06-01", None, "2025-01-03", "2170", "10", None, "2024-06-10"),
        "late": ("2025-06-01", None, "2025-01-03", "0", "10", None, "2025-06-10"),
        "idle": ("2025-06-01", "2025-06-30", "2025-01-03", "0", "0", "0", None),
    },
}


@pytest.mark.parametrize("as_of", list(EDGES))
def test_each_period_at_its_edges(ten_a_day, as_of):
    rows = status(ten_a_day, as_of)
    assert {name: figures(row) for name, row in rows.items()} == EDGES[as_of]
    for row in rows.values():
        check_ratios(row)


def test_a_whole_row(ten_a_day):
    rows = status(ten_a_day, "2024-03-01")
    assert list(rows["m"]) == list(COLUMNS)
    assert rows["m"] == {
        "name": "m",
        "cluster": None,
        "hub": None,
        "usergroup": None,
        "username": None,
        "period": "month",
        "period_start": day("2024-03-01"),
        "period_end": day("2024-03-31"),
        "amount": Decimal("200"),
        "last_day": day("2024-03-01"),
        "spent": Decimal("10"),
        "daily_rate": Decimal("10"),
        "forecast": Decimal("310"),
        "spent_ratio": Decimal("0.05"),
        "forecast_ratio": Decimal("1.55"),
        "amount_reached_on": day("2024-03-20"),
        "alert_at": [50, 80, 100],
    }


def test_a_total_budget_starting_after_as_of_has_no_row(ten_a_day):
    assert "t" not in status(ten_a_day, "2024-05-31")
    assert "t" in status(ten_a_day, "2024-06-01")


def test_a_rate_too_low_to_reach_the_amount_in_a_century_gives_no_day(conn):
    add_costs(conn, [("2024-05-01", "attributable", "a", "EC2 - Other", "0.000001")])
    add_budget(conn, "pool", "99999999", "total", start="2024-05-01")
    add_budget(conn, "m", "99999999")
    rows = status(conn, "2024-05-01")
    assert rows["pool"]["daily_rate"] == Decimal("0.000001")
    assert rows["pool"]["amount_reached_on"] is None
    assert rows["m"]["amount_reached_on"] is None


def test_a_credit_makes_the_rate_negative_and_projects_no_day(conn):
    add_costs(
        conn,
        [
            ("2024-05-01", "attributable", "a", "EC2 - Other", 10),
            ("2024-05-02", "attributable", "a", "EC2 - Other", -14),
        ],
    )
    add_budget(conn, "m", 100)
    add_budget(conn, "pool", 100, "total", start="2024-05-01")
    rows = status(conn, "2024-05-02")
    assert figures(rows["m"]) == (
        "2024-05-01",
        "2024-05-31",
        "2024-05-02",
        "-4",
        "-2",
        "-62",
        None,
    )
    assert rows["pool"]["amount_reached_on"] is None


# --- The forecast: cost n on day n of May 2024 -------------------------------------------


@pytest.fixture
def rising(conn):
    days = [f"2024-05-{n:02d}" for n in range(1, 21)]
    add_costs(conn, [(d, "attributable", "a", "EC2 - Other", int(d[-2:])) for d in days])
    # ann has the hub's whole cost on the 17th and 18th, nothing on the other days.
    add_usage(conn, [(d, "a", "compute", "ann", 1) for d in ("2024-05-17", "2024-05-18")])
    add_budget(conn, "m300", 300)
    add_budget(conn, "m200", 200)
    add_budget(conn, "m150", 150)
    add_budget(conn, "ann60", 60, username="ann")
    add_budget(conn, "pool", 200, "total", start="2024-05-10")
    return conn


RISING = {
    # The mean of the 14th..20th is 17; 11 days left.
    "2024-05-20": {
        "m300": ("2024-05-01", "2024-05-31", "2024-05-20", "210", "17", "397", "2024-05-26"),
        "m200": ("2024-05-01", "2024-05-31", "2024-05-20", "210", "17", "397", "2024-05-20"),
        "m150": ("2024-05-01", "2024-05-31", "2024-05-20", "210", "17", "397", "2024-05-17"),
        # 35 over the last 7 loaded days, days without her cost counting 0: 5 a day.
        "ann60": ("2024-05-01", "2024-05-31", "2024-05-20", "35", "5", "90", "2024-05-25"),
        # 165 spent since the 10th; 35 left at 17 a day: 3 more days.
        "pool": ("2024-05-10", None, "2024-05-20", "165", "17", None, "2024-05-23"),
    },
    # Three days loaded: their mean (2), not a mean over 7.
    "2024-05-03": {
        "m300": ("2024-05-01", "2024-05-31", "2024-05-03", "6", "2", "62", None),
        "m200": ("2024-05-01", "2024-05-31", "2024-05-03", "6", "2", "62", None),
        "m150": ("2024-05-01", "2024-05-31", "2024-05-03", "6", "2", "62", None),
        "ann60": ("2024-05-01", "2024-05-31", "2024-05-03", "0", "0", "0", None),
    },
    "2024-05-01": {
        "m300": ("2024-05-01", "2024-05-31", "2024-05-01", "1", "1", "31", None),
        "m200": ("2024-05-01", "2024-05-31", "2024-05-01", "1", "1", "31", None),
        "m150": ("2024-05-01", "2024-05-31", "2024-05-01", "1", "1", "31", None),
        "ann60": ("2024-05-01", "2024-05-31", "2024-05-01", "0", "0", "0", None),
    },
}


@pytest.mark.parametrize("as_of", list(RISING))
def test_forecast_and_the_day_the_amount_is_reached(rising, as_of):
    rows = status(rising, as_of)
    assert {name: figures(row) for name, row in rows.items()} == RISING[as_of]
    for row in rows.values():
        check_ratios(row)


def test_the_rate_is_over_the_last_seven_loaded_days(conn):
    # Nothing loaded on the 15th and 16th: the last 7 loaded days are the 12th-14th ($7)
    # and the 17th-20th ($14), 77 / 7 = 11 a day.
    before = [f"2024-05-{n:02d}" for n in range(1, 15)]
    after = [f"2024-05-{n:02d}" for n in range(17, 21)]
    add_costs(
        conn,
        [(d, "attributable", "a", "EC2 - Other", 7) for d in before]
        + [(d, "attributable", "a", "EC2 - Other", 14) for d in after],
    )
    add_budget(conn, "m", 500)
    assert figures(status(conn, "2024-05-20")["m"]) == (
        "2024-05-01",
        "2024-05-31",
        "2024-05-20",
        "154",
        "11",
        "275",
        None,
    )
    # As of a day not loaded: spend and rate through the 14th, 17 days left.
    assert figures(status(conn, "2024-05-16")["m"]) == (
        "2024-05-01",
        "2024-05-31",
        "2024-05-14",
        "98",
        "7",
        "217",
        None,
    )


def test_the_account_slice_is_not_spend_but_its_days_are_loaded_days(conn):
    add_costs(
        conn,
        [
            ("2024-05-01", "attributable", "a", "EC2 - Other", 4),
            ("2024-05-01", "account", None, "EC2 - Other", 100),
            ("2024-05-02", "account", None, "EC2 - Other", 100),
        ],
    )
    add_budget(conn, "m", 500)
    assert figures(status(conn, "2024-05-02")["m"]) == (
        "2024-05-01",
        "2024-05-31",
        "2024-05-02",
        "4",
        "2",
        "62",
        None,
    )


# --- Every shape of scope: two clusters, three days of May 2024 --------------------------

SCOPE_DAYS = ("2024-05-01", "2024-05-02", "2024-05-03")


@pytest.fixture
def two_clusters(conn):
    # Per day: c1 hub a $12 (ann 2 : bob 1), c1 hub b $6 (ann 1 : cy 1), c2 hub a $20
    # (ann 1 : dee 3). Groups: on c1/a ann is in physics and chem (and `multiple`), bob in
    # physics; on c1/b ann is in chem and cy absent (`none`); on c2/a ann physics, dee chem.
    layout = {
        "c1": {"a": (12, {"ann": 2, "bob": 1}), "b": (6, {"ann": 1, "cy": 1})},
        "c2": {"a": (20, {"ann": 1, "dee": 3})},
    }
    groups = {
        "c1": [
            ("a", "ann", "multiple"),
            ("a", "ann", "physics"),
            ("a", "ann", "chem"),
            ("a", "bob", "physics"),
            ("b", "ann", "chem"),
        ],
        "c2": [("a", "ann", "physics"), ("a", "dee", "chem")],
    }
    for cluster, hubs in layout.items():
        add_costs(
            conn,
            [
                (d, "attributable", hub, "EC2 - Other", cost)
                for d in SCOPE_DAYS
                for hub, (cost, _) in hubs.items()
            ],
            cluster=cluster,
        )
        add_usage(
            conn,
            [
                (d, hub, "compute", user, value)
                for d in SCOPE_DAYS
                for hub, (_, users) in hubs.items()
                for user, value in users.items()
            ],
            cluster=cluster,
        )
        add_groups(conn, [(SCOPE_DAYS[0], *g) for g in groups[cluster]], cluster=cluster)
    return conn


# name: (scope, cost a day). As of the 3rd: spent 3 x, rate x, forecast 31 x.
SCOPES = {
    "everything": ({}, 38),
    "cluster c1": ({"cluster": "c1"}, 18),
    "cluster c2": ({"cluster": "c2"}, 20),
    "hub a, both clusters": ({"hub": "a"}, 32),
    "c1 hub a": ({"cluster": "c1", "hub": "a"}, 12),
    "user ann": ({"username": "ann"}, 16),
    "ann on hub a": ({"username": "ann", "hub": "a"}, 13),
    "ann in c1": ({"username": "ann", "cluster": "c1"}, 11),
    "nobody": ({"username": "nobody"}, 0),
    "group physics": ({"usergroup": "physics"}, 17),
    "group chem": ({"usergroup": "chem"}, 26),
    "group multiple": ({"usergroup": "multiple"}, 8),
    "group none": ({"usergroup": "none"}, 3),
    "chem on hub a": ({"usergroup": "chem", "hub": "a"}, 23),
    "chem on hub b": ({"usergroup": "chem", "hub": "b"}, 3),
    "physics in c2": ({"usergroup": "physics", "cluster": "c2"}, 5),
    "physics, ann": ({"usergroup": "physics", "username": "ann"}, 13),
    "chem, ann on c1 b": ({"usergroup": "chem", "username": "ann", "hub": "b"}, 3),
}


def test_every_shape_of_scope(two_clusters):
    for name, (scope, _) in SCOPES.items():
        add_budget(two_clusters, name, 10000, **scope)
    rows = status(two_clusters, "2024-05-03")
    got = {name: (row["spent"], row["daily_rate"], row["forecast"]) for name, row in rows.items()}
    assert got == {name: (3 * x, x, 31 * x) for name, (_, x) in SCOPES.items()}
    for name, (scope, _) in SCOPES.items():
        assert {k: rows[name][k] for k in scope} == scope
        assert rows[name]["last_day"] == day("2024-05-03")


def test_a_user_in_several_groups_counts_in_each_group_budget(two_clusters):
    groups = ("physics", "chem", "multiple", "none")
    for group in groups:
        add_budget(two_clusters, group, 10000, usergroup=group)
    add_budget(two_clusters, "everyone", 10000, hub="a")
    add_budget(two_clusters, "everyone b", 10000, hub="b")
    rows = status(two_clusters, "2024-05-01")
    # ann's $8 on c1/a is in physics, chem and multiple: the groups add up to more than the
    # users cost (hubs a and b: all of it attributed to users).
    assert sum(rows[g]["spent"] for g in groups) == 17 + 26 + 8 + 3 == 54
    assert rows["everyone"]["spent"] + rows["everyone b"]["spent"] == 38


# --- Today, the role --------------------------------------------------------------------


def test_the_view_is_the_function_on_the_utc_day_whatever_the_session_time_zone(conn):
    today = conn.execute(sa.text("SELECT (now() AT TIME ZONE 'UTC')::date")).scalar_one()
    add_costs(
        conn,
        [
            (today + dt.timedelta(days=n), "attributable", "a", "EC2 - Other", 10**n)
            for n in (-1, 0, 1)
        ],
    )
    add_budget(conn, "pool", 1000, "total", start=(today - dt.timedelta(days=5)).isoformat())
    expected = status(conn, today)
    assert expected["pool"]["spent"] == Decimal("1.1")
    for zone in ("Pacific/Kiritimati", "Etc/GMT+12", "UTC"):
        conn.execute(sa.text(f"SET TIME ZONE '{zone}'"))
        rows = conn.execute(sa.text("SELECT * FROM budget_status")).mappings().all()
        assert {r["name"]: dict(r) for r in rows} == expected, zone


def test_the_read_only_role_calls_budget_status(database_url, engine):
    with engine.begin() as owner:
        add_costs(owner, [("2024-05-01", "attributable", "a", "EC2 - Other", 4)])
        add_budget(owner, "m", 10, hub="a")
    reader = create_engine(database_url, pool_size=1, role=READER_ROLE)
    try:
        with reader.connect() as conn:
            assert conn.execute(sa.text("SELECT current_user")).scalar_one() == READER_ROLE
            assert status(conn, "2024-05-01")["m"]["spent"] == 4
            conn.execute(sa.text("SELECT * FROM budget_status")).all()
            assert (
                conn.execute(
                    sa.text(
                        "SELECT sum(cost) FROM budget_scope_costs(NULL, 'a', NULL, NULL, "
                        "DATE '2024-05-01', DATE '2024-05-31')"
                    )
                ).scalar_one()
                == 4
            )
    finally:
        reader.dispose()


# --- Property: spent is the sum of the scope's rows in the views -------------------------

CLUSTER_HUBS = {"c1": ("a", "b"), "c2": ("a",)}
USERS = ("ann", "bob", "cy", "dee")
# c1 loaded 2024-12-10..2025-01-25 except 2025-01-05; c2 2024-12-20..2025-01-15.
LOADED = {
    "c1": [
        day("2024-12-10") + dt.timedelta(days=n)
        for n in range(47)
        if day("2024-12-10") + dt.timedelta(days=n) != day("2025-01-05")
    ],
    "c2": [day("2024-12-20") + dt.timedelta(days=n) for n in range(27)],
}


def random_warehouse(conn) -> None:
    rng = random.Random(12)
    for cluster, days in LOADED.items():
        hubs = CLUSTER_HUBS[cluster]
        costs, usage = [], []
        for d in days:
            costs.append((d, "account", None, "EC2 - Other", rng.randint(1000, 2000)))
            for hub in hubs:
                costs.append((d, "attributable", hub, "EC2 - Other", rng.randint(1, 4000) / 100))
                if rng.random() < 0.7:
                    costs.append(
                        (d, "attributable", hub, "Amazon Simple Storage Service", rng.random())
                    )
                for user in USERS:
                    if rng.random() < 0.6:
                        usage.append((d, hub, "compute", user, rng.randint(1, 900) / 7))
                    if rng.random() < 0.8:
                        usage.append((d, hub, "home storage", user, rng.randint(1, 50)))
        add_costs(conn, costs, cluster=cluster)
        add_usage(conn, usage, cluster=cluster)
    add_groups(
        conn,
        [
            ("2024-12-10", "a", "ann", "multiple"),
            ("2024-12-10", "a", "ann", "physics"),
            ("2024-12-10", "a", "ann", "chem"),
            ("2024-12-10", "a", "bob", "physics"),
            ("2024-12-10", "b", "cy", "chem"),
            ("2025-01-02", "a", "ann", "chem"),
            ("2025-01-02", "a", "dee", "physics"),
        ],
        cluster="c1",
    )
    add_groups(conn, [("2024-12-20", "a", "bob", "chem")], cluster="c2")


class Views(dict):
    """The views' rows, {source: [row, ...]}; shown short in Hypothesis's reports."""

    def __repr__(self) -> str:
        return f"Views({', '.join(f'{k}: {len(v)} rows' for k, v in self.items())})"


@pytest.fixture
def random_views(conn) -> Views:
    random_warehouse(conn)
    return Views(view_rows(conn))


def view_rows(conn) -> dict[str, list[dict]]:
    sources = {
        "total": "SELECT cluster, date, cost FROM total_costs WHERE name = 'attributable'",
        "hub": "SELECT cluster, date, hub, cost FROM hub_costs",
        "user": "SELECT cluster, date, hub, username, cost FROM user_costs",
        "group": "SELECT cluster, date, usergroup, cost FROM group_costs",
        "user_group": "SELECT cluster, date, hub, username, usergroup, cost "
        "FROM user_costs_by_group",
        "loaded": "SELECT DISTINCT cluster, date FROM total_costs",
    }
    return {
        key: [dict(r) for r in conn.execute(sa.text(sql)).mappings()]
        for key, sql in sources.items()
    }


def scope_rows(views: dict, scope: dict) -> list[dict]:
    """The rows of the view docs/budgets.md §1 names for this shape of scope."""
    if scope.get("usergroup") and (scope.get("hub") or scope.get("username")):
        source = "user_group"
    elif scope.get("usergroup"):
        source = "group"
    elif scope.get("username"):
        source = "user"
    elif scope.get("hub"):
        source = "hub"
    else:
        source = "total"
    return [
        r
        for r in views[source]
        if all(r[key] == value for key, value in scope.items() if value is not None)
    ]


def calendar_period(period: str, start: dt.date | None, as_of: dt.date):
    if period == "total":
        return start, None
    first_month = {"month": as_of.month, "quarter": 3 * ((as_of.month - 1) // 3) + 1, "year": 1}
    begin = as_of.replace(month=first_month[period], day=1)
    months = {"month": 1, "quarter": 3, "year": 12}[period]
    end_month = begin.month - 1 + months
    after = dt.date(begin.year + end_month // 12, end_month % 12 + 1, 1)
    return begin, after - dt.timedelta(days=1)


def expected_status(views: dict, budget: dict, as_of: dt.date) -> dict | None:
    start, end = calendar_period(budget["period"], budget["start_date"], as_of)
    if start > as_of:
        return None
    loaded = sorted(
        {
            r["date"]
            for r in views["loaded"]
            if r["date"] <= as_of and budget["cluster"] in (None, r["cluster"])
        }
    )
    if not loaded:
        return {"period_start": start, "period_end": end, "last_day": None, "spent": 0}
    last, window = loaded[-1], loaded[-7:]
    rows = scope_rows(views, {k: budget[k] for k in ("cluster", "hub", "usergroup", "username")})
    daily: dict[dt.date, Decimal] = {}
    for r in rows:
        daily[r["date"]] = daily.get(r["date"], Decimal(0)) + r["cost"]
    in_period = sorted((d, c) for d, c in daily.items() if start <= d <= last)
    spent = sum((c for _, c in in_period), Decimal(0))
    recent = sum((c for d, c in daily.items() if window[0] <= d <= last), Decimal(0))
    reached, running = None, Decimal(0)
    for d, c in in_period:
        running += c
        if running >= budget["amount"]:
            reached = d
            break
    counted = max(last, start - dt.timedelta(days=1))
    if reached is None and recent > 0:
        to_amount = (budget["amount"] - spent) * len(window) / recent
        days = int(to_amount.to_integral_value(decimal.ROUND_CEILING))
        if days <= ((end - counted).days if end else 36525):
            reached = counted + dt.timedelta(days=days)
    return {
        "period_start": start,
        "period_end": end,
        "last_day": last,
        "spent": spent,
        "daily_rate": recent / len(window),
        "forecast": None if end is None else spent + (end - counted).days * recent / len(window),
        "amount_reached_on": reached,
    }


budgets = st.fixed_dictionaries(
    {
        "cluster": st.sampled_from([None, "c1", "c2"]),
        "hub": st.sampled_from([None, "a", "b"]),
        "usergroup": st.sampled_from([None, "physics", "chem", "multiple", "none"]),
        "username": st.sampled_from([None, *USERS, "zed"]),
        "period": st.sampled_from(["month", "quarter", "year", "total"]),
        "start_date": st.dates(dt.date(2024, 11, 25), dt.date(2025, 1, 31)),
        "amount": st.sampled_from([Decimal("1"), Decimal("40"), Decimal("300"), Decimal("5000")]),
    }
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    chosen=st.lists(budgets, min_size=1, max_size=4),
    as_of=st.dates(dt.date(2024, 12, 1), dt.date(2025, 2, 10)),
)
def test_spent_is_the_sum_of_the_scopes_rows_in_the_views(conn, random_views, chosen, as_of):
    # The warehouse is built once for all examples: they only add budgets, rolled back.
    chosen = [b if b["period"] == "total" else {**b, "start_date": None} for b in chosen]
    savepoint = conn.begin_nested()
    try:
        for n, b in enumerate(chosen):
            add_budget(
                conn,
                f"b{n}",
                b["amount"],
                b["period"],
                b["start_date"] and b["start_date"].isoformat(),
                **{k: b[k] for k in ("cluster", "hub", "usergroup", "username")},
            )
        rows = status(conn, as_of)
    finally:
        savepoint.rollback()
    with decimal.localcontext(prec=80):
        for n, b in enumerate(chosen):
            expected = expected_status(random_views, b, as_of)
            row = rows.get(f"b{n}")
            if expected is None:
                assert row is None, b
                continue
            assert row["spent"] == expected["spent"], (b, as_of)
            event("spent > 0" if row["spent"] else "spent 0")
            event(f"reached: {row['amount_reached_on'] is not None}")
            assert (row["period_start"], row["period_end"], row["last_day"]) == (
                expected["period_start"],
                expected["period_end"],
                expected["last_day"],
            )
            if expected["last_day"] is None:
                assert row["daily_rate"] is row["forecast"] is row["amount_reached_on"] is None
                continue
            assert close(row["daily_rate"], expected["daily_rate"]), (b, as_of)
            if expected["forecast"] is None:
                assert row["forecast"] is None
            else:
                assert close(row["forecast"], expected["forecast"]), (b, as_of)
            assert row["amount_reached_on"] == expected["amount_reached_on"], (b, as_of)
