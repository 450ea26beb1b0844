"""Several clusters in one warehouse (docs/api.md §9).

Two databases: ONE holds the API tests' dataset as cluster A alone; SEVERAL holds the same A,
plus B (other numbers in its own AWS account, the same hub names `prod`, `staging` and
`support`, and a user `alice` of its own), C (one staging hub-day, in A's AWS account, whose
`account` slice the ETL stores under A only: docs/clusters.md §5) and D (registered, nothing
loaded yet). The differential
test asks every endpoint in many parameter forms: `/clusters/A/<path>` on SEVERAL must answer
what `<path>` answers on ONE, byte for byte, JSON and CSV, status and freshness header.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from api.app import create_app
from api.endpoints import LIST_ENDPOINTS, ROUTED_ENDPOINTS
from tests.api.conftest import api_settings, fixed_clock
from tests.api.databases import loaded_database
from tests.api.dataset import EC2, S3, load_dataset
from tests.migrations.test_cluster_upgrade import FORMS
from tests.rows import add_costs, add_groups, add_usage

RANGE = "from=2026-01-04&to=2026-01-05"

COSTS_B = [
    ("2026-01-04", "account", None, EC2, "50"),
    ("2026-01-04", "attributable", "prod", EC2, "7"),
    ("2026-01-04", "attributable", "staging", EC2, "3.333"),
    ("2026-01-05", "account", None, EC2, "40"),
    ("2026-01-05", "attributable", "staging", EC2, "2"),
    ("2026-01-05", "attributable", "staging", S3, "0.5"),
    ("2026-01-05", "attributable", "support", "AWS Backup", "1"),
]
USAGE_B = [
    ("2026-01-04", "prod", "compute", "alice", 1),
    ("2026-01-04", "staging", "compute", "zed", 1),
    ("2026-01-05", "staging", "compute", "alice", 3),
    ("2026-01-05", "staging", "compute", "zed", 1),
]
GROUPS_B = [
    ("2026-01-04", "prod", "alice", "g1"),
    ("2026-01-04", "staging", "alice", "g1"),
    ("2026-01-04", "staging", "alice", "g9"),
    ("2026-01-04", "staging", "alice", "multiple"),
    ("2026-01-04", "staging", "zed", "none"),
]
# C shares A's account: no `account` slice of its own.
COSTS_C = [("2026-01-05", "attributable", "staging", EC2, "1")]
USAGE_C = [("2026-01-05", "staging", "compute", "yan", 1)]
GROUPS_C = [("2026-01-05", "staging", "yan", "none")]

LOADED_A = dt.datetime(2026, 1, 9, 6, 0, 12, tzinfo=dt.UTC)
LOADED_B = dt.datetime(2026, 1, 10, 7, 30, tzinfo=dt.UTC)

# FORMS (the upgrade test's) and more: every filter, Grafana's forms, CSV, and bad requests.
DIFFERENTIAL_FORMS = FORMS + (
    "?format=csv",
    "?from=2026-01-04&to=2026-01-05&usergroup={g1,g2}&limit=1&format=csv",
    "?from=2026-01-04&to=2026-01-05&usergroup=none&limit=2&hub=prod",
    "?from=2026-01-04&to=2026-01-05&user=alice&user=dave&component=compute",
    "?from=2026-01-04&to=2026-01-05&component={compute,backup}&hub=all",
    "?from=2026-01-04T00:00:00.000Z&to=2026-01-05T23:59:59.999Z&limit=all",
    "?from=1767484800000&to=1767571200000&user=&usergroup=All",
    "?from=2026-01-06&to=2026-01-09&username=bob&format=csv",
    "?from=2026-01-04&to=2026-01-09&usergroup=none&hub=staging",
    "?hub_name=prod&user_name=bob",
    "?hub_name={prod,staging}&format=csv",
    "?from=bad",
    "?component=gpu",
    "?limit=0&format=xml",
)


def _register(conn, *names: str) -> None:
    conn.execute(
        sa.text("INSERT INTO cluster (name) SELECT unnest(CAST(:names AS text[]))"),
        {"names": list(names)},
    )


def _loaded(conn, cluster: str, at: dt.datetime) -> None:
    conn.execute(
        sa.text(
            """INSERT INTO run_log (cluster, source, first_day, last_day, started_at,
                                    finished_at, status, rows, requests)
               VALUES (:cluster, 'costs', '2026-01-04', '2026-01-05', :at, :at, 'succeeded', 7, 2),
                      (:cluster, 'usage', '2026-01-05', '2026-01-05', :at, :at, 'succeeded', 4, 2)"""
        ),
        {"cluster": cluster, "at": at},
    )


def load_one(conn) -> None:
    load_dataset(conn, cluster="A")
    _loaded(conn, "A", LOADED_A)


def load_several(conn) -> None:
    load_one(conn)
    add_costs(conn, COSTS_B, cluster="B")
    add_usage(conn, USAGE_B, cluster="B")
    add_groups(conn, GROUPS_B, cluster="B")
    _loaded(conn, "B", LOADED_B)
    add_costs(conn, COSTS_C, cluster="C")
    add_usage(conn, USAGE_C, cluster="C")
    add_groups(conn, GROUPS_C, cluster="C")
    _register(conn, "D")


@pytest.fixture(scope="module")
def warehouses(admin_engine, admin_url, template_database):
    """{"one": client, "several": client}, each on its own database from the template."""
    with contextlib.ExitStack() as stack:
        clients = {}
        for label, load in (("one", load_one), ("several", load_several)):
            url = stack.enter_context(
                loaded_database(admin_engine, admin_url, template_database, load)
            )
            app = create_app(api_settings(), database_url=url, clock=fixed_clock)
            clients[label] = stack.enter_context(TestClient(app))
        yield clients


@pytest.fixture(scope="module")
def one(warehouses):
    return warehouses["one"]


@pytest.fixture(scope="module")
def several(warehouses):
    return warehouses["several"]


def answer(response):
    return (
        response.status_code,
        response.headers.get("content-type"),
        response.headers.get("x-data-loaded-at"),
        response.content,
    )


def get(client, url):
    response = client.get(url)
    assert response.status_code == 200, (url, response.text)
    return response.json()


@pytest.mark.parametrize("spec", LIST_ENDPOINTS, ids=lambda spec: spec.path)
def test_a_cluster_path_answers_as_a_warehouse_of_that_cluster_alone(one, several, spec):
    answered = 0
    for form in DIFFERENTIAL_FORMS:
        alone = one.get(spec.path + form)
        scoped = several.get(spec.cluster_path.replace("{cluster}", "A") + form)
        assert answer(scoped) == answer(alone), form
        answered += alone.status_code == 200 and alone.content not in (b"[]", b"")
        # Accept: text/csv chooses CSV there too.
        if "format" not in form:
            headers = {"Accept": "text/csv"}
            alone = one.get(spec.path + form, headers=headers)
            scoped = several.get(
                spec.cluster_path.replace("{cluster}", "A") + form, headers=headers
            )
            assert answer(scoped) == answer(alone), (form, "Accept")
    assert answered, "no form gave rows"


def test_the_single_cluster_warehouse_knows_one_cluster(one):
    assert get(one, "/cluster-names") == ["A"]
    # With one cluster, no row carries `cluster`; the filter still works and is checked.
    body = get(one, f"/total-costs?{RANGE}")
    assert body and all("cluster" not in row for row in body)
    assert (
        one.get(f"/total-costs?{RANGE}&cluster=A").content
        == one.get(f"/total-costs?{RANGE}").content
    )
    bad = one.get(f"/total-costs?{RANGE}&cluster=B")
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["type"] == "unknown_cluster"


def _strip(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "cluster"}


OBJECT_ENDPOINTS = [spec for spec in LIST_ENDPOINTS if not spec.scalar]
ROOT_FORMS = (
    f"?{RANGE}",
    "?from=2026-01-01&to=2026-01-10",
    f"?{RANGE}&hub=staging",
    f"?{RANGE}&limit=1",
    f"?{RANGE}&usergroup=g1&limit=1",
    f"?{RANGE}&user=alice",
    "?hub_name=staging",
    "",
)


@pytest.mark.parametrize("spec", OBJECT_ENDPOINTS, ids=lambda spec: spec.path)
def test_root_rows_are_every_clusters_rows_each_ending_with_its_cluster(several, spec):
    clusters = get(several, "/cluster-names")
    for form in ROOT_FORMS:
        root = get(several, spec.path + form)
        for row in root:
            assert list(row) == [*spec.columns, "cluster"], (form, row)
        per_cluster = {
            cluster: get(several, spec.cluster_path.replace("{cluster}", cluster) + form)
            for cluster in clusters
        }
        # The same rows as the clusters' own answers, each cluster's in its own order...
        for cluster, rows in per_cluster.items():
            assert [_strip(r) for r in root if r["cluster"] == cluster] == rows, (form, cluster)
        assert len(root) == sum(len(rows) for rows in per_cluster.values())
        # ...and the cluster last in the order: rows equal but for it are by cluster.
        for before, after in zip(root, root[1:], strict=False):
            if _strip(before) == _strip(after):
                assert before["cluster"] < after["cluster"], (form, before, after)


def test_two_clusters_staging_hubs_are_never_summed(several):
    assert [tuple(r.values()) for r in get(several, f"/total-costs-per-hub?{RANGE}")] == [
        ("2026-01-04", 14.01, "prod", "A"),
        ("2026-01-04", 7.0, "prod", "B"),
        ("2026-01-04", 3.33, "staging", "B"),
        ("2026-01-04", 2.5, "support", "A"),
        ("2026-01-05", 7.0, "prod", "A"),
        ("2026-01-05", 4.0, "staging", "A"),
        ("2026-01-05", 2.5, "staging", "B"),
        ("2026-01-05", 1.0, "staging", "C"),
        ("2026-01-05", 1.0, "support", "B"),
    ]
    staging = get(several, "/total-costs-per-component?from=2026-01-05&to=2026-01-05&hub=staging")
    assert [tuple(r.values()) for r in staging] == [
        ("2026-01-05", 4.0, "compute", "A"),
        ("2026-01-05", 2.0, "compute", "B"),
        ("2026-01-05", 1.0, "compute", "C"),
        ("2026-01-05", 0.0, "object storage", "A"),
        ("2026-01-05", 0.5, "object storage", "B"),
    ]
    # Usage shares stay within each cluster's hub: alice has 3/4 of B's staging, not of A's.
    shares = get(several, "/total-usage?from=2026-01-05&to=2026-01-05&hub=staging")
    assert [(r["user"], r["value"], r["cluster"]) for r in shares] == [
        ("alice", 0.75, "B"),
        ("dave", 1 / 3, "A"),
        ("erin", 2 / 3, "A"),
        ("yan", 1.0, "C"),
        ("zed", 0.25, "B"),
    ]


def test_an_account_shared_by_clusters_is_never_added_up(several):
    # One row per cluster and day, never a sum; C's account is A's, stored under A alone, so
    # adding the `account` rows counts each account once.
    day = "from=2026-01-05&to=2026-01-05"
    assert [tuple(r.values()) for r in get(several, f"/total-costs?{day}")] == [
        ("2026-01-05", 30.0, "account", "A"),
        ("2026-01-05", 40.0, "account", "B"),
        ("2026-01-05", 11.01, "attributable", "A"),
        ("2026-01-05", 3.5, "attributable", "B"),
        ("2026-01-05", 1.0, "attributable", "C"),
    ]
    assert get(several, f"/clusters/C/total-costs?{day}") == [
        {"date": "2026-01-05", "cost": 1.0, "name": "attributable"}
    ]
    # Group totals stay per cluster too: `none` on 01-05 is A's 6, B's 0.5 (zed) and C's 1.
    groups = get(several, "/total-costs-per-group?from=2026-01-05&to=2026-01-05")
    assert [(r["cost"], r["cluster"]) for r in groups if r["usergroup"] == "none"] == [
        (6.0, "A"),
        (0.5, "B"),
        (1.0, "C"),
    ]


def test_limit_keeps_the_top_users_of_each_cluster(several):
    top = get(several, f"/costs-per-user?{RANGE}&limit=1")
    assert {(r["cluster"], r["user"]) for r in top} == {("A", "bob"), ("B", "alice"), ("C", "yan")}
    # A's alice is not B's alice: with A's bob filtered out, A's top user is alice (6) alone.
    top = get(several, f"/costs-per-user?{RANGE}&user={{alice,yan}}&limit=1")
    assert {(r["cluster"], r["user"]) for r in top} == {
        ("A", "alice"),
        ("B", "alice"),
        ("C", "yan"),
    }


def test_names_are_listed_once_whatever_their_clusters(several):
    assert get(several, f"/hub-names?{RANGE}") == ["binder", "prod", "staging", "support"]
    assert get(several, f"/hub-names?{RANGE}&cluster=C") == ["staging"]
    assert get(several, f"/hub-names?{RANGE}&cluster={{B,C}}") == ["prod", "staging", "support"]
    assert several.get(f"/hub-names?{RANGE}&format=csv").text.splitlines() == [
        "hub",
        "binder",
        "prod",
        "staging",
        "support",
    ]
    assert get(several, "/component-names") == ["compute", "home storage"]
    assert get(several, "/component-names?cluster=B") == ["compute", "home storage"]


@pytest.mark.parametrize(
    ("query", "clusters"),
    [
        ("cluster=B", {"B"}),
        ("cluster={A,C}", {"A", "C"}),
        ("cluster=C&cluster=B", {"B", "C"}),
        ("cluster=%20B%20&cluster=", {"B"}),
        ("cluster=all", {"A", "B", "C"}),
        ("cluster=ALL&cluster=B", {"A", "B", "C"}),
        ("cluster=", {"A", "B", "C"}),
        ("cluster=D", set()),
    ],
)
def test_the_cluster_filter_follows_the_rules_of_the_other_filters(several, query, clusters):
    rows = get(several, f"/total-costs?{RANGE}&{query}")
    assert {r["cluster"] for r in rows} == clusters
    # Filtering keeps the multi-cluster form: every row still says its cluster.
    assert all(list(r)[-1] == "cluster" for r in rows)


def test_bad_cluster_filters_are_422_with_the_other_problems(several):
    response = several.get("/costs-per-user?cluster=nope&cluster=B&limit=0")
    assert response.status_code == 422
    assert response.headers["x-data-loaded-at"] == "2026-01-10T07:30:00Z"
    assert [p["type"] for p in response.json()["detail"]] == [
        "positive_integer",
        "unknown_cluster",
    ]
    response = several.get("/costs-per-user?cluster=nope&cluster=B")
    assert response.json() == {
        "detail": [
            {
                "loc": ["query", "cluster"],
                "msg": "unknown cluster(s): nope",
                "type": "unknown_cluster",
            }
        ]
    }
    response = several.get("/total-costs?cluster=a%00b&from=bad")
    assert response.status_code == 422
    assert {p["type"] for p in response.json()["detail"]} == {"invalid_value", "date_parsing"}
    response = several.get("/total-costs-per-component?cluster=x&component=gpu")
    assert {p["type"] for p in response.json()["detail"]} == {
        "unknown_component",
        "unknown_cluster",
    }


def test_an_unknown_cluster_path_is_a_404_in_the_one_error_shape(several):
    for path in (
        "/clusters/nope/total-costs",
        "/clusters/a%00b/hub-names",
        "/clusters/B%2FA/total-costs",
    ):
        response = several.get(path)
        assert response.status_code == 404, path
        body = response.json()
        assert list(body) == ["detail"] and isinstance(body["detail"], str)
        assert "x-data-loaded-at" not in response.headers
    assert several.get("/clusters/nope/total-costs").json() == {
        "detail": "unknown cluster 'nope': /cluster-names lists the clusters"
    }
    # The parameters are checked first, without a cluster to scope the freshness to.
    response = several.get("/clusters/nope/total-costs?from=bad")
    assert response.status_code == 422 and "x-data-loaded-at" not in response.headers
    # /cluster-names is not a per-cluster endpoint.
    assert several.get("/clusters/A/cluster-names").status_code == 404
    # A registered cluster with nothing loaded is known: empty answers, no freshness.
    response = several.get(f"/clusters/D/total-costs?{RANGE}")
    assert response.status_code == 200 and response.json() == []
    assert "x-data-loaded-at" not in response.headers


def test_cluster_paths_tell_the_freshness_of_their_cluster(several):
    assert several.get("/total-costs").headers["x-data-loaded-at"] == "2026-01-10T07:30:00Z"
    assert (
        several.get("/clusters/A/total-costs").headers["x-data-loaded-at"] == "2026-01-09T06:00:12Z"
    )
    assert several.get("/clusters/B/total-costs?format=csv").headers["x-data-loaded-at"] == (
        "2026-01-10T07:30:00Z"
    )
    assert "x-data-loaded-at" not in several.get("/clusters/C/total-costs").headers
    response = several.get("/clusters/A/total-costs?from=bad")
    assert response.status_code == 422
    assert response.headers["x-data-loaded-at"] == "2026-01-09T06:00:12Z"


def test_cluster_names_lists_every_cluster_in_order(several):
    assert get(several, "/cluster-names") == ["A", "B", "C", "D"]
    response = several.get("/cluster-names?format=csv")
    assert response.headers["content-type"].startswith("text/csv")
    assert list(csv.reader(io.StringIO(response.text))) == [["cluster"], ["A"], ["B"], ["C"], ["D"]]


def test_csv_at_the_root_has_the_cluster_column_last(several):
    response = several.get(f"/total-costs-per-hub?{RANGE}&cluster=C&format=csv")
    assert response.text.splitlines() == ["date,cost,name,cluster", "2026-01-05,1,staging,C"]


def test_the_index_and_readiness_name_the_clusters(one, several):
    index = get(several, "/")
    assert index["clusters"] == ["A", "B", "C", "D"]
    assert "/clusters/{cluster}/costs-per-user" in index["cluster_endpoints"]
    assert "/cluster-names" in index["endpoints"]
    assert "clusters" not in get(one, "/")
    ready = get(several, "/health/ready")
    assert list(ready["sources"]) == [
        "A/costs",
        "A/usage",
        "B/costs",
        "B/usage",
        "C/costs",
        "C/usage",
        "D/costs",
        "D/usage",
    ]
    assert ready["sources"]["B/usage"] == {
        "last_success_at": "2026-01-10T07:30:00Z",
        "last_day_loaded": "2026-01-05",
        "failed_chunks_24h": 0,
        "running_chunks": 0,
        "cluster": "B",
    }
    assert ready["data_loaded_at"] == "2026-01-10T07:30:00Z"
    alone = get(one, "/health/ready")
    assert list(alone["sources"]) == ["costs", "usage"]
    assert list(alone["sources"]["costs"]) == [
        "last_success_at",
        "last_day_loaded",
        "failed_chunks_24h",
        "running_chunks",
    ]


def test_metrics_label_each_source_with_its_cluster(warehouses):
    from tests.api.test_service import sample

    text = warehouses["several"].get("/metrics").text
    name = "hubcost_etl_last_success_timestamp_seconds"
    assert sample(text, name, source="costs", cluster="A") == LOADED_A.timestamp()
    assert sample(text, name, source="costs", cluster="B") == LOADED_B.timestamp()
    assert sample(text, name, source="costs", cluster="C") is None
    assert sample(text, "hubcost_etl_rows_loaded_24h", source="usage", cluster="C") == 0
    assert sample(text, "hubcost_etl_running_chunks", source="usage", cluster="D") == 0


def test_metrics_drop_the_cluster_less_series_once_a_cluster_is_known(engine, make_client):
    from tests.api.test_service import sample

    client = make_client()
    text = client.get("/metrics").text
    assert sample(text, "hubcost_etl_rows_loaded_24h", source="costs", cluster="") == 0
    with engine.begin() as conn:
        _loaded(conn, "A", LOADED_A)
    text = client.get("/metrics").text
    assert sample(text, "hubcost_etl_rows_loaded_24h", source="costs", cluster="") is None
    assert sample(text, "hubcost_etl_rows_loaded_24h", source="costs", cluster="A") == 0
    name = "hubcost_etl_last_success_timestamp_seconds"
    assert sample(text, name, source="costs", cluster="A") == LOADED_A.timestamp()


def test_the_clusters_view_has_every_cluster_and_its_days(engine, conn):
    with engine.begin() as writer:
        load_several(writer)
    rows = conn.execute(sa.text("SELECT * FROM clusters ORDER BY cluster")).all()
    day = dt.date.fromisoformat
    assert [tuple(r) for r in rows] == [
        ("A", day("2026-01-04"), day("2026-01-05")),
        ("B", day("2026-01-04"), day("2026-01-05")),
        ("C", day("2026-01-05"), day("2026-01-05")),
        ("D", None, None),
    ]


def test_facts_register_their_cluster_and_it_stays(engine, conn):
    # Whoever writes the facts (not only the ETL, which registers its clusters itself).
    with engine.begin() as writer:
        add_usage(writer, [("2026-02-01", "prod", "compute", "ann", 1)], cluster="usage-only")
    assert conn.execute(sa.text("SELECT * FROM clusters")).all() == [
        ("usage-only", dt.date(2026, 2, 1), dt.date(2026, 2, 1))
    ]
    with engine.begin() as writer:
        writer.execute(sa.text("DELETE FROM usage"))
    assert conn.execute(sa.text("SELECT * FROM clusters")).all() == [("usage-only", None, None)]


def test_the_document_lists_every_cluster_path(one):
    document = get(one, "/openapi.json")
    paths = document["paths"]
    assert "/cluster-names" in paths
    for spec in LIST_ENDPOINTS:
        operation = paths[spec.cluster_path]["get"]
        parameters = {p["name"]: p for p in operation["parameters"]}
        assert parameters["cluster"]["in"] == "path" and parameters["cluster"]["required"]
        assert "404" in operation["responses"]
        root = {p["name"]: p for p in paths[spec.path]["get"]["parameters"]}
        assert root["cluster"]["in"] == "query", spec.path
        assert set(root) - {"cluster"} == set(parameters) - {"cluster"}, spec.path
        assert (
            operation["responses"]["200"]["content"]
            == paths[spec.path]["get"]["responses"]["200"]["content"]
        )
    assert {spec.path for spec in ROUTED_ENDPOINTS} - {spec.path for spec in LIST_ENDPOINTS} == {
        "/cluster-names",
        "/budgets",
        "/cost-anomalies",
    }
    assert "/clusters/{cluster}/cluster-names" not in paths
    assert paths["/cluster-names"]["get"]["parameters"] == [
        p for p in paths["/component-names"]["get"]["parameters"] if p["name"] == "format"
    ]
    # The row schemas keep their keys; `cluster` is allowed as one more, and only it.
    row = document["components"]["schemas"]["UserCost"]
    assert list(row["patternProperties"]) == ["^cluster$"]
    assert row["additionalProperties"] is False


def test_root_answers_conform_to_the_document_with_several_clusters(several):
    import jsonschema

    schemas = get(several, "/openapi.json")["components"]["schemas"]
    for spec in LIST_ENDPOINTS:
        rows = get(several, f"{spec.path}?{RANGE}")
        assert rows, spec.path
        jsonschema.validate(rows, {"type": "array", "items": schemas[spec.row_name]})
        bad = [{**row, "clusters": "A"} for row in rows if isinstance(row, dict)]
        if bad:
            with pytest.raises(jsonschema.ValidationError):
                jsonschema.validate(bad, {"type": "array", "items": schemas[spec.row_name]})


def test_one_app_follows_the_number_of_clusters_from_request_to_request(engine, client):
    # The app assumes the form the last request found; the statement that reads the rows also
    # reads the clusters, and a request that finds their number changed is answered again.
    with engine.begin() as conn:
        load_one(conn)
    alone = client.get(f"/total-costs-per-hub?{RANGE}").content
    assert b'"cluster"' not in alone
    with engine.begin() as conn:
        add_costs(conn, COSTS_B, cluster="B")
    several = get(client, f"/total-costs-per-hub?{RANGE}")
    assert {r["cluster"] for r in several} == {"A", "B"}
    assert client.get(f"/clusters/A/total-costs-per-hub?{RANGE}").content == alone
    csv_rows = client.get(f"/total-costs-per-hub?{RANGE}&format=csv").text.splitlines()
    assert csv_rows[0] == "date,cost,name,cluster"
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM cost WHERE cluster = 'B'"))
        conn.execute(sa.text("DELETE FROM cluster WHERE name = 'B'"))
    assert client.get(f"/total-costs-per-hub?{RANGE}").content == alone
    assert client.get(f"/clusters/B/total-costs-per-hub?{RANGE}").status_code == 404
