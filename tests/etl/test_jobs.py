"""Runs: windows from the run log, chunk transactions, failures, the run lock, idempotency."""

import datetime as dt
import threading
from decimal import Decimal

import sqlalchemy as sa

from core.database import ETL_RUN_LOCK, advisory_lock
from core.settings import Settings
from etl import jobs
from etl.load import CostRow, GroupRow, UsageRow
from etl.sources.prometheus import PrometheusError, UsageDay
from tests.etl.sources_of import sources_of
from tests.rows import add_usage, select_all

TODAY = dt.date(2026, 3, 20)
NOW = dt.datetime(2026, 3, 20, 6, 30, tzinfo=dt.UTC)


def clock():
    return NOW


def d(text):
    return dt.date.fromisoformat(text)


class FakeSources:
    """In-memory sources: one cost row per slice per day, two users a day; failures on demand."""

    def __init__(self, fail_usage_on=(), fail_costs_from=None):
        self.fail_usage_on = set(fail_usage_on)
        self.fail_costs_from = fail_costs_from
        self.usage_days = []
        self.cost_windows = []

    def costs(self, first, last, counter):
        self.cost_windows.append((first, last))
        if self.fail_costs_from is not None and last >= self.fail_costs_from:
            raise jobs.CostExplorerError("injected Cost Explorer failure")
        day = first
        while day <= last:
            counter.count += 1
            yield CostRow(
                day, "account", None, "EC2 - Other", Decimal("2.5"), "USD", "UnblendedCost", False
            )
            yield CostRow(
                day,
                "attributable",
                "prod",
                "EC2 - Other",
                Decimal(2),
                "USD",
                "UnblendedCost",
                False,
            )
            yield CostRow(
                day,
                "attributable",
                "prod",
                "Amazon Mystery",
                Decimal("0.25"),
                "USD",
                "UnblendedCost",
                False,
            )
            day += dt.timedelta(days=1)

    def usage(self, day, now, earlier):
        self.usage_days.append(day)
        if day in self.fail_usage_on:
            raise PrometheusError("Prometheus at http://prom:9090 is unreachable (after retries)")
        return UsageDay(
            usage=[
                UsageRow(day, "prod", "compute", "ann", Decimal(3), "GiB-hours", Decimal(1)),
                UsageRow(day, "prod", "compute", "bo", Decimal(1), "GiB-hours", None),
            ],
            groups=[GroupRow(day, "prod", "ann", "staff", "ann")],
            requests=4,
        )

    def sources(self):
        return sources_of(costs=self.costs, usage=self.usage)


def run_log(conn):
    return select_all(
        conn,
        "SELECT source, first_day::text, last_day::text, status, rows, requests, error "
        "FROM run_log ORDER BY id",
    )


def tables(conn):
    return (
        select_all(conn, "SELECT * FROM cost ORDER BY date, slice, hub, service"),
        select_all(conn, "SELECT * FROM usage ORDER BY date, hub, component, username"),
        select_all(
            conn, "SELECT * FROM user_group_snapshot ORDER BY date, hub, username, usergroup"
        ),
    )


def test_first_run_on_an_empty_database_loads_initial_days(engine):
    fake = FakeSources()
    result = jobs.run_etl(engine, fake.sources(), clock=clock, lookback_days=3, initial_days=30)
    assert (result.succeeded, result.failed, result.exit_status) == (2 + 31, 0, 0)
    # Costs: 2026-02-18..02-28 and 03-01..03-20, one chunk per calendar month.
    assert fake.cost_windows == [(d("2026-02-18"), d("2026-02-28")), (d("2026-03-01"), TODAY)]
    assert fake.usage_days[0] == d("2026-02-18") and fake.usage_days[-1] == TODAY
    with engine.connect() as conn:
        log = run_log(conn)
        assert log[:2] == [
            ("costs", "2026-02-18", "2026-02-28", "succeeded", 33, 11, None),
            ("costs", "2026-03-01", "2026-03-20", "succeeded", 60, 20, None),
        ]
        assert log[2] == ("usage", "2026-02-18", "2026-02-18", "succeeded", 3, 4, None)
        assert len(log) == 33


