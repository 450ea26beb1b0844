"""Upstream's dashboards (jupyterhub-cost-monitoring, rendered, in shared/fixtures) work against
this API unchanged: every Infinity URL, with Grafana's variables expanded the way Grafana sends
them, answers 200 with the columns, and column types, its panel reads."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import urlsplit, urlunsplit

import jsonata
import pytest
from starlette.testclient import TestClient

from api.app import create_app
from etl.settings import Settings
from tests.conftest import READER_ROLE, SHARED
from tests.dashboards import grafana
from tests.dashboards.sample_data import load_sample

UPSTREAM = sorted((SHARED / "fixtures" / "upstream-dashboards").glob("cloud-cost-*.json"))
SELECTIONS = {
    # Each dashboard's defaults: "All" for hubs (upstream's hub_user lists a literal "All"),
    # all components and groups, an empty top-N box.
    "defaults": {"hub_user": ["All"], "component": ["$__all"], "usergroup": ["$__all"]},
    "narrow": {
        "hub_general": ["prod"],
        "hub_user": ["prod"],
        "component": ["compute"],
        "usergroup": ["physics"],
        "limit": ["2"],
    },
    "several": {
        "hub_general": ["prod", "staging"],
        "hub_user": ["prod", "staging"],
        "component": ["compute", "home storage"],
        "usergroup": ["physics", "none"],
    },
}


@pytest.fixture
def api(conn, database_url):
    load_sample(conn, now=dt.datetime.now(dt.UTC))
    settings = Settings.from_env({"API_DB_ROLE": READER_ROLE})
    with TestClient(create_app(settings, database_url=database_url)) as client:
        yield client


def _path(url: str) -> str:
    """Upstream's URLs name their in-cluster host; the request goes to our app instead."""
    parts = urlsplit(url)
    return urlunsplit(("", "", parts.path, parts.query, ""))


def _get(client: TestClient, url: str):
    response = client.get(_path(url))
    assert response.status_code == 200, f"{url}: {response.status_code} {response.text}"
    return response.json()


def _hub_options(client: TestClient, dashboard: dict) -> list[str]:
    definition = grafana.variables(dashboard)
    name = "hub_general" if "hub_general" in definition else "hub_user"
    query = definition[name]["query"]["infinityQuery"]
    options = _get(client, grafana.expand_url(query["url"], {}, definition))
    if query.get("root_selector"):
        options = jsonata.Jsonata(query["root_selector"]).evaluate(options)
    return options


def _targets():
    for path in UPSTREAM:
        for panel in grafana.panels(grafana.load(path)):
            if panel.get("targets"):
                yield pytest.param(path, panel["id"], id=f"{path.stem}-{panel['id']}")


def test_the_three_upstream_dashboards_are_there():
    assert [p.name for p in UPSTREAM] == [
        "cloud-cost-aws.json",
        "cloud-cost-groups.json",
        "cloud-cost-users.json",
    ]


def test_hub_variables_list_the_hubs(api):
    by_name = {path.name: _hub_options(api, grafana.load(path)) for path in UPSTREAM}
    assert by_name["cloud-cost-aws.json"] == ["prod", "staging", "support"]
    # hub_user drops support and binder and appends a literal "All".
    assert by_name["cloud-cost-users.json"] == ["prod", "staging", "All"]


@pytest.mark.parametrize(("path", "panel_id"), list(_targets()))
def test_upstream_panel_urls_work_unchanged(api, path, panel_id):
    dashboard = grafana.load(path)
    definitions = grafana.variables(dashboard)
    defaults = {"hub_general": _hub_options(api, dashboard), "limit": [""]}
    panel = next(p for p in grafana.panels(dashboard) if p["id"] == panel_id)
    for selection, chosen in SELECTIONS.items():
        _check_panel(api, panel, defaults | chosen, definitions, selection)


def _check_panel(api, panel, values, definitions, selection) -> None:
    for target in panel["targets"]:
        url = grafana.expand_url(target["url"], values, definitions)
        rows = _get(api, url)
        assert isinstance(rows, list)
        if selection == "defaults":
            assert rows, f"{panel['title']}: {url} returned no rows on the sample data"
        for row in rows:
            for column in target.get("columns", []):
                where = f"{panel['title']}: {url} row {json.dumps(row)} column {column}"
                assert column["selector"] in row, where
                grafana.check_column_value(column, row[column["selector"]], where)
