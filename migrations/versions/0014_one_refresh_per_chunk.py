"""One rollup refresh per loaded chunk, not one per statement.

A chunk's save is a DELETE of its days and a COPY of the new rows, for usage also of the group
snapshots: four statements, each of which refreshed the chunk's days through the statement
triggers (the DELETE's refresh only to be redone by the COPY's). The loaders now say, for their
own transaction, that they refresh once (`hubcost.defer_refresh`, a transaction-local
setting): the triggers on the facts and snapshots then do nothing, and the loader calls
`attribution.refresh_loaded` after its writes, which does what the skipped triggers would
have done together: the snapshot days of the chunk's days, every rollup and rendered answer
of those days, and the groups of the later days those snapshots govern (carry-forward up to
each hub's next snapshot). Any other writer (an operator's UPDATE, a test, the demo) is
refreshed by the triggers as before.

The downgrade restores revision 0006's trigger functions and drops `refresh_loaded`; a loader
of this release against that schema would then be refreshed per statement again.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

import importlib

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

DEFERRED = """
CREATE FUNCTION attribution.refresh_deferred() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('hubcost.defer_refresh', true), '') = 'on'
$$;

-- What the triggers of a chunk's statements would have done, once: `snapshots_loaded` when
-- the chunk replaced the cluster's group snapshots of first_day..last_day.
CREATE FUNCTION attribution.refresh_loaded(
    loaded_cluster text, first_day date, last_day date, snapshots_loaded boolean
) RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    hubs text[];
    hi date;
BEGIN
    IF snapshots_loaded THEN
        -- The hubs whose snapshots changed: those of the days' old snapshots (snapshot_day
        -- still holds them, its trigger was skipped) and of the new ones.
        SELECT array_agg(DISTINCT hub) INTO hubs
        FROM (SELECT hub FROM attribution.snapshot_day
              WHERE cluster = loaded_cluster AND date BETWEEN first_day AND last_day
              UNION ALL
              SELECT hub FROM public.user_group_snapshot
              WHERE cluster = loaded_cluster AND date BETWEEN first_day AND last_day) changed;
        DELETE FROM attribution.snapshot_day
        WHERE cluster = loaded_cluster AND date BETWEEN first_day AND last_day;
        INSERT INTO attribution.snapshot_day (cluster, hub, date)
        SELECT DISTINCT cluster, hub, date FROM public.user_group_snapshot
        WHERE cluster = loaded_cluster AND date BETWEEN first_day AND last_day;
    END IF;
    PERFORM attribution.refresh(ARRAY[loaded_cluster], first_day, last_day);
    IF hubs IS NULL THEN
        RETURN;
    END IF;
    SELECT max(coalesce(
        (SELECT min(d.date) - 1 FROM attribution.snapshot_day d
         WHERE d.cluster = loaded_cluster AND d.hub = h.hub AND d.date > last_day),
        (SELECT max(date) FROM attribution.user_cost_daily u WHERE u.cluster = loaded_cluster)))
    INTO hi
    FROM unnest(hubs) AS h (hub);
    IF hi > last_day THEN
        PERFORM attribution.refresh_groups(ARRAY[loaded_cluster], last_day + 1, hi);
    END IF;
END
$fn$;
"""

# Revision 0006's trigger functions, each first asking whether its writer refreshes itself.
TRIGGER_FUNCTIONS = """
-- Costs and usage: recompute the days and clusters the statement touched.
CREATE OR REPLACE FUNCTION attribution.on_fact_change() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    lo date;
    hi date;
    changed_clusters text[];
BEGIN
    IF attribution.refresh_deferred() THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        SELECT min(date), max(date), array_agg(DISTINCT cluster)
        INTO lo, hi, changed_clusters FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT min(date), max(date), array_agg(DISTINCT cluster)
        INTO lo, hi, changed_clusters FROM old_rows;
    ELSE
        SELECT min(date), max(date), array_agg(DISTINCT cluster)
        INTO lo, hi, changed_clusters
        FROM (SELECT date, cluster FROM new_rows
              UNION ALL SELECT date, cluster FROM old_rows) changed;
    END IF;
    PERFORM attribution.refresh(changed_clusters, lo, hi);
    RETURN NULL;
END
$fn$;

-- Group snapshots: a changed snapshot also governs the following days of its hub that have
-- no snapshot of their own (carry-forward), so the window extends to the hub's next snapshot.
CREATE OR REPLACE FUNCTION attribution.on_snapshot_change() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    lo date;
    hi date;
    changed attribution.cluster_hub[];
BEGIN
    IF attribution.refresh_deferred() THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        SELECT min(date), max(date), array_agg(DISTINCT (cluster, hub)::attribution.cluster_hub)
        INTO lo, hi, changed FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT min(date), max(date), array_agg(DISTINCT (cluster, hub)::attribution.cluster_hub)
        INTO lo, hi, changed FROM old_rows;
    ELSE
        SELECT min(date), max(date), array_agg(DISTINCT (cluster, hub)::attribution.cluster_hub)
        INTO lo, hi, changed
        FROM (SELECT date, cluster, hub FROM new_rows
              UNION ALL SELECT date, cluster, hub FROM old_rows) rows_changed;
    END IF;
    IF lo IS NULL THEN
        RETURN NULL;
    END IF;
    DELETE FROM attribution.snapshot_day
    WHERE (cluster, hub)::attribution.cluster_hub = ANY (changed) AND date BETWEEN lo AND hi;
    INSERT INTO attribution.snapshot_day (cluster, hub, date)
    SELECT DISTINCT cluster, hub, date FROM public.user_group_snapshot
    WHERE (cluster, hub)::attribution.cluster_hub = ANY (changed) AND date BETWEEN lo AND hi;
    SELECT greatest(hi, max(coalesce(
        (SELECT min(d.date) - 1 FROM attribution.snapshot_day d
         WHERE d.cluster = k.cluster AND d.hub = k.hub AND d.date > hi),
        (SELECT max(date) FROM attribution.user_cost_daily u WHERE u.cluster = k.cluster))))
    INTO hi
    FROM unnest(changed) AS k;
    PERFORM attribution.refresh_groups(
        ARRAY(SELECT DISTINCT k.cluster FROM unnest(changed) AS k), lo, hi
    );
    RETURN NULL;
END
$fn$;
"""


def upgrade() -> None:
    op.execute(DEFERRED)
    op.execute(TRIGGER_FUNCTIONS)


def downgrade() -> None:
    earlier = importlib.import_module("migrations.versions.0006_cluster_dimension")
    op.execute(earlier.DROP_TRIGGERS)
    op.execute("DROP FUNCTION attribution.on_fact_change()")
    op.execute("DROP FUNCTION attribution.on_snapshot_change()")
    op.execute("DROP FUNCTION attribution.rebuild_all()")
    op.execute(earlier.TRIGGER_FUNCTIONS)
    op.execute(earlier.TRIGGERS)
    op.execute("DROP FUNCTION attribution.refresh_loaded(text, date, date, boolean)")
    op.execute("DROP FUNCTION attribution.refresh_deferred()")
