"""The previous releases' warehouses: one entry per released schema, from 0005 on.

Each entry is built as an installation of that release holds its data: an empty database
brought to the release's revision by the real migrations, then a realistic month written in
the tables as that revision has them (its own columns, by fixed statements: never through
`core.schema` or the ETL, which follow head). The month is the bench generator at a small
scale (10 hubs x 100 users, about 120 servers a day, all of December 2025) plus the API
tests' hand-made days (tests/api/dataset.py, January 2026), whose contract answers are
worked out by hand.

When a release ships a migration, add its last revision here with a loader for its tables;
tests/migrations/test_upgrades_keep_every_number.py then upgrades each entry to head.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bench import generate
from core import migrate
from core.database import create_engine
from tests.api.dataset import COSTS, GROUPS, USAGE
from tests.conftest import READER_ROLE

MONTH_END = dt.date(2025, 12, 31)
SMALL_SCALE = dict(days=31, end=MONTH_END, hubs=10, users_per_hub=100, active_per_day=120)
LOADED_AT = dt.datetime(2026, 1, 9, 6, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Release:
    revision: str
    description: str
    # Writes the month into a database at `revision` (URL of its owner).
    load: Callable[[str], None]
    # Every fact table with the columns that revision has: nothing of them may change.
    facts: dict[str, tuple[str, ...]]
    # The cluster its facts belong to; None before 0006, where the upgrade names it.
    cluster: str | None = None
    # Whether it serves the endpoints at their root paths only (/budgets, /cost-anomalies).
    root_endpoints: bool = False


CONTRACT_DAYS_0005 = (
    "INSERT INTO cost (date, slice, hub, service, amount, unit, metric, estimated) "
    "VALUES (:date, :slice, :hub, :service, :amount, 'USD', 'UnblendedCost', false)",
    "INSERT INTO usage (date, hub, component, username, value, unit) VALUES "
    "(:date, :hub, :component, :username, :value, "
    "CASE WHEN :component = 'compute' THEN 'GiB-hours' ELSE 'GiB' END)",
    "INSERT INTO user_group_snapshot (date, hub, username, usergroup, username_escaped) "
    "VALUES (:date, :hub, :username, :usergroup, :username)",
    "INSERT INTO run_log (source, first_day, last_day, started_at, finished_at, status, "
    "rows, requests) VALUES "
    "('costs', '2026-01-04', '2026-01-05', :at, :at, 'succeeded', 13, 4), "
    "('usage', '2026-01-05', '2026-01-05', :at, :at, 'succeeded', 11, 4)",
)
# From 0006 on every fact row names its cluster.
CONTRACT_DAYS_0010 = (
    "INSERT INTO cost (date, slice, hub, service, amount, unit, metric, estimated, cluster) "
    "VALUES (:date, :slice, :hub, :service, :amount, 'USD', 'UnblendedCost', false, :cluster)",
    "INSERT INTO usage (date, hub, component, username, value, unit, cluster) VALUES "
    "(:date, :hub, :component, :username, :value, "
    "CASE WHEN :component = 'compute' THEN 'GiB-hours' ELSE 'GiB' END, :cluster)",
    "INSERT INTO user_group_snapshot "
    "(date, hub, username, usergroup, username_escaped, cluster) "
    "VALUES (:date, :hub, :username, :usergroup, :username, :cluster)",
    "INSERT INTO run_log (source, first_day, last_day, started_at, finished_at, status, "
    "rows, requests, cluster) VALUES "
    "('costs', '2026-01-04', '2026-01-05', :at, :at, 'succeeded', 13, 4, :cluster), "
    "('usage', '2026-01-05', '2026-01-05', :at, :at, 'succeeded', 11, 4, :cluster)",
)


def load_contract_days(
    conn: Connection, statements: tuple[str, ...], extra: dict | None = None
) -> None:
    """The API tests' warehouse, by a release's four fixed statements (cost, usage, groups,
    run log); `extra` binds what its revision adds (the cluster)."""
    extra = extra or {}
    cost, usage, groups, run_log = (sa.text(statement) for statement in statements)
    keys = {
        cost: ("date", "slice", "hub", "service", "amount"),
        usage: ("date", "hub", "component", "username", "value"),
        groups: ("date", "hub", "username", "usergroup"),
    }
    for statement, rows in ((cost, COSTS), (usage, USAGE), (groups, GROUPS)):
        names = keys[statement]
        conn.execute(statement, [{**dict(zip(names, row, strict=True)), **extra} for row in rows])
    conn.execute(run_log, {"at": LOADED_AT, **extra})


def load_contract_days_at_0005(conn: Connection) -> None:
    """The API tests' warehouse, written as a 0005 warehouse holds it (no cluster column)."""
    load_contract_days(conn, CONTRACT_DAYS_0005)