def test_the_next_run_reloads_lookback_days_and_usage_from_the_day_before(engine):
    fake = FakeSources()
    jobs.run_etl(engine, fake.sources(), clock=clock, lookback_days=3, initial_days=30)
    later = FakeSources()
    jobs.run_etl(
        engine,
        later.sources(),
        clock=lambda: NOW + dt.timedelta(days=2),
        lookback_days=3,
        initial_days=30,
    )
    assert later.cost_windows == [(d("2026-03-20"), d("2026-03-22"))]  # catch-up wins
    assert later.usage_days == [d("2026-03-19"), d("2026-03-20"), d("2026-03-21"), d("2026-03-22")]


def test_rerunning_a_backfill_gives_identical_tables(engine):
    fake = FakeSources()
    args = dict(
        first=d("2026-02-27"), last=d("2026-03-02"), source="all", resume=False, clock=clock
    )
    jobs.run_backfill(engine, fake.sources(), **args)
    with engine.connect() as conn:
        first = tables(conn)
    result = jobs.run_backfill(engine, fake.sources(), **args)
    assert result.exit_status == 0
    with engine.connect() as conn:
        assert tables(conn) == first
        assert len(first[0]) == 4 * 3 and len(first[1]) == 4 * 2


def test_a_failure_half_way_keeps_earlier_days_and_a_resumed_rerun_completes(engine):
    with engine.begin() as conn:
        add_usage(conn, [("2026-03-03", "prod", "compute", "old", 7)])  # loaded long ago
    failing = FakeSources(fail_usage_on={d("2026-03-03")})
    window = dict(first=d("2026-03-01"), last=d("2026-03-05"), source="usage", clock=clock)
    result = jobs.run_backfill(engine, failing.sources(), resume=False, **window)
    assert (result.succeeded, result.failed, result.skipped, result.exit_status) == (2, 1, 2, 1)
    assert failing.usage_days == [d("2026-03-01"), d("2026-03-02"), d("2026-03-03")]
    with engine.connect() as conn:
        assert run_log(conn)[-1] == (
            "usage",
            "2026-03-03",
            "2026-03-03",
            "failed",
            0,
            0,
            "Prometheus at http://prom:9090 is unreachable (after retries)",
        )
        # Days 1 and 2 are loaded; day 3 keeps what it had, untouched.
        assert select_all(conn, "SELECT date::text, username, value FROM usage ORDER BY 1, 2") == [
            ("2026-03-01", "ann", Decimal(3)),
            ("2026-03-01", "bo", Decimal(1)),
            ("2026-03-02", "ann", Decimal(3)),
            ("2026-03-02", "bo", Decimal(1)),
            ("2026-03-03", "old", Decimal(7)),
        ]
    fixed = FakeSources()
    result = jobs.run_backfill(engine, fixed.sources(), resume=True, **window)
    assert (result.succeeded, result.failed, result.skipped) == (3, 0, 2)
    assert fixed.usage_days == [d("2026-03-03"), d("2026-03-04"), d("2026-03-05")]
    with engine.connect() as conn:
        assert select_all(conn, "SELECT count(DISTINCT date), count(*) FROM usage") == [(5, 10)]


def test_a_failed_cost_chunk_leaves_its_month_untouched(engine):
    jobs.run_backfill(
        engine,
        FakeSources().sources(),
        first=d("2026-02-27"),
        last=d("2026-03-02"),
        source="costs",
        resume=False,
        clock=clock,
    )
    with engine.connect() as conn:
        before = tables(conn)
    result = jobs.run_backfill(
        engine,
        FakeSources(fail_costs_from=d("2026-03-01")).sources(),
        first=d("2026-02-27"),
        last=d("2026-03-02"),
        source="costs",
        resume=False,
        clock=clock,
    )
    assert (result.succeeded, result.failed) == (1, 1)
    with engine.connect() as conn:
        assert tables(conn) == before
        assert [r[3] for r in run_log(conn)] == ["succeeded", "succeeded", "succeeded", "failed"]


