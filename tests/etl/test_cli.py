"""`hubcost etl`, `hubcost backfill` and the scheduler of `hubcost run`, as an operator runs them."""

import datetime as dt
import time

import sqlalchemy as sa

from core.database import ETL_RUN_LOCK, advisory_lock
from core.settings import Settings
from etl import scheduler
from etl.windows import cost_chunks
from hubcost import cli
from tests.etl.recent_days import backfill, first_of_last_month
from tests.etl.sources.aws_endpoint import FakeCostExplorer
from tests.rows import select_all


def statuses(engine):
    with engine.connect() as conn:
        return select_all(
            conn, "SELECT source, status, count(*) FROM run_log GROUP BY 1, 2 ORDER BY 1, 2"
        )


def test_etl_with_no_source_loads_the_demo_and_says_so(cli_env, engine, capfd):
    assert cli.main(["etl"]) == 0
    err = capfd.readouterr().err
    assert "WARNING" in err and "DEMO DATA" in err
    today = dt.datetime.now(dt.UTC).date()
    with engine.connect() as conn:
        first_cost, last_cost = conn.execute(sa.text("SELECT min(date), max(date) FROM cost")).one()
        assert (first_cost, last_cost) == (today - dt.timedelta(days=60), today)
        assert conn.execute(sa.text("SELECT count(DISTINCT hub) FROM usage")).scalar_one() == 3
    assert statuses(engine)[1] == ("usage", "succeeded", 61)
    # Again: identical tables (today is partial and reloaded with the same demo numbers).
    with engine.connect() as conn:
        before = select_all(conn, "SELECT * FROM cost WHERE date < :t ORDER BY 1, 2, 3, 4", t=today)
    assert cli.main(["etl"]) == 0
    with engine.connect() as conn:
        after = select_all(conn, "SELECT * FROM cost WHERE date < :t ORDER BY 1, 2, 3, 4", t=today)
    assert after == before


def test_a_second_etl_exits_zero_at_once_saying_a_run_is_in_progress(cli_env, engine, capfd):
    with engine.connect() as holder, advisory_lock(holder, ETL_RUN_LOCK):
        assert cli.main(["etl"]) == 0
        assert cli.main(["backfill", "--from", "2026-01-01", "--to", "2026-01-02"]) == 0
    assert "a run is in progress" in capfd.readouterr().err
    assert statuses(engine) == []


def test_backfill_resume_and_exit_status(cli_env, engine):
    args = ["backfill", "--from", "2026-01-30", "--to", "2026-02-02", "--source", "costs"]
    assert cli.main(args) == 0
    assert statuses(engine) == [("costs", "succeeded", 2)]
    assert cli.main([*args, "--resume"]) == 0
    assert statuses(engine) == [("costs", "succeeded", 2)]  # nothing left to do
    assert (
        cli.main(["backfill", "--from", "2026-01-31", "--to", "2026-01-31", "--source", "usage"])
        == 0
    )
    assert statuses(engine) == [("costs", "succeeded", 2), ("usage", "succeeded", 1)]


def test_bad_aws_credentials_end_the_run_with_one_line(cli_env, engine, capfd):
    def respond(request):
        return 400, {"__type": "UnrecognizedClientException", "message": "invalid token"}

    second_month = first_of_last_month()
    first = second_month - dt.timedelta(days=2)  # two days of each of two months: two chunks
    with FakeCostExplorer(respond) as fake:
        cli_env.setenv("AWS_ENDPOINT_URL", fake.url)
        cli_env.setenv("CLUSTER_NAME", "c1")
        cli_env.setenv("AWS_ACCESS_KEY_ID", "AKIDBAD")
        cli_env.setenv("AWS_SECRET_ACCESS_KEY", "bad-secret")
        assert cli.main(backfill(first, second_month + dt.timedelta(days=1))) == 1
    lines = [line for line in capfd.readouterr().err.splitlines() if line.startswith("hubcost")]
    assert len(lines) == 1 and "UnrecognizedClientException" in lines[0]
    assert "bad-secret" not in lines[0]
    # The first chunk failed and recorded; the rest of the costs source was skipped.
    assert statuses(engine) == [("costs", "failed", 1)]
    [request] = fake.requests
    assert request["body"]["TimePeriod"] == {"Start": str(first), "End": str(second_month)}


def test_missing_aws_credentials_end_the_run_with_one_line(cli_env, engine, capfd):
    cli_env.setenv("CLUSTER_NAME", "c1")
    cli_env.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    assert cli.main(["etl"]) == 1
    lines = [line for line in capfd.readouterr().err.splitlines() if line.startswith("hubcost")]
    assert len(lines) == 1 and "credentials are missing" in lines[0]


def test_the_scheduler_runs_at_start_then_on_the_cron(cli_env, engine, database_url):
    cli_env.setenv("ETL_CRON", "15 3 * * *")
    settings = Settings.from_env()
    sched = scheduler.start_scheduler(settings)
    try:
        [job] = [j for j in sched.get_jobs() if j.id == "etl"]
        assert (
            str(job.trigger) == "cron[month='*', day='*', day_of_week='*', hour='3', minute='15']"
        )
        assert str(job.trigger.timezone) == "UTC"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if ("usage", "succeeded", 61) in statuses(engine):
                break
            time.sleep(0.2)
        today = dt.datetime.now(dt.UTC).date()
        months = len(cost_chunks(today - dt.timedelta(days=60), today, today))
        assert ("costs", "succeeded", months) in statuses(engine)
        assert ("usage", "succeeded", 61) in statuses(engine)
    finally:
        sched.shutdown(wait=True)


def test_cluster_limits_a_run_and_an_unknown_one_is_refused_before_connecting(
    cli_env, engine, capfd
):
    assert (
        cli.main(["backfill", "--from", "2026-01-01", "--to", "2026-01-02", "--cluster", "nope"])
        == 2
    )
    assert "--cluster 'nope' is not a configured cluster (demo-cluster)" in capfd.readouterr().err
    with engine.connect() as conn:
        assert select_all(conn, "SELECT count(*) FROM run_log") == [(0,)]
    args = ["backfill", "--from", "2026-01-01", "--to", "2026-01-02", "--source", "usage"]
    assert cli.main([*args, "--cluster", "demo-cluster"]) == 0
    with engine.connect() as conn:
        assert select_all(conn, "SELECT DISTINCT cluster, source FROM run_log") == [
            ("demo-cluster", "usage")
        ]