def _load_0005(database_url: str) -> None:
    generate.generate(database_url, cluster_column=False, **SMALL_SCALE)
    engine = create_engine(database_url, pool_size=1)
    try:
        with engine.begin() as conn:
            load_contract_days_at_0005(conn)
    finally:
        engine.dispose()


FACTS_0005 = {
    "cost": ("date", "slice", "hub", "service", "amount", "unit", "metric", "estimated"),
    "usage": ("date", "hub", "component", "username", "value", "unit", "cpu_core_hours"),
    "user_group_snapshot": ("date", "hub", "username", "usergroup", "username_escaped"),
    "run_log": (
        "id",
        "source",
        "first_day",
        "last_day",
        "started_at",
        "finished_at",
        "status",
        "rows",
        "requests",
        "error",
    ),
}

# 0010's budgets, and anomalies as its detect_anomalies writes them, with fixed statements.
BUDGETS_0010 = """
INSERT INTO budget (name, cluster, hub, usergroup, username, amount, period, start_date,
                    alert_at, notify, updated_at) VALUES
    ('all-month', NULL, NULL, NULL, NULL, 2000, 'month', NULL, '{50,80,100}', '{}', :at),
    ('prod-quarter', :cluster, 'prod', NULL, NULL, 20, 'quarter', NULL, '{100}', '{}', :at),
    ('g1-year', NULL, NULL, 'g1', NULL, 40, 'year', NULL, '{50,80,100}', '{}', :at),
    ('hub-03-user', NULL, 'hub-03', NULL, 'user-03-017', 5, 'month', NULL, '{80}', '{}', :at),
    ('credits', NULL, NULL, NULL, NULL, 500, 'total', '2025-12-10', '{90}', '{}', :at)
"""
ANOMALIES_0010 = """
INSERT INTO attribution.cost_anomaly
    (cluster, date, scope, hub, username, cost, baseline, mad, score, history_days) VALUES
    (:cluster, '2025-12-20', 'hub', 'hub-03', '', 90.125, 30, 2.5, 16.21, 19),
    (:cluster, '2025-12-20', 'user', 'hub-03', 'user-03-017', 12.5, 1.25, 0.5, 15.1783, 19),
    (:cluster, '2026-01-05', 'user', 'prod', 'alice', 20.004, 5, 0.05, 202.3459, 28)
"""


def _load_0010(database_url: str) -> None:
    generate.generate(database_url, **SMALL_SCALE)
    engine = create_engine(database_url, pool_size=1)
    try:
        with engine.begin() as conn:
            load_contract_days(conn, CONTRACT_DAYS_0010, {"cluster": generate.CLUSTER})
            conn.execute(sa.text(BUDGETS_0010), {"cluster": generate.CLUSTER, "at": LOADED_AT})
            conn.execute(sa.text(ANOMALIES_0010), {"cluster": generate.CLUSTER})
    finally:
        engine.dispose()


FACTS_0010 = {
    **{table: (*columns, "cluster") for table, columns in FACTS_0005.items()},
    "cluster": ("name",),
    "budget": (
        "name",
        "cluster",
        "hub",
        "usergroup",
        "username",
        "amount",
        "period",
        "start_date",
        "alert_at",
        "notify",
        "updated_at",
    ),
    "attribution.cost_anomaly": (
        "cluster",
        "date",
        "scope",
        "hub",
        "username",
        "cost",
        "baseline",
        "mad",
        "score",
        "history_days",
    ),
}

RELEASES = (
    Release(
        revision="0005",
        description="the single-cluster warehouse, before the cluster migration (0006)",
        load=_load_0005,
        facts=FACTS_0005,
    ),
    Release(
        revision="0010",
        description="clusters, budgets, anomalies and notifications (issues 11 and 12)",
        load=_load_0010,
        facts=FACTS_0010,
        cluster=generate.CLUSTER,
        root_endpoints=True,
    ),
    # 0011 (the data version) and 0012 (interrupted runs) add no fact column: 0010's month.
    Release(
        revision="0012",
        description="the data version and interrupted runs (issues 14 and 15)",
        load=_load_0010,
        facts=FACTS_0010,
        cluster=generate.CLUSTER,
        root_endpoints=True,
    ),
)


def build(database_url: str, release: Release) -> None:
    """An empty database brought to the release's revision and loaded with its month."""
    engine = create_engine(database_url, pool_size=1)
    try:
        migrate.upgrade(engine, api_db_role=READER_ROLE, revision=release.revision)
    finally:
        engine.dispose()
    release.load(database_url)


def fact_rows(conn: Connection, release: Release) -> dict[str, list[tuple]]:
    """Every row of every fact table, in the release's columns, sorted."""
    rows = {}
    for table, columns in release.facts.items():
        schema, _, name = table.rpartition(".")
        source = sa.table(name, schema=schema or None)
        selected = sa.select(*(sa.column(c) for c in columns)).select_from(source)
        rows[table] = sorted((tuple(r) for r in conn.execute(selected)), key=repr)
    return rows
