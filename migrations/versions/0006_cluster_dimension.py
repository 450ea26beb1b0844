"""A `cluster` on every fact, run-log row, rollup and public view: one warehouse, many clusters.

Existing rows are assigned to the cluster the migrating command is configured for (its
CLUSTER_NAME, or the first cluster of HUBCOST_CLUSTERS), else to `default`
(docs/sql.md, "Clusters"). The table `cluster` lists every cluster the warehouse knows; the
ETL adds its clusters to it, and rows stay after a cluster is torn down.

Attribution is unchanged and never crosses clusters: every rollup key, join, window and
partition gains the cluster. Keys keep `date` first, so the API's date-ranged reads that do
not name a cluster use them as before. The refresh functions take the clusters to recompute,
and the triggers pass the clusters their statement touched, so loading one cluster never
recomputes the others.

The whole SQL of the rollups, functions, triggers and views is here; the downgrade (refused
while rows of more than one cluster exist) restores revision 0005 by its own revisions' text.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import importlib

from alembic import context, op

from migrations.viewops import create_view, drop_view

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

DEFAULT_CLUSTER = "default"

FACT_TABLES = ("cost", "usage", "user_group_snapshot", "run_log")

CLUSTER_COLUMNS = """
CREATE TABLE cluster (
    name text PRIMARY KEY,
    CONSTRAINT cluster_name_not_empty CHECK (name <> '')
);
COMMENT ON TABLE cluster IS 'Every cluster the warehouse holds data of; kept after a cluster is gone.';

ALTER TABLE cost ADD COLUMN cluster text;
ALTER TABLE usage ADD COLUMN cluster text;
ALTER TABLE user_group_snapshot ADD COLUMN cluster text;
ALTER TABLE run_log ADD COLUMN cluster text;
"""

CLUSTER_KEYS = """
ALTER TABLE cost ALTER COLUMN cluster SET NOT NULL;
ALTER TABLE usage ALTER COLUMN cluster SET NOT NULL;
ALTER TABLE user_group_snapshot ALTER COLUMN cluster SET NOT NULL;
ALTER TABLE run_log ALTER COLUMN cluster SET NOT NULL;

DROP INDEX cost_day_slice_hub_service;
CREATE UNIQUE INDEX cost_day_cluster_slice_hub_service
    ON cost (date, cluster, slice, coalesce(hub, ''), service);
DROP INDEX cost_slice_date_hub;
CREATE INDEX cost_slice_date_cluster_hub ON cost (slice, date, cluster, hub);

ALTER TABLE usage DROP CONSTRAINT usage_pkey,
    ADD CONSTRAINT usage_pkey PRIMARY KEY (date, cluster, hub, component, username);

ALTER TABLE user_group_snapshot DROP CONSTRAINT user_group_snapshot_pkey,
    ADD CONSTRAINT user_group_snapshot_pkey PRIMARY KEY (date, cluster, hub, username, usergroup);
DROP INDEX user_group_snapshot_hub_date;
CREATE INDEX user_group_snapshot_cluster_hub_date ON user_group_snapshot (cluster, hub, date);

DROP INDEX run_log_source_status_finished;
CREATE INDEX run_log_cluster_source_status_finished
    ON run_log (cluster, source, status, finished_at);
"""

DROP_CLUSTER_KEYS = """
DROP INDEX run_log_cluster_source_status_finished;
CREATE INDEX run_log_source_status_finished ON run_log (source, status, finished_at);
DROP INDEX user_group_snapshot_cluster_hub_date;
CREATE INDEX user_group_snapshot_hub_date ON user_group_snapshot (hub, date);
ALTER TABLE user_group_snapshot DROP CONSTRAINT user_group_snapshot_pkey,
    ADD CONSTRAINT user_group_snapshot_pkey PRIMARY KEY (date, hub, username, usergroup);
ALTER TABLE usage DROP CONSTRAINT usage_pkey,
    ADD CONSTRAINT usage_pkey PRIMARY KEY (date, hub, component, username);
