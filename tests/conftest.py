"""Test databases: real PostgreSQL, each one fresh and built by the Alembic migrations.

The server is, in order: TEST_DATABASE_URL (a server where we may create databases), the
embedded pgserver under var/, or a testcontainers PostgreSQL when a Docker engine answers.
A session migrates one template database with the real migrations; each test that needs a
database gets a fresh copy of it (CREATE DATABASE ... TEMPLATE), dropped afterwards.
"""

from __future__ import annotations

import itertools
import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from core import migrate
from core.database import create_engine

ROOT = Path(__file__).resolve().parent.parent
READER_ROLE = "hubcost_reader"
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    # Under CI a component that is missing must fail the run, not vanish as a skip.
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which forbids skips: {report.longrepr}"
    return report


def _embedded_admin_url() -> str | None:
    try:
        from core.embedded import embedded_database_url
    except ImportError:
        return None
    try:
        return embedded_database_url(ROOT / "var" / "test-pgdata")
    except Exception as exc:  # reported below with the other ways tried
        pytest.exit(f"embedded PostgreSQL failed to start: {exc}", returncode=3)


def _container_admin_url():
    try:
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:16", driver="psycopg")
        container.start()
    except Exception:
        return None, None
    return container.get_connection_url(), container


@pytest.fixture(scope="session")
def admin_url():
    """A URL on a server where the tests may create and drop databases."""
    url = os.environ.get("TEST_DATABASE_URL")
    container = None
    if not url:
        url = _embedded_admin_url()
    if not url:
        url, container = _container_admin_url()
    if not url:
        pytest.exit(
            "no PostgreSQL for the tests: set TEST_DATABASE_URL, install pgserver "
            "(Python < 3.13) or run a Docker engine",
            returncode=3,
        )
    yield str(sa.engine.make_url(url).set(drivername="postgresql+psycopg").render_as_string(False))
    if container is not None:
        container.stop()


@pytest.fixture(scope="session")
def admin_engine(admin_url):
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


def _url_for(admin_url: str, database: str) -> str:
    return sa.engine.make_url(admin_url).set(database=database).render_as_string(False)


_session_tag = uuid.uuid4().hex[:8]
_counter = itertools.count()


@pytest.fixture(scope="session")
def template_database(admin_engine, admin_url):
    """The session's template: an empty database brought to head by the migrations."""
    name = f"hubcost_test_{_session_tag}_template"
    with admin_engine.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(_url_for(admin_url, name), pool_size=1)
    try:
        migrate.upgrade(engine, api_db_role=READER_ROLE)
    finally:
        engine.dispose()
    yield name
    with admin_engine.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def empty_database_url(admin_engine, admin_url):
    """A fresh database with nothing in it (for the migration tests)."""
    name = f"hubcost_test_{_session_tag}_{next(_counter)}"
    with admin_engine.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield _url_for(admin_url, name)
    with admin_engine.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def database_url(admin_engine, admin_url, template_database):
    """A fresh database at the migrations' head, for one test."""
    name = f"hubcost_test_{_session_tag}_{next(_counter)}"
    with admin_engine.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"'))
    yield _url_for(admin_url, name)
    with admin_engine.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def engine(database_url):
    engine = create_engine(database_url, pool_size=2)
    yield engine
    engine.dispose()


@pytest.fixture
def conn(engine):
    with engine.connect() as connection:
        yield connection
