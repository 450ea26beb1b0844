"""Every Postgres-datasource panel's SQL, expanded as Grafana would, runs as the read-only
role against a loaded database and returns the columns (and column types) the panel reads."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from tests.conftest import READER_ROLE
from tests.dashboards import grafana
from tests.dashboards.sample_data import load_sample

DATASOURCE_TYPE = "grafana-postgresql-datasource"
# PostgreSQL type OIDs, as psycopg reports them in cursor.description.
TIME_TYPES = {1082, 1114, 1184}  # date, timestamp, timestamptz
NUMBER_TYPES = {20, 21, 23, 700, 701, 1700}  # int8, int2, int4, float4, float8, numeric
TEXT_TYPES = {25, 1043}  # text, varchar
# Views with a `date` column: a panel reading one must filter it by the dashboard's time range.
DATED_VIEWS = (
    "total_costs",
    "hub_costs",
    "component_costs",
    "unattributed_costs",
    "user_costs",
    "user_costs_by_group",
    "group_costs",
    "user_shares",
    "hub_activity",
)
# A narrower choice than "All", to run every panel with a single-valued selection too.
NARROW = {"hub": ["prod"], "component": ["compute"], "group": ["physics"]}


def _dashboard_panels():
    for path in grafana.POSTGRES_DASHBOARDS:
        dashboard = grafana.load(path)
        for panel in grafana.panels(dashboard):
            if panel.get("targets"):
                yield pytest.param(path, panel["id"], id=f"{path.stem}-{panel['id']}")


def test_there_are_postgres_dashboards():
    assert [p.name for p in grafana.POSTGRES_DASHBOARDS] == ["costs.json", "users-and-groups.json"]


@pytest.fixture
def reader(conn):
    load_sample(conn, now=dt.datetime.now(dt.UTC))
    conn.execute(sa.text(f'SET ROLE "{READER_ROLE}"'))
    return conn


def _run(conn, sql: str):
    result = conn.execute(sa.text(sql))
    description = result.cursor.description
    return [(c.name, c.type_code) for c in description], result.fetchall()


def variable_values(conn, dashboard: dict) -> dict[str, list[str]]:
    """Each query variable's options, from running its own SQL: what "All" selects."""
    definitions = grafana.variables(dashboard)
    values: dict[str, list[str]] = {}
    for name, definition in definitions.items():
        if definition["type"] != "query":
            continue
        assert definition["datasource"]["type"] == DATASOURCE_TYPE
        sql = grafana.expand_sql(definition["query"], {}, definitions)
        columns, rows = _run(conn, sql)
        assert len(columns) == 1, f"variable {name} must return one column"
        assert rows, f"variable {name} has no options on the sample data"
        options = [str(r[0]) for r in rows]
        if definition.get("multi") or definition.get("includeAll"):
            values[name] = options
        else:
            current = definition["current"]["value"]
            assert current in options, f"variable {name}'s default {current} is not an option"
            values[name] = [current]
    return values


def test_template_variables_are_built_from_sql(reader):
    by_dashboard = {
        path.name: variable_values(reader, grafana.load(path))
        for path in grafana.POSTGRES_DASHBOARDS
    }
    users = by_dashboard["users-and-groups.json"]
    assert users["hub"] == ["prod", "staging", "support"]
    assert users["component"][:2] == ["compute", "home storage"]
    assert users["group"] == ["chemistry", "multiple", "none", "physics"]
    assert users["top_n"] == ["10"]
    assert set(by_dashboard["costs.json"]) == {"hub", "component"}


def _columns_read(panel: dict) -> set[str]:
    """The columns a table-format panel reads: those its organize step orders, and overrides."""
    read = set()
    for step in panel.get("transformations", []):
        if step["id"] == "organize":
            read |= set(step["options"].get("indexByName", {}))
    for override in panel.get("fieldConfig", {}).get("overrides", []):
        if override["matcher"]["id"] == "byName":
            read.add(override["matcher"]["options"])
    return read


def _check_time_series(panel, columns, rows):
    names = [name for name, _ in columns]
    types = dict(columns)
    assert "time" in names and types["time"] in TIME_TYPES, f"{panel['title']}: no time column"
    if "metric" in names:
        assert types["metric"] in TEXT_TYPES
    values = [n for n in names if n not in ("time", "metric")]
    assert values, f"{panel['title']}: no value column"
    for name in values:
        assert types[name] in NUMBER_TYPES, f"{panel['title']}: {name} is not a number"
    times = [row[names.index("time")] for row in rows]
    assert times == sorted(times), f"{panel['title']}: rows not ordered by time"
    for t in times:
        assert grafana.TIME_FROM.date() <= t <= grafana.TIME_TO.date()


def _check_table(panel, columns):
    names = {name for name, _ in columns}
    read = _columns_read(panel)
    assert read, f"{panel['title']}: a table panel names its columns in an organize step"
    assert read <= names, f"{panel['title']}: reads {read - names}, which the SQL lacks"
    assert names <= read, f"{panel['title']}: returns {names - read}, which no one reads"
    if panel["type"] in ("bargauge", "stat"):
        assert any(t in NUMBER_TYPES for _, t in columns), f"{panel['title']}: no number"


@pytest.mark.parametrize(("path", "panel_id"), list(_dashboard_panels()))
def test_panel_sql_runs_and_returns_the_columns_the_panel_reads(reader, path, panel_id):
    dashboard = grafana.load(path)
    definitions = grafana.variables(dashboard)
    everything = variable_values(reader, dashboard)
    narrow = everything | {k: v for k, v in NARROW.items() if k in everything}
    panel = next(p for p in grafana.panels(dashboard) if p["id"] == panel_id)
    _check_panel(reader, panel, everything, definitions, "all")
    _check_panel(reader, panel, narrow, definitions, "narrow")


def _check_panel(reader, panel, values, definitions, selection) -> None:
    for target in panel["targets"]:
        assert target["datasource"] == panel["datasource"]
        assert target["datasource"]["type"] == DATASOURCE_TYPE
        raw = target["rawSql"]
        if any(view in raw for view in DATED_VIEWS):
            assert "$__timeFilter(" in raw, f"{panel['title']}: not filtered by the time range"
        columns, rows = _run(reader, grafana.expand_sql(raw, values, definitions))
        if selection == "all":
            assert rows, f"{panel['title']}: no rows on the sample data"
        if target["format"] == "time_series":
            _check_time_series(panel, columns, rows)
        else:
            assert target["format"] == "table"
            _check_table(panel, columns)


def test_top_users_panel_respects_the_limit_and_counts_a_user_once(reader):
    dashboard = grafana.load(grafana.DASHBOARDS / "postgres" / "users-and-groups.json")
    definitions = grafana.variables(dashboard)
    values = variable_values(reader, dashboard) | {"top_n": ["2"]}
    panel = next(p for p in grafana.panels(dashboard) if p["title"] == "Top $top_n users")
    _, rows = _run(reader, grafana.expand_sql(panel["targets"][0]["rawSql"], values, definitions))
    # alice is in three group rows (multiple, physics, chemistry) but is one bar.
    assert [user for user, _ in rows] == ["alice", "bob"]
    _, totals = _run(
        reader,
        "SELECT username, round(sum(cost), 2) FROM user_costs "
        "WHERE username IN ('alice', 'bob') GROUP BY 1 ORDER BY 2 DESC",
    )
    assert rows == totals
