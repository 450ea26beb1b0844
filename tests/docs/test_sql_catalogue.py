"""docs/sql.md against the database: the same views, columns and types; its queries run."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
import sqlalchemy as sa

from core import schema
from tests.conftest import READER_ROLE, ROOT
from tests.dashboards.sample_data import load_sample

CATALOGUE = ROOT / "docs" / "sql.md"
VIEW_HEADING = re.compile(r"^### `(?P<name>[a-z_]+)`$")
COLUMN_ROW = re.compile(r"^\| `(?P<column>[a-z_0-9]+)` \| `(?P<type>[A-Za-z ]+)` \|")
SQL_BLOCK = re.compile(r"^```sql\n(?P<sql>.*?)^```$", re.MULTILINE | re.DOTALL)


def catalogue_text() -> str:
    return CATALOGUE.read_text(encoding="utf-8")


def catalogued_views() -> dict[str, list[tuple[str, str]]]:
    """{view: [(column, type), ...]} from the '## Views' section, in the order written."""
    section = catalogue_text().split("\n## Views\n", 1)[1].split("\n## ", 1)[0]
    views: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in section.splitlines():
        if heading := VIEW_HEADING.match(line):
            current = heading["name"]
            assert current not in views, f"{current} is described twice"
            views[current] = []
        elif (row := COLUMN_ROW.match(line)) and current is not None:
            views[current].append((row["column"], row["type"]))
    return views


def database_views(conn) -> dict[str, list[tuple[str, str]]]:
    rows = conn.execute(
        sa.text(
            """SELECT c.table_name, c.column_name, c.data_type
               FROM information_schema.columns c
               JOIN information_schema.views v
                 ON v.table_schema = c.table_schema AND v.table_name = c.table_name
               WHERE c.table_schema = 'public'
               ORDER BY c.table_name, c.ordinal_position"""
        )
    )
    views: dict[str, list[tuple[str, str]]] = {}
    for name, column, data_type in rows:
        views.setdefault(name, []).append((column, data_type))
    return views


def ready_queries() -> list[str]:
    return [m["sql"] for m in SQL_BLOCK.finditer(catalogue_text())]


def test_every_view_in_the_database_is_catalogued_and_every_catalogued_view_exists(conn):
    in_database = set(database_views(conn))
    in_catalogue = set(catalogued_views())
    assert in_database - in_catalogue == set(), "views missing from docs/sql.md"
    assert in_catalogue - in_database == set(), "docs/sql.md describes views that do not exist"
    assert in_catalogue == set(schema.VIEWS)


def test_catalogued_columns_and_types_are_the_database_ones(conn):
    in_database = database_views(conn)
    for name, columns in catalogued_views().items():
        assert columns == in_database[name], f"columns of {name} in docs/sql.md"


def test_catalogue_has_the_three_ready_queries_the_issue_asks_for():
    text = catalogue_text()
    for title in (
        "### Monthly cost per group",
        "### A user's cost history",
        "### The share of cost left unattributed",
    ):
        assert title in text
    assert len(ready_queries()) >= 3


@pytest.mark.parametrize("index", range(len(ready_queries())))
def test_ready_query_runs_as_the_read_only_role_and_returns_rows(conn, index):
    load_sample(conn, now=dt.datetime.now(dt.UTC))
    conn.execute(sa.text(f'SET ROLE "{READER_ROLE}"'))
    result = conn.execute(sa.text(ready_queries()[index]))
    assert result.fetchall(), f"ready query {index} returned no rows:\n{ready_queries()[index]}"


def test_the_read_only_role_cannot_read_the_tables(conn):
    conn.execute(sa.text(f'SET ROLE "{READER_ROLE}"'))
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
        conn.execute(sa.text("SELECT * FROM cost"))


def test_user_costs_and_unattributed_costs_give_back_the_user_components(conn):
    # docs/sql.md, unattributed_costs: "user_costs plus this view give back the compute and
    # home-storage cost of component_costs".
    load_sample(conn, now=dt.datetime.now(dt.UTC))
    conn.execute(sa.text(f'SET ROLE "{READER_ROLE}"'))
    parts, whole = conn.execute(
        sa.text(
            """SELECT (SELECT sum(cost) FROM user_costs)
                      + (SELECT sum(cost) FROM unattributed_costs),
                      (SELECT sum(cost) FROM component_costs
                       WHERE component IN ('compute', 'home storage'))"""
        )
    ).one()
    assert abs(parts - whole) < Decimal("1e-9")
    assert conn.execute(sa.text("SELECT count(*) FROM unattributed_costs")).scalar_one() > 0
