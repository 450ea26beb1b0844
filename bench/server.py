"""The API under test: `hubcost serve` as its own process, and its memory read from /proc."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a live process, in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


class PeakMemory:
    """Samples a process's VmHWM until stopped: the last reading before it exits is its peak."""

    def __init__(self, pid: int, interval_s: float = 0.1):
        self.pid, self.interval_s = pid, interval_s
        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak_kib = max(self.peak_kib, memory_kib(self.pid).get("VmHWM", 0))
            except (FileNotFoundError, ProcessLookupError):
                return
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class ApiServer:
    """`hubcost serve` on a free loopback port with DATABASE_URL set; stopped on exit.

    `source`, a checkout of another commit (a `git worktree`), serves that commit's code with
    this virtualenv's packages: its directory is the process's first import path. An older
    commit's /health/ready refuses the head schema (a revision it does not know), so its
    readiness is `ready_path`, a request of its own that reads the data.
    """

    def __init__(
        self,
        database_url: str,
        *,
        log_path: Path,
        env: dict | None = None,
        source: Path | None = None,
        ready_path: str = "/health/ready",
    ):
        self.ready_path = ready_path
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", **(env or {})}
        env.pop("API_TOKEN", None)
        if source is not None:
            env["PYTHONPATH"] = str(source)
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hubcost.cli", "serve", "--port", str(self.port)],
            env=env,
            cwd=source,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def __enter__(self) -> ApiServer:
        deadline = time.monotonic() + 60
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"hubcost serve exited: see {self._log.name}")
            try:
                with urllib.request.urlopen(f"{self.base}{self.ready_path}", timeout=5) as r:
                    if r.status == 200:
                        return self
            except urllib.error.HTTPError as exc:
                last = f"{exc.code} {exc.read().decode(errors='replace')}"
            except OSError as exc:
                last = str(exc)
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"hubcost serve was not ready within 60 s: {last}")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=20)
        self._log.close()
