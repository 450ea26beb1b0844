"""ETL runs: windows → chunks → fetch → replace the chunk's days, one chunk at a time.

`run_etl` and `run_backfill` do the work with an engine, the sources' fetch functions and a
clock passed in; `etl_command` and `backfill_command` (what `hubcost etl|backfill` call) build
those at the edge from the settings. One run at a time across processes and replicas: a run
holds the Postgres advisory lock ETL_RUN_LOCK, and a second run exits 0 at once.

A chunk that fails is recorded `failed` and the rest of that source's chunks in the run are
skipped (a later day loaded after a failed one would hide the gap from the next window);
the other source carries on.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from core.database import ETL_RUN_LOCK, advisory_lock
from etl import runs
from etl.load import CostRow, LoadError, save_costs, save_groups, save_usage
from etl.sources.cost_explorer import CostExplorerError, CredentialsError, RequestCounter
from etl.sources.prometheus import PrometheusError, UsageDay
from etl.windows import Chunk, cost_chunks, costs_window, usage_chunks, usage_window

log = logging.getLogger("hubcost.etl")

DEMO_DAYS = 60
# Errors that mean "this chunk could not be loaded"; their text is safe to store.
CHUNK_ERRORS = (CostExplorerError, PrometheusError, LoadError)

Clock = Callable[[], dt.datetime]
FetchCosts = Callable[[dt.date, dt.date, RequestCounter], Iterable[CostRow]]
FetchUsage = Callable[[dt.date, dt.datetime, Mapping[str, Mapping[str, str]]], UsageDay]


class Terminated(BaseException):
    """SIGTERM (a pod stop) arrived: the chunk in flight rolls back and the run stops.

    A BaseException, like KeyboardInterrupt, so that no `except Exception` swallows it.
    """


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Sources:
    """The fetch functions of the configured sources (None: that source is off)."""

    costs: FetchCosts | None = None
    usage: FetchUsage | None = None
    demo: bool = False


@dataclass
class RunResult:
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    in_progress: bool = False  # another run held the lock; nothing was done
    credentials_problem: str | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def exit_status(self) -> int:
        return 1 if self.failed else 0


# ---- the work, with everything passed in ----


def etl_chunks(
    engine: Engine, sources: Sources, *, today: dt.date, lookback_days: int, initial_days: int
) -> list[Chunk]:
    """The chunks of one `hubcost etl` run (§4 windows from the run log)."""
    chunks: list[Chunk] = []
    with engine.connect() as conn:
        if sources.costs is not None:
            first, last = costs_window(
                today,
                last_loaded=runs.last_loaded_day(conn, "costs"),
                lookback_days=lookback_days,
                initial_days=initial_days,
            )
            chunks += cost_chunks(first, last, today)
        if sources.usage is not None:
            first, last = usage_window(
                today, last_loaded=runs.last_loaded_day(conn, "usage"), initial_days=initial_days
            )
            chunks += usage_chunks(first, last, today)
    return chunks


def backfill_chunks(
    engine: Engine,
    sources: Sources,
    *,
    first: dt.date,
    last: dt.date,
    source: str,
    resume: bool,
    today: dt.date,
) -> tuple[list[Chunk], int]:
    """The chunks of a backfill window, and how many `--resume` skipped."""
    chunks: list[Chunk] = []
    if source in ("costs", "all") and sources.costs is not None:
        chunks += cost_chunks(first, last, today)
    if source in ("usage", "all") and sources.usage is not None:
        chunks += usage_chunks(first, last, today)
    if not resume:
        return chunks, 0
    with engine.connect() as conn:
        done = {name: runs.succeeded_chunks(conn, name, first, last) for name in ("costs", "usage")}
    todo = [c for c in chunks if (c.first, c.last) not in done[c.source]]
    return todo, len(chunks) - len(todo)


def run_etl(
    engine: Engine,
    sources: Sources,
    *,
    clock: Clock,
    lookback_days: int,
    initial_days: int,
    progress: Callable[[list[Chunk]], Iterable[Chunk]] | None = None,
) -> RunResult:
    """One `hubcost etl` run under the run lock."""

    def work() -> RunResult:
        chunks = etl_chunks(
            engine,
            sources,
            today=clock().date(),
            lookback_days=lookback_days,
            initial_days=initial_days,
        )
        return run_chunks(engine, sources, chunks, clock=clock, progress=progress)

    return _under_run_lock(engine, clock, work)


def run_backfill(
    engine: Engine,
    sources: Sources,
    *,
    first: dt.date,
    last: dt.date,
    source: str,
    resume: bool,
    clock: Clock,
    progress: Callable[[list[Chunk]], Iterable[Chunk]] | None = None,
) -> RunResult:
    """Replace every chunk of first..last (both inclusive) under the run lock."""

    def work() -> RunResult:
        chunks, skipped = backfill_chunks(
            engine,
            sources,
            first=first,
            last=last,
            source=source,
            resume=resume,
            today=clock().date(),
        )
        if skipped:
            log.info("--resume: %d chunk(s) already succeeded, skipped", skipped)
        result = run_chunks(engine, sources, chunks, clock=clock, progress=progress)
        result.skipped += skipped
        return result

    return _under_run_lock(engine, clock, work)


def _under_run_lock(engine: Engine, clock: Clock, work: Callable[[], RunResult]) -> RunResult:
    """Run `work` holding the ETL run lock; if another run holds it, do nothing and say so."""
    with engine.connect() as lock_conn, advisory_lock(lock_conn, ETL_RUN_LOCK) as taken:
        if not taken:
            log.info("an ETL run is in progress elsewhere; this one does nothing")
            return RunResult(in_progress=True)
        _close_abandoned(engine, clock)
        return work()


def _close_abandoned(engine: Engine, clock: Clock) -> None:
    closed = runs.close_abandoned(engine, now=clock())
    if closed:
        log.warning(
            "%d chunk(s) left 'running' by a process that stopped (killed?) marked failed; "
            "their days are loaded again when a run covers them",
            closed,
        )


def run_chunks(
    engine: Engine,
    sources: Sources,
    chunks: list[Chunk],
    *,
    clock: Clock,
    progress: Callable[[list[Chunk]], Iterable[Chunk]] | None = None,
) -> RunResult:
    """Load the chunks in order; a failed chunk stops its source for the rest of the run."""
    result = RunResult()
    stopped: set[str] = set()
    warned_services: set[str] = set()
    if sources.demo and chunks:
        log.warning("DEMO DATA: loading synthetic costs and usage, not a real cluster's")
    for chunk in (progress or _logged)(chunks):
        if chunk.source in stopped:
            result.skipped += 1
            continue
        try:
            if chunk.source == "costs":
                load_costs_chunk(
                    engine, chunk, sources.costs, clock=clock, warned_services=warned_services
                )
            else:
                load_usage_chunk(engine, chunk, sources.usage, clock=clock)
        except CHUNK_ERRORS as exc:
            result.failed += 1
            result.errors.append(f"{chunk}: {exc}")
            stopped.add(chunk.source)
            log.error("chunk %s failed: %s", chunk, exc)
            if isinstance(exc, CredentialsError):
                result.credentials_problem = str(exc)
        else:
            result.succeeded += 1
    if stopped:
        log.warning("after a failed chunk, skipped the rest of: %s", ", ".join(sorted(stopped)))
    return result


def load_costs_chunk(
    engine: Engine,
    chunk: Chunk,
    fetch: FetchCosts,
    *,
    clock: Clock,
    warned_services: set[str] | None = None,
) -> int:
    """Fetch the chunk's costs, then replace its days and mark it succeeded in one transaction."""
    run_id = runs.start_chunk(engine, chunk, now=clock())
    counter = RequestCounter()
    try:
        rows = list(fetch(chunk.first, chunk.last, counter))
        with engine.begin() as conn:
            written = save_costs(conn, rows, first=chunk.first, last=chunk.last)
            runs.mark_succeeded(conn, run_id, rows=written, requests=counter.count, now=clock())
            _warn_unmapped_services(conn, {r.service for r in rows}, warned_services)
            _warn_shortfalls(conn, chunk)
    except BaseException as exc:
        runs.mark_failed(
            engine, run_id, error=_error_text(exc), requests=counter.count, now=clock()
        )
        raise
    log.info("loaded %s: %d cost rows, %d Cost Explorer requests", chunk, written, counter.count)
    return written


