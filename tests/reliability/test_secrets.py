"""Secrets never appear in logs, error bodies, /metrics or the run log.

Real processes with known secret values set: `hubcost etl` and `hubcost backfill` against
sources that fail and echo every header back, a bad setting, and `hubcost serve` asked every
kind of request. Everything they print, answer and store is searched for each secret, plain
and in the encodings a header would carry.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import signal
import urllib.error
import urllib.parse
import urllib.request

import pytest
import sqlalchemy as sa

from tests.conftest import READER_ROLE
from tests.etl.prometheus_history import free_port
from tests.etl.recent_days import backfill, first_of_last_month
from tests.reliability.hostile_sources import EchoingSources
from tests.reliability.processes import child_env, hubcost, run_hubcost, wait_until

pytestmark = pytest.mark.slow

SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "aws-secret-key-7f3a9c",
    "AWS_SESSION_TOKEN": "aws-session-token-5b1e2d",
    "PROMETHEUS_PASSWORD": "prom-password-c4d2e8",
    "PROMETHEUS_TOKEN": "prom-token-9a8b7c",
    "API_TOKEN": "api-token-3e4f5a",
    "database password": "db-password-1d2c3b",
}
PROMETHEUS_USERNAME = "promuser"


def forms(secret: str) -> list[str]:
    """The secret as text, URL-encoded, and inside a basic-auth header."""
    basic = base64.b64encode(f"{PROMETHEUS_USERNAME}:{secret}".encode()).decode()
    return [secret, urllib.parse.quote(secret), basic]


def assert_no_secret(where: str, text: str) -> None:
    for name, secret in SECRETS.items():
        for form in forms(secret):
            assert form not in text, f"{name} appears in {where}"


def with_password(url: str) -> str:
    return (
        sa.engine.make_url(url)
        .set(password=SECRETS["database password"])
        .render_as_string(hide_password=False)
    )


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, str(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, str(error.headers), error.read().decode()


def test_no_secret_in_logs_errors_metrics_or_the_run_log(database_url, engine, tmp_path):
    secret_url = with_password(database_url)
    outputs: dict[str, str] = {}
    with EchoingSources() as sources:
        common = dict(
            DATABASE_URL=secret_url,
            CLUSTER_NAME="c1",
            AWS_ENDPOINT_URL=sources.url,
            AWS_ACCESS_KEY_ID="AKIAEXAMPLEKEYID0001",
            AWS_SECRET_ACCESS_KEY=SECRETS["AWS_SECRET_ACCESS_KEY"],
            AWS_SESSION_TOKEN=SECRETS["AWS_SESSION_TOKEN"],
            PROMETHEUS_URL=sources.url,
            PROMETHEUS_TIMEOUT_S="5",
            API_TOKEN=SECRETS["API_TOKEN"],
            LOG_LEVEL="DEBUG",
        )
        basic = child_env(
            tmp_path,
            **common,
            PROMETHEUS_USERNAME=PROMETHEUS_USERNAME,
            PROMETHEUS_PASSWORD=SECRETS["PROMETHEUS_PASSWORD"],
            LOG_FORMAT="json",
        )
        status, _ = run_hubcost(["etl"], basic, tmp_path, "etl")
        assert status == 1  # both sources failed
        bearer = child_env(tmp_path, **common, PROMETHEUS_TOKEN=SECRETS["PROMETHEUS_TOKEN"])
        first = first_of_last_month()  # days Cost Explorer serves, so it is asked
        args = backfill(first, first + dt.timedelta(days=1))
        status, _ = run_hubcost(args, bearer, tmp_path, "backfill")
        assert status == 1
        # The sources did receive the credentials (so an echo could have leaked them).
        sent = json.dumps(sources.requests)
        assert SECRETS["AWS_SESSION_TOKEN"] in sent and SECRETS["PROMETHEUS_TOKEN"] in sent
        for name in ("etl", "backfill"):
            outputs[f"{name} stderr"] = (tmp_path / f"{name}.err").read_text()
            outputs[f"{name} stdout"] = (tmp_path / f"{name}.out").read_text()
        assert "failed" in outputs["etl stderr"]  # the failures were logged, at DEBUG level

    bad_setting = child_env(
        tmp_path, **dict(common, DATABASE_URL=f"mysql://app:{SECRETS['database password']}@db/x")
    )
    status, outputs["bad setting stderr"] = run_hubcost(["etl"], bad_setting, tmp_path, "bad")
    assert status == 2 and "DATABASE_URL" in outputs["bad setting stderr"]

    with engine.connect() as conn:
        run_log = conn.execute(sa.text("SELECT * FROM run_log")).all()
    assert {r.status for r in run_log} == {"failed"} and len(run_log) == 4
    outputs["run log"] = repr(run_log)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve_env = child_env(tmp_path, **dict(common, API_DB_ROLE=READER_ROLE, LOG_LEVEL="DEBUG"))
    server = hubcost(["serve", "--port", str(port)], serve_env, tmp_path, "serve")
    try:
        wait_until(lambda: _answers(base + "/health/ready"), timeout=60, what="the API to answer")
        token = {"Authorization": f"Bearer {SECRETS['API_TOKEN']}"}
        wrong = {"Authorization": "Bearer api-token-3e4f5b"}
        for path in (
            "/",
            "/health/ready",
            "/openapi.json",
            "/metrics",
            "/total-costs",
            "/total-costs?from=bad",
            "/costs-per-user?component=gpu&user=%27%20OR%201%3D1",
            "/no-such-path",
        ):
            for headers in (None, wrong, token):
                status, response_headers, body = get(base + path, headers)
                assert status < 500, (path, body)
                outputs[f"{path} {status}"] = response_headers + body
        status, _, metrics = get(base + "/metrics", token)
        assert (
            status == 200
            and 'hubcost_etl_failed_chunks_24h{cluster="c1",source="costs"} 2.0' in metrics
        )
    finally:
        server.signal(signal.SIGTERM)
        try:
            server.wait(30)
        finally:
            server.stop()
    outputs["serve stderr"] = server.stderr()
    outputs["serve stdout"] = server.stdout()

    for where, text in outputs.items():
        assert_no_secret(where, text)


def _answers(url: str) -> bool:
    try:
        return get(url)[0] == 200
    except OSError:
        return False
