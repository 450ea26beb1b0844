"""The attribution views: the public schema read by the API, Grafana and analysts.

Every number's meaning is in docs/sql.md; the rules are docs/attribution.md §3, §5 and §6.

The arithmetic is done once per day, not per read: the private schema `attribution` holds
daily rollup tables (component costs, usage totals, per-user costs with and without groups,
group totals, account totals, the days each hub has a group snapshot), and
`attribution.refresh(first, last)` recomputes a window of them. Statement-level triggers on
the fact tables call it, with the window of the rows changed, inside the writing transaction,
so the rollups are never stale and never half-written, whoever writes (the ETL, a backfill,
an analyst's fix). The public views read the rollups; they are the stable interface.

Each view's and function's SQL is whole here; a later revision that changes one repeats its
whole new text and keeps this text for its downgrade.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from alembic import op

from migrations.viewops import create_view, drop_view

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ROLLUP_TABLES = """
CREATE SCHEMA attribution;
COMMENT ON SCHEMA attribution IS
    'Private: daily rollups kept by triggers. Read the public views instead.';

CREATE TABLE attribution.snapshot_day (
    hub text NOT NULL,
    date date NOT NULL,
    PRIMARY KEY (hub, date)
);
CREATE TABLE attribution.component_cost_daily (
    date date NOT NULL,
    hub text NOT NULL,
    component text NOT NULL,
    cost numeric NOT NULL,
    PRIMARY KEY (date, hub, component)
);
CREATE TABLE attribution.hub_cost_daily (
    date date NOT NULL,
    hub text NOT NULL,
    cost numeric NOT NULL,
    PRIMARY KEY (date, hub)
);
CREATE TABLE attribution.total_cost_daily (
    date date NOT NULL,
    name text NOT NULL,
    cost numeric NOT NULL,
    PRIMARY KEY (date, name)
);
CREATE TABLE attribution.usage_total_daily (
    date date NOT NULL,
    hub text NOT NULL,
    component text NOT NULL,
    hub_usage numeric NOT NULL,
    PRIMARY KEY (date, hub, component)
);
CREATE TABLE attribution.user_cost_daily (
    date date NOT NULL,
    hub text NOT NULL,
    component text NOT NULL,
    username text NOT NULL,
    usage numeric NOT NULL,
    hub_usage numeric NOT NULL,
    share numeric NOT NULL,
    cost numeric NOT NULL,
    PRIMARY KEY (date, hub, component, username)
);
CREATE TABLE attribution.user_group_cost_daily (
    date date NOT NULL,
    hub text NOT NULL,
    component text NOT NULL,
    username text NOT NULL,
    usergroup text NOT NULL,
    cost numeric NOT NULL,
    PRIMARY KEY (date, hub, component, username, usergroup)
);
CREATE INDEX user_group_cost_daily_hub_component_date
    ON attribution.user_group_cost_daily (hub, component, date);
CREATE INDEX user_group_cost_daily_usergroup_date
    ON attribution.user_group_cost_daily (usergroup, date);
CREATE INDEX user_group_cost_daily_username_date
    ON attribution.user_group_cost_daily (username, date);
CREATE TABLE attribution.group_cost_daily (
    date date NOT NULL,
    usergroup text NOT NULL,
    cost numeric NOT NULL,
    PRIMARY KEY (date, usergroup)
);
"""

DROP_ROLLUP_TABLES = "DROP SCHEMA attribution CASCADE"

# Recomputes every rollup of the days first_day..last_day from the facts. The per-user cost
# is component cost x usage / hub usage, multiplied first and carried at 24 decimal places.
REFRESH_FUNCTIONS = """
CREATE FUNCTION attribution.refresh_groups(first_day date, last_day date) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    IF first_day IS NULL OR last_day IS NULL OR first_day > last_day THEN
        RETURN;
    END IF;
    DELETE FROM attribution.user_group_cost_daily WHERE date BETWEEN first_day AND last_day;
    INSERT INTO attribution.user_group_cost_daily (date, hub, component, username, usergroup, cost)
    SELECT uc.date, uc.hub, uc.component, uc.username, coalesce(g.usergroup, 'none'), uc.cost
    FROM attribution.user_cost_daily uc
    LEFT JOIN LATERAL (
        SELECT max(d.date) AS date
        FROM attribution.snapshot_day d
        WHERE d.hub = uc.hub AND d.date <= uc.date
    ) snap ON true
    LEFT JOIN public.user_group_snapshot g
      ON g.date = snap.date AND g.hub = uc.hub AND g.username = uc.username
    WHERE uc.date BETWEEN first_day AND last_day;

    DELETE FROM attribution.group_cost_daily WHERE date BETWEEN first_day AND last_day;
    INSERT INTO attribution.group_cost_daily (date, usergroup, cost)
    SELECT date, usergroup, sum(cost)
    FROM attribution.user_group_cost_daily
    WHERE date BETWEEN first_day AND last_day
    GROUP BY date, usergroup;
