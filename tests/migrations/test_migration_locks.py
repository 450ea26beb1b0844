"""A migration beside the API's reads: it takes every lock first, and a lost lock race is rerun.

A read transaction that holds a view (and its rollup table) and then asks for a fact table
the migration has already locked, while the migration waits for that view, is a deadlock;
PostgreSQL aborts the migration, which waited first. Its transaction had changed nothing: it
is rolled back and run again once the read is over, and the warehouse ends at head.
"""

from __future__ import annotations

import logging
import threading

import sqlalchemy as sa

from core import migrate
from core.database import create_engine
from tests.conftest import READER_ROLE
from tests.reliability.processes import backends_waiting_on_a_lock, wait_until


def test_a_migration_aborted_in_a_deadlock_with_a_read_is_run_again(
    empty_database_url, admin_engine, caplog
):
    database = sa.engine.make_url(empty_database_url).database
    reading = create_engine(empty_database_url, pool_size=1)
    migrating = create_engine(empty_database_url, pool_size=1)
    outcome = {}

    def run_migration():
        try:
            outcome["revision"] = migrate.upgrade(migrating, api_db_role=READER_ROLE)
        except Exception as exc:  # reported by the assertion below
            outcome["error"] = exc

    try:
        migrate.upgrade(migrating, api_db_role=READER_ROLE, revision="0005")
        with reading.connect() as read, caplog.at_level(logging.WARNING, "hubcost.migrate"):
            # As an API request does: one statement, then another in the same transaction.
            read.execute(sa.text("SELECT count(*) FROM total_costs"))
            thread = threading.Thread(target=run_migration)
            thread.start()
            wait_until(
                lambda: backends_waiting_on_a_lock(admin_engine, database) == 1,
                timeout=30,
                what="the migration waiting for the view",
            )
            # The table is the migration's already: the read waits, the migration is aborted.
            assert read.execute(sa.text("SELECT count(*) FROM cost")).scalar_one() == 0
            read.commit()
        thread.join(60)
        assert outcome == {"revision": migrate.head_revision()}
        assert "DeadlockDetected" in caplog.text and "trying again (2 of 5)" in caplog.text
    finally:
        reading.dispose()
        migrating.dispose()
