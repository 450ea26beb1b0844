"""Real `hubcost` processes for the fault tests, and bounded waits on what they do.

Every wait has a deadline; a process a test starts is killed at the end whatever happened.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from tests.conftest import ROOT
from tests.isolated_env import MACHINE_SETTINGS, isolation


def child_env(tmp_path: Path, **env: str) -> dict[str, str]:
    """A clean environment for a child `hubcost`: no credentials of the machine's."""
    base = {k: v for k, v in os.environ.items() if k not in MACHINE_SETTINGS}
    base.update(isolation(tmp_path), PYTHONUNBUFFERED="1")
    base.update(env)
    return base


class Hubcost:
    """One `hubcost ...` child process; its stdout and stderr go to files under tmp_path."""

    def __init__(self, args: list[str], env: dict[str, str], tmp_path: Path, name: str):
        self.out = tmp_path / f"{name}.out"
        self.err = tmp_path / f"{name}.err"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hubcost.cli", *args],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=err,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")


def hubcost(args, env, tmp_path, name="hubcost") -> Hubcost:
    return Hubcost(list(args), env, tmp_path, name)


def run_hubcost(args, env, tmp_path, name="hubcost", timeout: float = 120) -> tuple[int, str]:
    """Run to completion; (exit status, stderr)."""
    child = hubcost(args, env, tmp_path, name)
    try:
        status = child.wait(timeout)
    finally:
        child.stop()
    return status, child.stderr()


def wait_until(condition: Callable[[], object], *, timeout: float, what: str, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def backends_waiting_on_a_lock(engine, database: str) -> int:
    """How many sessions of `database` wait on a heavyweight lock (a row or table lock)."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = :db AND wait_event_type = 'Lock'"
            ),
            {"db": database},
        ).scalar_one()


def sessions_at_work(engine, database: str) -> int:
    """Sessions of `database` running a statement or a transaction, or holding an advisory
    lock: what a killed or stopped process leaves until the server notices it is gone.
    Idle pooled connections (the test's own) do not count."""
    with engine.connect() as conn:
        return conn.execute(
            sa.text(
                """SELECT count(*) FROM pg_stat_activity a
                   WHERE a.datname = :db AND a.pid <> pg_backend_pid()
                     AND (a.state <> 'idle' OR EXISTS (
                          SELECT FROM pg_locks l
                          WHERE l.pid = a.pid AND l.locktype = 'advisory'))"""
            ),
            {"db": database},
        ).scalar_one()