def load_usage_chunk(engine: Engine, chunk: Chunk, fetch: FetchUsage, *, clock: Clock) -> int:
    """Fetch one day's usage and groups, then replace the day and mark it succeeded together."""
    run_id = runs.start_chunk(engine, chunk, now=clock())
    requests = 0
    try:
        with engine.connect() as conn:
            earlier = earlier_usernames(conn, chunk.first)
        day = fetch(chunk.first, clock(), earlier)
        requests = day.requests
        with engine.begin() as conn:
            written = save_usage(conn, day.usage, first=chunk.first, last=chunk.last)
            written += save_groups(conn, day.groups, first=chunk.first, last=chunk.last)
            runs.mark_succeeded(conn, run_id, rows=written, requests=requests, now=clock())
    except BaseException as exc:
        runs.mark_failed(engine, run_id, error=_error_text(exc), requests=requests, now=clock())
        raise
    log.info("loaded %s: %d usage and group rows", chunk, written)
    return written


def earlier_usernames(conn, day: dt.date) -> dict[str, dict[str, str]]:
    """hub → username_escaped → username, from each hub's latest snapshot before `day`."""
    rows = conn.execute(
        sa.text(
            """
            SELECT g.hub, g.username_escaped, g.username
            FROM user_group_snapshot g
            JOIN (SELECT hub, max(date) AS date FROM user_group_snapshot
                  WHERE date < :day GROUP BY hub) latest
              ON latest.hub = g.hub AND latest.date = g.date
            """
        ),
        {"day": day},
    )
    names: dict[str, dict[str, str]] = {}
    for hub, escaped, username in rows:
        names.setdefault(hub, {})[escaped] = username
    return names


