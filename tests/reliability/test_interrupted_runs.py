"""Real `hubcost` processes killed, stopped and raced in the middle of a load.

To stop a load at a known point, the test holds a row lock on the rollup row of one day: the
chunk holding that day deletes its old facts, and its trigger then waits for the row, inside
the chunk's data transaction. The process is then killed (`kill -9`) or stopped (SIGTERM)
with a half-written chunk that must never become visible.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import signal

import pytest
import sqlalchemy as sa

from core.database import ETL_RUN_LOCK, create_engine
from core.schema import DEMO_CLUSTER
from etl import runs
from tests.reliability.conftest import database_name
from tests.reliability.processes import (
    backends_waiting_on_a_lock,
    child_env,
    hubcost,
    run_hubcost,
    sessions_at_work,
    wait_until,
)
from tests.reliability.warehouse import run_log, visible_state
from tests.rows import add_costs, select_all

pytestmark = pytest.mark.slow

WINDOW = ["--from", "2026-01-30", "--to", "2026-02-02"]  # costs: two chunks (two months)
HELD_DAY = dt.date(2026, 2, 1)  # in the second costs chunk
OLD_ROWS = [
    ("2026-02-01", "account", None, "Old Service", "1.50"),
    ("2026-02-01", "attributable", "prod", "EC2 - Other", "1.25"),
]


@contextlib.contextmanager
def rollup_row_held(engine, day: dt.date):
    """Hold the total_cost_daily rows of `day` until the block ends (then roll back)."""
    with engine.connect() as holder:
        held = holder.execute(
            sa.text("SELECT * FROM attribution.total_cost_daily WHERE date = :d FOR UPDATE"),
            {"d": day},
        ).all()
        assert held, "the held day needs rows to lock"
        yield
        holder.rollback()


def old_day(engine):
    with engine.connect() as conn:
        return (
            select_all(
                conn,
                "SELECT slice, hub, service, amount::text FROM cost WHERE date = :d ORDER BY 1",
                d=HELD_DAY,
            ),
            select_all(
                conn,
                "SELECT name, cost::text FROM total_costs WHERE date = :d ORDER BY 1",
                d=HELD_DAY,
            ),
        )


OLD_DAY = (
    [("account", None, "Old Service", "1.50"), ("attributable", "prod", "EC2 - Other", "1.25")],
    [("account", "1.50"), ("attributable", "1.25")],
)


@pytest.fixture
def seeded(engine):
    with engine.begin() as conn:
        add_costs(conn, OLD_ROWS, cluster=DEMO_CLUSTER)
    return engine


def clean_run_state(reference_database_url, tmp_path):
    env = child_env(tmp_path, DATABASE_URL=reference_database_url)
    status, err = run_hubcost(["backfill", *WINDOW], env, tmp_path, "reference")
    assert status == 0, err
    reference = create_engine(reference_database_url, pool_size=1)
    try:
        return visible_state(reference)
    finally:
        reference.dispose()


def start_blocked_backfill(seeded, database_url, admin_engine, tmp_path, name):
    """A backfill process stopped inside the second costs chunk's data transaction."""
    env = child_env(tmp_path, DATABASE_URL=database_url)
    child = hubcost(["backfill", *WINDOW], env, tmp_path, name)
    wait_until(
        lambda: backends_waiting_on_a_lock(admin_engine, database_name(database_url)),
        timeout=60,
        what="the backfill to wait on the held row",
    )
    return child, env


def test_kill_9_mid_load_hides_the_half_chunk_and_the_next_run_completes(
    seeded, database_url, reference_database_url, admin_engine, tmp_path
):
    expected = clean_run_state(reference_database_url, tmp_path)
    child = None
    try:
        with rollup_row_held(seeded, HELD_DAY):
            child, env = start_blocked_backfill(
                seeded, database_url, admin_engine, tmp_path, "killed"
            )
            # Mid-chunk: its DELETE ran in its transaction; readers still see the old day.
            assert old_day(seeded) == OLD_DAY
            child.signal(signal.SIGKILL)
            assert child.wait(30) == -signal.SIGKILL
            assert old_day(seeded) == OLD_DAY
        # The server rolls the orphaned transaction back once its client is found gone.
        wait_until(
            lambda: not sessions_at_work(admin_engine, database_name(database_url)),
            timeout=30,
            what="the killed process's session to end",
        )
        assert old_day(seeded) == OLD_DAY
        assert run_log(seeded) == [
            ("costs", "2026-01-30", "2026-01-31", "succeeded", None),
            ("costs", "2026-02-01", "2026-02-02", "running", None),  # not finished
        ]
        with seeded.connect() as conn:
            assert (
                conn.execute(
                    sa.text("SELECT running_chunks FROM etl_status WHERE source = 'costs'")
                ).scalar_one()
                == 1
            )

        status, err = run_hubcost(["backfill", *WINDOW], env, tmp_path, "next")
        assert status == 0, err
        assert "1 chunk(s) left 'running'" in err
    finally:
        if child is not None:
            child.stop()
    assert visible_state(seeded) == expected
    log = run_log(seeded)
    assert log[1] == ("costs", "2026-02-01", "2026-02-02", "failed", runs.ABANDONED)
    assert [row[3] for row in log[2:]] == ["succeeded"] * 6  # 2 costs + 4 usage chunks
    with seeded.connect() as conn:
        assert select_all(conn, "SELECT sum(running_chunks) FROM etl_status") == [(0,)]


