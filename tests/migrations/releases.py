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


def load_contract_days_at_0005(conn: Connection) -> None:
    """The API tests' warehouse, written as a 0005 warehouse holds it (no cluster column)."""
    conn.execute(
        sa.text(
            "INSERT INTO cost (date, slice, hub, service, amount, unit, metric, estimated) "
            "VALUES (:date, :slice, :hub, :service, :amount, 'USD', 'UnblendedCost', false)"
        ),
        [
            dict(zip(("date", "slice", "hub", "service", "amount"), row, strict=True))
            for row in COSTS
        ],
    )
    conn.execute(
        sa.text(
            "INSERT INTO usage (date, hub, component, username, value, unit) VALUES "
            "(:date, :hub, :component, :username, :value, "
            "CASE WHEN :component = 'compute' THEN 'GiB-hours' ELSE 'GiB' END)"
        ),
        [
            dict(zip(("date", "hub", "component", "username", "value"), row, strict=True))
            for row in USAGE
        ],
    )
    conn.execute(
        sa.text(
            "INSERT INTO user_group_snapshot (date, hub, username, usergroup, username_escaped) "
            "VALUES (:date, :hub, :username, :usergroup, :username)"
        ),
        [dict(zip(("date", "hub", "username", "usergroup"), row, strict=True)) for row in GROUPS],
    )
    conn.execute(
        sa.text(
            "INSERT INTO run_log (source, first_day, last_day, started_at, finished_at, status, "
            "rows, requests) VALUES "
            "('costs', '2026-01-04', '2026-01-05', :at, :at, 'succeeded', 13, 4), "
            "('usage', '2026-01-05', '2026-01-05', :at, :at, 'succeeded', 11, 4)"
        ),
        {"at": LOADED_AT},
    )


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

RELEASES = (
    Release(
        revision="0005",
        description="the single-cluster warehouse, before the cluster migration (0006)",
        load=_load_0005,
        facts=FACTS_0005,
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
        selected = sa.select(*(sa.column(c) for c in columns)).select_from(sa.table(table))
        rows[table] = sorted((tuple(r) for r in conn.execute(selected)), key=repr)
    return rows
