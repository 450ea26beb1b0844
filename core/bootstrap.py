"""The composition root: every engine the commands, the scheduler and the API use is made here.

Source clients are made by `etl.sources` from the same settings; the CLI puts the pieces
together. Nothing here connects until an engine is used, except `database_url`, which starts
the embedded server when DATABASE_URL is not set.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from core.database import create_engine
from core.settings import Settings


def database_url(settings: Settings) -> str:
    """DATABASE_URL, or the embedded server under the data directory (started on first use)."""
    if settings.database_url is not None:
        return settings.database_url.reveal()
    from core.embedded import embedded_database_url

    return embedded_database_url(settings.embedded_data_dir)


# The run lock's connection and one for each cluster a run loads at once (etl.jobs.CLUSTER_LANES).
WRITER_POOL_SIZE = 5


def writer_engine(
    settings: Settings, *, url: str | None = None, pool_size: int = WRITER_POOL_SIZE
) -> Engine:
    """The engine of migrations and ETL runs: the database owner's rights, small pool; its
    connections open only when used."""
    return create_engine(url or database_url(settings), pool_size=pool_size)


def api_engine(settings: Settings, *, url: str) -> Engine:
    """The API's engine: its pool size and statement timeout, every connection read-only."""
    return create_engine(
        url,
        pool_size=settings.db_pool_size,
        statement_timeout_ms=settings.statement_timeout_ms,
        role=settings.api_db_role,
        application_name="hubcost-api",
    )
