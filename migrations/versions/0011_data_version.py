"""The data version: a counter that moves whenever what the API answers may have changed.

`attribution.data_version` holds one row. Triggers on every table the public views read bump
it inside the writing transaction, so the new value commits with the data (and rolls back with
it): a chunk's replaced days, a budget written, anomalies detected, a cluster or component
added. On `run_log` only a chunk marked `succeeded` bumps it (a chunk starting or failing
changes no answer). The API reads it with `data_version()` before answering and derives its
ETags and its response cache from it (docs/api.md §2.3), so every replica sees a change
through the database the moment it commits, with no timer.

Each bump takes the row's lock until the writer commits: writers of the data serialize on it.
The ETL's chunks already do (the run lock); a `hubcost budget set` during a chunk waits for it.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from alembic import op

from migrations.viewops import reader_role

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# What the public views read (the rollups are kept from these by their own triggers). The
# facts and anomalies are written in bulk: one bump per statement. The small tables are also
# written by statements that change nothing (every run-log row "inserts" its cluster ON
# CONFLICT DO NOTHING): one bump per row actually written, so those leave the version alone.
BULK_TABLES = ("cost", "usage", "user_group_snapshot", "attribution.cost_anomaly")
SMALL_TABLES = ("component", "service_component", "cluster", "budget")

COUNTER = """
CREATE TABLE attribution.data_version (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    version bigint NOT NULL
);
COMMENT ON TABLE attribution.data_version IS
    'Private: bumped in the transaction of every write to what the public views read; '
    'read with data_version().';
INSERT INTO attribution.data_version (version) VALUES (1);

CREATE FUNCTION attribution.bump_data_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE attribution.data_version SET version = version + 1;
    RETURN NULL;
END $$;

CREATE FUNCTION data_version() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog
AS 'SELECT version FROM attribution.data_version';
COMMENT ON FUNCTION data_version() IS
    'The data version: changes when a write to what the public views read commits.';
"""


def _trigger_name(table: str) -> str:
    return "data_version_" + table.rsplit(".", 1)[-1]


def _triggers():
    """(name, events, each, table) of every trigger that bumps the version."""
    for table in BULK_TABLES:
        yield _trigger_name(table), "INSERT OR UPDATE OR DELETE OR TRUNCATE", "STATEMENT", table
    for table in SMALL_TABLES:
        yield _trigger_name(table), "INSERT OR UPDATE OR DELETE", "ROW", table
        yield _trigger_name(table) + "_truncated", "TRUNCATE", "STATEMENT", table
    # A chunk's data commits with its `succeeded` mark: that mark is what moves the version
    # (the freshness header comes from it), not the `running` row inserted before.
    yield "data_version_run_log_succeeded", "INSERT OR UPDATE", "ROW", "run_log"
    yield "data_version_run_log", "DELETE OR TRUNCATE", "STATEMENT", "run_log"


def upgrade() -> None:
    op.execute(COUNTER)
    for name, events, each, table in _triggers():
        when = " WHEN (NEW.status = 'succeeded')" if name.endswith("_succeeded") else ""
        op.execute(
            f"CREATE TRIGGER {name} AFTER {events} ON {table} FOR EACH {each}{when} "
            "EXECUTE FUNCTION attribution.bump_data_version()"
        )
    role = reader_role()
    op.execute(
        f"""DO $$ BEGIN
          IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
            GRANT EXECUTE ON FUNCTION data_version() TO "{role}";
          END IF;
        END $$"""
    )


def downgrade() -> None:
    for name, _events, _each, table in reversed(list(_triggers())):
        op.execute(f"DROP TRIGGER {name} ON {table}")
    op.execute("DROP FUNCTION data_version()")
    op.execute("DROP FUNCTION attribution.bump_data_version()")
    op.execute("DROP TABLE attribution.data_version")
