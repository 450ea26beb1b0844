"""Figure 8 (issue 15): how long the upgrade to clusters (0006) keeps the warehouse locked.

A warehouse of the previous release: a fresh database migrated to 0005 and filled by the
generator in 0005's columns (the year of figure 1 unless told smaller). Then the upgrade to
head, run as `hubcost migrate` runs it (`core.migrate.upgrade`, one transaction), while

- a sampler reads pg_locks every 100 ms from another connection: each relation on which the
  migration holds an AccessExclusiveLock, from the first sample that shows it to the last;
- a reader, connected as the API is (`core.bootstrap.api_engine`: the read-only role, the
  default 10 s statement timeout), asks the 30-day `/total-costs` statement in a loop: how
  long it waited and how many reads the API would have answered 503.

    python -m bench.upgrade_figures [--days 365] [--hubs 50]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
import sqlalchemy as sa

from api import queries
from api.params import DateRange, Listing
from bench import generate, warehouse
from core import bootstrap, migrate
from core.database import create_engine
from core.settings import Settings

DATABASE = "hubcost_bench_upgrade"
LAST_DAY = dt.date(2026, 10, 31)
SAMPLE_S = 0.1
HELD_LOCKS = """
SELECT c.relname, n.nspname FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE l.pid = %s AND l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock' AND l.granted
"""
RUNNING = "SELECT query FROM pg_stat_activity WHERE pid = %s AND state = 'active'"


@dataclass
class LockSampler:
    """Which relations a backend holds exclusively, sampled until stopped."""

    url: str
    pid: int
    held: dict[str, list[float]] = field(default_factory=dict)  # relation -> [first, last]
    # The statement running at each sample: about SAMPLE_S of the migration's time each.
    statements: dict[str, int] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                now = time.monotonic()
                for name, schema in conn.execute(HELD_LOCKS, (self.pid,)):
                    seen = self.held.setdefault(f"{schema}.{name}", [now, now])
                    seen[1] = now
                for (query,) in conn.execute(RUNNING, (self.pid,)):
                    statement = " ".join(query.split())[:60]
                    self.statements[statement] = self.statements.get(statement, 0) + 1
                time.sleep(SAMPLE_S)


@dataclass
class Reader:
    """The API's 30-day /total-costs read, over and over: (started, seconds, ok)."""

    engine: sa.engine.Engine
    reads: list[tuple[float, float, bool]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        listing = Listing(days=DateRange(LAST_DAY - dt.timedelta(days=29), LAST_DAY))
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                with self.engine.connect() as conn:
                    queries.run_json(conn, queries.total_costs(listing))
                ok = True
            except sa.exc.OperationalError:  # the statement timeout: a 503 from the API
                ok = False
            self.reads.append((started, time.monotonic() - started, ok))
            time.sleep(0.05)


class RevisionTimes(logging.Handler):
    """When Alembic starts each revision ("Running upgrade 0005 -> 0006, ...")."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.started: list[tuple[float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Running upgrade"):
            self.started.append((time.monotonic(), message.split(",")[0].removeprefix("Running ")))


def build_previous_release(url: str, *, days: int, hubs: int) -> dict:
    engine = create_engine(url, pool_size=1)
    try:
        migrate.upgrade(engine, api_db_role=warehouse.READER_ROLE, revision="0005")
    finally:
        engine.dispose()
    users = hubs * generate.USERS_PER_HUB
    active = generate.ACTIVE_PER_DAY * users // (len(generate.HUBS) * generate.USERS_PER_HUB)
    return generate.generate(
        url, days=days, end=LAST_DAY, hubs=hubs, active_per_day=active, cluster_column=False
    )


def migration_pid(url: str, application_name: str) -> int | None:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = %s AND pid <> pg_backend_pid()",
            (application_name,),
        ).fetchone()
    return row[0] if row else None


def figures(url: str, *, days: int = 365, hubs: int = len(generate.HUBS)) -> dict:
    """Build the previous release's warehouse in the empty database `url`, then upgrade it."""
    url = warehouse.plain(url)
    built = build_previous_release(url, days=days, hubs=hubs)
    sizes = _sizes(url)
    with reading(url) as reader:
        time.sleep(1.0)  # a few reads of the old schema first
        watched = watched_upgrade(url)
        time.sleep(2.0)  # and of the new one
    return {
        "days": days,
        "hubs": hubs,
        "rows": sizes,
        "generated": built,
        "revision": watched["revision"],
        **_timings(
            watched["started"],
            watched["ended"],
            watched["held"],
            watched["revisions"],
            reader.reads,
        ),
        "statements_s": _statement_seconds(watched["statements"]),
    }


@contextlib.contextmanager
def reading(url: str) -> Iterator[Reader]:
    settings = Settings.from_env({"API_DB_ROLE": warehouse.READER_ROLE})
    reader = Reader(bootstrap.api_engine(settings, url=url))
    thread = threading.Thread(target=reader.run, daemon=True)
    thread.start()
    try:
        yield reader
    finally:
        reader.stop.set()
        thread.join()
        reader.engine.dispose()


def watched_upgrade(url: str) -> dict:
    """The upgrade to head in a thread, its backend's locks and statements sampled meanwhile."""
    name = "hubcost-bench-migrate"
    engine = create_engine(url, pool_size=1, application_name=name)
    revisions = RevisionTimes()
    alembic_log = logging.getLogger("alembic.runtime.migration")
    alembic_log.addHandler(revisions)
    alembic_log.setLevel(logging.INFO)
    outcome: dict = {}

    def run_migration():
        outcome["revision"] = migrate.upgrade(engine, api_db_role=warehouse.READER_ROLE)

    migration = threading.Thread(target=run_migration)
    sampler = None
    try:
        started = time.monotonic()
        migration.start()
        pid = None
        while pid is None and migration.is_alive():
            pid = migration_pid(url, name)
            time.sleep(0.01)
        sampler = LockSampler(url, pid)
        sampling = threading.Thread(target=sampler.run, daemon=True)
        sampling.start()
        migration.join()
        ended = time.monotonic()
        sampler.stop.set()
        sampling.join()
    finally:
        migration.join()
        engine.dispose()
        alembic_log.removeHandler(revisions)
    return {
        "revision": outcome.get("revision"),
        "started": started,
        "ended": ended,
        "held": sampler.held,
        "statements": sampler.statements,
        "revisions": revisions.started,
    }


def _statement_seconds(samples: dict[str, int]) -> dict[str, float]:
    """The statements seen in at least 1 s of samples, longest first, in seconds."""
    seconds = {statement: n * SAMPLE_S for statement, n in samples.items() if n * SAMPLE_S >= 1}
    return dict(sorted(seconds.items(), key=lambda item: -item[1]))


def _timings(started, ended, held, revisions, reads) -> dict:
    first_lock = min((first for first, _ in held.values()), default=ended)
    holds = {name: last - first for name, (first, last) in held.items()}
    longest = max(holds, key=holds.get) if holds else None
    steps = [(at, label) for at, label in revisions] + [(ended, "commit")]
    during = [r for r in reads if r[0] + r[1] > first_lock and r[0] < ended]
    return {
        "wall_s": ended - started,
        "locked_s": ended - first_lock,
        "relations_locked": len(held),
        "longest_lock": {"relation": longest, "seconds": holds.get(longest, 0.0)},
        "revisions_s": {
            label: next_at - at for (at, label), (next_at, _) in zip(steps, steps[1:], strict=False)
        },
        "reads_before_ms": _median_ms([r for r in reads if r[0] + r[1] < started]),
        "reads_after_ms": _median_ms([r for r in reads if r[0] > ended]),
        "reads_during": len(during),
        "reads_timed_out": sum(not ok for _, _, ok in during),
        "longest_read_s": max((r[1] for r in reads), default=0.0),
        "no_answer_s": _longest_gap(reads),
    }


def _longest_gap(reads) -> float:
    """The longest time between two successful reads' ends: how long the API answered none."""
    ends = sorted(started + seconds for started, seconds, ok in reads if ok)
    return max((b - a for a, b in zip(ends, ends[1:], strict=False)), default=0.0)


def _median_ms(reads) -> float | None:
    times = sorted(seconds for _, seconds, ok in reads if ok)
    return round(times[len(times) // 2] * 1000, 1) if times else None


def _sizes(url: str) -> dict:
    with psycopg.connect(url) as conn:
        return dict(
            conn.execute(
                "SELECT 'cost', count(*) FROM cost UNION ALL SELECT 'usage', count(*) FROM usage "
                "UNION ALL SELECT 'user_group_snapshot', count(*) FROM user_group_snapshot"
            ).fetchall()
        )


def report(f: dict) -> list[str]:
    revisions = ", ".join(f"{label} {s:.1f} s" for label, s in f["revisions_s"].items())
    longest = f["longest_lock"]
    return [
        f"\n8. the upgrade from 0005 to {f['revision']} on {f['days']} days x {f['hubs']} hubs "
        f"(rows {f['rows']}; built at 0005 in {f['generated']['seconds']:.0f} s)",
        f"   wall time {f['wall_s']:.1f} s; AccessExclusiveLock held on {f['relations_locked']} "
        f"relations for {f['locked_s']:.1f} s (longest sampled: {longest['relation']}, "
        f"{longest['seconds']:.1f} s); by revision: {revisions}",
        f"   the API's 30-day /total-costs read: {f['reads_before_ms']} ms before, "
        f"{f['reads_after_ms']} ms after; {f['reads_during']} reads during the locks, "
        f"{f['reads_timed_out']} of them past the 10 s statement timeout (503); no read "
        f"answered for {f['no_answer_s']:.1f} s",
        "   longest statements (sampled): "
        + "; ".join(f"{s:.0f} s {statement}" for statement, s in f["statements_s"].items()),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--hubs", type=int, default=len(generate.HUBS))
    args = parser.parse_args()
    result = figures(warehouse.recreate_database(DATABASE), days=args.days, hubs=args.hubs)
    print(json.dumps(result, indent=2, default=str))
    print("\n".join(report(result)))


if __name__ == "__main__":
    main()
