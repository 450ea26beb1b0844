"""Sources failing and answering nonsense, through the real clients, loaders and run log.

Cost Explorer (botocore over HTTP to a local endpoint) throttling, failing with 5xx, answering
in euros, with an unknown service, an empty page naming a next one, or a next-page token that
repeats; Prometheus (prometheus-api-client over HTTP) answering 503, too slowly, not at all,
or with NaN, infinities and series missing their labels. Failures are retried a bounded
number of times, then recorded as failed chunks that leave the stored days as they were and
show in /metrics; malformed values are skipped with a warning or fail the chunk, never stored.
"""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from api.app import create_app
from core.settings import Settings
from etl import jobs
from etl.sources import cost_explorer, prometheus
from etl.sources.base import Sources
from tests.api.conftest import api_settings
from tests.etl.prometheus_history import free_port
from tests.etl.sources.aws_endpoint import FakeCostExplorer, answer
from tests.etl.sources_of import sources_of
from tests.reliability.scripted_prometheus import ScriptedPrometheus, series
from tests.reliability.warehouse import FACT_TABLES
from tests.rows import select_all

H = "2i2c:hub-name"
FIRST, LAST = dt.date(2026, 1, 4), dt.date(2026, 1, 5)
CE_RETRIES = 2  # production's RETRIES is 7; the same client with fewer keeps the test short
GIB = 2**30
DAYS = ("2026-01-04", "2026-01-05")
GOOD_USAGE = {
    "memory": [
        series(str(12 * GIB), namespace="prod", username="ann"),  # 1 GiB-hour
        series(str(24 * GIB), namespace="prod", username="bo"),
    ],
    "home": [series(str(GIB), namespace="prod", directory="ann")],
    "groups": [series("1", namespace="prod", username="ann", usergroup="staff")],
}


def slice_of(request: dict) -> str:
    if len(request["GroupBy"]) == 1:
        return "account"
    return "attributable" if len(request["Filter"]["And"]) == 2 else "other"


def cost_answer(request: dict, *, unit="USD", extra_service=None) -> dict:
    kind = slice_of(request)
    if kind == "account":
        return answer([(d, [(["EC2 - Other"], "10")]) for d in DAYS], unit=unit)
    if kind == "attributable":
        groups = [([f"{H}$prod", "EC2 - Other"], "8"), ([f"{H}$prod", "AWS Backup"], "2")]
        if extra_service:
            groups.append(([f"{H}$prod", extra_service], "0.5"))
        return answer([(d, groups) for d in DAYS], unit=unit)
    return answer([])


class ScriptedCostExplorer(FakeCostExplorer):
    def __init__(self):
        self.mode = "ok"
        super().__init__(self.respond_in_mode)

    def respond_in_mode(self, request):
        mode = self.mode
        if mode == "throttle":
            return 400, {"__type": "ThrottlingException", "message": "Rate exceeded"}
        if mode == "5xx":
            return 500, {"__type": "InternalServerError", "message": "try later"}
        if mode == "eur":
            return 200, cost_answer(request, unit="EUR")
        if mode == "unknown service":
            return 200, cost_answer(request, extra_service="Amazon Quantum Ledger")
        if mode == "empty first page":
            if "NextPageToken" not in request:
                return 200, {"ResultsByTime": [], "NextPageToken": "page-2"}
            return 200, cost_answer(request)
        if mode == "repeated token":
            return 200, {"ResultsByTime": [], "NextPageToken": "same"}
        return 200, cost_answer(request)


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(cost_explorer, "RETRIES", CE_RETRIES)


@pytest.fixture
def fakes(aws_env):
    with ScriptedCostExplorer() as ce, ScriptedPrometheus(GOOD_USAGE) as prom:
        yield ce, prom


