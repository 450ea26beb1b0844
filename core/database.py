"""How an engine is made, and advisory locks; `core.bootstrap` decides which engines exist."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

# Advisory-lock keys: one per kind of exclusive work, shared by every process and replica.
MIGRATION_LOCK = 0x6875_6263_6D69  # "hubcmi"
ETL_RUN_LOCK = 0x6875_6263_6574  # "hubcet"


def create_engine(
    url: str,
    *,
    pool_size: int = 5,
    statement_timeout_ms: int | None = None,
    role: str | None = None,
    application_name: str = "hubcost",
) -> Engine:
    """An engine whose connections carry the statement timeout and, for the API, its role."""
    options = []
    if role is not None:
        # The API's statements are short reads: JIT compilation (about 1.7 s for budget_status
        # on a database without statistics yet) costs far more than it could save.
        options.append("-c jit=off")
    if statement_timeout_ms is not None:
        options.append(f"-c statement_timeout={int(statement_timeout_ms)}")
    # UTF-8 on the wire whatever the server's encoding: the rendered answers are sent as read.
    connect_args = {
        "application_name": application_name,
        "connect_timeout": 10,
        "client_encoding": "utf8",
    }
    if options:
        connect_args["options"] = " ".join(options)
    engine = sa.create_engine(
        sa.engine.make_url(url).set(drivername="postgresql+psycopg"),
        pool_size=pool_size,
        max_overflow=0,
        pool_pre_ping=True,
        pool_timeout=10,
        connect_args=connect_args,
    )
    if role is not None:

        @sa.event.listens_for(engine, "connect")
        def _set_role(dbapi_connection, _record):
            # Each pooled connection drops to the read-only role before it serves a request.
            with dbapi_connection.cursor() as cursor:
                cursor.execute(f'SET ROLE "{role}"')
            dbapi_connection.commit()

    return engine


@contextmanager
def advisory_lock(conn: Connection, key: int, *, wait: bool = False) -> Iterator[bool]:
    """Take a session-level advisory lock (or only try to); yields whether it was taken."""
    if wait:
        conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
        taken = True
    else:
        taken = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar_one()
    conn.commit()
    try:
        yield bool(taken)
    finally:
        if taken:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            conn.commit()
