"""Running the Alembic migrations, under an advisory lock so replicas never race.

The migrations are the installed `migrations` package: found with importlib.resources, so a
wheel migrates from any working directory, exactly as a checkout does.
"""

from __future__ import annotations

import importlib.resources
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from core.database import MIGRATION_LOCK, advisory_lock

log = logging.getLogger("hubcost.migrate")


@contextmanager
def _script_location() -> Iterator[str]:
    with importlib.resources.as_file(importlib.resources.files("migrations")) as path:
        yield str(path)


def alembic_config(
    script_location: str,
    connection: Connection | None = None,
    *,
    api_db_role: str,
    cluster_name: str | None = None,
) -> Config:
    """Alembic's config; `cluster_name` names the cluster that rows from before 0006 belong to."""
    config = Config()
    config.set_main_option("script_location", script_location)
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    config.attributes["api_db_role"] = api_db_role
    config.attributes["cluster_name"] = cluster_name
    return config


def head_revision() -> str:
    with _script_location() as location:
        script = ScriptDirectory.from_config(alembic_config(location, api_db_role="unused"))
        return script.get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(
    engine: Engine, *, api_db_role: str, revision: str = "head", cluster_name: str | None = None
) -> str | None:
    """Bring the database to `revision`; concurrent callers wait for the lock, then no-op."""
    return _run(engine, api_db_role, lambda cfg: command.upgrade(cfg, revision), cluster_name)


def downgrade(engine: Engine, *, api_db_role: str, revision: str) -> str | None:
    return _run(engine, api_db_role, lambda cfg: command.downgrade(cfg, revision), None)


def _run(engine: Engine, api_db_role: str, action, cluster_name: str | None) -> str | None:
    with (
        _script_location() as location,
        engine.connect() as conn,
        advisory_lock(conn, MIGRATION_LOCK, wait=True),
    ):
        before = current_revision(conn)
        action(alembic_config(location, conn, api_db_role=api_db_role, cluster_name=cluster_name))
        conn.commit()
        after = current_revision(conn)
        if after != before:
            log.info("migrated the database from revision %s to %s", before or "(empty)", after)
        return after
