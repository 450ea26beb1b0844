"""Sources are rows of a table, not names in a CHECK constraint and a VALUES list.

A new source (docs: etl/sources/base.py) is one module and one registration in the code; the
run log accepts any source the table `source` lists, and the ETL adds its sources to it as it
starts a chunk, so neither the run log's constraint nor the status view needs a migration for
it. `etl_status` keeps its columns: one row per (cluster, known source), costs and usage listed
from the start as before.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

import importlib

from alembic import op

from migrations.viewops import replace_view

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

ETL_STATUS_COMMENT = (
    "One row per (cluster, source): schema version, last successful chunk, last day loaded, "
    "and the last 24 hours' rows loaded, requests made and failed chunks. Before any cluster "
    "is known, one row per source with cluster NULL."
)
ETL_STATUS = """
        WITH named AS (
            SELECT name AS cluster FROM cluster
            UNION
            SELECT cluster FROM run_log
        ), known AS (
            SELECT cluster FROM named
            UNION ALL
            SELECT NULL WHERE NOT EXISTS (SELECT FROM named)
        )
        SELECT k.cluster, s.source,
               (SELECT version_num FROM alembic_version LIMIT 1) AS schema_version,
               max(r.finished_at) FILTER (WHERE r.status = 'succeeded') AS last_success_at,
               max(r.last_day) FILTER (WHERE r.status = 'succeeded') AS last_day_loaded,
               coalesce(sum(r.rows) FILTER (
                   WHERE r.status = 'succeeded'
                     AND r.finished_at > now() - interval '24 hours'), 0) AS rows_loaded_24h,
               coalesce(sum(r.requests) FILTER (
                   WHERE r.started_at > now() - interval '24 hours'), 0) AS requests_24h,
               count(r.id) FILTER (
                   WHERE r.status = 'failed'
                     AND r.started_at > now() - interval '24 hours') AS failed_chunks_24h,
               max(r.finished_at) FILTER (WHERE r.status = 'failed') AS last_failure_at,
               count(r.id) FILTER (WHERE r.status = 'running') AS running_chunks
        FROM known k
        CROSS JOIN (SELECT name AS source FROM source) AS s
        LEFT JOIN run_log r ON r.source = s.source AND r.cluster = k.cluster
        GROUP BY k.cluster, s.source
        """


def upgrade() -> None:
    op.execute(
        "CREATE TABLE source (name text PRIMARY KEY, "
        "CONSTRAINT source_name_not_empty CHECK (name <> ''))"
    )
    op.execute(
        "COMMENT ON TABLE source IS 'Every source the ETL has loaded or knows (run_log.source)'"
    )
    op.execute("INSERT INTO source (name) VALUES ('costs'), ('usage') ON CONFLICT DO NOTHING")
    op.execute(
        "INSERT INTO source (name) SELECT DISTINCT source FROM run_log ON CONFLICT DO NOTHING"
    )
    op.execute("ALTER TABLE run_log DROP CONSTRAINT run_log_source_known")
    op.execute(
        "ALTER TABLE run_log ADD CONSTRAINT run_log_source_fkey "
        "FOREIGN KEY (source) REFERENCES source (name)"
    )
    replace_view("etl_status", ETL_STATUS, ETL_STATUS_COMMENT)


def downgrade() -> None:
    earlier = importlib.import_module("migrations.versions.0006_cluster_dimension")
    [(name, comment, sql)] = [v for v in earlier.VIEWS if v[0] == "etl_status"]
    replace_view(name, sql, comment)
    op.execute("ALTER TABLE run_log DROP CONSTRAINT run_log_source_fkey")
    op.execute(
        "ALTER TABLE run_log ADD CONSTRAINT run_log_source_known "
        "CHECK (source IN ('costs', 'usage'))"
    )
    op.execute("DROP TABLE source")
