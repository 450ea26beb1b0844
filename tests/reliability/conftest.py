"""Fixtures of the reliability tests: a second fresh database, for "as after one clean run"."""

from __future__ import annotations

import itertools
import uuid

import pytest
import sqlalchemy as sa

_tag = uuid.uuid4().hex[:8]
_counter = itertools.count()


@pytest.fixture
def reference_database_url(admin_engine, admin_url, template_database):
    """Another fresh migrated database, where the uninterrupted run is made."""
    name = f"hubcost_test_ref_{_tag}_{next(_counter)}"
    with admin_engine.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"'))
    yield sa.engine.make_url(admin_url).set(database=name).render_as_string(False)
    with admin_engine.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def database_name(url: str) -> str:
    return sa.engine.make_url(url).database
