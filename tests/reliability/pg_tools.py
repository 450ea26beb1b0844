"""PostgreSQL's own client programs (pg_dump, pg_restore) of the tests' server's major version.

pg_dump refuses a server newer than itself, and an archive is best restored by the same
version: the programs come from the installation of the server's major version, the embedded
pgserver's own `pginstall/bin` or Debian's /usr/lib/postgresql/<major>/bin.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path

import sqlalchemy as sa


def server_major(engine: sa.engine.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SHOW server_version_num")).scalar_one()) // 10000


def _candidates() -> list[Path]:
    found = []
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.submodule_search_locations:
        found.append(Path(spec.submodule_search_locations[0]) / "pginstall" / "bin")
    found += sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    return [path for path in found if (path / "pg_dump").exists()]


def _major_of(bin_dir: Path) -> int:
    version = subprocess.run(
        [str(bin_dir / "pg_dump"), "--version"], capture_output=True, text=True, timeout=30
    ).stdout
    return int(re.search(r"\) (\d+)", version).group(1))


def client_bin_dir(major: int) -> Path:
    for bin_dir in _candidates():
        if _major_of(bin_dir) == major:
            return bin_dir
    raise RuntimeError(
        f"no pg_dump of PostgreSQL {major} (looked in {[str(p) for p in _candidates()]})"
    )


def libpq_url(url: str) -> str:
    """The URL as libpq's programs take it (no SQLAlchemy driver name)."""
    return sa.engine.make_url(url).set(drivername="postgresql").render_as_string(False)


def run(bin_dir: Path, program: str, *args: str, timeout: float = 300) -> str:
    """Run one of the programs; its stdout. A failure raises with its stderr."""
    done = subprocess.run(
        [str(bin_dir / program), *args], capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise AssertionError(f"{program} exited {done.returncode}: {done.stderr}")
    return done.stdout