def test_a_second_run_exits_at_once_while_one_holds_the_lock(engine):
    entered, release = threading.Event(), threading.Event()
    fake = FakeSources()

    def slow_usage(day, now, earlier):
        entered.set()
        assert release.wait(30)
        return fake.usage(day, now, earlier)

    slow = sources_of(usage=slow_usage)
    results = {}
    first = threading.Thread(
        target=lambda: results.setdefault(
            "first",
            jobs.run_backfill(
                engine, slow, first=TODAY, last=TODAY, source="usage", resume=False, clock=clock
            ),
        )
    )
    first.start()
    try:
        assert entered.wait(30)
        second = jobs.run_etl(engine, fake.sources(), clock=clock, lookback_days=3, initial_days=30)
        assert second.in_progress and second.exit_status == 0
        assert fake.cost_windows == [] and fake.usage_days == []
    finally:
        release.set()
        first.join(30)
    assert results["first"].succeeded == 1
    with engine.connect() as conn:
        assert [r[3] for r in run_log(conn)] == ["succeeded"]


def test_unmapped_services_are_warned_once_per_run(engine, caplog):
    caplog.set_level("WARNING", logger="hubcost.etl")
    jobs.run_backfill(
        engine,
        FakeSources().sources(),
        first=d("2026-02-27"),
        last=d("2026-03-02"),
        source="costs",
        resume=False,
        clock=clock,
    )
    warnings = [r.getMessage() for r in caplog.records if "Amazon Mystery" in r.getMessage()]
    assert len(warnings) == 1 and "'other'" in warnings[0]


def test_the_prometheus_source_down_fails_the_run_and_records_it(engine):
    from etl.sources import prometheus
    from tests.etl.prometheus_history import free_port

    settings = Settings.from_env(
        {
            "PROMETHEUS_URL": f"http://user:s3cret@127.0.0.1:{free_port()}",
            "PROMETHEUS_TIMEOUT_S": "2",
        }
    )
    client = prometheus.make_client(settings, backoff_factor=0.01)
    sources = sources_of(
        usage=lambda day, now, earlier: prometheus.fetch_usage_day(
            client, day, now=now, earlier_usernames=earlier
        )
    )
    with engine.begin() as conn:
        add_usage(conn, [("2026-03-20", "prod", "compute", "kept", 1)])
    result = jobs.run_backfill(
        engine, sources, first=TODAY, last=TODAY, source="usage", resume=False, clock=clock
    )
    assert result.exit_status == 1
    with engine.connect() as conn:
        [row] = run_log(conn)
        assert row[3] == "failed" and "unreachable" in row[6] and "s3cret" not in row[6]
        assert select_all(conn, "SELECT username FROM usage") == [("kept",)]


def test_progress_is_a_bar_on_a_terminal_and_log_lines_otherwise(monkeypatch):
    from etl.windows import Chunk

    chunks = [Chunk("usage", TODAY, TODAY)]
    monkeypatch.setattr("sys.stderr.isatty", lambda: False, raising=False)
    assert list(jobs.terminal_progress(chunks)) == chunks


def test_a_lock_held_by_another_session_makes_the_run_a_no_op(engine):
    # Another process or replica: any session holding ETL_RUN_LOCK.
    other = sa.create_engine(engine.url, poolclass=sa.pool.NullPool)
    try:
        with other.connect() as holder, advisory_lock(holder, ETL_RUN_LOCK) as taken:
            assert taken
            fake = FakeSources()
            result = jobs.run_etl(
                engine, fake.sources(), clock=clock, lookback_days=3, initial_days=30
            )
            assert result.in_progress and fake.usage_days == []
    finally:
        other.dispose()
    with engine.connect() as conn:
        assert run_log(conn) == []


def test_a_shortfall_in_the_moves_is_logged(engine, caplog):
    def costs(first, last, counter):
        counter.count += 1
        for slice_, service, amount in (
            ("attributable", "EC2 - Other", 10),
            ("home", "EC2 - Other", 7),
            ("core", "Amazon Elastic Compute Cloud - Compute", 8),
        ):
            yield CostRow(
                first, slice_, "h", service, Decimal(amount), "USD", "UnblendedCost", False
            )

    caplog.set_level("WARNING", logger="hubcost.etl")
    result = jobs.run_backfill(
        engine,
        sources_of(costs=costs),
        first=TODAY,
        last=TODAY,
        source="costs",
        resume=False,
        clock=clock,
    )
    assert result.exit_status == 0
    [message] = [r.getMessage() for r in caplog.records if "could not move" in r.getMessage()]
    assert message.startswith("2026-03-20 hub h: 5 USD")