def test_sigterm_mid_load_rolls_the_chunk_back_and_exits_cleanly(
    seeded, database_url, reference_database_url, admin_engine, tmp_path
):
    expected = clean_run_state(reference_database_url, tmp_path)
    child = None
    try:
        with rollup_row_held(seeded, HELD_DAY):
            child, env = start_blocked_backfill(
                seeded, database_url, admin_engine, tmp_path, "stopped"
            )
            child.signal(signal.SIGTERM)  # what Kubernetes sends to stop a pod
            assert child.wait(30) == 143
        err = child.stderr()
        assert "Traceback" not in err
        assert "stopped by SIGTERM" in err
        wait_until(
            lambda: not sessions_at_work(admin_engine, database_name(database_url)),
            timeout=30,
            what="the stopped process's sessions to end",
        )
        assert old_day(seeded) == OLD_DAY
        assert run_log(seeded) == [
            ("costs", "2026-01-30", "2026-01-31", "succeeded", None),
            (
                "costs",
                "2026-02-01",
                "2026-02-02",
                "interrupted",
                "interrupted by SIGTERM: the chunk was rolled back",
            ),
        ]
        # The run lock was released on the way out.
        with seeded.connect() as conn:
            assert conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": ETL_RUN_LOCK})
            conn.execute(sa.text("SELECT pg_advisory_unlock_all()"))
        status, err = run_hubcost(["backfill", *WINDOW, "--resume"], env, tmp_path, "resumed")
        assert status == 0, err
    finally:
        if child is not None:
            child.stop()
    assert visible_state(seeded) == expected


def test_two_etl_processes_started_together_load_once(
    engine, database_url, reference_database_url, admin_engine, tmp_path
):
    today = dt.datetime.now(dt.UTC).date()
    first_day = today - dt.timedelta(days=60)  # the demo's first day
    with engine.begin() as conn:
        add_costs(conn, [(first_day, "account", None, "Old Service", "1")], cluster=DEMO_CLUSTER)
    env = child_env(tmp_path, DATABASE_URL=database_url)
    children = []
    try:
        with rollup_row_held(engine, first_day):
            children = [hubcost(["etl"], env, tmp_path, f"etl-{i}") for i in range(2)]
            # One takes the run lock and waits on the held row; the other gives up at once.
            gave_up = wait_until(
                lambda: [c for c in children if c.process.poll() is not None],
                timeout=60,
                what="one of the two to exit",
            )
            assert len(gave_up) == 1
            [quitter] = gave_up
            [loader] = [c for c in children if c is not quitter]
            assert quitter.process.returncode == 0
            assert "a run is in progress" in quitter.stderr()
            assert loader.process.poll() is None
        assert loader.wait(120) == 0, loader.stderr()
    finally:
        for child in children:
            child.stop()
    status, err = run_hubcost(
        ["etl"], child_env(tmp_path, DATABASE_URL=reference_database_url), tmp_path, "one-run"
    )
    assert status == 0, err
    with engine.connect() as conn:
        assert (
            select_all(
                conn,
                "SELECT source, first_day, count(*) FROM run_log GROUP BY 1, 2 HAVING count(*) > 1",
            )
            == []
        )
        assert select_all(conn, "SELECT DISTINCT status FROM run_log") == [("succeeded",)]
    reference = create_engine(reference_database_url, pool_size=1)
    try:
        # Today is partial: its usage depends on the minute each run asked.
        assert visible_state(engine, before=today) == visible_state(reference, before=today)
    finally:
        reference.dispose()
