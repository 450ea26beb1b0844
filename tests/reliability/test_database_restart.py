"""PostgreSQL restarted under a running `hubcost serve`: 503s while it is down, then recovery.

The server is a throwaway cluster of this test's own (never the machine's or the suite's).
"""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.error
import urllib.request

import pytest

from core import migrate
from core.database import create_engine
from tests.conftest import READER_ROLE
from tests.etl.prometheus_history import free_port
from tests.reliability.processes import child_env, hubcost, wait_until
from tests.reliability.throwaway_postgres import ThrowawayPostgres
from tests.rows import add_costs

pytestmark = pytest.mark.slow

STATEMENT_TIMEOUT_S = 2
QUERY = "/total-costs?from=2026-01-01&to=2026-01-02"


@pytest.fixture
def throwaway_postgres():
    pg = ThrowawayPostgres()
    try:
        pg.start()
        yield pg
    finally:
        pg.destroy()


def get(url: str, timeout: float = 30) -> tuple[int, bytes, float]:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read(), time.monotonic() - started
    except urllib.error.HTTPError as error:
        return error.code, error.read(), time.monotonic() - started


def answers_ok(url: str) -> bool:
    try:
        return get(url, timeout=5)[0] == 200
    except OSError:
        return False


def test_requests_get_503_during_a_restart_and_the_service_recovers(throwaway_postgres, tmp_path):
    import sqlalchemy as sa

    pg = throwaway_postgres
    admin = sa.create_engine(pg.admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text("CREATE DATABASE hubcost"))
    admin.dispose()
    owner = create_engine(pg.url("hubcost"), pool_size=1)
    migrate.upgrade(owner, api_db_role=READER_ROLE)
    with owner.begin() as conn:
        add_costs(conn, [("2026-01-01", "account", None, "AWS Backup", "12.345")])
    owner.dispose()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = child_env(
        tmp_path,
        DATABASE_URL=pg.url("hubcost"),
        API_DB_ROLE=READER_ROLE,
        STATEMENT_TIMEOUT_MS=str(STATEMENT_TIMEOUT_S * 1000),
    )
    server = hubcost(["serve", "--port", str(port)], env, tmp_path, "serve")
    answers = []  # (status, body, seconds) of a steady stream of requests, outage included
    stop = threading.Event()

    def stream():
        while not stop.is_set():
            answers.append(get(base + QUERY))
            time.sleep(0.02)

    streamer = threading.Thread(target=stream, daemon=True)
    try:
        wait_until(lambda: answers_ok(base + "/health/ready"), timeout=60, what="the API")
        status, before, _ = get(base + QUERY)
        assert status == 200 and json.loads(before)[0]["cost"] == 12.35
        streamer.start()
        time.sleep(0.5)

        pg.stop("fast")  # every pooled connection dies with the server
        outage = [get(base + path) for path in (QUERY, QUERY, "/health/ready", QUERY)]
        for status, body, seconds in outage:
            assert status == 503, body
            assert json.loads(body) == {"detail": "database unavailable"}
            assert seconds < STATEMENT_TIMEOUT_S + 1
        status, metrics, _ = get(base + "/metrics")
        assert status == 200 and b"hubcost_api_database_up 0.0" in metrics

        pg.start()
        wait_until(lambda: get(base + QUERY)[0] == 200, timeout=30, what="recovery")
        status, after, _ = get(base + QUERY)
        assert (status, after) == (200, before)
        assert get(base + "/health/ready")[0] == 200
    finally:
        stop.set()
        if streamer.is_alive():
            streamer.join(30)
        server.signal(signal.SIGTERM)
        try:
            server.wait(30)
        finally:
            server.stop()
    statuses = {status for status, _, _ in answers}
    assert statuses <= {200, 503}, statuses  # never a 500, never a hang
    assert 503 in statuses and 200 in statuses
    assert max(seconds for _, _, seconds in answers) < STATEMENT_TIMEOUT_S + 1
    log = server.stderr()
    assert "Traceback" not in log, log
