"""The view `clusters`: every cluster the warehouse knows, with the days of data it holds.

The API asks it on every request whether the warehouse holds one cluster or several
(docs/api.md, "Several clusters"), so naming them must cost next to nothing: the names come
from the small table `cluster`, never from a scan of the facts. For that table to be complete
whoever writes the facts (the ETL registers its clusters, but a backfill script or an
operator's INSERT may not), a statement-level trigger on each fact table adds the clusters a
statement wrote, and the clusters already in the facts are added here. The days come from the
rollups' primary keys, and only when the `first_day`/`last_day` columns are read.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from alembic import op

from migrations.viewops import create_view, drop_view

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

FACT_TABLES = ("cost", "usage", "user_group_snapshot", "run_log")

REGISTER_FUNCTION = """
CREATE FUNCTION attribution.register_clusters() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO public.cluster (name)
    SELECT DISTINCT cluster FROM new_rows WHERE cluster <> ''
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$fn$;
"""

EXISTING_CLUSTERS = """
INSERT INTO cluster (name)
SELECT cluster FROM cost
UNION SELECT cluster FROM usage
UNION SELECT cluster FROM user_group_snapshot
UNION SELECT cluster FROM run_log
EXCEPT SELECT ''
ON CONFLICT DO NOTHING
"""

CLUSTERS = """
SELECT k.name AS cluster,
       least((SELECT min(t.date) FROM attribution.total_cost_daily t WHERE t.cluster = k.name),
             (SELECT min(u.date) FROM attribution.usage_total_daily u WHERE u.cluster = k.name))
           AS first_day,
       greatest((SELECT max(t.date) FROM attribution.total_cost_daily t WHERE t.cluster = k.name),
                (SELECT max(u.date) FROM attribution.usage_total_daily u WHERE u.cluster = k.name))
           AS last_day
FROM cluster k
"""


def _trigger(table: str, event: str) -> str:
    return f"{table}_clusters_{event.lower()}"


def upgrade() -> None:
    op.execute(REGISTER_FUNCTION)
    for table in FACT_TABLES:
        for event in ("INSERT", "UPDATE"):
            op.execute(
                f"CREATE TRIGGER {_trigger(table, event)} AFTER {event} ON public.{table} "
                "REFERENCING NEW TABLE AS new_rows "
                "FOR EACH STATEMENT EXECUTE FUNCTION attribution.register_clusters()"
            )
    op.execute(EXISTING_CLUSTERS)
    create_view(
        "clusters",
        CLUSTERS,
        "Every cluster the warehouse holds or expects data of, with the first and last day of "
        "its cost or usage (NULL before its first load).",
    )


def downgrade() -> None:
    drop_view("clusters")
    for table in reversed(FACT_TABLES):
        for event in ("UPDATE", "INSERT"):
            op.execute(f"DROP TRIGGER {_trigger(table, event)} ON public.{table}")
    op.execute("DROP FUNCTION attribution.register_clusters()")
