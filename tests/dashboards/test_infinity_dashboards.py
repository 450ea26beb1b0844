"""Every Infinity (HTTP JSON) panel's URL, expanded as Grafana would, is a real endpoint of the
API with parameters it declares, answers 200, and returns the columns the panel reads; the
names its transformations use are names the data has.

Every URL but /health/ready's starts with the `prefix` variable: empty by default (the root
paths, which these tests expand), `/clusters/NAME` to read one cluster of a warehouse that
holds several.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from urllib.parse import parse_qsl, urlsplit

import jsonata
import pytest
from starlette.testclient import TestClient

from api.app import create_app
from core.settings import Settings
from tests.conftest import READER_ROLE
from tests.dashboards import grafana
from tests.dashboards.sample_data import load_sample
from tests.rows import CLUSTER

DATASOURCE_TYPE = "yesoreyeram-infinity-datasource"
SELECTIONS = {
    "all": {},
    "one": {"hub": ["prod"], "component": ["compute"], "group": ["physics"]},
    "two": {"hub": ["prod", "staging"], "component": ["compute", "home storage"]},
}
PREFIX = "${prefix}"
# Paths the API serves at the root only, for every cluster: never under the prefix.
ROOT_ONLY = {"/health/ready", "/budgets", "/cost-anomalies"}
# How the API names one cluster's copy of a root path: /clusters/{cluster}/<root path>.
CLUSTER_ROUTE = re.compile(r"^/clusters/\{[^/{}]+\}(?P<root>/.+)$")


@pytest.fixture
def api(conn, database_url):
    load_sample(conn, now=dt.datetime.now(dt.UTC))
    settings = Settings.from_env({"API_DB_ROLE": READER_ROLE})
    with TestClient(create_app(settings, database_url=database_url)) as client:
        yield client


def _targets():
    for path in grafana.INFINITY_DASHBOARDS:
        for panel in grafana.panels(grafana.load(path)):
            if panel.get("targets"):
                yield pytest.param(path, panel["id"], id=f"{path.stem}-{panel['id']}")


def test_there_are_infinity_dashboards():
    assert [p.name for p in grafana.INFINITY_DASHBOARDS] == ["costs.json", "users-and-groups.json"]


def declared_parameters(client: TestClient) -> dict[str, set[str]]:
    document = client.get("/openapi.json").json()
    return {
        path: {p["name"] for p in item["get"].get("parameters", []) if p["in"] == "query"}
        for path, item in document["paths"].items()
        if "get" in item
    }


def nullable_keys(client: TestClient) -> dict[str, set[str]]:
    """Per path, the keys of its rows whose OpenAPI schema allows null."""
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    nullable = {}
    for path, item in document["paths"].items():
        content = item.get("get", {}).get("responses", {}).get("200", {}).get("content", {})
        ref = content.get("application/json", {}).get("schema", {}).get("items", {}).get("$ref")
        if ref is None:
            continue
        properties = schemas[ref.rsplit("/", 1)[1]].get("properties", {})
        nullable[path] = {
            key for key, schema in properties.items() if "null" in (schema.get("type") or [])
        }
    return nullable


def fetch(
    client: TestClient,
    url: str,
    declared: dict[str, set[str]],
    root_selector: str = "",
    route: str | None = None,
):
    """GET a dashboard URL (relative to the datasource's base URL) and apply its selector.

    `route` is the OpenAPI path the URL's path instantiates, when it is not the path itself.
    """
    assert url.startswith("/"), f"{url}: URLs are relative to the datasource's base URL"
    parts = urlsplit(url)
    route = route or parts.path
    assert route in declared, f"{parts.path} is not an endpoint of the API"
    for name, _ in parse_qsl(parts.query, keep_blank_values=True):
        assert name in declared[route], f"{route} declares no parameter {name}"
    response = client.get(url)
    assert response.status_code == 200, f"{url}: {response.status_code} {response.text}"
    body = response.json()
    if root_selector:
        body = jsonata.Jsonata(root_selector).evaluate(body)
    return body


def variable_values(client, dashboard, declared) -> dict[str, list[str]]:
    """Each variable's options as Grafana would list them; "All" is selected by default.

    In the dashboard's order: a variable's URL sees the values of those before it (`prefix`).
    """
    definitions = grafana.variables(dashboard)
    values: dict[str, list[str]] = {}
    for name, definition in definitions.items():
        if definition["type"] == "query":
            query = definition["query"]["infinityQuery"]
            assert definition["datasource"]["type"] == DATASOURCE_TYPE
            url = grafana.expand_url(query["url"], values, definitions)
            options = fetch(client, url, declared, query.get("root_selector", ""))
            assert isinstance(options, list) and options, f"variable {name} has no options"
            assert all(isinstance(o, str) for o in options), f"variable {name}: not strings"
        elif definition["type"] == "custom":
            options = definition["query"].split(",")
        elif definition["type"] == "textbox":
            # What the box holds until someone types: its query, the default.
            assert definition["current"]["value"] == definition["query"], name
            values[name] = [definition["query"]]
            continue
        else:
            continue
        if definition.get("includeAll"):
            assert definition.get("allValue") == "all", f"{name}: All must be sent as `all`"
            values[name] = ["$__all"]
        else:
            assert definition["current"]["value"] in options
            values[name] = [definition["current"]["value"]]
    return values


def test_variables_list_what_the_api_serves(api):
    declared = declared_parameters(api)
    dashboard = grafana.load(grafana.DASHBOARDS / "infinity" / "users-and-groups.json")
    definitions = grafana.variables(dashboard)
    values = variable_values(api, dashboard, declared)
    hub_query = definitions["hub"]["query"]["infinityQuery"]
    assert fetch(api, grafana.expand_url(hub_query["url"], values, definitions), declared) == [
        "prod",
        "staging",
        "support",
    ]
    group_query = definitions["group"]["query"]["infinityQuery"]
    url = grafana.expand_url(group_query["url"], values, definitions)
    assert fetch(api, url, declared, group_query["root_selector"]) == [
        "chemistry",
        "multiple",
        "none",
        "physics",
    ]


def _check_transformations(panel: dict, names: set[str]) -> None:
    """Each transformation names fields that exist at that step (field names are the
    columns' `text`; groupBy names an aggregate `<field> (<calculation>)`)."""
    title = panel["title"]
    known = set(names)
    seen = set(names)
    for step in panel.get("transformations", []):
        options = step["options"]
        if step["id"] == "groupBy":
            produced = set()
            for name, how in options["fields"].items():
                assert name in known, f"{title}: groupBy uses unknown field {name}"
                if how["operation"] == "groupby":
                    produced.add(name)
                else:
                    produced |= {f"{name} ({a})" for a in how["aggregations"]}
            known = known | produced if "filter" in step else produced
        elif step["id"] == "sortBy":
            for sort in options["sort"]:
                assert sort["field"] in known, f"{title}: sortBy unknown field {sort['field']}"
        elif step["id"] == "partitionByValues":
            assert set(options["fields"]) <= known, f"{title}: partition by unknown field"
        elif step["id"] == "joinByField":
            assert options["byField"] in known, f"{title}: join on unknown field"
        elif step["id"] == "calculateField":
            binary = options["binary"]
            assert {binary["left"], binary["right"]} <= known, f"{title}: unknown operand"
            known.add(options["alias"])
        elif step["id"] == "organize":
            for key in ("excludeByName", "indexByName", "renameByName"):
                unknown = set(options.get(key, {})) - known
                assert not unknown, f"{title}: organize names unknown fields {unknown}"
        else:
            raise AssertionError(f"{title}: transformation {step['id']} is not checked")
        seen |= known
    for override in panel.get("fieldConfig", {}).get("overrides", []):
        if override["matcher"]["id"] == "byName":
            assert override["matcher"]["options"] in seen, f"{title}: override of unknown field"


@pytest.mark.parametrize(("path", "panel_id"), list(_targets()))
def test_panel_urls_are_real_endpoints_returning_the_columns_the_panel_reads(api, path, panel_id):
    dashboard = grafana.load(path)
    definitions = grafana.variables(dashboard)
    declared = declared_parameters(api)
    defaults = variable_values(api, dashboard, declared)
    panel = next(p for p in grafana.panels(dashboard) if p["id"] == panel_id)
    for selection, chosen in SELECTIONS.items():
        values = defaults | {k: v for k, v in chosen.items() if k in defaults}
        names = _check_panel(api, panel, values, definitions, declared, selection)
    _check_transformations(panel, names)


def _check_panel(api, panel, values, definitions, declared, selection) -> set[str]:
    names = set()
    nullable = nullable_keys(api)
    for target in panel["targets"]:
        assert target["datasource"] == panel["datasource"]
        assert target["datasource"]["type"] == DATASOURCE_TYPE
        assert (target["type"], target["source"]) == ("json", "url")
        # Only the backend parser evaluates a root selector as JSONata.
        assert target["parser"] == ("backend" if target.get("root_selector") else "simple")
        url = grafana.expand_url(target["url"], values, definitions)
        root_selector = target.get("root_selector", "")
        rows = fetch(api, url, declared, root_selector)
        # A key the API documents as nullable may be null; rows a selector built, never.
        may_be_null = set() if root_selector else nullable.get(urlsplit(url).path, set())
        assert isinstance(rows, list), f"{url}: not a list of rows"
        if selection == "all":
            assert rows, f"{panel['title']}: {url} returned no rows on the sample data"
        columns = target["columns"]
        assert columns, f"{panel['title']}: a target lists the columns it reads"
        for row in rows:
            for column in columns:
                where = f"{panel['title']}: {url} row {json.dumps(row)} column {column}"
                assert column["selector"] in row, where
                value = row[column["selector"]]
                if value is None and column["selector"] in may_be_null:
                    continue
                grafana.check_column_value(column, value, where)
        names |= {c["text"] for c in columns}
    return names


def test_top_users_url_limits_to_n_users(api):
    dashboard = grafana.load(grafana.DASHBOARDS / "infinity" / "users-and-groups.json")
    definitions = grafana.variables(dashboard)
    declared = declared_parameters(api)
    values = variable_values(api, dashboard, declared) | {"top_n": ["1"]}
    panel = next(p for p in grafana.panels(dashboard) if p["title"] == "Top $top_n users")
    rows = fetch(api, grafana.expand_url(panel["targets"][0]["url"], values, definitions), declared)
    assert {row["user"] for row in rows} == {"alice"}


def _urls(dashboard: dict):
    """(where, URL, root selector) of every query variable and every target."""
    for name, definition in grafana.variables(dashboard).items():
        if definition["type"] == "query":
            query = definition["query"]["infinityQuery"]
            yield f"${name}", query["url"], query.get("root_selector", "")
    for panel in grafana.panels(dashboard):
        for target in panel.get("targets", []):
            yield panel["title"], target["url"], target.get("root_selector", "")


@pytest.mark.parametrize("path", grafana.INFINITY_DASHBOARDS, ids=lambda p: p.stem)
def test_every_url_starts_with_the_prefix_variable_empty_by_default(path):
    dashboard = grafana.load(path)
    prefix = grafana.variables(dashboard)["prefix"]
    assert prefix["type"] == "textbox"
    assert prefix["query"] == prefix["current"]["value"] == "", "root paths by default"
    assert "/clusters/NAME" in prefix["description"], "the description says what to type"
    urls = list(_urls(dashboard))
    assert urls
    for where, url, _ in urls:
        if urlsplit(url).path in ROOT_ONLY:
            continue
        assert url.startswith(PREFIX + "/"), (
            f"{path.name} / {where}: {url} is not under ${{prefix}}"
        )
        assert url.count("$prefix") + url.count("${prefix") == 1, f"{path.name} / {where}: {url}"


def test_a_cluster_prefix_reaches_that_clusters_paths(api):
    """With the prefix set to /clusters/default (the sample's cluster), every URL but the
    root-only ones is its root URL under that prefix. Where the OpenAPI document declares
    /clusters/{cluster}/... paths, each such URL must be one, with parameters it declares, and
    answer what its root URL answers, since the warehouse holds that cluster alone."""
    declared = declared_parameters(api)
    cluster_routes = {
        match["root"]: path for path in declared if (match := CLUSTER_ROUTE.match(path))
    }
    prefix = f"/clusters/{CLUSTER}"
    for path in grafana.INFINITY_DASHBOARDS:
        dashboard = grafana.load(path)
        definitions = grafana.variables(dashboard)
        values = variable_values(api, dashboard, declared)
        for where, url, root_selector in _urls(dashboard):
            at_root = grafana.expand_url(url, values, definitions)
            expanded = grafana.expand_url(url, values | {"prefix": [prefix]}, definitions)
            root = urlsplit(at_root).path
            if root in ROOT_ONLY:
                assert expanded == at_root, f"{path.name} / {where}: {root} is root-only"
                continue
            assert expanded == prefix + at_root, f"{path.name} / {where}"
            if not cluster_routes:
                continue  # an API without cluster paths: the root ones are checked above
            assert root in cluster_routes, f"{path.name} / {where}: no /clusters/{{cluster}}{root}"
            body = fetch(api, expanded, declared, root_selector, route=cluster_routes[root])
            assert body == fetch(api, at_root, declared, root_selector), (
                f"{path.name} / {where}: {expanded} answers otherwise than {at_root}"
            )
