"""A warehouse dumped with pg_dump and restored with pg_restore (docs/operations.md, "Backup and
restore") is the same warehouse: every row, every answer, and the next ETL run.

The warehouse is loaded by real `hubcost` processes (an operator's service mapping, a budget,
then a demo backfill of 41 days, which also records the budget's events); it is dumped in
PostgreSQL's custom format by the server's own major version of pg_dump and restored into a
fresh database (from template0) with the guide's command. Then:

- the archive lists every trigger after every table's data: pg_restore creates the triggers
  once the data is in, so loading the facts fires none and the rollups come back as dumped;
- `hubcost migrate` finds nothing to do;
- every table and view of both schemas (facts, the trigger-kept `attribution` rollups, the
  run log, budgets, events) has the same rows, and the read-only role the same grants;
- every endpoint in every parameter form (tests/migrations/answers.py) answers byte for byte
  the same, the root ones and those under /clusters/<name> included;
- the same backfill (two loaded days again, two new ones) run on both gives the same rows,
  timestamps aside, and the same answers.

Restored on another server (a throwaway cluster of the test's own), a dump needs the roles
first: roles belong to the server, not to the database's archive. Without the read-only role
the restore stops at its first grant and leaves the database empty; with the owner and reader
roles made as the guide says, the owner (not a superuser) restores it, and the API, connected
as the owner and dropping to the reader, answers as the original did.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from core.database import create_engine
from core.schema import DEMO_CLUSTER
from tests.conftest import READER_ROLE
from tests.migrations.answers import Answer, differences, every_answer, head_requests, requests
from tests.reliability import pg_tools
from tests.reliability.processes import child_env, run_hubcost
from tests.reliability.throwaway_postgres import ThrowawayPostgres

pytestmark = pytest.mark.slow

LOADED = ("2025-12-01", "2026-01-10")
NEXT_RUN = ("2026-01-09", "2026-01-12")
SCHEMAS = ("public", "attribution")
OWNER = "hubcost"


@pytest.fixture
def fresh_database_url(admin_engine, admin_url, database_url):
    """An empty database made as the guide makes one for a restore: from template0."""
    name = sa.engine.make_url(database_url).database + "_restored"
    with admin_engine.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
    yield sa.engine.make_url(admin_url).set(database=name).render_as_string(False)
    with admin_engine.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def hubcost_ok(args, url, tmp_path, name) -> str:
    env = child_env(tmp_path, DATABASE_URL=url, API_DB_ROLE=READER_ROLE)
    status, err = run_hubcost(args, env, tmp_path, name)
    assert status == 0, err
    return err


def load(url, tmp_path) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        with engine.begin() as conn:  # an operator's mapping of a service Cost Explorer names
            conn.execute(
                sa.text("INSERT INTO service_component VALUES ('AmazonCloudWatch', 'other')")
            )
        budget = ["budget", "set", "demo", "--amount", "900", "--period", "month"]
        hubcost_ok(budget, url, tmp_path, "budget")
        hubcost_ok(["backfill", "--from", LOADED[0], "--to", LOADED[1]], url, tmp_path, "load")
        with engine.connect() as conn:
            # What autovacuum does (it is off on the tests' server): without it the planner
            # still believes the template's empty tables, and the answers take minutes.
            conn.execute(sa.text("ANALYZE"))
            conn.commit()
    finally:
        engine.dispose()


def every_row(url: str, *, without_times: bool = False) -> dict[str, list[tuple]]:
    """Every table and view of the warehouse's schemas, rows sorted; timestamps as None."""
    engine = create_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            return {
                f"{schema}.{name}": _rows(conn, schema, name, without_times)
                for schema in SCHEMAS
                for name in inspector.get_table_names(schema) + inspector.get_view_names(schema)
            }
    finally:
        engine.dispose()


def _rows(conn, schema: str, name: str, without_times: bool) -> list[tuple]:
    columns = sa.inspect(conn).get_columns(name, schema)
    selected = sa.select(
        *(
            sa.null().label(c["name"])
            if without_times and isinstance(c["type"], sa.DateTime)
            else sa.column(c["name"])
            for c in columns
        )
    ).select_from(sa.table(name, schema=schema))
    return sorted((tuple(r) for r in conn.execute(selected)), key=repr)


def reader_grants(url: str) -> list[tuple]:
    engine = create_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            return [
                tuple(r)
                for r in conn.execute(
                    sa.text(
                        "SELECT table_schema, table_name, privilege_type "
                        "FROM information_schema.role_table_grants WHERE grantee = :role "
                        "ORDER BY 1, 2, 3"
                    ),
                    {"role": READER_ROLE},
                )
            ]
    finally:
        engine.dispose()


