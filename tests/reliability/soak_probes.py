"""What a long run is watched with: a once-a-second sampler and API clients that never stop.

`Sampler` reads a process's resident memory (VmRSS of /proc/PID/status) and the number of
sessions of one database (pg_stat_activity), each second, from a thread of its own; `Clients`
are threads asking a list of paths in turn until stopped. Every call has a timeout.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import sqlalchemy as sa

from tests.reliability.test_upgrade_under_load import Answer, ask

SAMPLE_EVERY_S = 1.0


def rss_kib(pid: int) -> int | None:
    """The process's resident set in KiB; None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        return None
    return None


def sessions_of(admin_engine, database: str, *, leaving_out: str) -> dict[str, int]:
    """The database's sessions by application_name, those named `leaving_out` left out."""
    with admin_engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT application_name, count(*) FROM pg_stat_activity "
                "WHERE datname = :db AND application_name <> :out GROUP BY 1"
            ),
            {"db": database, "out": leaving_out},
        )
        return {name: count for name, count in rows}


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the sampler started
    rss_kib: int
    sessions: dict[str, int] | None  # by application_name; None: a backfill was connected

    @property
    def total_sessions(self) -> int | None:
        return None if self.sessions is None else sum(self.sessions.values())


@dataclass
class Sampler:
    """Samples `pid` and `database` each second; `others` is set while another process that
    connects to the database runs, and its session counts are left out then, as are always the
    sessions of the test's own engine (application_name `watcher`)."""

    pid: int
    admin_engine: sa.Engine
    database: str
    watcher: str
    others: threading.Event = field(default_factory=threading.Event)
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._started = time.monotonic()

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            # Read the flag on both sides of the count: a backfill may start or end meanwhile.
            quiet = not self.others.is_set()
            sessions = sessions_of(self.admin_engine, self.database, leaving_out=self.watcher)
            quiet = quiet and not self.others.is_set()
            rss = rss_kib(self.pid)
            if rss is None:
                return
            self.samples.append(
                Sample(time.monotonic() - self._started, rss, sessions if quiet else None)
            )

    def split(self, at_s: float) -> tuple[list[Sample], list[Sample]]:
        """The samples before `at_s` seconds and from then on."""
        return (
            [s for s in self.samples if s.at < at_s],
            [s for s in self.samples if s.at >= at_s],
        )


class Clients:
    """`count` threads, each asking `paths` in turn (from its own offset) until stopped.

    A 200's body is not kept (hundreds of thousands of them in a soak): `statuses` counts the
    answers by status (None: no HTTP answer), `not_ok` keeps every other answer whole.
    """

    def __init__(self, base: str, paths: tuple[str, ...], count: int, timeout_s: float):
        self._per_thread = [(Counter(), []) for _ in range(count)]
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(
                target=self._ask,
                args=(base, paths[i:] + paths[:i], timeout_s, *self._per_thread[i]),
                name=f"client-{i}",
                daemon=True,
            )
            for i in range(count)
        ]

    def _ask(self, base, paths, timeout_s, statuses: Counter, not_ok: list[Answer]) -> None:
        while not self._stop.is_set():
            for path in paths:
                answer = ask(base, path, timeout_s)
                statuses[answer.status] += 1
                if answer.status != 200:
                    not_ok.append(answer)

    @property
    def statuses(self) -> Counter:
        return sum((statuses for statuses, _ in self._per_thread), Counter())

    @property
    def not_ok(self) -> list[Answer]:
        return [answer for _, not_ok in self._per_thread for answer in not_ok]

    def __enter__(self) -> Clients:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)
