"""Running the Alembic migrations, under an advisory lock so replicas never race."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from etl.database import MIGRATION_LOCK, advisory_lock
from etl.settings import PROJECT_ROOT

MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def alembic_config(connection: Connection | None = None, *, api_db_role: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    config.set_main_option("prepend_sys_path", str(PROJECT_ROOT))
    config.attributes["connection"] = connection
    config.attributes["api_db_role"] = api_db_role
    return config


def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config(api_db_role="unused"))
    return script.get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, *, api_db_role: str, revision: str = "head") -> str | None:
    """Bring the database to `revision`; concurrent callers wait for the lock, then no-op."""
    return _run(engine, api_db_role, lambda cfg: command.upgrade(cfg, revision))


def downgrade(engine: Engine, *, api_db_role: str, revision: str) -> str | None:
    return _run(engine, api_db_role, lambda cfg: command.downgrade(cfg, revision))


def _run(engine: Engine, api_db_role: str, action) -> str | None:
    with engine.connect() as conn, advisory_lock(conn, MIGRATION_LOCK, wait=True):
        action(alembic_config(conn, api_db_role=api_db_role))
        conn.commit()
        return current_revision(conn)
