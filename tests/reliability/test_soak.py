"""A week in five minutes: `hubcost run` on the demo source with ETL_CRON firing every minute.

Real processes on the suite's PostgreSQL: `hubcost run` (the API and the scheduler, one
process) for SOAK_S seconds, while CLIENTS threads ask the dashboards' endpoints without pause
and `hubcost backfill` runs every BACKFILL_EVERY_S seconds, the first while the run at start
loads. What must hold:
- no chunk failed or was interrupted; every backfill exits 0, saying it loaded or that a run
  is in progress (the run lock's two documented outcomes);
- every answer is a 200 or the documented 503 (`database unavailable`), none dropped;
- the process's peak resident memory after the first minute is within RSS_GROWTH of the
  first minute's peak;
- the database's sessions stay within what the process's pools allow the load it gets
  (CONNECTION_BOUND), counted while no backfill is connected;
- at the end every dashboard answer equals that of a fresh database loaded with the same days
  by one `hubcost backfill`.
The figures (memory, sessions, chunks, answers) are printed: `pytest -s` shows them.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa

from core import bootstrap
from core.database import create_engine
from etl.jobs import DEMO_DAYS
from tests.conftest import READER_ROLE
from tests.etl.prometheus_history import free_port
from tests.reliability.conftest import database_name
from tests.reliability.processes import child_env, hubcost, run_hubcost, wait_until
from tests.reliability.soak_probes import Clients, Sampler
from tests.reliability.test_upgrade_under_load import ask
from tests.rows import select_all

pytestmark = pytest.mark.slow

SOAK_S = 300  # five scheduled runs after the one at start
FIRST_MINUTE_S = 60
EVERY_MINUTE = "* * * * *"
CLIENTS = 4
BACKFILL_EVERY_S = 40
REQUEST_TIMEOUT_S = 30
PROCESS_TIMEOUT_S = 300
RSS_GROWTH = 0.10
DB_POOL_SIZE = 5  # the API's pool (the default, set here so the bound below holds)
WRITER_POOL = bootstrap.WRITER_POOL_SIZE  # the scheduler's runs
# At most one API connection per client at once (CLIENTS < DB_POOL_SIZE), plus the runs'.
API_BOUND = min(CLIENTS, DB_POOL_SIZE)
CONNECTION_BOUND = API_BOUND + WRITER_POOL
API_APPLICATION = "hubcost-api"
WATCHER = "hubcost-soak-test"  # the test's own sessions, not counted
READY = "/health/ready"
UNAVAILABLE = "database unavailable"
IN_PROGRESS = "hubcost backfill: a run is in progress; exiting"
FINISHED = re.compile(r"backfill finished: (\d+) chunk\(s\) succeeded, 0 failed, 0 skipped")


def dashboard_paths(first: dt.date, last: dt.date) -> tuple[str, ...]:
    """What the Grafana dashboards ask (dashboards/infinity), for the demo's hubs and groups."""
    days = f"from={first}&to={last}"
    return (
        f"/hub-names?{days}",
        f"/total-costs?{days}",
        f"/total-costs-per-hub?{days}",
        f"/total-costs-per-component?{days}&hub=prod",
        f"/total-costs-per-component?{days}&hub=staging&component=%7Bcompute%2Chome%20storage%7D",
        f"/costs-per-user?{days}&hub=prod",
        f"/costs-per-user?{days}&hub=workshop&usergroup=research&limit=5",
        f"/total-costs-per-group?{days}",
        "/users-with-multiple-groups?hub_name=prod",
        "/users-with-no-groups?hub_name=staging",
        "/component-names",
        f"/budgets?as_of={last}",
        f"/cost-anomalies?{days}",
    )