DROP INDEX cost_slice_date_cluster_hub;
CREATE INDEX cost_slice_date_hub ON cost (slice, date, hub);
DROP INDEX cost_day_cluster_slice_hub_service;
CREATE UNIQUE INDEX cost_day_slice_hub_service ON cost (date, slice, coalesce(hub, ''), service);
ALTER TABLE run_log DROP COLUMN cluster;
ALTER TABLE user_group_snapshot DROP COLUMN cluster;
ALTER TABLE usage DROP COLUMN cluster;
ALTER TABLE cost DROP COLUMN cluster;
DROP TABLE cluster;
"""

ROLLUP_TABLES = """
CREATE SCHEMA attribution;
COMMENT ON SCHEMA attribution IS
    'Private: daily rollups kept by triggers. Read the public views instead.';

CREATE TYPE attribution.cluster_hub AS (cluster text, hub text);

CREATE TABLE attribution.snapshot_day (
    cluster text NOT NULL,
    hub text NOT NULL,
    date date NOT NULL,
    PRIMARY KEY (cluster, hub, date)
);
CREATE TABLE attribution.component_cost_daily (
    date date NOT NULL,
    cluster text NOT NULL,
    hub text NOT NULL,
    component text NOT NULL,
    cost numeric NOT NULL,
    PRIMARY KEY (date, cluster, hub, component)
);
CREATE TABLE attribution.hub_cost_daily (
    date date NOT NULL,
    cluster text NOT NULL,
    hub text NOT NULL,
    cost numeric NOT NULL,
    PRIMARY KEY (date, cluster, hub)
);
CREATE TABLE attribution.total_cost_daily (
    date date NOT NULL,
    cluster text NOT NULL,
    name text NOT NULL,
    cost numeric NOT NULL,
    PRIMARY KEY (date, cluster, name)
);
CREATE TABLE attribution.usage_total_daily (
    date date NOT NULL,
    cluster text NOT NULL,
    hub text NOT NULL,
    component text NOT NULL,
    hub_usage numeric NOT NULL,
    PRIMARY KEY (date, cluster, hub, component)
);
CREATE TABLE attribution.user_cost_daily (
    date date NOT NULL,
    cluster text NOT NULL,
    hub text NOT NULL,
    component text NOT NULL,
    username text NOT NULL,
    usage numeric NOT NULL,
    hub_usage numeric NOT NULL,
    share numeric NOT NULL,
    cost numeric NOT NULL,
    PRIMARY KEY (date, cluster, hub, component, username)
);
CREATE INDEX user_cost_daily_hub_component_date
    ON attribution.user_cost_daily (hub, component, date) INCLUDE (cluster, username, cost);
CREATE TABLE attribution.user_group_cost_daily (
    date date NOT NULL,
    cluster text NOT NULL,
    hub text NOT NULL,
    component text NOT NULL,
    username text NOT NULL,
    usergroup text NOT NULL,
    cost numeric NOT NULL,
    PRIMARY KEY (date, cluster, hub, component, username, usergroup)
);
CREATE INDEX user_group_cost_daily_hub_component_date
    ON attribution.user_group_cost_daily (hub, component, date);
CREATE INDEX user_group_cost_daily_usergroup_date
    ON attribution.user_group_cost_daily (usergroup, date)
    INCLUDE (cluster, hub, component, username, cost);
CREATE INDEX user_group_cost_daily_username_date
    ON attribution.user_group_cost_daily (username, date);