END
$fn$;

CREATE FUNCTION attribution.refresh(first_day date, last_day date) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    IF first_day IS NULL OR last_day IS NULL OR first_day > last_day THEN
        RETURN;
    END IF;
    DELETE FROM attribution.component_cost_daily WHERE date BETWEEN first_day AND last_day;
    INSERT INTO attribution.component_cost_daily (date, hub, component, cost)
    SELECT date, hub, component, sum(amount)
    FROM (
        SELECT c.date, c.hub, coalesce(sc.component, 'other') AS component, c.amount
        FROM public.cost c
        LEFT JOIN public.service_component sc ON sc.service = c.service
        WHERE c.slice = 'attributable' AND c.date BETWEEN first_day AND last_day
        UNION ALL
        SELECT m.date, m.hub, moved.component, moved.amount
        FROM public.component_cost_moves m
        CROSS JOIN LATERAL (VALUES
            ('compute', -(m.home_moved + m.core_moved)),
            ('home storage', m.home_moved),
            ('core', m.core_moved)
        ) AS moved (component, amount)
        WHERE moved.amount <> 0 AND m.date BETWEEN first_day AND last_day
    ) parts
    GROUP BY date, hub, component;

    DELETE FROM attribution.hub_cost_daily WHERE date BETWEEN first_day AND last_day;
    INSERT INTO attribution.hub_cost_daily (date, hub, cost)
    SELECT date, hub, sum(amount)
    FROM public.cost
    WHERE slice = 'attributable' AND date BETWEEN first_day AND last_day
    GROUP BY date, hub;

    DELETE FROM attribution.total_cost_daily WHERE date BETWEEN first_day AND last_day;
    INSERT INTO attribution.total_cost_daily (date, name, cost)
    SELECT date, slice, sum(amount)
    FROM public.cost
    WHERE slice IN ('account', 'attributable') AND date BETWEEN first_day AND last_day
    GROUP BY date, slice;

    DELETE FROM attribution.usage_total_daily WHERE date BETWEEN first_day AND last_day;
    INSERT INTO attribution.usage_total_daily (date, hub, component, hub_usage)
    SELECT date, hub, component, sum(value)
    FROM public.usage
    WHERE date BETWEEN first_day AND last_day
    GROUP BY date, hub, component;

    DELETE FROM attribution.user_cost_daily WHERE date BETWEEN first_day AND last_day;
    INSERT INTO attribution.user_cost_daily
        (date, hub, component, username, usage, hub_usage, share, cost)
    SELECT u.date, u.hub, u.component, u.username, u.value, t.hub_usage,
           u.value / t.hub_usage,
           (c.cost * u.value)::numeric(1000, 24) / t.hub_usage
    FROM public.usage u
    JOIN attribution.usage_total_daily t
      ON t.date = u.date AND t.hub = u.hub AND t.component = u.component
    JOIN attribution.component_cost_daily c
      ON c.date = u.date AND c.hub = u.hub AND c.component = u.component
    WHERE u.date BETWEEN first_day AND last_day
      AND t.date BETWEEN first_day AND last_day
      AND c.date BETWEEN first_day AND last_day
      AND t.hub_usage > 0;

    PERFORM attribution.refresh_groups(first_day, last_day);
END
$fn$;

