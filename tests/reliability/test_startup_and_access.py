"""Bad settings stop real processes before they touch anything; the API's token and role.

A bad setting: the command exits 2 at once with one line naming the variable, and the
database is untouched. With API_TOKEN, every route but /health/ready answers 401 to a missing
or wrong token, and the comparison is hmac.compare_digest (constant time). The running app's
own connections cannot write.
"""

from __future__ import annotations

import hmac

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from api.app import create_app
from api.endpoints import LIST_ENDPOINTS
from tests.api.conftest import api_settings
from tests.conftest import READER_ROLE
from tests.etl.prometheus_history import free_port
from tests.reliability.processes import child_env, run_hubcost
from tests.rows import select_all

BAD_SETTINGS = [
    ("etl", {"ETL_CRON": "61 * * * *"}, "ETL_CRON"),
    ("etl", {"LOOKBACK_DAYS": "-3"}, "LOOKBACK_DAYS"),
    ("etl", {"AWS_ACCESS_KEY_ID": "AKIDTEST"}, "CLUSTER_NAME"),
    (
        "etl",
        {"PROMETHEUS_URL": "http://p:9090", "PROMETHEUS_TIMEOUT_S": "soon"},
        "PROMETHEUS_TIMEOUT_S",
    ),
    ("backfill", {"INITIAL_DAYS": "0"}, "INITIAL_DAYS"),
    ("serve", {"STATEMENT_TIMEOUT_MS": "fast"}, "STATEMENT_TIMEOUT_MS"),
    ("run", {"ETL_CRON": "every day"}, "ETL_CRON"),
]


@pytest.mark.slow
def test_a_bad_setting_stops_every_command_naming_it(engine, database_url, tmp_path):
    for command, env, named in BAD_SETTINGS:
        args = [command]
        if command == "backfill":
            args += ["--from", "2026-01-01", "--to", "2026-01-02"]
        if command in ("serve", "run"):
            args += ["--port", str(free_port())]
        environment = child_env(tmp_path, DATABASE_URL=database_url, **env)
        status, err = run_hubcost(args, environment, tmp_path, command, timeout=60)
        assert status == 2, (command, env, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and named in lines[0], (command, env, err)
    with engine.connect() as conn:
        assert select_all(conn, "SELECT count(*) FROM run_log") == [(0,)]
        assert select_all(conn, "SELECT count(*) FROM cost") == [(0,)]


ROUTES = ["/", "/openapi.json", "/metrics", "/no-such-path"] + [s.path for s in LIST_ENDPOINTS]
TOKEN = "s3cret-token"


@pytest.fixture
def guarded(database_url):
    app = create_app(api_settings(API_TOKEN=TOKEN), database_url=database_url)
    with TestClient(app) as client:
        yield client


def test_every_route_but_readiness_needs_the_token(guarded, monkeypatch):
    compared = []
    real_compare_digest = hmac.compare_digest

    def spy(given, expected):
        compared.append((given, expected))
        return real_compare_digest(given, expected)

    monkeypatch.setattr("api.auth.hmac.compare_digest", spy)
    wrong = [
        {},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer s3cret-tokeN"},
        {"Authorization": "Bearer s3cret-token-and-more"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
    ]
    for path in ROUTES:
        for method in ("GET", "POST"):
            for headers in wrong:
                response = guarded.request(method, path, headers=headers)
                assert response.status_code == 401, (method, path, headers)
                assert response.json() == {"detail": "missing or wrong bearer token"}
                assert response.headers["www-authenticate"] == "Bearer"
        assert guarded.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code in (
            200,
            404,
        )
    # Every bearer credential offered went through the constant-time comparison.
    assert (b"s3cret-tokeN", TOKEN.encode()) in compared
    assert (b"s3cret-token-and-more", TOKEN.encode()) in compared
    for headers in wrong:
        assert guarded.get("/health/ready", headers=headers).status_code == 200


WRITES = (
    "INSERT INTO run_log (cluster, source, first_day, last_day, started_at, status) "
    "VALUES ('default', 'costs', now(), now(), now(), 'running')",
    "DELETE FROM cost",
    "UPDATE service_component SET component = 'other'",
    "DELETE FROM total_costs",
    "CREATE TABLE sneaky (x int)",
)


def assert_cannot_write(conn) -> None:
    for statement in WRITES:
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
            conn.execute(sa.text(statement))
        conn.rollback()


def test_the_running_app_cannot_write(guarded):
    with guarded.app.state.hubcost.connect() as conn:
        assert conn.execute(sa.text("SELECT current_user")).scalar_one() == READER_ROLE
        assert_cannot_write(conn)


def test_with_the_reader_as_the_database_user_not_even_reset_role_can_write(database_url):
    # SET ROLE can be undone by its session: with DATABASE_URL naming the owner, a session
    # that ran RESET ROLE would be the owner again. The API never sends such SQL (every value
    # is a bound parameter); a deployment that wants the role as a hard boundary gives the API
    # a DATABASE_URL whose user is the reader role itself, which this shows works.
    reader_url = sa.engine.make_url(database_url).set(username=READER_ROLE)
    app = create_app(api_settings(), database_url=reader_url.render_as_string(False))
    with TestClient(app) as client:
        assert client.get("/total-costs").status_code == 200
        assert client.get("/health/ready").status_code == 200
        with client.app.state.hubcost.connect() as conn:
            conn.execute(sa.text("RESET ROLE"))
            assert conn.execute(sa.text("SELECT session_user")).scalar_one() == READER_ROLE
            assert_cannot_write(conn)