CREATE TABLE attribution.group_cost_daily (
    date date NOT NULL,
    cluster text NOT NULL,
    usergroup text NOT NULL,
    cost numeric NOT NULL,
    PRIMARY KEY (date, cluster, usergroup)
);
"""

# Recomputes every rollup of the given clusters' days first_day..last_day from the facts. The
# per-user cost is component cost x usage / hub usage, multiplied first, 24 decimal places.
ROLLUP_FUNCTIONS = """
CREATE FUNCTION attribution.refresh_groups(clusters text[], first_day date, last_day date)
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    IF first_day IS NULL OR last_day IS NULL OR first_day > last_day THEN
        RETURN;
    END IF;
    DELETE FROM attribution.user_group_cost_daily
    WHERE date BETWEEN first_day AND last_day AND cluster = ANY (clusters);
    INSERT INTO attribution.user_group_cost_daily
        (date, cluster, hub, component, username, usergroup, cost)
    SELECT uc.date, uc.cluster, uc.hub, uc.component, uc.username,
           coalesce(g.usergroup, 'none'), uc.cost
    FROM attribution.user_cost_daily uc
    LEFT JOIN LATERAL (
        SELECT max(d.date) AS date
        FROM attribution.snapshot_day d
        WHERE d.cluster = uc.cluster AND d.hub = uc.hub AND d.date <= uc.date
    ) snap ON true
    LEFT JOIN public.user_group_snapshot g
      ON g.date = snap.date AND g.cluster = uc.cluster AND g.hub = uc.hub
     AND g.username = uc.username
    WHERE uc.date BETWEEN first_day AND last_day AND uc.cluster = ANY (clusters);

    DELETE FROM attribution.group_cost_daily
    WHERE date BETWEEN first_day AND last_day AND cluster = ANY (clusters);
    INSERT INTO attribution.group_cost_daily (date, cluster, usergroup, cost)
    SELECT date, cluster, usergroup, sum(cost)
    FROM attribution.user_group_cost_daily
    WHERE date BETWEEN first_day AND last_day AND cluster = ANY (clusters)
    GROUP BY date, cluster, usergroup;
END
$fn$;

CREATE FUNCTION attribution.refresh(clusters text[], first_day date, last_day date)
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    IF first_day IS NULL OR last_day IS NULL OR first_day > last_day THEN
        RETURN;
    END IF;
    DELETE FROM attribution.component_cost_daily
    WHERE date BETWEEN first_day AND last_day AND cluster = ANY (clusters);
    INSERT INTO attribution.component_cost_daily (date, cluster, hub, component, cost)
    SELECT date, cluster, hub, component, sum(amount)
    FROM (
        SELECT c.date, c.cluster, c.hub, coalesce(sc.component, 'other') AS component, c.amount
        FROM public.cost c
        LEFT JOIN public.service_component sc ON sc.service = c.service
        WHERE c.slice = 'attributable' AND c.date BETWEEN first_day AND last_day
          AND c.cluster = ANY (clusters)
        UNION ALL
        SELECT m.date, m.cluster, m.hub, moved.component, moved.amount
        FROM public.component_cost_moves m
        CROSS JOIN LATERAL (VALUES
            ('compute', -(m.home_moved + m.core_moved)),
            ('home storage', m.home_moved),
            ('core', m.core_moved)
        ) AS moved (component, amount)
        WHERE moved.amount <> 0 AND m.date BETWEEN first_day AND last_day
          AND m.cluster = ANY (clusters)
    ) parts
    GROUP BY date, cluster, hub, component;

    DELETE FROM attribution.hub_cost_daily
    WHERE date BETWEEN first_day AND last_day AND cluster = ANY (clusters);
    INSERT INTO attribution.hub_cost_daily (date, cluster, hub, cost)
    SELECT date, cluster, hub, sum(amount)
    FROM public.cost
    WHERE slice = 'attributable' AND date BETWEEN first_day AND last_day
      AND cluster = ANY (clusters)
    GROUP BY date, cluster, hub;

    DELETE FROM attribution.total_cost_daily
    WHERE date BETWEEN first_day AND last_day AND cluster = ANY (clusters);
    INSERT INTO attribution.total_cost_daily (date, cluster, name, cost)
    SELECT date, cluster, slice, sum(amount)
    FROM public.cost
    WHERE slice IN ('account', 'attributable') AND date BETWEEN first_day AND last_day
      AND cluster = ANY (clusters)
    GROUP BY date, cluster, slice;

    DELETE FROM attribution.usage_total_daily
    WHERE date BETWEEN first_day AND last_day AND cluster = ANY (clusters);
    INSERT INTO attribution.usage_total_daily (date, cluster, hub, component, hub_usage)
    SELECT date, cluster, hub, component, sum(value)
    FROM public.usage
    WHERE date BETWEEN first_day AND last_day AND cluster = ANY (clusters)
    GROUP BY date, cluster, hub, component;

    DELETE FROM attribution.user_cost_daily
    WHERE date BETWEEN first_day AND last_day AND cluster = ANY (clusters);
    INSERT INTO attribution.user_cost_daily
        (date, cluster, hub, component, username, usage, hub_usage, share, cost)
    SELECT u.date, u.cluster, u.hub, u.component, u.username, u.value, t.hub_usage,
           u.value / t.hub_usage,
           (c.cost * u.value)::numeric(1000, 24) / t.hub_usage
    FROM public.usage u
    JOIN attribution.usage_total_daily t
      ON t.date = u.date AND t.cluster = u.cluster AND t.hub = u.hub
     AND t.component = u.component
    JOIN attribution.component_cost_daily c
      ON c.date = u.date AND c.cluster = u.cluster AND c.hub = u.hub
     AND c.component = u.component
    WHERE u.date BETWEEN first_day AND last_day AND u.cluster = ANY (clusters)
      AND t.date BETWEEN first_day AND last_day AND t.cluster = ANY (clusters)
      AND c.date BETWEEN first_day AND last_day AND c.cluster = ANY (clusters)
      AND t.hub_usage > 0;

    PERFORM attribution.refresh_groups(clusters, first_day, last_day);
