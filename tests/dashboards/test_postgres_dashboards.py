"""Every Postgres-datasource panel's SQL, expanded as Grafana would, runs as the read-only
role against a loaded database and returns the columns (and column types) the panel reads.

With two clusters whose hubs share names, every panel scoped to one cluster answers exactly
as on a warehouse holding that cluster alone, and with "All" clusters its answer is each
cluster's alone side by side, names prefixed `cluster / `: nothing adds two clusters up.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa

from core.database import create_engine
from tests.conftest import READER_ROLE
from tests.dashboards import grafana
from tests.dashboards.sample_data import (
    CLUSTERS,
    GROUPS,
    HUBS,
    WEST_GROUPS,
    WEST_HUBS,
    load_sample,
)

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
    "cost_anomalies",
)
# A narrower choice than "All", to run every panel with a single-valued selection too.
NARROW = {"hub": ["prod"], "component": ["compute"], "group": ["physics"]}
# The `warehouses` key of the one holding both sample clusters.
BOTH = "both"


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


@pytest.fixture(scope="module")
def warehouses(admin_engine, admin_url, template_database):
    """Read-only connections {"both": ..., "east": ..., "west": ...}: one warehouse holding
    both sample clusters and one per cluster holding it alone, loaded with the same `now`.

    Module-scoped since the panels only read them; every query runs in a savepoint (`_run`)
    so one failing cannot abort the transaction the others read in.
    """
    now = dt.datetime.now(dt.UTC)
    layouts = {BOTH: CLUSTERS, **{cluster: (cluster,) for cluster in CLUSTERS}}
    tag = uuid.uuid4().hex[:8]
    with contextlib.ExitStack() as stack:
        connections = {}
        for key, clusters in layouts.items():
            name = f"hubcost_test_{tag}_clusters_{key}"
            with admin_engine.connect() as c:
                c.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"'))
            stack.callback(_drop_database, admin_engine, name)
            url = sa.engine.make_url(admin_url).set(database=name).render_as_string(False)
            engine = create_engine(url, pool_size=1)
            stack.callback(engine.dispose)
            conn = stack.enter_context(engine.connect())
            load_sample(conn, now=now, clusters=clusters)
            connections[key] = conn
        # Each transaction starts here, after every load, so `now()` is alike in all of them.
        for conn in connections.values():
            conn.execute(sa.text(f'SET ROLE "{READER_ROLE}"'))
        yield connections


def _drop_database(admin_engine, name: str) -> None:
    with admin_engine.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _run(conn, sql: str):
    with conn.begin_nested():
        result = conn.execute(sa.text(sql))
        description = result.cursor.description
        return [(c.name, c.type_code) for c in description], [tuple(r) for r in result]


def variable_values(
    conn, dashboard: dict, chosen: dict[str, list[str]] | None = None
) -> dict[str, list[str]]:
    """Each query variable's options, from running its own SQL: what "All" selects.

    In the dashboard's order, as Grafana refreshes them: a variable's query sees the values
    of those before it, and a variable in `chosen` takes those values (which must be options)
    instead of "All".
    """
    chosen = chosen or {}
    definitions = grafana.variables(dashboard)
    values: dict[str, list[str]] = {}
    for name, definition in definitions.items():
        if definition["type"] != "query":
            continue
        assert definition["datasource"]["type"] == DATASOURCE_TYPE
        sql = grafana.expand_sql(definition["query"], values, definitions)
        columns, rows = _run(conn, sql)
        assert len(columns) == 1, f"variable {name} must return one column"
        assert rows, f"variable {name} has no options on the sample data"
        options = [str(r[0]) for r in rows]
        if name in chosen:
            assert set(chosen[name]) <= set(options), f"{chosen[name]} are not all {name}s"
            values[name] = chosen[name]
        elif definition.get("multi") or definition.get("includeAll"):
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
    assert users["cluster"] == ["default"]
    assert set(by_dashboard["costs.json"]) == {"cluster", "hub", "component"}


@pytest.mark.parametrize("path", grafana.POSTGRES_DASHBOARDS, ids=lambda p: p.stem)
def test_the_cluster_variable_comes_first_and_scopes_the_hub_and_group_ones(warehouses, path):
    dashboard = grafana.load(path)
    definitions = grafana.variables(dashboard)
    cluster = definitions["cluster"]
    assert list(definitions)[:2] == ["datasource", "cluster"], "cluster before what it scopes"
    assert cluster["multi"] and cluster["includeAll"]
    assert cluster["current"]["value"] == ["$__all"], "All clusters by default"
    for name in {"hub", "group"} & set(definitions):
        assert "cluster IN ($cluster)" in definitions[name]["query"], f"{name} is not scoped"

    both = warehouses[BOTH]
    everything = variable_values(both, dashboard)
    assert everything["cluster"] == list(CLUSTERS)
    assert everything["hub"] == sorted(set(HUBS) | set(WEST_HUBS)), "staging listed once"
    expected = {"east": (HUBS, GROUPS), "west": (WEST_HUBS, WEST_GROUPS)}
    for name, (hubs, groups) in expected.items():
        scoped = variable_values(both, dashboard, {"cluster": [name]})
        assert scoped["hub"] == list(hubs)
        if "group" in scoped:
            assert scoped["group"] == list(groups)
        assert scoped == variable_values(warehouses[name], dashboard, {"cluster": [name]})


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


def _check_panel(reader, panel, values, definitions, selection) -> list:
    """Each target's (columns, rows), checked against what the panel reads."""
    answers = []
    for target in panel["targets"]:
        assert target["datasource"] == panel["datasource"]
        assert target["datasource"]["type"] == DATASOURCE_TYPE
        raw = target["rawSql"]
        if any(view in raw for view in DATED_VIEWS):
            assert "$__timeFilter(" in raw, f"{panel['title']}: not filtered by the time range"
        assert "cluster IN ($cluster)" in raw or "ARRAY[$cluster]" in raw, (
            f"{panel['title']}: not filtered by the cluster variable"
        )
        columns, rows = _run(reader, grafana.expand_sql(raw, values, definitions))
        if selection == "all":
            assert rows, f"{panel['title']}: no rows on the sample data"
        if target["format"] == "time_series":
            _check_time_series(panel, columns, rows)
            names = [name for name, _ in columns]
            keys = [
                tuple(row[names.index(n)] for n in ("time", "metric") if n in names) for row in rows
            ]
            assert len(keys) == len(set(keys)), f"{panel['title']}: two series of one name"
        else:
            assert target["format"] == "table"
            _check_table(panel, columns)
        if len(values["cluster"]) == 1:
            (cluster,) = values["cluster"]
            assert not _qualified(rows, cluster), (
                f"{panel['title']}: names carry the cluster though it is the only one selected"
            )
        answers.append((columns, rows))
    return answers