def _warn_unmapped_services(conn, services: set[str], warned: set[str] | None) -> None:
    known = set(conn.execute(sa.text("SELECT service FROM service_component")).scalars())
    warned = set() if warned is None else warned
    for service in sorted(services - known - warned):
        log.warning(
            "Cost Explorer service %r is not in service_component: its cost counts as 'other' "
            "(add it with SQL to map it)",
            service,
        )
        warned.add(service)


def _warn_shortfalls(conn, chunk: Chunk) -> None:
    rows = conn.execute(
        sa.text(
            "SELECT date, hub, shortfall FROM component_cost_moves "
            "WHERE date BETWEEN :first AND :last AND shortfall <> 0 ORDER BY date, hub"
        ),
        {"first": chunk.first, "last": chunk.last},
    )
    for day, hub, shortfall in rows:
        log.warning(
            "%s hub %s: %s USD of home/core cost could not move out of compute (slices overlap)",
            day,
            hub,
            shortfall,
        )


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, CHUNK_ERRORS):
        return str(exc)
    if isinstance(exc, Terminated | KeyboardInterrupt):
        signal_name = "SIGTERM" if isinstance(exc, Terminated) else "SIGINT"
        return f"interrupted by {signal_name}: the chunk was rolled back"
    if isinstance(exc, SQLAlchemyError):
        return f"database error ({type(exc).__name__}); see the logs"
    # Unknown errors may carry anything in their text: store only the type.
    return f"{type(exc).__name__}; see the logs"


def _logged(chunks: list[Chunk]) -> Iterable[Chunk]:
    for i, chunk in enumerate(chunks, 1):
        log.info("chunk %d/%d: %s", i, len(chunks), chunk)
        yield chunk


def terminal_progress(chunks: list[Chunk]) -> Iterable[Chunk]:
    """A progress bar on a terminal, plain log lines otherwise."""
    if not sys.stderr.isatty():
        return _logged(chunks)
    from tqdm import tqdm

    return tqdm(chunks, desc="chunks", unit="chunk", file=sys.stderr)


# ---- the edge: settings → engine, clients, sources ----


def sources_from_settings(settings) -> Sources:
    """The fetch functions of the configured sources, clients built here."""
    from etl.sources import cost_explorer, demo, prometheus

    if settings.demo:
        return demo.demo_sources()
    costs = usage = None
    if settings.costs_enabled:
        client = cost_explorer.make_client()
        query = cost_explorer.CostQuery.from_settings(settings)

        def costs(first, last, counter):
            return cost_explorer.fetch_costs(client, query, first=first, last=last, counter=counter)

    if settings.usage_enabled:
        prom = prometheus.make_client(settings)

        def usage(day, now, earlier):
            return prometheus.fetch_usage_day(prom, day, now=now, earlier_usernames=earlier)

    return Sources(costs=costs, usage=usage)


def etl_command(settings, *, clock: Clock = utc_now) -> int:
    """`hubcost etl`: one run now for every configured source."""
    engine, sources = _edge(settings)
    try:
        result = run_etl(
            engine,
            sources,
            clock=clock,
            lookback_days=settings.lookback_days,
            initial_days=DEMO_DAYS if sources.demo else settings.initial_days,
        )
    finally:
        engine.dispose()
    return _report(result, "etl")


def backfill_command(settings, *, first, last, source, resume, clock: Clock = utc_now) -> int:
    """`hubcost backfill`: replace every chunk of first..last; non-zero exit on failure."""
    engine, sources = _edge(settings)
    try:
        result = run_backfill(
            engine,
            sources,
            first=first,
            last=last,
            source=source,
            resume=resume,
            clock=clock,
            progress=terminal_progress,
        )
    finally:
        engine.dispose()
    return _report(result, "backfill")


def _edge(settings):
    from core import bootstrap

    sources = sources_from_settings(settings)
    if sources.costs is None and sources.usage is None:
        log.warning("no source configured (CLUSTER_NAME, PROMETHEUS_URL) and DEMO=0: nothing to do")
    return bootstrap.writer_engine(settings), sources


def _report(result: RunResult, what: str) -> int:
    if result.in_progress:
        print(f"hubcost {what}: a run is in progress; exiting", file=sys.stderr)
        return 0
    if result.credentials_problem:
        print(f"hubcost {what}: {result.credentials_problem}", file=sys.stderr)
    log.info(
        "%s finished: %d chunk(s) succeeded, %d failed, %d skipped",
        what,
        result.succeeded,
        result.failed,
        result.skipped,
    )
    return result.exit_status
