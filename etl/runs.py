"""The run log: one row per chunk (docs/attribution.md §7.1).

A chunk's row is inserted as `running` and committed on its own, so a killed process leaves a
visible trace; `mark_succeeded` runs inside the transaction that replaces the chunk's data, so
the data and its `succeeded` mark commit together; `mark_failed` records the error and
`mark_interrupted` a stop (SIGTERM, Ctrl-C). A row leaves `running` once only: every mark
changes a row still `running`, and a chunk whose row is no longer `running` when it would
commit rolls back instead (`interrupt_in_flight` gave it up).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from core.schema import run_log, source
from etl.sources.base import RequestCounter
from etl.stopping import Terminated
from etl.windows import Chunk

MAX_ERROR_CHARS = 2000
ABANDONED = "abandoned: its process stopped before finishing; its days were left as they were"


class _InFlight:
    """This process's chunks between their `running` row and its final mark, and whether the
    process is stopping (then no chunk starts). Shared by the threads of one process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: dict[int, RequestCounter] = {}
        self.stopping = False


_IN_FLIGHT = _InFlight()


@contextmanager
def chunk_in_flight(
    engine: Engine, chunk: Chunk, *, now: dt.datetime, requests: RequestCounter
) -> Iterator[int]:
    """The chunk's `running` row (its id) while the block loads it; refused once stopping."""
    with _IN_FLIGHT.lock:
        if _IN_FLIGHT.stopping:
            raise Terminated()
        run_id = start_chunk(engine, chunk, now=now)
        _IN_FLIGHT.requests[run_id] = requests
    try:
        yield run_id
    finally:
        with _IN_FLIGHT.lock:
            _IN_FLIGHT.requests.pop(run_id, None)


def start_chunk(engine: Engine, chunk: Chunk, *, now: dt.datetime) -> int:
    """Insert the chunk's row as `running` in its own transaction; return its id."""
    with engine.begin() as conn:
        # A source registered in the code is known to the warehouse from its first chunk on.
        conn.execute(postgresql.insert(source).values(name=chunk.source).on_conflict_do_nothing())
        return conn.execute(
            sa.insert(run_log)
            .values(
                cluster=chunk.cluster,
                source=chunk.source,
                first_day=chunk.first,
                last_day=chunk.last,
                started_at=now,
                status="running",
            )
            .returning(run_log.c.id)
        ).scalar_one()


def _still_running(run_id: int):
    return sa.update(run_log).where(run_log.c.id == run_id, run_log.c.status == "running")


def mark_succeeded(
    conn: Connection, run_id: int, *, rows: int, requests: int, now: dt.datetime
) -> None:
    """Mark the chunk succeeded, inside the caller's data transaction.

    Raises `Terminated` if the row is no longer `running`: the process is stopping and has
    recorded the chunk interrupted, so its data must roll back.
    """
    marked = conn.execute(
        _still_running(run_id).values(
            status="succeeded", finished_at=now, rows=rows, requests=requests, error=None
        )
    ).rowcount
    if marked != 1:
        raise Terminated()


def mark_failed(
    engine: Engine, run_id: int, *, error: str, requests: int, now: dt.datetime
) -> None:
    """Record the failure in its own transaction (the data transaction was rolled back)."""
    with engine.begin() as conn:
        conn.execute(
            _still_running(run_id).values(
                status="failed", finished_at=now, requests=requests, error=error[:MAX_ERROR_CHARS]
            )
        )


def mark_interrupted(
    engine: Engine, run_id: int, *, why: str, requests: int, now: dt.datetime
) -> bool:
    """Record the stop in its own transaction; False if the row was no longer `running`."""
    with engine.begin() as conn:
        return (
            conn.execute(
                _still_running(run_id).values(
                    status="interrupted", finished_at=now, requests=requests, error=why
                )
            ).rowcount
            == 1
        )


def interrupt_in_flight(engine: Engine, *, why: str, now: dt.datetime) -> int:
    """Give up this process's chunks in flight, for a process about to exit; return how many.

    No chunk starts from now on, and each in flight is marked `interrupted` with `why` (and
    the requests it made so far). The thread loading it may carry on until the process exits,
    but its data never commits: `mark_succeeded` finds its row no longer `running`.
    """
    with _IN_FLIGHT.lock:
        _IN_FLIGHT.stopping = True
        in_flight = {run_id: counter.count for run_id, counter in _IN_FLIGHT.requests.items()}
    return sum(
        mark_interrupted(engine, run_id, why=why, requests=requests, now=now)
        for run_id, requests in in_flight.items()
    )


def close_abandoned(engine: Engine, *, now: dt.datetime) -> int:
    """Mark every `running` row failed; return how many.

    Call only while holding the run lock: then no chunk is in flight anywhere, and a row still
    `running` was left by a process that was killed (its data transaction never committed).
    """
    with engine.begin() as conn:
        return conn.execute(
            sa.update(run_log)
            .where(run_log.c.status == "running")
            .values(status="failed", finished_at=now, error=ABANDONED)
        ).rowcount


def last_loaded_day(conn: Connection, cluster: str, source: str) -> dt.date | None:
    """The latest day covered by a succeeded chunk of the cluster's source (None: none yet)."""
    return conn.execute(
        sa.select(sa.func.max(run_log.c.last_day)).where(
            run_log.c.cluster == cluster,
            run_log.c.source == source,
            run_log.c.status == "succeeded",
        )
    ).scalar_one()


def succeeded_chunks(
    conn: Connection, cluster: str, source: str, first: dt.date, last: dt.date
) -> set[tuple[dt.date, dt.date]]:
    """(first_day, last_day) of the cluster's source's succeeded chunks inside the window."""
    rows = conn.execute(
        sa.select(run_log.c.first_day, run_log.c.last_day)
        .where(
            run_log.c.cluster == cluster,
            run_log.c.source == source,
            run_log.c.status == "succeeded",
            run_log.c.first_day >= first,
            run_log.c.last_day <= last,
        )
        .distinct()
    )
    return {(r.first_day, r.last_day) for r in rows}