def _qualified(rows, cluster: str) -> bool:
    return any(isinstance(v, str) and v.startswith(f"{cluster} / ") for row in rows for v in row)


def _label_column(panel: dict, target: dict) -> str:
    """The column that names a series, bar or row: what carries the cluster's name."""
    if target["format"] == "time_series":
        return "metric"
    (organize,) = [s for s in panel["transformations"] if s["id"] == "organize"]
    index = organize["options"]["indexByName"]
    return min(index, key=index.get)


def _selections(dashboard: dict) -> dict[str, dict[str, list[str]]]:
    names = set(grafana.variables(dashboard))
    return {"all": {}, "narrow": {k: v for k, v in NARROW.items() if k in names}}


@pytest.mark.parametrize(("path", "panel_id"), list(_dashboard_panels()))
def test_one_cluster_answers_as_a_warehouse_holding_it_alone(warehouses, path, panel_id):
    dashboard = grafana.load(path)
    definitions = grafana.variables(dashboard)
    panel = next(p for p in grafana.panels(dashboard) if p["id"] == panel_id)
    for selection, narrowed in _selections(dashboard).items():
        for cluster in CLUSTERS:
            scoped = {"cluster": [cluster]}
            alone_values = variable_values(warehouses[cluster], dashboard, scoped) | narrowed
            both_values = variable_values(warehouses[BOTH], dashboard, scoped) | narrowed
            alone = _check_panel(warehouses[cluster], panel, alone_values, definitions, selection)
            among_two = _check_panel(warehouses[BOTH], panel, both_values, definitions, selection)
            assert among_two == alone, f"{panel['title']}: {cluster} ({selection})"


