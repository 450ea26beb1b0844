"""The embedded PostgreSQL (pgserver) used when DATABASE_URL is not set."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from urllib.parse import quote

_servers: dict[Path, object] = {}


class EmbeddedUnavailable(RuntimeError):
    pass


def embedded_database_url(data_dir: Path, database: str = "postgres") -> str:
    """Start (or reuse) the embedded server whose data lives in data_dir; return its URL.

    pgserver, run as root, creates an OS user and opens up the permissions of the data
    directory's parents; keeping the data directory inside the project (var/) confines that.
    """
    server = start_embedded_server(data_dir)
    socket_dir = server.get_postmaster_info().socket_dir
    return f"postgresql+psycopg://postgres@/{database}?host={quote(str(socket_dir))}"


def start_embedded_server(data_dir: Path):
    data_dir = Path(data_dir).resolve()
    if data_dir in _servers:
        return _servers[data_dir]
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (root, CI) and falls back to /tmp.
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
            import pgserver
    except ImportError:
        raise EmbeddedUnavailable(
            "the embedded PostgreSQL (pgserver) is not installed"
            + (
                f": it has no wheels for Python {sys.version_info.major}.{sys.version_info.minor}"
                if sys.version_info >= (3, 13)
                else ""
            )
            + ". Set DATABASE_URL to a PostgreSQL 14+ database, e.g. "
            "DATABASE_URL=postgresql://user@host:5432/hubcost"
        ) from None
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir, cleanup_mode="stop")
    _servers[data_dir] = server
    return server
