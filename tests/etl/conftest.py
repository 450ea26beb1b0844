"""The real Prometheus server with the deterministic history, shared by the whole session."""

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
