"""The embedded server's backup and restore, by the very commands of docs/operations.md.

Real processes and the embedded PostgreSQL (pgserver) under two data directories of the
test's own: the first loaded by `hubcost migrate` and a demo backfill, dumped by the guide's
backup block while `hubcost serve` runs on it; the second started empty by `hubcost serve`
and filled by the guide's restore block. `hubcost migrate` then finds nothing to do, and the
second server answers every list endpoint in every form as the first did.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

from api.endpoints import FRESHNESS_HEADER
from tests.conftest import ROOT
from tests.etl.prometheus_history import free_port
from tests.migrations.answers import Answer, differences, requests
from tests.reliability.processes import child_env, hubcost, run_hubcost, wait_until

pytestmark = pytest.mark.slow

GUIDE = ROOT / "docs" / "operations.md"
EXAMPLE_DUMP = "hubcost-2026-12-02.dump"


def guide_block(marker: str) -> str:
    """The guide's sh block that contains `marker`."""
    blocks = re.findall(r"^```sh\n(.*?)^```$", GUIDE.read_text(), re.MULTILINE | re.DOTALL)
    (block,) = [b for b in blocks if marker in b]
    return block


def run_block(script: str, env: dict, cwd: Path) -> None:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr


def get(url: str) -> Answer:
    url = urllib.parse.quote(url, safe=":/?&=%{},")  # the forms' spaces ("home storage")
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return _answer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return _answer(error.code, error.headers, error.read())


def _answer(status, headers, body) -> Answer:
    return status, headers.get("content-type", ""), headers.get(FRESHNESS_HEADER), body


def listening(url: str) -> bool:
    try:
        get(url)
        return True
    except OSError:
        return False


class Serving:
    """`hubcost serve` on the embedded server of `env`, stopped (and the server with it) on exit."""

    def __init__(self, env, tmp_path, name):
        self.base = f"http://127.0.0.1:{free_port()}"
        port = self.base.rsplit(":", 1)[1]
        self.process = hubcost(["serve", "--port", port], env, tmp_path, name)

    def __enter__(self):
        wait_until(lambda: listening(self.base + "/"), timeout=120, what="hubcost serve")
        return self

    def answers(self) -> dict:
        return {url: get(self.base + url) for url in requests()}

    def __exit__(self, *exc):
        self.process.signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        finally:
            self.process.stop()


@pytest.fixture
def data_dirs():
    # Inside the project, as core.embedded asks: pgserver run as root opens the parents up.
    dirs = [ROOT / "var" / f"test-backup-{uuid.uuid4().hex[:8]}-{side}" for side in "ab"]
    yield dirs
    for path in dirs:
        shutil.rmtree(path, ignore_errors=True)


def test_the_guides_embedded_backup_restores_into_a_new_embedded_server(data_dirs, tmp_path):
    original, restored = data_dirs
    # sbin too: pgserver run as root adds its system user with useradd when it is missing.
    path = f"{Path(sys.executable).parent}:/usr/bin:/bin:/usr/sbin:/sbin"
    env_a = child_env(tmp_path, HUBCOST_DATA_DIR=str(original), PATH=path)
    env_b = child_env(tmp_path, HUBCOST_DATA_DIR=str(restored), PATH=path)
    for args in (["migrate"], ["backfill", "--from", "2025-12-20", "--to", "2026-01-10"]):
        status, err = run_hubcost(args, env_a, tmp_path, args[0])
        assert status == 0, err

    backup = guide_block('"$PGBIN/pg_dump"')
    with Serving(env_a, tmp_path, "serve-a") as served:
        before = served.answers()
        run_block(backup, env_a, tmp_path)
    (dump,) = tmp_path.glob("hubcost-*.dump")

    locate = "\n".join(
        line for line in backup.splitlines() if line.startswith(("PGBIN=", "SOCKET="))
    )
    restore = guide_block('"$PGBIN/pg_restore"').replace(EXAMPLE_DUMP, dump.name)
    with Serving(env_b, tmp_path, "serve-b"):
        run_block(locate + "\n" + restore, env_b, tmp_path)
    status, err = run_hubcost(["migrate"], env_b, tmp_path, "migrate-b")
    assert status == 0 and "migrated the database" not in err, err
    with Serving(env_b, tmp_path, "serve-b-again") as served:
        after = served.answers()
    assert sum(status == 200 and len(body) > 100 for status, *_, body in before.values()) > 100
    assert differences(before, after) == []
