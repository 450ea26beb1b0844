"""The API's role reads the public views and the status view, and nothing else."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from core.database import create_engine
from core.schema import PUBLIC_VIEWS, STATUS_VIEW
from tests.conftest import READER_ROLE

TABLES = ("cost", "usage", "user_group_snapshot", "run_log", "component", "service_component")


@pytest.fixture
def reader(database_url):
    engine = create_engine(database_url, pool_size=1, role=READER_ROLE)
    yield engine
    engine.dispose()


def test_the_app_connects_as_the_read_only_role(client):
    with client.app.state.hubcost.connect() as conn:
        assert conn.execute(sa.text("SELECT current_user")).scalar_one() == READER_ROLE


def test_the_role_reads_every_view(reader):
    with reader.connect() as conn:
        for view in (*PUBLIC_VIEWS, STATUS_VIEW):
            conn.execute(sa.text(f'SELECT * FROM "{view}" LIMIT 1')).all()


STATEMENTS = (
    "SELECT * FROM {t}",
    "DELETE FROM {t}",
    "UPDATE {t} SET {c} = {c}",
    "INSERT INTO {t} SELECT * FROM {t}",
    "TRUNCATE {t}",
)


def test_the_role_cannot_read_or_change_the_tables(reader):
    columns = {"component": "name", "service_component": "service", "run_log": "source"}
    for table in TABLES:
        for statement in STATEMENTS:
            sql = statement.format(t=table, c=columns.get(table, "hub"))
            with reader.connect() as conn, pytest.raises(sa.exc.ProgrammingError) as caught:
                conn.execute(sa.text(sql))
            assert "permission denied" in str(caught.value), sql


def test_the_role_cannot_change_the_views_or_create_tables(reader):
    with reader.connect() as conn, pytest.raises(sa.exc.ProgrammingError, match="permission"):
        conn.execute(sa.text("DELETE FROM components"))
    with reader.connect() as conn, pytest.raises(sa.exc.ProgrammingError, match="permission"):
        conn.execute(sa.text("CREATE TABLE sneaky (x int)"))
