"""The benchmark's database: found or started, migrated, and generated only when it must be.

BENCH_DATABASE_URL names a database the bench may empty and fill; without it the embedded
PostgreSQL runs under var/bench-pgdata (apart from the tests' and `make run`'s servers) and
the bench uses its database `hubcost_bench`. A generated warehouse is reused while its marker
(schema `bench`: the generator's source hash, days, last day, scale and row counts) still
matches the tables, because regenerating a year takes minutes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path

import psycopg
import sqlalchemy as sa

from bench import generate
from core import migrate
from core.database import create_engine

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "var" / "bench-pgdata"
DATABASE = "hubcost_bench"
READER_ROLE = "hubcost_reader"

MARKER = """
CREATE SCHEMA IF NOT EXISTS bench;
CREATE TABLE IF NOT EXISTS bench.warehouse (
    generator text NOT NULL, days int NOT NULL, last_day date NOT NULL,
    cost bigint NOT NULL, usage bigint NOT NULL, user_group_snapshot bigint NOT NULL,
    generated_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE bench.warehouse ADD COLUMN IF NOT EXISTS scale text NOT NULL DEFAULT ''
"""


def plain(url: str) -> str:
    """A libpq URL (psycopg) from a SQLAlchemy-style one."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def with_database(url: str, database: str) -> str:
    rendered = sa.engine.make_url(url).set(database=database).render_as_string(False)
    return plain(rendered)


def bench_database_url(database: str = DATABASE) -> str:
    """A URL for `database` on the bench's server, the database created when missing.

    With BENCH_DATABASE_URL, the warehouse is that database itself and any other database
    (the ETL's) is created beside it on the same server.
    """
    given = os.environ.get("BENCH_DATABASE_URL")
    if given:
        if database == DATABASE:
            return plain(given)
        url = plain(given)
    else:
        from core.embedded import embedded_database_url

        url = plain(embedded_database_url(DATA_DIR))
    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
        if exists.fetchone() is None:
            conn.execute(f'CREATE DATABASE "{database}"')
    return with_database(url, database)


def recreate_database(database: str) -> str:
    """An empty database of that name on the bench's server (dropped first if it exists)."""
    url = bench_database_url(database)
    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')
    return url


def generator_hash() -> str:
    return hashlib.sha256(Path(generate.__file__).read_bytes()).hexdigest()[:16]


def migrate_to_head(url: str) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        migrate.upgrade(engine, api_db_role=READER_ROLE)
    finally:
        engine.dispose()


def scale_key(scale: dict) -> str:
    """The generator's scale, its defaults filled in, as the marker records it."""
    full = {
        "hubs": len(generate.HUBS),
        "users_per_hub": generate.USERS_PER_HUB,
        "active_per_day": generate.ACTIVE_PER_DAY,
        "clusters": 1,
        **scale,
    }
    return json.dumps(full, sort_keys=True)


def current_marker(url: str) -> dict | None:
    with psycopg.connect(url) as conn:
        if conn.execute("SELECT to_regclass('bench.warehouse')").fetchone()[0] is None:
            return None
        conn.execute(MARKER)
        row = conn.execute(
            "SELECT generator, days, last_day, scale, cost, usage, user_group_snapshot "
            "FROM bench.warehouse"
        ).fetchone()
        if row is None:
            return None
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM cost), (SELECT count(*) FROM usage), "
            "(SELECT count(*) FROM user_group_snapshot)"
        ).fetchone()
    marker = dict(zip(("generator", "days", "last_day", "scale"), row[:4], strict=True))
    return marker if tuple(row[4:]) == tuple(counts) else None


def ensure_warehouse(url: str, *, days: int, last_day: dt.date, **scale) -> dict:
    """Migrate, then generate unless the marker says these tables already hold this warehouse.

    `scale` (hubs, users_per_hub, active_per_day, clusters) goes to the generator and into the
    marker: a database holds one scale, and another scale regenerates it.
    """
    migrate_to_head(url)
    wanted = {
        "generator": generator_hash(),
        "days": days,
        "last_day": last_day,
        "scale": scale_key(scale),
    }
    if current_marker(url) == wanted:
        return {**wanted, "reused": True}
    counts = generate.generate(url, days=days, end=last_day, **scale)
    with psycopg.connect(url) as conn:
        conn.execute(MARKER)
        conn.execute("DELETE FROM bench.warehouse")
        conn.execute(
            "INSERT INTO bench.warehouse (generator, days, last_day, scale, cost, usage, "
            "user_group_snapshot) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                wanted["generator"],
                days,
                last_day,
                wanted["scale"],
                counts["cost"],
                counts["usage"],
                counts["user_group_snapshot"],
            ),
        )
    return {**wanted, **counts, "reused": False}
