"""The wheel is the product: built from the repository's files, installed into a fresh
virtualenv outside it, every command runs from a working directory that is not a checkout.

Slow (a real `pip install` of the wheel and its dependencies, about 20-60 s), never skipped.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.etl.prometheus_history import free_port
from tests.isolated_env import MACHINE_SETTINGS, isolation
from tests.packaging.wheel_commands import BUILD_WHEEL, INSTALL_WHEEL

pytestmark = pytest.mark.slow


def _run(argv, *, cwd, env=None, timeout=600) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def _fill(command, python, **values) -> list[str]:
    return [python if part == "python" else part.format(**values) for part in command]


def _sources(destination: Path) -> Path:
    """The files `git clone` would give (tracked, or new and not ignored): no build/, no var/."""
    listed = _run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT
    ).stdout
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin/ of a fresh virtualenv holding the wheel built from this repository."""
    work = tmp_path_factory.mktemp("wheel")
    source = _sources(work / "source")
    wheels = work / "wheels"
    _run(_fill(BUILD_WHEEL, sys.executable, wheels=wheels, source=source), cwd=work)
    [wheel] = wheels.glob("hubcost-*.whl")
    _run([sys.executable, "-m", "venv", work / "venv"], cwd=work)
    python = str(work / "venv" / "bin" / "python")
    _run(_fill(INSTALL_WHEEL, python, wheel=wheel), cwd=work)
    return work / "venv" / "bin"


def _env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in MACHINE_SETTINGS}
    env.pop("PYTHONPATH", None)
    env.update(isolation(tmp_path), PYTHONUNBUFFERED="1", **settings)
    return env


def _get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _wait_ready(base: str, process: subprocess.Popen, *, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"hubcost exited {process.returncode}"
        try:
            if _get(f"{base}/health/ready", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{base}/health/ready not 200 within {timeout} s")


class _Server:
    """`hubcost serve|run` from the installed wheel, stopped with SIGTERM at the end."""

    def __init__(self, bin_dir: Path, args: list[str], *, cwd: Path, env: dict[str, str]):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = cwd / f"{args[0]}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [bin_dir / "hubcost", *args, "--port", str(self.port)],
                cwd=cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def __enter__(self):
        try:
            _wait_ready(self.base, self.process)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def json(self, path: str):
        status, body = _get(self.base + path)
        assert status == 200, (path, status, body[:500])
        return json.loads(body)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def test_the_installed_wheel_migrates_loads_and_serves_from_anywhere(
    installed, empty_database_url, tmp_path
):
    site_packages = next((installed.parent / "lib").glob("python3*/site-packages"))
    assert not (site_packages / "tests").exists()
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = _env(tmp_path, DATABASE_URL=empty_database_url)
    hubcost = installed / "hubcost"

    migrated = _run([hubcost, "migrate"], cwd=cwd, env=env)
    assert "at revision" in migrated.stderr

    with _Server(installed, ["serve"], cwd=cwd, env=env) as server:
        assert server.json("/hub-names") == []
        today = dt.datetime.now(dt.UTC).date()
        first = (today - dt.timedelta(days=3)).isoformat()
        _run(
            [hubcost, "backfill", "--from", first, "--to", today.isoformat()],
            cwd=cwd,
            env=env | {"DEMO": "1"},
        )
        _run([hubcost, "etl"], cwd=cwd, env=env | {"DEMO": "1"})
        assert server.json("/hub-names") == ["prod", "staging", "support", "workshop"]
        installed_costs = server.json(f"/total-costs?from={first}")
    assert installed_costs and all(row["cost"] > 0 for row in installed_costs)
    assert installed_costs == _checkout_answer(empty_database_url, f"/total-costs?from={first}")
    assert not list(site_packages.glob("**/pgdata"))


def _checkout_answer(database_url: str, path: str):
    """The same request answered by this checkout's app in-process, on the same database."""
    from starlette.testclient import TestClient

    from api.app import create_app
    from tests.api.conftest import api_settings

    with TestClient(create_app(api_settings(), database_url=database_url)) as client:
        answer = client.get(path)
    assert answer.status_code == 200
    return answer.json()


def test_the_installed_wheel_runs_on_its_embedded_database_in_the_user_data_dir(
    installed, tmp_path
):
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    data_home = tmp_path / "xdg-data"
    env = _env(tmp_path, XDG_DATA_HOME=str(data_home))
    del env["HUBCOST_DATA_DIR"]  # the default: the per-user data directory

    with _Server(installed, ["run"], cwd=cwd, env=env) as server:
        deadline = time.monotonic() + 60
        while not server.json("/hub-names") and time.monotonic() < deadline:
            time.sleep(0.5)
        assert server.json("/hub-names") == ["prod", "staging", "support", "workshop"]
    assert server.process.returncode == 143, server.output()  # stopped by SIGTERM, cleanly
    assert (data_home / "hubcost" / "pgdata" / "PG_VERSION").is_file()
    assert not (data_home / "hubcost" / "pgdata" / "postmaster.pid").exists()  # it was stopped
    assert not (cwd / "var").exists()