def without_freshness(answers: dict[str, Answer]) -> dict[str, Answer]:
    return {url: (status, kind, None, body) for url, (status, kind, _, body) in answers.items()}


def test_a_restored_dump_is_the_same_warehouse_and_loads_on(
    database_url, fresh_database_url, admin_engine, tmp_path
):
    original, restored = database_url, fresh_database_url
    load(original, tmp_path)
    tools = pg_tools.client_bin_dir(pg_tools.server_major(admin_engine))
    dump = tmp_path / "hubcost.dump"

    pg_tools.run(
        tools, "pg_dump", "--format=custom", f"--file={dump}", pg_tools.libpq_url(original)
    )
    contents = pg_tools.run(tools, "pg_restore", "--list", str(dump)).splitlines()
    kinds = [line.split()[3] + " " + line.split()[4] for line in contents if line[:1].isdigit()]
    assert max(i for i, k in enumerate(kinds) if k == "TABLE DATA") < kinds.index("TRIGGER public")
    pg_tools.run(
        tools,
        "pg_restore",
        "--no-owner",
        "--exit-on-error",
        "--single-transaction",
        f"--dbname={pg_tools.libpq_url(restored)}",
        str(dump),
    )
    pg_tools.run(tools, "vacuumdb", "--analyze-only", f"--dbname={pg_tools.libpq_url(restored)}")
    migrated = hubcost_ok(["migrate"], restored, tmp_path, "migrate")
    assert "migrated the database" not in migrated and "at revision" in migrated

    before = every_row(original)
    assert every_row(restored) == before
    assert before["attribution.user_group_cost_daily"] and before["public.notification_event"]
    assert reader_grants(restored) == reader_grants(original)
    urls = head_requests((DEMO_CLUSTER,))
    answers = every_answer(original, urls=urls)
    assert sum(status == 200 and len(body) > 100 for status, _, _, body in answers.values()) > 300
    assert differences(answers, every_answer(restored, urls=urls)) == []

    for url in (original, restored):
        hubcost_ok(["backfill", "--from", NEXT_RUN[0], "--to", NEXT_RUN[1]], url, tmp_path, "next")
    after = every_row(original, without_times=True)
    assert len(after["public.cost"]) > len(before["public.cost"])
    assert every_row(restored, without_times=True) == after
    root = requests()
    assert (
        differences(
            without_freshness(every_answer(original, urls=root)),
            without_freshness(every_answer(restored, urls=root)),
        )
        == []
    )


@pytest.fixture
def other_server():
    pg = ThrowawayPostgres()
    try:
        pg.start()
        yield pg
    finally:
        pg.destroy()


def test_on_another_server_the_roles_come_first_then_the_owner_restores(
    database_url, admin_engine, other_server, tmp_path
):
    load(database_url, tmp_path)
    dump = tmp_path / "hubcost.dump"
    tools = pg_tools.client_bin_dir(pg_tools.server_major(admin_engine))
    pg_tools.run(
        tools, "pg_dump", "--format=custom", f"--file={dump}", pg_tools.libpq_url(database_url)
    )
    pg = other_server
    admin = sa.create_engine(pg.admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE ROLE {OWNER} LOGIN"))
            conn.execute(sa.text(f"CREATE DATABASE hubcost OWNER {OWNER} TEMPLATE template0"))
        url = sa.engine.make_url(pg.url("hubcost")).set(username=OWNER).render_as_string(False)
        restore = (
            "pg_restore",
            "--no-owner",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={pg_tools.libpq_url(url)}",
            str(dump),
        )
        with pytest.raises(AssertionError, match=f'role "{READER_ROLE}" does not exist'):
            pg_tools.run(pg.bin, *restore)
        assert every_row(url) == {}  # one transaction: nothing was left half restored

        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE ROLE {READER_ROLE} LOGIN"))
            conn.execute(sa.text(f"GRANT {READER_ROLE} TO {OWNER}"))
        pg_tools.run(pg.bin, *restore)
        pg_tools.run(pg.bin, "vacuumdb", "--analyze-only", f"--dbname={pg_tools.libpq_url(url)}")
        assert "migrated the database" not in hubcost_ok(["migrate"], url, tmp_path, "migrate")
        assert every_row(url) == every_row(database_url)
        urls = head_requests((DEMO_CLUSTER,))
        assert (
            differences(every_answer(database_url, urls=urls), every_answer(url, urls=urls)) == []
        )
    finally:
        admin.dispose()
