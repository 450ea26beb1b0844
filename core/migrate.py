"""Running the Alembic migrations, under an advisory lock so replicas never race.

The migrations are the installed `migrations` package: found with importlib.resources, so a
wheel migrates from any working directory, exactly as a checkout does.

All the revisions to run are one transaction, and it first takes an exclusive lock on every
table and view of the warehouse at once (waiting at most LOCK_WAIT). Without that, dropping
views one by one met the API's reads in deadlocks: a read holding one view waits for a
table the migration already changed while the migration waits for that view, and PostgreSQL
aborted the migration. Holding every lock before changing anything, the migration never
waits on a read; a read waits for the migration's commit (or answers 503 at its statement
timeout). When the locks cannot all be had in time, or PostgreSQL still picks the migration
as a deadlock's victim while it takes them, nothing has changed: it is rolled back and tried
again, up to ATTEMPTS times.
"""

from __future__ import annotations

import importlib.resources
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from psycopg import errors
from sqlalchemy import exc, text
from sqlalchemy.engine import Connection, Engine

from core.database import MIGRATION_LOCK, advisory_lock

log = logging.getLogger("hubcost.migrate")

ATTEMPTS = 5
LOCK_WAIT = "10s"
# Every table and view of the warehouse, in one statement (a view's tables are locked with it).
LOCK_EVERYTHING = text(
    """DO $$
    DECLARE
        relations text;
    BEGIN
        SELECT string_agg(c.oid::regclass::text, ', ' ORDER BY c.oid) INTO relations
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname IN ('public', 'attribution') AND c.relkind IN ('r', 'p', 'v', 'm');
        IF relations IS NOT NULL THEN
            EXECUTE 'LOCK TABLE ' || relations || ' IN ACCESS EXCLUSIVE MODE';
        END IF;
    END $$"""
)


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
    wanted = head_revision() if revision == "head" else revision
    return _run(
        engine, api_db_role, lambda cfg: command.upgrade(cfg, revision), cluster_name, wanted
    )


def downgrade(engine: Engine, *, api_db_role: str, revision: str) -> str | None:
    wanted = None if revision == "base" else revision
    return _run(engine, api_db_role, lambda cfg: command.downgrade(cfg, revision), None, wanted)


def _run(
    engine: Engine, api_db_role: str, action, cluster_name: str | None, wanted: str | None
) -> str | None:
    with (
        _script_location() as location,
        engine.connect() as conn,
        advisory_lock(conn, MIGRATION_LOCK, wait=True),
    ):
        config = alembic_config(location, conn, api_db_role=api_db_role, cluster_name=cluster_name)
        for attempt in range(1, ATTEMPTS + 1):
            before = current_revision(conn)
            try:
                if before != wanted:
                    _lock_everything(conn)
                action(config)
                conn.commit()
                break
            except exc.OperationalError as error:
                # The advisory lock is released in a usable transaction, whatever happened.
                conn.rollback()
                if attempt == ATTEMPTS or not _lost_a_lock_race(error):
                    raise
                log.warning(
                    "the migration could not take its locks beside the API's reads (%s): "
                    "rolled back, trying again (%d of %d)",
                    type(error.orig).__name__,
                    attempt + 1,
                    ATTEMPTS,
                )
                time.sleep(0.2 * attempt)
            except BaseException:
                conn.rollback()
                raise
        after = current_revision(conn)
        conn.commit()
        if after != before:
            log.info("migrated the database from revision %s to %s", before or "(empty)", after)
        return after


def _lock_everything(conn: Connection) -> None:
    previous = conn.execute(text("SELECT current_setting('lock_timeout')")).scalar_one()
    set_lock_timeout = text("SELECT set_config('lock_timeout', :wait, true)")
    conn.execute(set_lock_timeout, {"wait": LOCK_WAIT})
    conn.execute(LOCK_EVERYTHING)
    conn.execute(set_lock_timeout, {"wait": previous})


def _lost_a_lock_race(error: exc.OperationalError) -> bool:
    return isinstance(error.orig, errors.DeadlockDetected | errors.LockNotAvailable)
