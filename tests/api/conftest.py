"""The API under test: a TestClient (lifespan run) on a fresh migrated database, as the reader.

Rows are written by the database owner (`engine`, from the top-level conftest); the app reads
them through its own engine, whose connections drop to the read-only role. The clock is fixed
so that defaults (`to` = today) are deterministic.
"""

from __future__ import annotations

import datetime as dt

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from api.metrics import ApiMetrics
from core.settings import Settings
from tests.conftest import READER_ROLE

NOW = dt.datetime(2026, 1, 10, 12, 0, tzinfo=dt.UTC)


def fixed_clock() -> dt.datetime:
    return NOW


def api_settings(**env: str) -> Settings:
    settings = Settings.from_env({"API_DB_ROLE": READER_ROLE, **env})
    assert settings.api_db_role == READER_ROLE
    return settings


@pytest.fixture
def make_client(database_url):
    """A factory: make_client(API_TOKEN=...) → a started TestClient (closed after the test)."""
    clients = []

    def make(*, clock=fixed_clock, raise_server_exceptions=True, **env) -> TestClient:
        app = create_app(
            api_settings(**env), database_url=database_url, clock=clock, metrics=ApiMetrics()
        )
        client = TestClient(app, raise_server_exceptions=raise_server_exceptions)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in reversed(clients):
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client) -> TestClient:
    return make_client()


@pytest.fixture
def load(engine):
    """A connection as the database owner; what a test writes is committed on exit."""
    with engine.begin() as connection:
        yield connection