def sources(ce_url: str, prometheus_url: str) -> Sources:
    client = cost_explorer.make_client(endpoint_url=ce_url)
    query = cost_explorer.CostQuery(cluster_name="c1")
    settings = Settings.from_env({"PROMETHEUS_URL": prometheus_url, "PROMETHEUS_TIMEOUT_S": "0.5"})
    prom = prometheus.make_client(settings, backoff_factor=0.01)

    def costs(first, last, counter):
        return cost_explorer.fetch_costs(client, query, first=first, last=last, counter=counter)

    def usage(day, now, earlier):
        return prometheus.fetch_usage_day(prom, day, now=now, earlier_usernames=earlier)

    return sources_of(costs=costs, usage=usage)


def backfill(engine, srcs, source="all"):
    # The real clock: /metrics counts the failures of the last 24 hours.
    return jobs.run_backfill(
        engine, srcs, first=FIRST, last=LAST, source=source, resume=False, clock=jobs.utc_now
    )


def facts(engine):
    with engine.connect() as conn:
        return {
            t: sorted(map(tuple, conn.execute(sa.text(f"SELECT * FROM {t}")))) for t in FACT_TABLES
        }


def last_errors(engine, n):
    with engine.connect() as conn:
        rows = select_all(
            conn, "SELECT source, status, error FROM run_log ORDER BY id DESC LIMIT :n", n=n
        )
    return sorted(rows)


