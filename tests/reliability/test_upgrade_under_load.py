"""`hubcost migrate` from 0005 to head while `hubcost serve` answers clients: 200 or 503 only.

Real processes: the server on a port of its own, the previous release's loaded warehouse
(tests/migrations/releases.py) on the suite's PostgreSQL, three clients asking list endpoints
(JSON and CSV) and the readiness probe in a loop from before the migration starts until after
it ends. The migration runs in one transaction that holds its table locks to the end: the API's
statements wait for them, and one that waits past STATEMENT_TIMEOUT_MS answers 503. Nothing may
answer 500 or drop a connection, and once the migration has committed the same server, never
restarted, answers every request as before and reports itself ready at the new revision.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import pytest

from core import migrate
from tests.conftest import READER_ROLE
from tests.etl.prometheus_history import free_port
from tests.migrations import releases
from tests.reliability.processes import child_env, hubcost, wait_until

pytestmark = pytest.mark.slow

STATEMENT_TIMEOUT_MS = 1000
MONTH = "from=2025-12-01&to=2025-12-31"
QUERIES = (
    f"/total-costs?{MONTH}",
    f"/total-costs-per-component?{MONTH}&hub=hub-03",
    f"/costs-per-user?{MONTH}&usergroup=group-07&limit=10",
    f"/costs-per-user?{MONTH}&hub=hub-02&component=compute&format=csv",
    "/total-usage?from=2025-12-30&to=2025-12-31&hub=hub-01",
    f"/total-costs-per-group?{MONTH}",
    "/user-groups?from=2025-12-31&to=2025-12-31&hub=hub-04",
    "/users-with-multiple-groups?hub_name=hub-05",
    f"/hub-names?{MONTH}",
)
READY = "/health/ready"
UNAVAILABLE = {"database unavailable"}


@dataclass(frozen=True)
class Answer:
    path: str
    started: float
    ended: float
    status: int | None  # None: no HTTP answer at all
    body: bytes
    error: str = ""


def ask(base: str, path: str, timeout: float = 30) -> Answer:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(base + path, timeout=timeout) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    except OSError as error:
        return Answer(path, started, time.monotonic(), None, b"", repr(error))
    return Answer(path, started, time.monotonic(), status, body)


def test_requests_during_the_migration_get_200_or_503_and_the_api_serves_after_it(
    empty_database_url, tmp_path
):
    releases.build(empty_database_url, releases.RELEASES[0])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = child_env(
        tmp_path,
        DATABASE_URL=empty_database_url,
        API_DB_ROLE=READER_ROLE,
        DEMO="0",
        STATEMENT_TIMEOUT_MS=str(STATEMENT_TIMEOUT_MS),
    )
    server = hubcost(["serve", "--port", str(port)], env, tmp_path, "serve")
    answers: list[Answer] = []
    stop = threading.Event()

    def client(paths):
        while not stop.is_set():
            for path in paths:
                answers.append(ask(base, path))

    clients = [
        threading.Thread(target=client, args=(paths,), daemon=True)
        for paths in (QUERIES, QUERIES[::-1], (READY, *QUERIES[::3]))
    ]
    try:
        wait_until(lambda: ask(base, QUERIES[0], 5).status == 200, timeout=60, what="the API")
        before = {path: ask(base, path) for path in QUERIES}
        assert all(a.status == 200 and len(a.body) > 30 for a in before.values()), before
        assert ask(base, READY).status == 503  # serves the old schema, but is not ready

        for thread in clients:
            thread.start()
        time.sleep(1.0)
        migration_started = time.monotonic()
        status = hubcost(["migrate"], env, tmp_path, "migrate").wait(timeout=180)
        migration_ended = time.monotonic()
        assert status == 0, (tmp_path / "migrate.err").read_text()
        wait_until(
            lambda: (
                {a.path for a in answers if a.started > migration_ended and a.status == 200}
                >= {READY, *QUERIES}
            ),
            timeout=60,
            what="a 200 to every request after the migration",
        )
        stop.set()
        for thread in clients:
            thread.join(60)

        after = {path: ask(base, path) for path in QUERIES}
        assert {p: (a.status, a.body) for p, a in after.items()} == {
            p: (a.status, a.body) for p, a in before.items()
        }
        ready = ask(base, READY)
        assert ready.status == 200
        assert json.loads(ready.body)["schema_version"] == migrate.head_revision()
    finally:
        stop.set()
        server.signal(signal.SIGTERM)
        try:
            server.wait(30)
        finally:
            server.stop()

    dropped = [a for a in answers if a.status is None]
    assert dropped == [], dropped[:5]
    statuses = {a.status for a in answers}
    others = [(a.path, a.status, a.body[:200]) for a in answers if a.status not in (200, 503)]
    assert others == [], others[:5]
    for a in answers:
        if a.status == 503 and a.path != READY:
            assert json.loads(a.body)["detail"] in UNAVAILABLE, a.body
    during = [a for a in answers if a.started < migration_ended and a.ended > migration_started]
    assert len(during) >= 3, "no request overlapped the migration"
    log = server.stderr()  # a 500 is logged as one of these (a 503 as a warning)
    assert "unexpected error serving" not in log and "database error serving" not in log, log
    print(
        f"migration {migration_ended - migration_started:.1f} s; {len(answers)} answers, "
        f"{len(during)} during it: "
        + ", ".join(f"{s}: {sum(a.status == s for a in during)}" for s in sorted(statuses))
    )
