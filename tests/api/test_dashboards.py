"""Every Infinity query of upstream's Grafana dashboards works unchanged against the API.

Grafana expands `${__from:date}` as `2026-01-01T00:00:00.000Z`, a multi-value variable as
`{a,b}`, "All" as the literal `all` (or the variable's custom value), and an empty text box
as an empty value. Each query must answer 200 with the columns its panel reads.

Those dashboards are an external client, not part of hubcost: the tests read them (the rendered
JSON files) from the folder HUBCOST_UPSTREAM_DASHBOARDS names, and skip without it. CI sets it
(.ci/run), and under CI=true a skip fails the run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from itertools import product
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.api.dataset import load_dataset
from tests.rows import add_costs

DASHBOARDS_VARIABLE = "HUBCOST_UPSTREAM_DASHBOARDS"
DASHBOARDS = Path(os.environ[DASHBOARDS_VARIABLE]) if os.environ.get(DASHBOARDS_VARIABLE) else None
pytestmark = pytest.mark.skipif(
    DASHBOARDS is None,
    reason=f"set {DASHBOARDS_VARIABLE} to the folder of jupyterhub-cost-monitoring's rendered "
    "Grafana dashboards (*.json) to replay their queries",
)
ECS = "Amazon Elastic Container Service for Kubernetes"
FROM_DATE = "2026-01-01T00:00:00.000Z"
TO_DATE = "2026-01-10T23:59:59.999Z"
# The values Grafana may put in each template variable the dashboards use.
VARIABLES = {
    "hub_general": ["{prod,staging,support}", "{prod}", "all"],
    "hub_user": ["All", "{prod,staging}", "prod"],
    "component": ["all", "compute", "home storage"],
    "usergroup": ["all", "{g1,g2}", "none"],
    "limit": ["", "2"],
}


def infinity_queries():
    """(dashboard, url, columns) of every Infinity target and variable query."""
    found = []

    def walk(node, name):
        if isinstance(node, dict):
            url = node.get("url")
            if isinstance(url, str) and node.get("type") == "json":
                found.append((name, url, node.get("columns") or []))
            for value in node.values():
                walk(value, name)
        elif isinstance(node, list):
            for value in node:
                walk(value, name)

    if DASHBOARDS is None:
        return found
    for path in sorted(DASHBOARDS.glob("*.json")):
        if path.name != "SOURCE.json":
            walk(json.loads(path.read_text()), path.stem)
    return found


QUERIES = infinity_queries()


def expansions(url: str):
    url = url.replace("${__from:date}", FROM_DATE).replace("${__to:date}", TO_DATE)
    names = sorted(set(re.findall(r"\$(\w+)", url)))
    for values in product(*(VARIABLES[n] for n in names)):
        expanded = url
        for name, value in zip(names, values, strict=True):
            expanded = expanded.replace(f"${name}", value)
        yield expanded


def test_the_dashboards_were_read():
    assert DASHBOARDS.is_dir(), f"{DASHBOARDS_VARIABLE}={DASHBOARDS} is not a folder"
    assert len(QUERIES) >= 20
    assert all(url.startswith("http://") for _, url, _ in QUERIES)


def test_the_variables_cover_every_one_the_queries_use():
    used = {n for _, url, _ in QUERIES for n in re.findall(r"\$(\w+)", url) if n != "{__from"}
    assert used <= set(VARIABLES)


@pytest.fixture
def api(engine, client):
    with engine.begin() as conn:
        load_dataset(conn)
        # The AWS dashboard also charts networking and core.
        add_costs(
            conn,
            [
                ("2026-01-06", "attributable", "prod", "Amazon Elastic Load Balancing", "1.5"),
                ("2026-01-06", "attributable", "prod", ECS, "2.25"),
            ],
        )
    return client


def check_column(row, column):
    assert column["selector"] in row, (column, row)
    value = row[column["selector"]]
    if column["type"] == "timestamp":
        dt.date.fromisoformat(value)
    elif column["type"] == "number":
        assert isinstance(value, int | float) and not isinstance(value, bool)
    else:
        assert isinstance(value, str)


def test_every_infinity_query_answers_with_the_columns_its_panel_reads(api):
    checked = 0
    for dashboard, url, columns in QUERIES:
        rows_seen = 0
        for expanded in expansions(url):
            parts = urlsplit(expanded)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            response = api.get(target)
            assert response.status_code == 200, (dashboard, target, response.text)
            body = response.json()
            assert isinstance(body, list), (dashboard, target)
            for row in body:
                for column in columns:
                    check_column(row, column)
            checked += 1
            rows_seen += len(body)
        # Some expansion must give rows, or the column checks proved nothing.
        assert rows_seen, (dashboard, url)
    assert checked > 50