CREATE FUNCTION attribution.refresh_all() RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    TRUNCATE attribution.snapshot_day, attribution.component_cost_daily, attribution.hub_cost_daily,
             attribution.total_cost_daily, attribution.usage_total_daily,
             attribution.user_cost_daily, attribution.user_group_cost_daily,
             attribution.group_cost_daily;
    INSERT INTO attribution.snapshot_day (hub, date)
    SELECT DISTINCT hub, date FROM public.user_group_snapshot;
    PERFORM attribution.refresh(
        (SELECT least(min(date), (SELECT min(date) FROM public.usage)) FROM public.cost),
        (SELECT greatest(max(date), (SELECT max(date) FROM public.usage)) FROM public.cost)
    );
END
$fn$;

-- Costs and usage: recompute the days the statement touched.
CREATE FUNCTION attribution.on_fact_change() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    lo date;
    hi date;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT min(date), max(date) INTO lo, hi FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT min(date), max(date) INTO lo, hi FROM old_rows;
    ELSE
        SELECT min(date), max(date) INTO lo, hi
        FROM (SELECT date FROM new_rows UNION ALL SELECT date FROM old_rows) changed;
    END IF;
    PERFORM attribution.refresh(lo, hi);
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
    changed_hubs text[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT min(date), max(date), array_agg(DISTINCT hub) INTO lo, hi, changed_hubs
        FROM new_rows;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT min(date), max(date), array_agg(DISTINCT hub) INTO lo, hi, changed_hubs
        FROM old_rows;
    ELSE
        SELECT min(date), max(date), array_agg(DISTINCT hub) INTO lo, hi, changed_hubs
        FROM (SELECT date, hub FROM new_rows UNION ALL SELECT date, hub FROM old_rows) changed;
    END IF;
    IF lo IS NULL THEN
        RETURN NULL;
    END IF;
    DELETE FROM attribution.snapshot_day
    WHERE hub = ANY (changed_hubs) AND date BETWEEN lo AND hi;
    INSERT INTO attribution.snapshot_day (hub, date)
    SELECT DISTINCT hub, date FROM public.user_group_snapshot
    WHERE hub = ANY (changed_hubs) AND date BETWEEN lo AND hi;
    SELECT greatest(hi, max(coalesce(
        (SELECT min(d.date) - 1 FROM attribution.snapshot_day d
         WHERE d.hub = h.hub AND d.date > hi),
        (SELECT max(date) FROM attribution.user_cost_daily))))
    INTO hi
    FROM unnest(changed_hubs) AS h (hub);
    PERFORM attribution.refresh_groups(lo, hi);
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
        "Per (date, hub): compute cost before the moves, the home and core amounts requested "
        "and moved out of compute (never below 0), and the shortfall not moved.",
        """
        WITH per_hub_day AS (
            SELECT c.date, c.hub,
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
            GROUP BY c.date, c.hub
        )
        SELECT d.date, d.hub, d.compute_before,
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
        "Cost per (date, hub, component): the attributable slice mapped to components, with "
        "the home-storage and core moves applied. Components of a hub-day sum to hub_costs.",
        """
        SELECT date, hub, component, cost
        FROM attribution.component_cost_daily
        """,
    ),
    (
        "hub_costs",
        "Attributable cost per (date, hub); untagged cost is the hub 'support'.",
        """
        SELECT date, hub, cost
        FROM attribution.hub_cost_daily
        """,
    ),
    (
        "total_costs",
        "Per date, the whole account's usage cost (name 'account') and the part attributable "
        "to the cluster (name 'attributable').",
        """
        SELECT date, name, cost
        FROM attribution.total_cost_daily
        """,
    ),
    (
        "hub_activity",
        "One row per (date, hub) with attributable cost or usage on that date.",
        """
        SELECT date, hub FROM attribution.hub_cost_daily
        UNION
        SELECT date, hub FROM attribution.usage_total_daily
        """,
    ),
    (
        "user_shares",
        "Per (date, hub, component, user): the usage, the hub's total usage and the share "
        "(usage / hub total). Hub-days whose total is 0 have no rows (no usage).",
        """
        SELECT u.date, u.hub, u.component, u.username, u.value AS usage, u.unit,
               t.hub_usage, u.value / t.hub_usage AS share
        FROM usage u
        JOIN attribution.usage_total_daily t
          ON t.date = u.date AND t.hub = u.hub AND t.component = u.component
        WHERE t.hub_usage > 0
        """,
    ),
    (
        "user_costs",
        "Per (date, hub, component, user): component cost x usage / hub usage, unrounded "
        "(24 decimal places), for compute and home storage. One row per user, no groups.",
        """
        SELECT date, hub, component, username, usage, hub_usage, share, cost
        FROM attribution.user_cost_daily
        """,
    ),
    (
        "user_group_memberships",
        "Each group-snapshot row with the days it is in force: from its snapshot date to the "
        "day before the hub's next snapshot (valid_to NULL: still in force).",
        """
        WITH snapshot_days AS (
            SELECT hub, date,
                   lead(date) OVER (PARTITION BY hub ORDER BY date) - 1 AS valid_to
            FROM attribution.snapshot_day
        )
        SELECT g.hub, g.username, g.username_escaped, g.usergroup,
               g.date AS valid_from, d.valid_to
        FROM user_group_snapshot g
        JOIN snapshot_days d ON d.hub = g.hub AND d.date = g.date
        """,
    ),
    (
        "user_costs_by_group",
        "user_costs repeated once per group row of the hub's snapshot in force that day "
        "('multiple' included; 'none' when absent or no snapshot): group sums double count.",
        """
        SELECT date, hub, component, username, usergroup, cost
        FROM attribution.user_group_cost_daily
        """,
    ),
    (
        "group_costs",
        "Per (date, usergroup): the sum of the unrounded per-user costs of the group's members "
        "(users in several groups count in each).",
        """
        SELECT date, usergroup, cost
        FROM attribution.group_cost_daily
        """,
    ),
    (
        "unattributed_costs",
        "Compute and home-storage cost of a (date, hub) with no usage of that component: "
        "cost that could not be attributed to users.",
        """
        SELECT c.date, c.hub, c.component, c.cost
        FROM attribution.component_cost_daily c
        WHERE c.component IN ('compute', 'home storage')
          AND NOT EXISTS (
              SELECT FROM attribution.usage_total_daily t
              WHERE t.date = c.date AND t.hub = c.hub AND t.component = c.component
                AND t.hub_usage > 0
          )
        """,
    ),
    (
        "latest_user_groups",
        "Each hub's latest group snapshot, as the exporter wrote it.",
        """
        SELECT g.hub, g.date, g.username, g.username_escaped, g.usergroup
        FROM user_group_snapshot g
        JOIN (SELECT hub, max(date) AS date FROM attribution.snapshot_day GROUP BY hub) latest
          ON latest.hub = g.hub AND latest.date = g.date
        """,
    ),
    (
        "users_with_multiple_groups",
        "One row per real group of each user with more than one, in the hub's latest snapshot.",
        """
        SELECT username, hub, usergroup
        FROM (
            SELECT username, hub, usergroup,
                   count(*) OVER (PARTITION BY hub, username) AS real_groups
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
        SELECT username, hub
        FROM latest_user_groups
        GROUP BY hub, username
        HAVING bool_and(usergroup = 'none')
        """,
    ),
    (
        "etl_status",
        "One row per source (costs, usage): schema version, last successful chunk, last day "
        "loaded, and the last 24 hours' rows loaded, requests made and failed chunks.",
        """
        SELECT s.source,
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
        FROM (VALUES ('costs'), ('usage')) AS s (source)
        LEFT JOIN run_log r ON r.source = s.source
        GROUP BY s.source
        """,
    ),
]


def upgrade() -> None:
    op.execute(ROLLUP_TABLES)
    # component_cost_moves is read by the refresh function, so it comes first.
    for name, comment, sql in VIEWS[:2]:
        create_view(name, sql, comment)
    op.execute(REFRESH_FUNCTIONS)
    op.execute(TRIGGERS)
    for name, comment, sql in VIEWS[2:]:
        create_view(name, sql, comment)
    # Facts already present (an upgrade of a loaded database) get their rollups now.
    op.execute("SELECT attribution.refresh_all()")


def downgrade() -> None:
    for name, _comment, _sql in reversed(VIEWS[2:]):
        drop_view(name)
    op.execute(DROP_TRIGGERS)
    for name, _comment, _sql in reversed(VIEWS[:2]):
        drop_view(name)
    op.execute(DROP_ROLLUP_TABLES)