@dataclass
class Backfills:
    """`hubcost backfill` of two past days every BACKFILL_EVERY_S seconds, one at a time; the
    first as soon as the run at start has a chunk in flight. `connected` is set while one runs
    (and a second after, for its sessions to end)."""

    env: dict[str, str]
    tmp_path: object
    engine: sa.Engine
    first_day: dt.date
    connected: threading.Event
    outcomes: list[tuple[int, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="backfills", daemon=True)

    def __enter__(self) -> Backfills:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(PROCESS_TIMEOUT_S)

    def _run(self) -> None:
        wait_until(lambda: self._chunk_running(), timeout=60, what="the run at start")
        i = 0
        while not self._stop.is_set():
            first = self.first_day + dt.timedelta(days=10 + 3 * i)
            args = ["backfill", "--from", str(first), "--to", str(first + dt.timedelta(days=1))]
            self.connected.set()
            try:
                status, err = run_hubcost(
                    args, self.env, self.tmp_path, f"backfill-{i}", timeout=PROCESS_TIMEOUT_S
                )
                time.sleep(1.0)
            finally:
                self.connected.clear()
            self.outcomes.append((status, err))
            i += 1
            self._stop.wait(BACKFILL_EVERY_S)

    def _chunk_running(self) -> bool:
        with self.engine.connect() as conn:
            return bool(select_all(conn, "SELECT 1 FROM run_log WHERE status = 'running'"))


def run_log_statuses(engine) -> Counter:
    with engine.connect() as conn:
        return Counter(
            dict(select_all(conn, "SELECT status, count(*) FROM run_log GROUP BY status"))
        )


def answers_of(base: str, paths: tuple[str, ...]) -> dict[str, object]:
    answers = {path: ask(base, path, REQUEST_TIMEOUT_S) for path in paths}
    assert {p: a.status for p, a in answers.items()} == dict.fromkeys(paths, 200), answers
    return {path: json.loads(a.body) for path, a in answers.items()}


def stop(process) -> int:
    process.signal(signal.SIGTERM)
    try:
        return process.wait(30)
    finally:
        process.stop()


def fresh_load_answers(url: str, first: dt.date, last: dt.date, paths, tmp_path) -> dict:
    """The answers of another fresh database loaded with first..last by one backfill."""
    env = child_env(tmp_path, DATABASE_URL=url, API_DB_ROLE=READER_ROLE)
    status, err = run_hubcost(
        ["backfill", "--from", str(first), "--to", str(last)],
        env,
        tmp_path,
        "reference-backfill",
        timeout=PROCESS_TIMEOUT_S,
    )
    assert status == 0, err
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = hubcost(["serve", "--port", str(port)], env, tmp_path, "reference-serve")
    try:
        wait_until(lambda: ask(base, READY, 5).status == 200, timeout=60, what="the reference API")
        return answers_of(base, paths)
    finally:
        stop(server)


@pytest.fixture
def watcher(database_url):
    """The test's engine on the soaked database, named so that its session is not counted."""
    engine = create_engine(database_url, pool_size=1, application_name=WATCHER)
    yield engine
    engine.dispose()


def test_a_week_in_five_minutes(
    database_url, reference_database_url, watcher, admin_engine, tmp_path
):
    engine = watcher
    today = dt.datetime.now(dt.UTC).date()
    first_day = today - dt.timedelta(days=DEMO_DAYS)  # the run at start loads from there
    paths = dashboard_paths(first_day, today - dt.timedelta(days=1))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = child_env(
        tmp_path,
        DATABASE_URL=database_url,
        API_DB_ROLE=READER_ROLE,
        ETL_CRON=EVERY_MINUTE,
        DB_POOL_SIZE=str(DB_POOL_SIZE),
    )
    ends = time.monotonic() + SOAK_S
    run = hubcost(["run", "--port", str(port)], env, tmp_path, "run")
    sampler = Sampler(run.pid, admin_engine, database_name(database_url), WATCHER)
    try:
        with sampler:
            wait_until(lambda: ask(base, READY, 5).status, timeout=60, what="the API to answer")
            backfills = Backfills(env, tmp_path, engine, first_day, sampler.others)
            with Clients(base, (*paths, READY), CLIENTS, REQUEST_TIMEOUT_S) as clients:
                with backfills:
                    time.sleep(max(0.0, ends - time.monotonic()))
            wait_until(
                lambda: not run_log_statuses(engine)["running"],
                timeout=PROCESS_TIMEOUT_S,
                what="the scheduled run in flight to end",
            )
            statuses = run_log_statuses(engine)
            last_day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
            final_paths = dashboard_paths(first_day, last_day)
            at_the_end = answers_of(base, final_paths)
        assert stop(run) == 143, run.stderr()
    finally:
        run.stop()
    log = run.stderr()

    # The run log: scheduled runs and backfills, nothing failed or left interrupted.
    assert set(statuses) == {"succeeded"}, statuses
    scheduled = log.count("ETL run: ")
    skipped = log.count("skipped: another ETL run holds the lock")
    assert scheduled + skipped >= SOAK_S // 60, log  # the run at start and one a minute
    assert "Traceback" not in log and "ERROR" not in log, log

    # Backfills: exit 0, having loaded or found the run lock taken.
    loaded = in_progress = 0
    for status, err in backfills.outcomes:
        assert status == 0, err
        if IN_PROGRESS in err:
            in_progress += 1
        else:
            assert FINISHED.search(err), err
            loaded += 1
    assert backfills.outcomes, "no backfill ran"

    # Answers: 200 or the documented 503, none dropped.
    by_status = clients.statuses
    assert set(by_status) <= {200, 503}, [(a.path, a.status, a.error) for a in clients.not_ok][:5]
    for a in clients.not_ok:
        assert json.loads(a.body)["detail"] == UNAVAILABLE, a.body

    # Memory and sessions after the first minute.
    first_minute, after = sampler.split(FIRST_MINUTE_S)
    assert first_minute and after, sampler.samples
    rss_first = max(s.rss_kib for s in first_minute)
    rss_after = max(s.rss_kib for s in after)
    assert rss_after <= rss_first * (1 + RSS_GROWTH), (rss_first, rss_after)
    sessions_first = [s.total_sessions for s in first_minute if s.sessions is not None]
    sessions_after = [s.total_sessions for s in after if s.sessions is not None]
    # Pools open their connections as the load asks for them. The API's are all open in the
    # first minute (the four clients ask without pause) and none opens later; the runs' may
    # open one more later (a scheduled run that finds the previous one still loading asks
    # for the lock), never past their pool. Never past the pools in all.
    assert sessions_first and sessions_after, sampler.samples
    api_first = max((s.sessions or {}).get(API_APPLICATION, 0) for s in first_minute)
    api_after = max((s.sessions or {}).get(API_APPLICATION, 0) for s in after)
    assert api_after <= api_first <= API_BOUND, [s.sessions for s in sampler.samples]
    assert max(sessions_first + sessions_after) <= CONNECTION_BOUND, sampler.samples
    by_name_after = Counter()
    for s in after:
        for name, count in (s.sessions or {}).items():
            by_name_after[name] = max(by_name_after[name], count)

    # The same answers as a fresh database loaded with the same days.
    assert (
        fresh_load_answers(reference_database_url, first_day, last_day, final_paths, tmp_path)
        == at_the_end
    )

    print(
        json.dumps(
            {
                "soak_s": SOAK_S,
                "rss_kib_first_minute_peak": rss_first,
                "rss_kib_after_peak": rss_after,
                "rss_kib_at_end": after[-1].rss_kib,
                "rss_growth_pct": round(100 * (rss_after - rss_first) / rss_first, 1),
                "sessions_first_minute_max": max(sessions_first, default=None),
                "sessions_after_max": max(sessions_after),
                "sessions_after_min": min(sessions_after),
                "sessions_after_max_by_application": dict(by_name_after),
                "scheduled_runs": scheduled,
                "scheduled_runs_skipped_for_the_lock": skipped,
                "chunks_succeeded": statuses["succeeded"],
                "backfills_loaded": loaded,
                "backfills_found_a_run_in_progress": in_progress,
                "answers": sum(by_status.values()),
                "answers_by_status": {str(k): v for k, v in sorted(by_status.items())},
            }
        )
    )