@pytest.mark.parametrize(("path", "panel_id"), list(_dashboard_panels()))
def test_all_clusters_show_each_cluster_apart_never_summed(warehouses, path, panel_id):
    """With both clusters selected, the answer is each cluster's own, named `cluster / `."""
    dashboard = grafana.load(path)
    definitions = grafana.variables(dashboard)
    panel = next(p for p in grafana.panels(dashboard) if p["id"] == panel_id)
    for selection, narrowed in _selections(dashboard).items():
        values = variable_values(warehouses[BOTH], dashboard) | narrowed
        assert values["cluster"] == list(CLUSTERS)
        together = _check_panel(warehouses[BOTH], panel, values, definitions, selection)
        for index, target in enumerate(panel["targets"]):
            columns, rows = together[index]
            label = [name for name, _ in columns].index(_label_column(panel, target))
            expected = []
            for cluster in CLUSTERS:
                alone_values = variable_values(
                    warehouses[cluster], dashboard, {"cluster": [cluster]}
                )
                alone = _check_panel(
                    warehouses[cluster], panel, alone_values | narrowed, definitions, selection
                )
                for row in alone[index][1]:
                    if columns[label][0] != "cluster":
                        row = (*row[:label], f"{cluster} / {row[label]}", *row[label + 1 :])
                    expected.append(row)
            assert sorted(rows, key=repr) == sorted(expected, key=repr), (
                f"{panel['title']} ({selection}): not each cluster's answer side by side"
            )


def test_two_clusters_staging_hubs_are_two_bars(warehouses):
    dashboard = grafana.load(grafana.DASHBOARDS / "postgres" / "costs.json")
    definitions = grafana.variables(dashboard)
    panel = next(
        p for p in grafana.panels(dashboard) if p["title"] == "Cost per hub over the range"
    )
    sql = panel["targets"][0]["rawSql"]
    values = variable_values(warehouses[BOTH], dashboard) | {"hub": ["staging"]}
    _, rows = _run(warehouses[BOTH], grafana.expand_sql(sql, values, definitions))
    # east: (6 + 1) x 3 days; west: (9 + 4) x 3 days. Never one bar of 60.
    assert sorted(rows) == [("east / staging", 21), ("west / staging", 39)]
    values |= {"cluster": ["west"]}
    _, rows = _run(warehouses[BOTH], grafana.expand_sql(sql, values, definitions))
    assert rows == [("staging", 39)]


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


def test_a_budget_of_any_cluster_is_listed_whatever_clusters_are_selected(conn):
    """Its row counts every cluster's cost and carries no cluster name; the others' rows are
    those of the selected clusters."""
    load_sample(conn, now=dt.datetime.now(dt.UTC), clusters=CLUSTERS)
    conn.execute(
        sa.text("INSERT INTO budget (name, amount, period) VALUES ('everything', 500, 'month')")
    )
    conn.execute(sa.text(f'SET ROLE "{READER_ROLE}"'))
    dashboard = grafana.load(grafana.DASHBOARDS / "postgres" / "costs.json")
    definitions = grafana.variables(dashboard)
    panel = next(p for p in grafana.panels(dashboard) if p["title"].startswith("Budgets"))
    sql = panel["targets"][0]["rawSql"]
    spent = {}
    for selected in (["east"], list(CLUSTERS)):
        values = variable_values(conn, dashboard, {"cluster": selected})
        columns, rows = _run(conn, grafana.expand_sql(sql, values, definitions))
        names = [name for name, _ in columns]
        by_budget = {row[0]: dict(zip(names, row, strict=True)) for row in rows}
        spent[len(selected)] = {budget: row["spent"] for budget, row in by_budget.items()}
    # The attributable cost of January 5 to 7: east 3 x 38.75 + 3, west 3 x 36.5 + 3.
    assert spent[1] == {
        "alice-east": Decimal("43.50"),
        "everything": Decimal("231.75"),
        "physics-east": Decimal("61.50"),
        "prod-east": Decimal("73.50"),
    }
    assert spent[2]["everything"] == Decimal("231.75")
    assert sorted(spent[2]) == [
        "east / alice-east",
        "east / physics-east",
        "east / prod-east",
        "everything",
        "west / alice-west",
        "west / physics-west",
        "west / prod-west",
    ]
