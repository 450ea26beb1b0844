"""ETL runs: windows → chunks → fetch → replace the chunk's days, a cluster's chunks in order.

`run_etl` and `run_backfill` do the work with an engine, the sources (`etl.sources.base`:
window, chunks, fetch, save) and a clock passed in; `etl_command` and `backfill_command` (what `hubcost etl|backfill` call) build
those at the edge from the settings. One run at a time across processes and replicas: a run
holds the Postgres advisory lock ETL_RUN_LOCK, and a second run exits 0 at once.

Up to CLUSTER_LANES clusters load at once, each on a thread of its own; every chunk keeps its
own transaction and run-log row. A chunk that fails is recorded `failed` and the rest of that
cluster's source's chunks in the run are skipped (a later day loaded after a failed one would
hide the gap from the next window); the other sources carry on.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from core.database import ETL_RUN_LOCK, advisory_lock
from etl import runs
from etl.alerts import Alerts
from etl.load import LoadError
from etl.sources.base import RequestCounter, Source, Sources
from etl.sources.cost_explorer import CostExplorerError, CredentialsError
from etl.sources.prometheus import PrometheusError
from etl.stopping import Terminated, interruption
from etl.windows import Chunk

log = logging.getLogger("hubcost.etl")

DEMO_DAYS = 60
# Clusters a run loads at once, each on a thread of its own: one cluster's network wait
# overlaps another's save. The saves themselves take turns on the data version's row
# (migration 0011), from a chunk's first write to its commit.
CLUSTER_LANES = 4
# Errors that mean "this chunk could not be loaded"; their text is safe to store.
CHUNK_ERRORS = (CostExplorerError, PrometheusError, LoadError)

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class RunResult:
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    in_progress: bool = False  # another run held the lock; nothing was done
    credentials_problem: str | None = None
    errors: list[str] = field(default_factory=list)
    loaded: list[Chunk] = field(default_factory=list)  # the chunks that succeeded
    evaluation_failed: bool = False  # budgets and anomalies could not be evaluated

    @property
    def exit_status(self) -> int:
        return 1 if self.failed or self.evaluation_failed else 0


# ---- the work, with everything passed in ----


def etl_chunks(
    engine: Engine, sources: Sources, *, today: dt.date, lookback_days: int, initial_days: int
) -> list[Chunk]:
    """The chunks of one `hubcost etl` run: each source's window from the run log."""
    chunks: list[Chunk] = []
    with engine.connect() as conn:
        for source in sources.active:
            first, last = source.window(
                today,
                last_loaded=runs.last_loaded_day(conn, source.cluster, source.name),
                lookback_days=lookback_days,
                initial_days=initial_days,
            )
            chunks += _chunks_of(source, first, last, today)
    return chunks


def _chunks_of(source: Source, first: dt.date, last: dt.date, today: dt.date) -> list[Chunk]:
    # The windows cut days; which source and cluster a chunk loads is the source's own.
    return [
        replace(c, source=source.name, cluster=source.cluster)
        for c in source.chunks(first, last, today)
    ]


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
    chosen = [s for s in sources.active if source in ("all", s.name)]
    chunks = [chunk for s in chosen for chunk in _chunks_of(s, first, last, today)]
    if not resume:
        return chunks, 0
    with engine.connect() as conn:
        done = {
            (s.cluster, s.name): runs.succeeded_chunks(conn, s.cluster, s.name, first, last)
            for s in chosen
        }
    todo = [c for c in chunks if (c.first, c.last) not in done[c.cluster, c.source]]
    return todo, len(chunks) - len(todo)


def run_etl(
    engine: Engine,
    sources: Sources,
    *,
    clock: Clock,
    lookback_days: int,
    initial_days: int,
    progress: Callable[[list[Chunk]], Iterable[Chunk]] | None = None,
    alerts: Alerts | None = None,
) -> RunResult:
    """One `hubcost etl` run under the run lock, then its alerts (etl.alerts)."""

    def work() -> RunResult:
        chunks = etl_chunks(
            engine,
            sources,
            today=clock().date(),
            lookback_days=lookback_days,
            initial_days=initial_days,
        )
        return run_chunks(engine, sources, chunks, clock=clock, progress=progress)

    return _under_run_lock(engine, clock, work, alerts)


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
    alerts: Alerts | None = None,
) -> RunResult:
    """Replace every chunk of first..last (both inclusive) under the run lock, then alert."""

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

    return _under_run_lock(engine, clock, work, alerts)


