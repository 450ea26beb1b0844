"""Fixtures of the ETL tests: the real Prometheus (one per session) and a clean CLI environment."""

import logging

import pytest

from tests.etl import prometheus_history


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


ENV_TO_CLEAR = (
    "CLUSTER_NAME",
    "PROMETHEUS_URL",
    "DEMO",
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "LOG_FORMAT",
)


@pytest.fixture
def cli_env(monkeypatch, database_url, tmp_path):
    for name in ENV_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("LOG_LEVEL", "INFO")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield monkeypatch
    # cli.main installs its own handler on the root logger; give pytest its own back.
    root.handlers[:] = handlers
    root.setLevel(level)
