"""Databases of their own for a module's read-only tests."""

from __future__ import annotations

import contextlib
import uuid

import sqlalchemy as sa

from core.database import create_engine


@contextlib.contextmanager
def loaded_database(admin_engine, admin_url, template_database, load):
    """One database from the template, written by `load(conn)`: its URL; dropped after."""
    name = f"hubcost_test_{uuid.uuid4().hex[:8]}_{load.__module__.rsplit('.', 1)[-1]}"
    with admin_engine.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"'))
    try:
        url = sa.engine.make_url(admin_url).set(database=name).render_as_string(False)
        engine = create_engine(url, pool_size=1)
        try:
            with engine.begin() as conn:
                load(conn)
        finally:
            engine.dispose()
        yield url
    finally:
        with admin_engine.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