def _under_run_lock(
    engine: Engine, clock: Clock, work: Callable[[], RunResult], alerts: Alerts | None = None
) -> RunResult:
    """Run `work` holding the ETL run lock; if another run holds it, do nothing and say so.

    The loaded days are evaluated before the lock goes; notifications are delivered after.
    """
    with engine.connect() as lock_conn, advisory_lock(lock_conn, ETL_RUN_LOCK) as taken:
        if not taken:
            log.info("an ETL run is in progress elsewhere; this one does nothing")
            return RunResult(in_progress=True)
        _close_abandoned(engine, clock)
        result = work()
        if alerts is not None:
            result.evaluation_failed = not alerts.evaluate(
                engine, result.loaded, today=clock().date()
            )
    if alerts is not None:
        alerts.deliver(engine, clock=clock)
    return result


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
    """Load the chunks, a cluster's in order; a failed chunk stops its source for the rest of
    the run. Several clusters load at once, on threads of their own (`lane_count`)."""
    if sources.demo and chunks:
        log.warning("DEMO DATA: loading synthetic costs and usage, not a real cluster's")
    count = lane_count(engine, chunks)
    lanes = Lanes(chunks, progress or _logged, width=count)
    said: set[str] = set()

    def work() -> None:
        _load_lane(engine, sources, lanes, clock=clock, said=said)

    if count == 1:
        work()
    else:
        _in_threads(engine, count, work, clock=clock)
    if lanes.halted is not None:
        raise lanes.halted
    return lanes.result()


def lane_count(engine: Engine, chunks: list[Chunk]) -> int:
    """Clusters loaded at once: one per cluster up to CLUSTER_LANES, each with a connection
    of the engine's pool beside the run lock's."""
    clusters = len({chunk.cluster for chunk in chunks})
    size = getattr(engine.pool, "size", None)  # a pool without a bound: one at a time
    spare = size() - 1 if size is not None else 1
    return max(1, min(CLUSTER_LANES, clusters, spare))


class Lanes:
    """The run's chunks, handed out in turn to the threads that load them.

    Round robin over as many clusters as there are threads; a cluster's chunks in their
    order, never two of them at once; a chunk after a failed one of its cluster's source is
    skipped. The first error that is not a chunk's own (the database gone, SIGTERM) halts the
    hand-out.
    """

    def __init__(self, chunks: list[Chunk], progress, *, width: int) -> None:
        self._chunks = chunks
        order = _round_robin(chunks, width)
        self._turns = zip(progress(order), _tickets(order), strict=True)
        self._changed = threading.Condition()
        self._busy: set[str | None] = set()
        # Per cluster, the ticket of its chunk that may start next: two threads waiting for
        # one cluster start its chunks in their order, whichever wakes first.
        self._next: dict[str | None, int] = dict.fromkeys((c.cluster for c in chunks), 0)
        self._stopped: set[tuple[str | None, str]] = set()
        self._outcomes: dict[Chunk, BaseException | None] = {}
        self._skipped = 0
        self.halted: BaseException | None = None

    def take(self) -> Chunk | None:
        """The next chunk to load (its cluster now busy), or None when there is none."""
        with self._changed:
            while self.halted is None:
                chunk, ticket = next(self._turns, (None, None))
                if chunk is None:
                    return None
                self._changed.wait_for(self._turn_of(chunk.cluster, ticket))
                if self.halted is not None:
                    return None
                if (chunk.cluster, chunk.source) in self._stopped:
                    self._skipped += 1
                    self._next[chunk.cluster] += 1
                    self._changed.notify_all()
                    continue
                self._busy.add(chunk.cluster)
                return chunk
            return None

    def _turn_of(self, cluster: str | None, ticket: int) -> Callable[[], bool]:
        def ready() -> bool:
            if self.halted is not None:
                return True
            return cluster not in self._busy and self._next[cluster] == ticket

        return ready

    def done(self, chunk: Chunk, error: BaseException | None) -> None:
        with self._changed:
            self._outcomes[chunk] = error
            if error is not None:
                self._stopped.add((chunk.cluster, chunk.source))
            self._busy.discard(chunk.cluster)
            self._next[chunk.cluster] += 1
            self._changed.notify_all()

    def halt(self, chunk: Chunk, exc: BaseException) -> None:
        with self._changed:
            if self.halted is None:
                self.halted = exc
            self._busy.discard(chunk.cluster)
            self._changed.notify_all()

    def result(self) -> RunResult:
        """What the run did, in the chunks' order."""
        result = RunResult(skipped=self._skipped)
        for chunk in self._chunks:
            if chunk not in self._outcomes:
                continue
            error = self._outcomes[chunk]
            if error is None:
                result.succeeded += 1
                result.loaded.append(chunk)
                continue
            result.failed += 1
            result.errors.append(f"{chunk}: {error}")
            if isinstance(error, CredentialsError):
                result.credentials_problem = str(error)
        if self._stopped:
            names = sorted(
                f"{cluster} {source}" if cluster else source for cluster, source in self._stopped
            )
            log.warning("after a failed chunk, skipped the rest of: %s", ", ".join(names))
        return result


def _tickets(order: list[Chunk]) -> list[int]:
    """Each chunk's place among its cluster's chunks."""
    seen: dict[str | None, int] = {}
    tickets = []
    for chunk in order:
        tickets.append(seen.get(chunk.cluster, 0))
        seen[chunk.cluster] = tickets[-1] + 1
    return tickets


