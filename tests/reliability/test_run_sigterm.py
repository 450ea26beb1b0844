"""SIGTERM to `hubcost run` (a pod stop) while its scheduler loads a chunk.

The process serves the API in its main thread and loads in the scheduler's: a signal reaches
only the first. Two places a chunk can be stopped at, each held there by the test:
- fetching: a local Cost Explorer that does not answer until the test is over;
- writing: the demo source, with the chunk's data transaction waiting on a rollup row the test
  holds, after its DELETE of the old rows.
Either way the process must exit 143 well within Kubernetes' 30-second grace period, with the
server's port closed, the chunk's run-log row `interrupted` (finished, the signal named), none
of the chunk's rows stored, the stored days as they were, and the run lock free.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest
import sqlalchemy as sa

from core.database import ETL_RUN_LOCK
from core.schema import DEMO_CLUSTER
from tests.conftest import READER_ROLE
from tests.etl.prometheus_history import free_port
from tests.local_http import LocalHTTPServer
from tests.reliability.conftest import database_name
from tests.reliability.processes import (
    backends_waiting_on_a_lock,
    child_env,
    hubcost,
    sessions_at_work,
    wait_until,
)
from tests.rows import add_costs, select_all

pytestmark = pytest.mark.slow

STOP_BOUND_S = 15  # half of Kubernetes' default grace period
INTERRUPTED = "interrupted by SIGTERM: the chunk was rolled back"
NEVER = "0 0 1 1 *"  # no scheduled run during the test: only the run at start


class SilentCostExplorer(LocalHTTPServer):
    """Takes every request and answers none until released (then a 503)."""

    def __init__(self) -> None:
        self.asked = threading.Event()
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fake.asked.set()
                fake.release.wait(120)
                try:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the client is gone

            def log_message(self, *args):
                pass

        super().__init__(Handler)

    def __exit__(self, *exc) -> None:
        self.release.set()
        super().__exit__(*exc)


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def run_rows(engine) -> list[tuple]:
    with engine.connect() as conn:
        return select_all(
            conn,
            "SELECT source, first_day, last_day, status, error, finished_at IS NOT NULL "
            "FROM run_log ORDER BY id",
        )


def running_row(engine) -> bool:
    return any(row[3] == "running" for row in run_rows(engine))


def stop_and_time(child, port: int) -> float:
    """SIGTERM the serving process; its exit status must be 143. Returns seconds to exit."""
    assert listening(port)
    sent = time.monotonic()
    child.signal(signal.SIGTERM)
    status = child.wait(STOP_BOUND_S)
    took = time.monotonic() - sent
    assert status == 143, child.stderr()
    assert not listening(port)
    return took


def assert_cleanly_stopped(child, admin_engine, database_url, engine) -> None:
    err = child.stderr()
    assert "Traceback" not in err, err
    assert "1 chunk(s) in flight recorded interrupted" in err
    assert "stopped by SIGTERM" in err
    wait_until(
        lambda: not sessions_at_work(admin_engine, database_name(database_url)),
        timeout=30,
        what="the stopped process's sessions to end",
    )
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": ETL_RUN_LOCK})
        conn.execute(sa.text("SELECT pg_advisory_unlock_all()"))
        status = select_all(
            conn,
            "SELECT sum(running_chunks), sum(failed_chunks_24h) FROM etl_status",
        )
    assert status == [(0, 0)]  # an interrupted chunk is neither running nor failed


def run_env(tmp_path, database_url, **env):
    return child_env(
        tmp_path, DATABASE_URL=database_url, API_DB_ROLE=READER_ROLE, ETL_CRON=NEVER, **env
    )


def test_sigterm_while_a_chunk_fetches_records_it_interrupted_and_exits_143(
    engine, database_url, admin_engine, tmp_path
):
    port = free_port()
    with SilentCostExplorer() as ce:
        env = run_env(
            tmp_path,
            database_url,
            DEMO="0",
            CLUSTER_NAME="stopped",
            AWS_ENDPOINT_URL=ce.url,
            AWS_ACCESS_KEY_ID="AKIDTEST",
            AWS_SECRET_ACCESS_KEY="test-secret",
            AWS_REGION="us-east-1",
        )
        child = hubcost(["run", "--port", str(port)], env, tmp_path, "run")
        try:
            wait_until(ce.asked.is_set, timeout=60, what="the first Cost Explorer request")
            wait_until(lambda: listening(port), timeout=60, what="the API to listen")
            assert running_row(engine)
            took = stop_and_time(child, port)
        finally:
            child.stop()
    [(source, first, last, status, error, finished)] = run_rows(engine)
    assert (source, status, error, finished) == ("costs", "interrupted", INTERRUPTED, True)
    assert first <= last
    with engine.connect() as conn:
        assert select_all(conn, "SELECT count(*) FROM cost") == [(0,)]
    assert_cleanly_stopped(child, admin_engine, database_url, engine)
    print(json.dumps({"sigterm_while_fetching_exit_s": round(took, 2)}))


@contextlib.contextmanager
def rollup_row_held(engine, day: dt.date):
    with engine.connect() as holder:
        held = holder.execute(
            sa.text("SELECT * FROM attribution.total_cost_daily WHERE date = :d FOR UPDATE"),
            {"d": day},
        ).all()
        assert held
        yield
        holder.rollback()


def test_sigterm_while_a_chunk_writes_rolls_it_back_and_exits_143(
    engine, database_url, admin_engine, tmp_path
):
    today = dt.datetime.now(dt.UTC).date()
    first_day = today - dt.timedelta(days=60)  # the demo's first day, in its first chunk
    old = [(first_day, "account", None, "Old Service", "1.50")]
    with engine.begin() as conn:
        add_costs(conn, old, cluster=DEMO_CLUSTER)

    def stored():
        with engine.connect() as conn:
            return select_all(
                conn, "SELECT date, slice, hub, service, amount::text FROM cost ORDER BY 1, 4"
            )

    port = free_port()
    env = run_env(tmp_path, database_url)
    child = hubcost(["run", "--port", str(port)], env, tmp_path, "run")
    try:
        with rollup_row_held(engine, first_day):
            wait_until(
                lambda: backends_waiting_on_a_lock(admin_engine, database_name(database_url)),
                timeout=60,
                what="the chunk's transaction to wait on the held row",
            )
            wait_until(lambda: listening(port), timeout=60, what="the API to listen")
            took = stop_and_time(child, port)
            # Its DELETE is not committed, and never will be.
            assert stored() == [(first_day, "account", None, "Old Service", "1.50")]
    finally:
        child.stop()
    [(source, first, _last, status, error, finished)] = run_rows(engine)
    assert (source, first, status, error, finished) == (
        "costs",
        first_day,
        "interrupted",
        INTERRUPTED,
        True,
    )
    assert_cleanly_stopped(child, admin_engine, database_url, engine)
    assert stored() == [(first_day, "account", None, "Old Service", "1.50")]
    print(json.dumps({"sigterm_while_writing_exit_s": round(took, 2)}))
