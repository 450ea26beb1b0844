"""A PostgreSQL cluster of the test's own, to stop and start at will.

Never the machine's shared server nor the suite's embedded one: initdb into a fresh temporary
directory, a free TCP port on 127.0.0.1, trust authentication. The binaries are pgserver's
when installed, else the newest of /usr/lib/postgresql/*/bin. As root, the cluster runs as an
unprivileged user (PostgreSQL refuses root).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.etl.prometheus_history import free_port

UNPRIVILEGED_USERS = ("pgserver", "postgres", "nobody")


def binaries() -> Path | None:
    # Found without importing pgserver, whose import starts nothing but warns under root.
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.submodule_search_locations:
        bundled = Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"
        if (bundled / "pg_ctl").exists():
            return bundled
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: p.parent)
    return debian[-1].parent if debian else None


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in UNPRIVILEGED_USERS:
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and no unprivileged user to run PostgreSQL as")


class ThrowawayPostgres:
    def __init__(self) -> None:
        bin_dir = binaries()
        if bin_dir is None:
            raise RuntimeError("no PostgreSQL binaries (pgserver or Debian's postgresql)")
        self.bin = bin_dir
        self.user = _run_as()
        self.root = Path(tempfile.mkdtemp(prefix="hubcost-throwaway-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._pg("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _pg(self, program: str, *args: str, timeout: float = 60) -> None:
        subprocess.run(
            [str(self.bin / program), *args],
            check=True,
            capture_output=True,
            timeout=timeout,
            user=self.user,
            cwd=self.root,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        log = str(self.root / "server.log")
        self._pg("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.root, ignore_errors=True)