END
$fn$;

CREATE FUNCTION attribution.refresh_all() RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    TRUNCATE attribution.snapshot_day, attribution.component_cost_daily, attribution.hub_cost_daily,
             attribution.total_cost_daily, attribution.usage_total_daily,
             attribution.user_cost_daily, attribution.user_group_cost_daily,
             attribution.group_cost_daily;
    INSERT INTO attribution.snapshot_day (cluster, hub, date)
    SELECT DISTINCT cluster, hub, date FROM public.user_group_snapshot;
    PERFORM attribution.refresh(
        ARRAY(SELECT cluster FROM public.cost UNION SELECT cluster FROM public.usage),
        (SELECT least(min(date), (SELECT min(date) FROM public.usage)) FROM public.cost),
        (SELECT greatest(max(date), (SELECT max(date) FROM public.usage)) FROM public.cost)
    );
END
$fn$;
"""

TRIGGER_FUNCTIONS = """
-- Costs and usage: recompute the days and clusters the statement touched.
CREATE FUNCTION attribution.on_fact_change() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    lo date;
    hi date;
    changed_clusters text[];
BEGIN
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
CREATE FUNCTION attribution.on_snapshot_change() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    lo date;
    hi date;
    changed attribution.cluster_hub[];
BEGIN
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

-- A truncated fact table or an edited component map: rebuild every rollup.
CREATE FUNCTION attribution.rebuild_all() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM attribution.refresh_all();
    RETURN NULL;
END
$fn$;
"""

REFRESH_FUNCTIONS = ROLLUP_FUNCTIONS + TRIGGER_FUNCTIONS

TRIGGERS = """
CREATE TRIGGER cost_inserted AFTER INSERT ON public.cost
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION attribution.on_fact_change();
CREATE TRIGGER cost_updated AFTER UPDATE ON public.cost
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION attribution.on_fact_change();
CREATE TRIGGER cost_deleted AFTER DELETE ON public.cost
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION attribution.on_fact_change();
CREATE TRIGGER usage_inserted AFTER INSERT ON public.usage
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION attribution.on_fact_change();
CREATE TRIGGER usage_updated AFTER UPDATE ON public.usage
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION attribution.on_fact_change();
CREATE TRIGGER usage_deleted AFTER DELETE ON public.usage
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION attribution.on_fact_change();
CREATE TRIGGER snapshot_inserted AFTER INSERT ON public.user_group_snapshot
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION attribution.on_snapshot_change();
CREATE TRIGGER snapshot_updated AFTER UPDATE ON public.user_group_snapshot
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION attribution.on_snapshot_change();
CREATE TRIGGER snapshot_deleted AFTER DELETE ON public.user_group_snapshot
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION attribution.on_snapshot_change();
CREATE TRIGGER facts_truncated AFTER TRUNCATE ON public.cost
    FOR EACH STATEMENT EXECUTE FUNCTION attribution.rebuild_all();
CREATE TRIGGER usage_truncated AFTER TRUNCATE ON public.usage
    FOR EACH STATEMENT EXECUTE FUNCTION attribution.rebuild_all();
CREATE TRIGGER snapshot_truncated AFTER TRUNCATE ON public.user_group_snapshot
    FOR EACH STATEMENT EXECUTE FUNCTION attribution.rebuild_all();
