"""The migrations: up, down, up again, empty and loaded; the views' public contract."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from core import migrate, schema
from core.database import create_engine
from tests.conftest import READER_ROLE
from tests.rows import add_costs, add_groups, add_usage, select_all

HEAD = migrate.head_revision()


def _views(conn):
    return {
        r[0]
        for r in conn.execute(
            sa.text("SELECT table_name FROM information_schema.views WHERE table_schema = 'public'")
        )
    }


def _snapshot(conn):
    return {
        name: select_all(conn, f'SELECT * FROM "{name}" ORDER BY 1, 2, 3')
        for name in ("component_costs", "user_costs", "user_costs_by_group", "cost", "usage")
    }


def test_up_down_up_on_an_empty_database(empty_database_url):
    engine = create_engine(empty_database_url, pool_size=1)
    try:
        assert migrate.upgrade(engine, api_db_role=READER_ROLE) == HEAD
        assert migrate.downgrade(engine, api_db_role=READER_ROLE, revision="base") is None
        with engine.connect() as conn:
            assert _views(conn) == set()
        assert migrate.upgrade(engine, api_db_role=READER_ROLE) == HEAD
        with engine.connect() as conn:
            assert _views(conn) == set(schema.VIEWS)
    finally:
        engine.dispose()


def test_loaded_database_keeps_its_data_through_down_and_up(empty_database_url):
    engine = create_engine(empty_database_url, pool_size=1)
    try:
        migrate.upgrade(engine, api_db_role=READER_ROLE)
        with engine.begin() as conn:
            add_costs(
                conn,
                [
                    ("2026-02-01", "attributable", "prod", "EC2 - Other", "10.5"),
                    ("2026-02-01", "home", "prod", "EC2 - Other", "2"),
                    ("2026-02-01", "account", None, "EC2 - Other", "20"),
                ],
            )
            add_usage(conn, [("2026-02-01", "prod", "compute", "ann", 1)])
            add_groups(conn, [("2026-02-01", "prod", "ann", "physics")])
        with engine.connect() as conn:
            before = _snapshot(conn)
        # Down to the tables only (views and role grants go), then up again.
        migrate.downgrade(engine, api_db_role=READER_ROLE, revision="0001")
        with engine.connect() as conn:
            assert _views(conn) == set()
        assert migrate.upgrade(engine, api_db_role=READER_ROLE) == HEAD
        with engine.connect() as conn:
            assert _snapshot(conn) == before
            assert before["user_costs_by_group"]
        # All the way down and up again: no error.
        migrate.downgrade(engine, api_db_role=READER_ROLE, revision="base")
        assert migrate.upgrade(engine, api_db_role=READER_ROLE) == HEAD
    finally:
        engine.dispose()


def test_tables_match_the_schema_module(conn):
    context = MigrationContext.configure(conn, opts={"include_object": schema.include_object})
    assert compare_metadata(context, schema.metadata) == []


def test_every_view_is_commented_and_dates_are_dates(conn):
    comments = dict(
        select_all(
            conn,
            """SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND c.relkind = 'v'""",
        )
    )
    assert set(comments) == set(schema.VIEWS)
    assert all(comments.values()), comments
    date_columns = select_all(
        conn,
        """SELECT table_name, data_type FROM information_schema.columns
           WHERE table_schema = 'public' AND column_name = 'date'
             AND table_name = ANY(:views)""",
        views=list(schema.VIEWS),
    )
    assert date_columns and all(t == "date" for _, t in date_columns)


def test_reader_role_reads_the_views_and_nothing_else(conn):
    granted = select_all(
        conn,
        """SELECT table_name, privilege_type FROM information_schema.role_table_grants
           WHERE grantee = :role AND table_schema = 'public' ORDER BY 1""",
        role=READER_ROLE,
    )
    assert {t for t, _ in granted} == set(schema.VIEWS)
    assert {p for _, p in granted} == {"SELECT"}