def _round_robin(chunks: list[Chunk], width: int) -> list[Chunk]:
    """The clusters `width` at a time, in their order; within those, each one's first chunk,
    then each one's second...

    A few clusters at a time, not all: the warehouse then grows cluster by cluster, as it did
    one at a time. Every cluster's costs before any usage made a first run's usage saves (on
    tables the planner had no statistics of yet) ten times slower.
    """
    by_cluster: dict[str | None, list[Chunk]] = {}
    for chunk in chunks:
        by_cluster.setdefault(chunk.cluster, []).append(chunk)
    lanes = list(by_cluster.values())
    order = []
    for start in range(0, len(lanes), width):
        rounds = itertools.zip_longest(*lanes[start : start + width])
        order += [chunk for turn in rounds for chunk in turn if chunk is not None]
    return order


def _load_lane(engine: Engine, sources: Sources, lanes: Lanes, *, clock: Clock, said) -> None:
    while (chunk := lanes.take()) is not None:
        try:
            load_chunk(engine, sources.loading(chunk), chunk, clock=clock, said=said)
        except CHUNK_ERRORS as exc:
            log.error("chunk %s failed: %s", chunk, exc)
            lanes.done(chunk, exc)
        except BaseException as exc:
            # Not the chunk's own failure: the run stops, and run_chunks raises it.
            lanes.halt(chunk, exc)
            return
        else:
            lanes.done(chunk, None)


def _in_threads(engine: Engine, count: int, work: Callable[[], None], *, clock: Clock) -> None:
    """Run `work` on `count` threads and wait for them.

    Daemon threads, like the scheduler's: when SIGTERM or Ctrl-C stops this thread, their
    chunks in flight are recorded `interrupted` and can no longer commit, and the process
    exits without waiting for their network calls.
    """
    threads = [
        threading.Thread(target=work, name=f"hubcost-lane-{i}", daemon=True) for i in range(count)
    ]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except (Terminated, KeyboardInterrupt) as exc:
        runs.interrupt_in_flight(engine, why=interruption(exc), now=clock())
        raise


def load_chunk(
    engine: Engine, source: Source, chunk: Chunk, *, clock: Clock, said: set[str] | None = None
) -> int:
    """Fetch the chunk, then replace its days and mark it succeeded in one transaction.

    Its run-log row is committed as `running` first; on any failure it is marked failed with
    a text safe to store (interrupted, on SIGTERM or Ctrl-C), and the days keep their previous
    rows.
    """
    requests = RequestCounter()
    with runs.chunk_in_flight(engine, chunk, now=clock(), requests=requests) as run_id:
        try:
            with engine.connect() as conn:
                context = source.before_fetch(conn, chunk)
            batch = source.fetch(chunk, context, now=clock(), requests=requests)
            with engine.begin() as conn:
                written = source.save(conn, chunk, batch, said=set() if said is None else said)
                runs.mark_succeeded(
                    conn, run_id, rows=written, requests=requests.count, now=clock()
                )
        except BaseException as exc:
            _record_stop(engine, run_id, exc, requests=requests.count, now=clock())
            raise
    log.info("loaded %s: %d rows, %d requests", chunk, written, requests.count)
    return written


def _record_stop(engine, run_id: int, exc: BaseException, *, requests: int, now) -> None:
    why = interruption(exc)
    if why is not None:
        runs.mark_interrupted(engine, run_id, why=why, requests=requests, now=now)
    else:
        runs.mark_failed(engine, run_id, error=_error_text(exc), requests=requests, now=now)


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, CHUNK_ERRORS):
        return str(exc)
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


class UnknownCluster(ValueError):
    """`--cluster` names a cluster no source is configured for."""


def etl_command(settings, *, cluster: str | None = None, clock: Clock = utc_now) -> int:
    """`hubcost etl [--cluster C]`: one run now for every configured source (of C)."""
    engine, sources = _edge(settings, cluster)
    try:
        result = run_etl(
            engine,
            sources,
            clock=clock,
            lookback_days=settings.lookback_days,
            initial_days=DEMO_DAYS if sources.demo else settings.initial_days,
            alerts=Alerts.from_settings(settings),
        )
    finally:
        engine.dispose()
    return _report(result, "etl")


def backfill_command(
    settings, *, first, last, source, resume, cluster: str | None = None, clock: Clock = utc_now
) -> int:
    """`hubcost backfill`: replace every chunk of first..last; non-zero exit on failure."""
    engine, sources = _edge(settings, cluster)
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
            alerts=Alerts.from_settings(settings),
        )
    finally:
        engine.dispose()
    return _report(result, "backfill")


def _edge(settings, cluster: str | None):
    from core import bootstrap
    from etl.sources.configured import configured_sources

    sources = configured_sources(settings)
    if cluster is not None:
        if cluster not in sources.clusters:
            known = ", ".join(sources.clusters) or "none"
            raise UnknownCluster(f"--cluster {cluster!r} is not a configured cluster ({known})")
        sources = sources.of_cluster(cluster)
    if not sources.active:
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