def metric(text: str, name: str, source: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels.get("source") == source:
                return s.value
    return None


def test_failures_are_retried_then_recorded_earlier_data_stays_and_metrics_show_it(
    fakes, engine, database_url
):
    ce, prom = fakes
    good = backfill(engine, sources(ce.url, prom.url))
    assert (good.succeeded, good.failed) == (3, 0)  # one costs chunk, two usage days
    stored = facts(engine)
    assert len(stored["cost"]) == 6 and len(stored["usage"]) == 6

    refused = f"http://127.0.0.1:{free_port()}"
    scenarios = [
        ("throttle", "503", prom.url, "ThrottlingException", "failed (RetryError"),
        ("5xx", "slow", prom.url, "InternalServerError", "timed out"),
        ("5xx", "ok", refused, "InternalServerError", "unreachable"),
    ]
    for ce_mode, prom_mode, prom_url, costs_error, usage_error in scenarios:
        ce.mode, prom.mode = ce_mode, prom_mode
        ce.requests.clear()
        prom.hits = 0
        result = backfill(engine, sources(ce.url, prom_url))
        assert (result.succeeded, result.failed, result.skipped) == (0, 2, 1), ce_mode
        assert len(ce.requests) == 1 + CE_RETRIES  # the first slice, retried, then given up
        if prom_url == prom.url:
            assert prom.hits == 1 + prometheus.RETRIES
        [(_, costs_status, costs_text), (_, usage_status, usage_text)] = last_errors(engine, 2)
        assert (costs_status, usage_status) == ("failed", "failed")
        assert costs_error in costs_text and usage_error in usage_text, (costs_text, usage_text)
        assert facts(engine) == stored  # the days already loaded are untouched

    app = create_app(api_settings(), database_url=database_url)
    with TestClient(app) as client:
        text = client.get("/metrics").text
        ready = client.get("/health/ready")
    for source in ("costs", "usage"):
        assert metric(text, "hubcost_etl_failed_chunks_24h", source) == 3
        assert metric(text, "hubcost_etl_running_chunks", source) == 0
        assert metric(text, "hubcost_etl_last_success_timestamp_seconds", source) is not None
    assert ready.status_code == 200
    assert ready.json()["sources"]["usage"]["failed_chunks_24h"] == 3


def test_malformed_prometheus_values_are_skipped_with_a_warning(fakes, engine, caplog):
    ce, prom = fakes
    prom.answers = {
        "memory": [
            *GOOD_USAGE["memory"],
            series("NaN", namespace="prod", username="nan"),
            series("+Inf", namespace="prod", username="inf"),
            series("-Inf", namespace="prod", username="minf"),
            series(str(GIB), namespace="prod"),  # no username
            series(str(GIB), username="nohub"),  # no namespace
        ],
        "home": [
            *GOOD_USAGE["home"],
            series("NaN", namespace="prod", directory="nan"),
            series(str(GIB), namespace="prod"),  # no directory
        ],
        "groups": [*GOOD_USAGE["groups"], series("1", username="nohub", usergroup="g")],
    }
    caplog.set_level(logging.WARNING, logger="etl.sources.prometheus")
    result = backfill(engine, sources(ce.url, prom.url), source="usage")
    assert (result.succeeded, result.failed) == (2, 0)
    with engine.connect() as conn:
        assert select_all(
            conn, "SELECT DISTINCT hub, component, username FROM usage ORDER BY 1, 2, 3"
        ) == [
            ("prod", "compute", "ann"),
            ("prod", "compute", "bo"),
            ("prod", "home storage", "ann"),
        ]
        assert select_all(conn, "SELECT DISTINCT username FROM user_group_snapshot") == [("ann",)]
        assert select_all(conn, "SELECT count(*) FROM usage WHERE value = 'NaN'") == [(0,)]
    messages = [r.getMessage() for r in caplog.records]
    per_day = {
        "non-finite": 4,  # NaN, +Inf, -Inf memory and a NaN directory
        "without username": 1,
        "without namespace": 2,  # a memory and a group series
        "without directory": 1,
    }
    for phrase, count in per_day.items():
        assert len([m for m in messages if phrase in m]) == 2 * count, phrase


def test_an_unknown_cost_explorer_service_is_kept_as_other_and_warned(fakes, engine, caplog):
    ce, _ = fakes
    ce.mode = "unknown service"
    caplog.set_level(logging.WARNING, logger="hubcost.etl")
    assert backfill(engine, sources(ce.url, "http://unused"), source="costs").failed == 0
    with engine.connect() as conn:
        assert select_all(
            conn,
            "SELECT date::text, component, cost FROM component_costs "
            "WHERE hub = 'prod' AND component = 'other' ORDER BY 1",
        ) == [("2026-01-04", "other", Decimal("0.5")), ("2026-01-05", "other", Decimal("0.5"))]
        assert select_all(
            conn, "SELECT count(*) FROM cost WHERE service = 'Amazon Quantum Ledger'"
        ) == [(2,)]
    warned = [r.getMessage() for r in caplog.records if "Amazon Quantum Ledger" in r.getMessage()]
    assert len(warned) == 1 and "'other'" in warned[0]


def test_an_empty_page_with_a_next_token_is_followed(fakes, engine):
    ce, _ = fakes
    ce.mode = "empty first page"
    assert backfill(engine, sources(ce.url, "http://unused"), source="costs").failed == 0
    with engine.connect() as conn:
        assert select_all(conn, "SELECT count(*) FROM cost") == [(6,)]
        # Four slices, each an empty page and then the real one: eight billed calls.
        assert select_all(conn, "SELECT requests FROM run_log") == [(8,)]


@pytest.mark.parametrize(
    ("mode", "error", "max_requests"),
    [("eur", "'EUR'", 4), ("repeated token", "NextPageToken again", 2)],
)
def test_answers_that_cannot_be_stored_fail_the_chunk_and_keep_the_days(
    fakes, engine, mode, error, max_requests
):
    ce, _ = fakes
    backfill(engine, sources(ce.url, "http://unused"), source="costs")
    before = facts(engine)
    ce.mode = mode
    ce.requests.clear()
    result = backfill(engine, sources(ce.url, "http://unused"), source="costs")
    assert (result.succeeded, result.failed) == (0, 1)
    assert len(ce.requests) <= max_requests  # never an endless, billed loop
    [(_, status, text)] = last_errors(engine, 1)
    assert status == "failed" and error in text
    assert facts(engine) == before
