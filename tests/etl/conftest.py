"""Fixtures of the ETL tests: the real Prometheus (one per session) and a clean CLI environment."""

import logging

import pytest

from tests.etl import prometheus_history
from tests.isolated_env import MACHINE_SETTINGS, isolation


@pytest.fixture(scope="session")
def prometheus_url(tmp_path_factory):
    reason = prometheus_history.binaries_missing()
    if reason:
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp("prometheus")
    tsdb = workdir / "tsdb"
    tsdb.mkdir()
    prometheus_history.write_history(tsdb, workdir)
    process, url = prometheus_history.start_server(tsdb, workdir)
    yield url
    process.terminate()
    try:
        process.wait(timeout=20)
    except Exception:
        process.kill()
        process.wait(timeout=20)


@pytest.fixture
def cli_env(monkeypatch, database_url, tmp_path):
    for name in MACHINE_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    for name, value in isolation(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATABASE_URL", database_url)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield monkeypatch
    # cli.main installs its own handler on the root logger; give pytest its own back.
    root.handlers[:] = handlers
    root.setLevel(level)