CREATE TRIGGER service_component_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.service_component
    FOR EACH STATEMENT EXECUTE FUNCTION attribution.rebuild_all();
"""

DROP_TRIGGERS = """
DROP TRIGGER service_component_changed ON public.service_component;
DROP TRIGGER snapshot_truncated ON public.user_group_snapshot;
DROP TRIGGER usage_truncated ON public.usage;
DROP TRIGGER facts_truncated ON public.cost;
DROP TRIGGER snapshot_deleted ON public.user_group_snapshot;
DROP TRIGGER snapshot_updated ON public.user_group_snapshot;
DROP TRIGGER snapshot_inserted ON public.user_group_snapshot;
DROP TRIGGER usage_deleted ON public.usage;
DROP TRIGGER usage_updated ON public.usage;
DROP TRIGGER usage_inserted ON public.usage;
DROP TRIGGER cost_deleted ON public.cost;
DROP TRIGGER cost_updated ON public.cost;
DROP TRIGGER cost_inserted ON public.cost;
"""

# (name, comment, SQL) in dependency order.
VIEWS = [
    (
        "components",
        "Every known component with its canonical position (NULL: sorts after, by name).",
        """
        SELECT name AS component, position
        FROM component
        """,
    ),
    (
        "component_cost_moves",
        "Per (cluster, date, hub): compute cost before the moves, the home and core amounts "
        "requested and moved out of compute (never below 0), and the shortfall not moved.",
        """
        WITH per_hub_day AS (
            SELECT c.cluster, c.date, c.hub,
                   coalesce(sum(c.amount) FILTER (
                       WHERE c.slice = 'attributable' AND sc.component = 'compute'), 0)
                       AS compute_before,
                   coalesce(sum(c.amount) FILTER (
                       WHERE c.slice = 'home' AND c.service = 'EC2 - Other'), 0)
                       AS home_requested,
                   coalesce(sum(c.amount) FILTER (WHERE c.slice = 'core'), 0)
                       AS core_requested
            FROM cost c
            LEFT JOIN service_component sc ON sc.service = c.service
            WHERE c.slice <> 'account'
            GROUP BY c.cluster, c.date, c.hub
        )
        SELECT d.cluster, d.date, d.hub, d.compute_before,
               d.home_requested, home.moved AS home_moved,
               d.core_requested, core.moved AS core_moved,
               (d.home_requested - home.moved) + (d.core_requested - core.moved) AS shortfall
        FROM per_hub_day d
        CROSS JOIN LATERAL (
            SELECT greatest(0, least(d.home_requested, d.compute_before)) AS moved
        ) home
        CROSS JOIN LATERAL (
            SELECT greatest(0, least(d.core_requested, d.compute_before - home.moved)) AS moved
        ) core
        """,
    ),
    (
        "component_costs",
        "Cost per (cluster, date, hub, component): the attributable slice mapped to "
        "components, with the home-storage and core moves applied. Components of a hub-day "
        "sum to hub_costs.",
        """
        SELECT cluster, date, hub, component, cost
        FROM attribution.component_cost_daily
        """,
    ),
    (
        "hub_costs",
        "Attributable cost per (cluster, date, hub); untagged cost is the hub 'support'.",
        """
        SELECT cluster, date, hub, cost
        FROM attribution.hub_cost_daily
        """,
    ),
    (
        "total_costs",
        "Per cluster and date, the whole account's usage cost (name 'account') and the part "
        "attributable to the cluster (name 'attributable').",
        """
        SELECT cluster, date, name, cost
        FROM attribution.total_cost_daily
        """,
    ),
    (
        "hub_activity",
        "One row per (cluster, date, hub) with attributable cost or usage on that date.",
        """
        SELECT cluster, date, hub FROM attribution.hub_cost_daily
        UNION
        SELECT cluster, date, hub FROM attribution.usage_total_daily
        """,
    ),
    (
        "user_shares",
        "Per (cluster, date, hub, component, user): the usage, the hub's total usage and the "
        "share (usage / hub total). Hub-days whose total is 0 have no rows (no usage).",
        """
        SELECT u.cluster, u.date, u.hub, u.component, u.username, u.value AS usage, u.unit,
               t.hub_usage, u.value / t.hub_usage AS share
        FROM usage u
        JOIN attribution.usage_total_daily t
          ON t.date = u.date AND t.cluster = u.cluster AND t.hub = u.hub
         AND t.component = u.component
        WHERE t.hub_usage > 0
        """,
    ),
    (
        "user_costs",
        "Per (cluster, date, hub, component, user): component cost x usage / hub usage, "
        "unrounded (24 decimal places), for compute and home storage. One row per user, no "
        "groups.",
        """
        SELECT cluster, date, hub, component, username, usage, hub_usage, share, cost
        FROM attribution.user_cost_daily
        """,
    ),
    (
        "user_group_memberships",
        "Each group-snapshot row with the days it is in force: from its snapshot date to the "
        "day before its hub's next snapshot in the cluster (valid_to NULL: still in force).",
        """
        WITH snapshot_days AS (
            SELECT cluster, hub, date,
                   lead(date) OVER (PARTITION BY cluster, hub ORDER BY date) - 1 AS valid_to
            FROM attribution.snapshot_day
        )
        SELECT g.cluster, g.hub, g.username, g.username_escaped, g.usergroup,
               g.date AS valid_from, d.valid_to
        FROM user_group_snapshot g
        JOIN snapshot_days d ON d.cluster = g.cluster AND d.hub = g.hub AND d.date = g.date
        """,
    ),
    (
        "user_costs_by_group",
        "user_costs repeated once per group row of the hub's snapshot in force that day "
        "('multiple' included; 'none' when absent or no snapshot): group sums double count.",
        """
        SELECT cluster, date, hub, component, username, usergroup, cost
        FROM attribution.user_group_cost_daily
        """,
    ),
    (
        "group_costs",
        "Per (cluster, date, usergroup): the sum of the unrounded per-user costs of the "
        "group's members (users in several groups count in each).",
        """
        SELECT cluster, date, usergroup, cost
        FROM attribution.group_cost_daily
        """,
    ),
    (
        "unattributed_costs",
        "Compute and home-storage cost of a (cluster, date, hub) with no usage of that "
        "component: cost that could not be attributed to users.",
        """
        SELECT c.cluster, c.date, c.hub, c.component, c.cost
        FROM attribution.component_cost_daily c
        WHERE c.component IN ('compute', 'home storage')
          AND NOT EXISTS (
              SELECT FROM attribution.usage_total_daily t
              WHERE t.date = c.date AND t.cluster = c.cluster AND t.hub = c.hub
                AND t.component = c.component AND t.hub_usage > 0
          )
        """,
    ),
    (
        "latest_user_groups",
        "Each hub's latest group snapshot in its cluster, as the exporter wrote it.",
        """
        SELECT g.cluster, g.hub, g.date, g.username, g.username_escaped, g.usergroup
        FROM user_group_snapshot g
        JOIN (SELECT cluster, hub, max(date) AS date
              FROM attribution.snapshot_day GROUP BY cluster, hub) latest
          ON latest.cluster = g.cluster AND latest.hub = g.hub AND latest.date = g.date
        """,
    ),
    (
        "users_with_multiple_groups",
        "One row per real group of each user with more than one, in the hub's latest snapshot.",
        """
        SELECT cluster, username, hub, usergroup
        FROM (
            SELECT cluster, username, hub, usergroup,
                   count(*) OVER (PARTITION BY cluster, hub, username) AS real_groups
            FROM latest_user_groups
            WHERE usergroup NOT IN ('none', 'multiple')
        ) g
        WHERE real_groups > 1
        """,
    ),
    (
        "users_with_no_groups",
        "Users whose only row in their hub's latest snapshot is 'none'.",
        """
        SELECT cluster, username, hub
        FROM latest_user_groups
        GROUP BY cluster, hub, username
        HAVING bool_and(usergroup = 'none')
        """,
    ),
    (
        "unmapped_services",
        "Cost Explorer services in a cluster's attributable cost that service_component does "
        "not map: their cost counts as component 'other'. Add them to service_component.",
        """
        SELECT c.cluster, c.service, min(c.date) AS first_day, max(c.date) AS last_day,
               sum(c.amount) AS cost
        FROM cost c
        WHERE c.slice = 'attributable'
          AND NOT EXISTS (SELECT FROM service_component sc WHERE sc.service = c.service)
        GROUP BY c.cluster, c.service
        """,
    ),
    (
        "etl_status",
        "One row per (cluster, source): schema version, last successful chunk, last day "
        "loaded, and the last 24 hours' rows loaded, requests made and failed chunks. Before "
        "any cluster is known, one row per source with cluster NULL.",
        """
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
        CROSS JOIN (VALUES ('costs'), ('usage')) AS s (source)
        LEFT JOIN run_log r ON r.source = s.source AND r.cluster = k.cluster
        GROUP BY k.cluster, s.source
        """,
    ),
]

# The objects of revisions 0003-0005 that this one replaces, dropped before, in this order.
OLD_VIEWS = (
    "unmapped_services",
    "etl_status",
    "users_with_no_groups",
    "users_with_multiple_groups",
    "latest_user_groups",
    "unattributed_costs",
    "group_costs",
    "user_costs_by_group",
    "user_group_memberships",
    "user_costs",
    "user_shares",
    "hub_activity",
    "total_costs",
    "hub_costs",
    "component_costs",
)
EARLIER_MOVES_AND_COMPONENTS = ("component_cost_moves", "components")


def _assigned_cluster() -> str:
    return context.config.attributes.get("cluster_name") or DEFAULT_CLUSTER


def upgrade() -> None:
    for name in OLD_VIEWS:
        drop_view(name)
    op.execute(DROP_TRIGGERS)
    for name in EARLIER_MOVES_AND_COMPONENTS:
        drop_view(name)
    op.execute("DROP SCHEMA attribution CASCADE")

    op.execute(CLUSTER_COLUMNS)
    assigned = {"cluster": _assigned_cluster()}
    for table in FACT_TABLES:
        op.get_bind().exec_driver_sql(f"UPDATE {table} SET cluster = %(cluster)s", assigned)
    op.get_bind().exec_driver_sql(
        "INSERT INTO cluster (name) SELECT %(cluster)s "
        "WHERE EXISTS (SELECT FROM cost) OR EXISTS (SELECT FROM usage) "
        "OR EXISTS (SELECT FROM run_log)",
        assigned,
    )
    op.execute(CLUSTER_KEYS)
    # The rebuild below plans its joins from these tables' statistics, which know nothing
    # of the new column yet: without them it scanned all the usage once per rollup row.
    op.execute("ANALYZE cost, usage, user_group_snapshot")

    op.execute(ROLLUP_TABLES)
    # component_cost_moves is read by the refresh function, so it comes first.
    for name, comment, sql in VIEWS[:2]:
        create_view(name, sql, comment)
    op.execute(REFRESH_FUNCTIONS)
    op.execute(TRIGGERS)
    for name, comment, sql in VIEWS[2:]:
        create_view(name, sql, comment)
    op.execute("SELECT attribution.refresh_all()")
    # The API's first reads must not wait for autovacuum to learn the new rollups' sizes.
    op.execute(
        "ANALYZE attribution.component_cost_daily, attribution.hub_cost_daily, "
        "attribution.total_cost_daily, attribution.usage_total_daily, "
        "attribution.user_cost_daily, attribution.user_group_cost_daily, "
        "attribution.group_cost_daily, attribution.snapshot_day"
    )


def downgrade() -> None:
    clusters = op.get_bind().exec_driver_sql(
        "SELECT count(*) FROM (SELECT cluster FROM cost UNION SELECT cluster FROM usage "
        "UNION SELECT cluster FROM user_group_snapshot) c"
    )
    if clusters.scalar_one() > 1:
        raise RuntimeError(
            "the warehouse holds rows of several clusters: revision 0005 has no cluster column, "
            "so downgrading would mix them; delete the other clusters' rows first"
        )
    for name, _comment, _sql in reversed(VIEWS[2:]):
        drop_view(name)
    op.execute(DROP_TRIGGERS)
    for name, _comment, _sql in reversed(VIEWS[:2]):
        drop_view(name)
    op.execute("DROP SCHEMA attribution CASCADE")
    op.execute(DROP_CLUSTER_KEYS)
    for earlier in ("0003_attribution_views", "0004_rollup_read_indexes", "0005_unmapped_services"):
        importlib.import_module(f"migrations.versions.{earlier}").upgrade()
