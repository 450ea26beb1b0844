"""Several clusters loading at once (etl.jobs lanes): overlap, order, failures, Ctrl-C."""

import datetime as dt
import signal
import threading
from decimal import Decimal

import pytest

from core.database import create_engine
from etl import jobs, runs
from etl.load import CostRow, GroupRow, UsageRow
from etl.sources.base import Sources
from etl.sources.prometheus import PrometheusError, UsageDay
from etl.windows import Chunk
from tests.etl.sources_of import sources_of
from tests.reliability.processes import wait_until
from tests.rows import select_all

TODAY = dt.date(2026, 3, 20)
NOW = dt.datetime(2026, 3, 20, 6, 30, tzinfo=dt.UTC)
WINDOW = dict(first=dt.date(2026, 3, 18), last=TODAY, resume=False, clock=lambda: NOW)


def costs(first, last, counter):
    counter.count += 1
    day = first
    while day <= last:
        yield CostRow(day, "attributable", "prod", "EC2 - Other", Decimal(2), "USD", "x", False)
        day += dt.timedelta(days=1)


def usage_day(day):
    return UsageDay(
        usage=[UsageRow(day, "prod", "compute", "ann", Decimal(3), "GiB-hours")],
        groups=[GroupRow(day, "prod", "ann", "staff", "ann")],
        requests=4,
    )


def clusters(**usage_of) -> Sources:
    """One costs and one usage source per cluster, usage fetched by the function given."""
    made = [sources_of(costs=costs, usage=fetch, cluster=name) for name, fetch in usage_of.items()]
    return Sources(tuple(source for sources in made for source in sources.active))


@pytest.fixture
def wide_engine(database_url):
    engine = create_engine(database_url, pool_size=1 + jobs.CLUSTER_LANES)
    yield engine
    engine.dispose()


def statuses(engine):
    with engine.connect() as conn:
        return select_all(
            conn,
            "SELECT cluster, source, first_day::text, status FROM run_log "
            "ORDER BY cluster, source, first_day",
        )


def test_two_clusters_fetch_at_the_same_time_and_report_in_chunk_order(wide_engine):
    both_fetching = threading.Barrier(2, timeout=20)  # broken unless a and b overlap

    def usage(day, now, earlier):
        if day == TODAY:
            both_fetching.wait()
        return usage_day(day)

    sources = clusters(a=usage, b=usage)
    result = jobs.run_backfill(wide_engine, sources, source="all", **WINDOW)
    assert (result.succeeded, result.failed, result.skipped) == (8, 0, 0)
    chunks, _ = jobs.backfill_chunks(
        wide_engine,
        sources,
        source="all",
        first=WINDOW["first"],
        last=TODAY,
        resume=False,
        today=TODAY,
    )
    assert result.loaded == chunks
    assert {row[3] for row in statuses(wide_engine)} == {"succeeded"}


def test_a_failed_chunk_stops_its_cluster_s_source_only(wide_engine):
    def broken(day, now, earlier):
        raise PrometheusError("Prometheus at http://b:9090 is unreachable (after retries)")

    result = jobs.run_backfill(
        wide_engine,
        clusters(a=lambda day, now, earlier: usage_day(day), b=broken),
        source="all",
        **WINDOW,
    )
    assert (result.succeeded, result.failed, result.skipped) == (5, 1, 2)
    assert result.errors == [
        "b usage 2026-03-18: Prometheus at http://b:9090 is unreachable (after retries)"
    ]
    assert statuses(wide_engine) == [
        ("a", "costs", "2026-03-18", "succeeded"),
        ("a", "usage", "2026-03-18", "succeeded"),
        ("a", "usage", "2026-03-19", "succeeded"),
        ("a", "usage", "2026-03-20", "succeeded"),
        ("b", "costs", "2026-03-18", "succeeded"),
        ("b", "usage", "2026-03-18", "failed"),
    ]


def test_ctrl_c_while_clusters_load_records_their_chunks_interrupted(wide_engine, monkeypatch):
    monkeypatch.setattr(runs, "_IN_FLIGHT", runs._InFlight())  # the stop is this test's only
    main = threading.main_thread().ident
    fetching = threading.Barrier(2, timeout=20)
    released = threading.Event()

    def usage(day, now, earlier):
        if fetching.wait() == 0:
            signal.pthread_kill(main, signal.SIGINT)  # Ctrl-C, in the waiting main thread
        released.wait(20)
        return usage_day(day)

    with pytest.raises(KeyboardInterrupt):
        jobs.run_backfill(wide_engine, clusters(a=usage, b=usage), source="usage", **WINDOW)
    released.set()
    # Each lane's chunk finds its row interrupted and rolls back. Waited for by polling: a
    # join the KeyboardInterrupt cut short may leave its thread's join returning at once.
    wait_until(
        lambda: not any(t.name.startswith("hubcost-lane") for t in threading.enumerate()),
        timeout=20,
        what="the lanes to end",
        step=0.05,
    )
    assert wide_engine.pool.checkedout() == 0
    interrupted = [row for row in statuses(wide_engine) if row[3] != "succeeded"]
    assert interrupted == [
        ("a", "usage", "2026-03-18", "interrupted"),
        ("b", "usage", "2026-03-18", "interrupted"),
    ]
    with wide_engine.connect() as conn:
        error = "interrupted by SIGINT: the chunk was rolled back"
        assert select_all(conn, "SELECT DISTINCT error FROM run_log") == [(error,)]
        assert select_all(conn, "SELECT count(*) FROM usage") == [(0,)]


def _chunk(cluster: str, day: int) -> Chunk:
    return Chunk("usage", dt.date(2026, 3, day), dt.date(2026, 3, day), cluster)


@pytest.mark.parametrize("attempt", range(10))
def test_two_threads_waiting_for_one_cluster_start_its_chunks_in_order(attempt):
    # x has four chunks, y one: once y is done, three threads may wait for x at once.
    chunks = [_chunk("x", 1), _chunk("x", 2), _chunk("x", 3), _chunk("x", 4), _chunk("y", 1)]
    lanes = jobs.Lanes(chunks, iter, width=2)
    started: list[Chunk] = []
    first = lanes.take()
    assert first == chunks[0]
    started.append(first)

    def lane() -> None:
        while (chunk := lanes.take()) is not None:
            started.append(chunk)
            lanes.done(chunk, None)

    threads = [threading.Thread(target=lane) for _ in range(3)]
    for thread in threads:
        thread.start()
    # Let every thread reach its wait for x before x's first chunk ends.
    deadline = threading.Event()
    deadline.wait(0.2)
    lanes.done(first, None)
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()
    assert [c for c in started if c.cluster == "x"] == chunks[:4]
    assert lanes.result().succeeded == 5
