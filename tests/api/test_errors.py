"""Every bad input is a 422 in the one shape; other errors are {"detail": "message"}.

Like datasette's tests, every endpoint is held to the error shape with each kind of bad input
it can receive, and no input gives a 500.
"""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

from api import queries
from api.endpoints import LIST_ENDPOINTS

DATED = [spec.path for spec in LIST_ENDPOINTS if spec.dates]
WITH_COMPONENT = [spec.path for spec in LIST_ENDPOINTS if "component" in spec.filters]


def assert_validation_error(response, *names):
    assert response.status_code == 422, response.text
    body = response.json()
    assert list(body) == ["detail"]
    assert isinstance(body["detail"], list) and body["detail"]
    for item in body["detail"]:
        assert list(item) == ["loc", "msg", "type"]
        assert item["loc"][0] == "query" and len(item["loc"]) == 2
        assert isinstance(item["msg"], str) and item["msg"]
        assert isinstance(item["type"], str) and item["type"]
    assert [item["loc"][1] for item in body["detail"]] == list(names)


def assert_plain_error(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["detail"] and isinstance(body["detail"], str)
    return body["detail"]


@pytest.mark.parametrize("path", DATED)
@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("from=yesterday", ["from"]),
        ("to=2026-02-30", ["to"]),
        ("from=x&to=y", ["from", "to"]),
        ("from=2026-01-06&to=2026-01-05", ["from"]),
        ("from=2020-01-01&to=2026-01-05", ["from"]),  # 2197 days > MAX_RANGE_DAYS (1100)
        ("from=%00", ["from"]),
    ],
)
def test_bad_dates_on_every_dated_endpoint(client, path, query, names):
    assert_validation_error(client.get(f"{path}?{query}"), *names)


@pytest.mark.parametrize("path", WITH_COMPONENT)
def test_unknown_component_on_every_endpoint_that_filters_by_component(client, path):
    assert_validation_error(client.get(f"{path}?component=gpu"), "component")
    assert_validation_error(client.get(f"{path}?component={{compute,gpu}}"), "component")
    assert_validation_error(client.get(f"{path}?component=Compute"), "component")  # exact
    assert_validation_error(client.get(f"{path}?from=bad&component=gpu"), "from", "component")


@pytest.mark.parametrize("value", ["0", "-3", "2.5", "top", "1e3"])
def test_limit_that_is_not_a_positive_integer(client, value):
    assert_validation_error(client.get(f"/costs-per-user?limit={value}"), "limit")


@pytest.mark.parametrize("path", [spec.path for spec in LIST_ENDPOINTS])
def test_unknown_format_and_nul_in_names(client, path):
    assert_validation_error(client.get(f"{path}?format=xml"), "format")
    for name in [*LIST_ENDPOINTS_BY_PATH[path].filters]:
        assert_validation_error(client.get(f"{path}?{name}=a%00b"), name)


LIST_ENDPOINTS_BY_PATH = {spec.path: spec for spec in LIST_ENDPOINTS}


def test_unknown_parameters_are_ignored(client):
    assert client.get("/total-costs?colour=blue&hub_name=x").status_code == 200


def test_not_found_and_method_not_allowed(client):
    assert assert_plain_error(client.get("/no-such-thing"), 404) == "Not Found"
    response = client.post("/total-costs")
    assert assert_plain_error(response, 405) == "Method Not Allowed"
    assert "GET" in response.headers["allow"]


def test_an_unexpected_error_is_a_generic_500_logged_with_its_traceback(
    client, monkeypatch, caplog
):
    def broken(conn, select):
        raise RuntimeError("SELECT secret FROM cost -- AccessDenied for arn:aws:iam::123")

    monkeypatch.setattr(queries, "run_json", broken)
    with caplog.at_level(logging.ERROR, logger="hubcost.api"):
        response = client.get("/total-costs")
    detail = assert_plain_error(response, 500)
    assert detail == "internal server error"
    assert "SELECT" not in response.text and "arn:aws" not in response.text
    (record,) = [r for r in caplog.records if r.exc_info]
    assert record.exc_info[0] is RuntimeError


def test_a_failing_statement_is_a_generic_500_without_its_sql(client, monkeypatch, caplog):
    def bad_sql(conn, select):
        conn.execute(sa.text("SELECT no_such_column FROM total_costs"))

    monkeypatch.setattr(queries, "run_json", bad_sql)
    with caplog.at_level(logging.ERROR, logger="hubcost.api"):
        response = client.get("/total-costs")
    assert assert_plain_error(response, 500) == "internal server error"
    assert "no_such_column" not in response.text
    assert any(r.exc_info for r in caplog.records)


def test_a_statement_timeout_is_a_503(make_client, monkeypatch):
    client = make_client(STATEMENT_TIMEOUT_MS="100")

    def slow(conn, select):
        conn.execute(sa.text("SELECT pg_sleep(2)"))

    monkeypatch.setattr(queries, "run_json", slow)
    assert assert_plain_error(client.get("/total-costs"), 503) == "database unavailable"


def test_a_csv_answer_that_waits_past_the_statement_timeout_is_a_503(make_client, engine):
    # CSV is written by COPY on the driver's cursor, whose errors are psycopg's own: here only
    # the COPY reads the locked table, the statements before it do not.
    client = make_client(STATEMENT_TIMEOUT_MS="1000")
    with engine.begin() as conn:
        conn.execute(sa.text("LOCK TABLE user_group_snapshot IN ACCESS EXCLUSIVE MODE"))
        for query in ("format=csv", "format=json"):
            response = client.get(f"/user-groups?{query}")
            assert assert_plain_error(response, 503) == "database unavailable", query
    assert client.get("/user-groups?format=csv").status_code == 200


def test_an_unreachable_database_is_a_503_not_a_500(unreachable_client):
    assert unreachable_client.get("/").status_code == 200
    for path in ("/total-costs", "/costs-per-user?component=compute", "/health/ready"):
        detail = assert_plain_error(unreachable_client.get(path), 503)
        assert detail == "database unavailable"
    # Parameters are checked before any connection is needed.
    assert_validation_error(unreachable_client.get("/total-costs?from=x"), "from")
    # The scrape still answers, saying the database is down.
    metrics = unreachable_client.get("/metrics")
    assert metrics.status_code == 200
    assert "hubcost_api_database_up 0.0" in metrics.text


@pytest.fixture
def unreachable_client():
    from starlette.testclient import TestClient

    from api.app import create_app
    from tests.api.conftest import api_settings, fixed_clock

    app = create_app(
        api_settings(),
        database_url="postgresql+psycopg://nobody@127.0.0.1:9/nothing",
        clock=fixed_clock,
    )
    with TestClient(app) as client:
        yield client
