"""Readiness, freshness, CSV, the bearer token and /metrics."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io

import pytest
import sqlalchemy as sa

from tests.api.dataset import load_dataset

FINISHED = dt.datetime(2026, 1, 10, 6, 0, 12, tzinfo=dt.UTC)


def add_runs(conn):
    """A succeeded costs chunk, a failed usage chunk within 24 hours, an old usage success."""
    conn.execute(
        sa.text(
            """INSERT INTO run_log
               (cluster, source, first_day, last_day, started_at, finished_at, status, rows,
                requests, error)
               VALUES
               ('default', 'costs', '2026-01-01', '2026-01-10', :finished - interval '1 minute', :finished,
                'succeeded', 40, 8, NULL),
               ('default', 'usage', '2026-01-09', '2026-01-09', now() - interval '1 hour',
                now() - interval '59 minutes', 'failed', 0, 3, 'Prometheus said no'),
               ('default', 'usage', '2026-01-08', '2026-01-08', :older - interval '1 minute', :older,
                'succeeded', 12, 4, NULL)"""
        ),
        {"finished": FINISHED, "older": FINISHED - dt.timedelta(days=2)},
    )


def test_ready_before_the_first_load(client):
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert "x-data-loaded-at" not in response.headers
    body = response.json()
    assert body["status"] == "ready"
    assert body["data_loaded_at"] is None
    assert body["sources"]["costs"]["last_success_at"] is None
    assert body["sources"]["usage"]["last_day_loaded"] is None


def test_ready_tells_when_each_source_last_loaded(engine, client):
    with engine.begin() as conn:
        add_runs(conn)
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.headers["x-data-loaded-at"] == "2026-01-10T06:00:12Z"
    body = response.json()
    assert body["data_loaded_at"] == "2026-01-10T06:00:12Z"
    assert body["sources"]["costs"]["last_success_at"] == "2026-01-10T06:00:12Z"
    assert body["sources"]["costs"]["last_day_loaded"] == "2026-01-10"
    assert body["sources"]["usage"]["last_success_at"] == "2026-01-08T06:00:12Z"
    assert body["sources"]["usage"]["failed_chunks_24h"] == 1


def test_not_ready_when_the_schema_is_not_at_head(engine, client):
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0002'"))
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert "0002" in response.json()["detail"]


def test_not_ready_on_an_empty_database(make_client, empty_database_url):
    from starlette.testclient import TestClient

    from api.app import create_app
    from tests.api.conftest import api_settings

    # No migrations: the role has no status view to read (or does not exist on this database).
    settings = api_settings()
    app = create_app(settings, database_url=empty_database_url)
    with TestClient(app) as client:
        response = client.get("/health/ready")
    assert response.status_code == 503
    assert list(response.json()) == ["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/hub-names",
        "/component-names",
        "/total-costs",
        "/users-with-no-groups",
        "/total-costs?from=bad",
        "/costs-per-user?component=gpu",
    ],
)
def test_every_json_response_tells_when_data_was_last_loaded(engine, client, path):
    assert "x-data-loaded-at" not in client.get(path).headers
    with engine.begin() as conn:
        add_runs(conn)
    assert client.get(path).headers["x-data-loaded-at"] == "2026-01-10T06:00:12Z"


def test_csv_has_the_same_rows_as_json(engine, client):
    with engine.begin() as conn:
        load_dataset(conn)
        add_runs(conn)
    query = "/costs-per-user?from=2026-01-04&to=2026-01-05&hub=staging"
    as_json = client.get(query).json()
    for response in (
        client.get(query + "&format=csv"),
        client.get(query, headers={"Accept": "text/csv"}),
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        assert response.headers["x-data-loaded-at"] == "2026-01-10T06:00:12Z"
        table = list(csv.reader(io.StringIO(response.text)))
        assert table == [
            ["date", "hub", "component", "user", "value", "usergroup"],
            ["2026-01-05", "staging", "compute", "erin", "2.6667", "none"],
            ["2026-01-05", "staging", "compute", "dave", "1.3333", "none"],
        ]
        assert [
            dict(zip(table[0], [r[0], r[1], r[2], r[3], float(r[4]), r[5]], strict=True))
            for r in table[1:]
        ] == as_json
    names = client.get("/hub-names?format=csv&from=2026-01-04&to=2026-01-05")
    assert names.text.splitlines() == ["hub", "binder", "prod", "staging", "support"]


def test_bearer_token_guards_everything_but_readiness(make_client):
    client = make_client(API_TOKEN="s3cret")
    for path in ("/", "/total-costs", "/openapi.json", "/metrics", "/no-such-thing"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert list(response.json()) == ["detail"]
        assert response.headers["www-authenticate"] == "Bearer"
        assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get(path, headers={"Authorization": "s3cret"}).status_code == 401
    assert client.get("/health/ready").status_code == 200
    ok = {"Authorization": "Bearer s3cret"}
    assert client.get("/total-costs", headers=ok).status_code == 200
    assert client.get("/total-costs", headers={"Authorization": "bearer s3cret"}).status_code == 200
    assert client.get("/metrics", headers=ok).status_code == 200


def test_without_a_token_nothing_asks_for_one(client):
    assert client.get("/total-costs").status_code == 200


def sample(text: str, name: str, **labels) -> float | None:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


def test_metrics_count_requests_per_route_and_read_the_run_log(engine, client):
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """INSERT INTO run_log
                   (cluster, source, first_day, last_day, started_at, finished_at, status, rows,
                    requests)
                   VALUES
                   ('default', 'costs', '2026-01-01', '2026-01-10', now() - interval '2 hours',
                    now() - interval '119 minutes', 'succeeded', 40, 8),
                   ('default', 'costs', '2025-12-01', '2025-12-31', now() - interval '3 days',
                    now() - interval '3 days', 'succeeded', 1000, 30),
                   ('default', 'usage', '2026-01-09', '2026-01-09', now() - interval '1 hour',
                    now() - interval '59 minutes', 'failed', 0, 3)"""
            )
        )
        last_success = conn.execute(
            sa.text("SELECT last_success_at FROM etl_status WHERE source = 'costs'")
        ).scalar_one()
    client.get("/total-costs?from=2026-01-01")
    client.get("/total-costs?from=2026-01-02")
    client.get("/total-costs?from=bad")
    client.get("/no/such/path/123")
    text = client.get("/metrics").text
    requests = "hubcost_api_requests_total"
    assert sample(text, requests, endpoint="/total-costs", status="200") == 2
    assert sample(text, requests, endpoint="/total-costs", status="422") == 1
    assert sample(text, requests, endpoint="unmatched", status="404") == 1
    assert "/no/such/path/123" not in text
    assert sample(text, "hubcost_api_request_duration_seconds_count", endpoint="/total-costs") == 3
    assert sample(text, "hubcost_api_database_up") == 1
    assert (
        sample(text, "hubcost_etl_last_success_timestamp_seconds", source="costs")
        == last_success.timestamp()
    )
    assert sample(text, "hubcost_etl_last_success_timestamp_seconds", source="usage") is None
    assert sample(text, "hubcost_etl_rows_loaded_24h", source="costs") == 40
    assert sample(text, "hubcost_etl_requests_24h", source="costs") == 8
    assert sample(text, "hubcost_etl_failed_chunks_24h", source="costs") == 0
    assert sample(text, "hubcost_etl_failed_chunks_24h", source="usage") == 1
    assert sample(text, "hubcost_etl_requests_24h", source="usage") == 3


def test_each_app_has_its_own_registry(make_client):
    first, second = make_client(), make_client()
    first.get("/total-costs")
    text = second.get("/metrics").text
    assert sample(text, "hubcost_api_requests_total", endpoint="/total-costs") is None


@pytest.mark.prometheus
def test_metrics_pass_promtool(client):
    import shutil
    import subprocess

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed")
    client.get("/total-costs")
    text = client.get("/metrics").text
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_not_ready_when_the_role_does_not_exist(database_url):
    from starlette.testclient import TestClient

    from api.app import create_app
    from tests.api.conftest import api_settings

    settings = dataclasses.replace(api_settings(), api_db_role="no_such_role_here")
    with TestClient(create_app(settings, database_url=database_url)) as client:
        response = client.get("/health/ready")
    assert response.status_code == 503
    assert "API_DB_ROLE" in response.json()["detail"]


def test_the_index_says_when_the_data_is_the_demo(make_client):
    assert make_client().get("/").json()["data_source"] == "demo (synthetic data)"
    real = make_client(PROMETHEUS_URL="http://127.0.0.1:9").get("/").json()
    assert real["data_source"] == "cost explorer/prometheus"


def test_metrics_name_the_services_the_component_map_does_not_know(engine, client):
    from tests.rows import add_costs

    with engine.begin() as conn:
        add_costs(
            conn,
            [
                ("2026-01-05", "attributable", "prod", "Amazon Route 53", "1.25"),
                ("2026-01-06", "attributable", "prod", "Amazon Route 53", "0.75"),
                ("2026-01-06", "attributable", "prod", "EC2 - Other", "9"),
                ("2026-01-06", "account", None, "AWS Glue", "4"),
            ],
        )
    text = client.get("/metrics").text
    assert sample(text, "hubcost_etl_unmapped_service_cost_usd", service="Amazon Route 53") == 2.0
    assert sample(text, "hubcost_etl_unmapped_service_cost_usd", service="EC2 - Other") is None
    # Account-only services are never attributed, so they are not reported as unmapped.
    assert sample(text, "hubcost_etl_unmapped_service_cost_usd", service="AWS Glue") is None
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO service_component VALUES ('Amazon Route 53', 'networking')")
        )
    text = client.get("/metrics").text
    assert sample(text, "hubcost_etl_unmapped_service_cost_usd", service="Amazon Route 53") is None
