"""The attribution views: the public schema read by the API, Grafana and analysts.

Every number's meaning is in the project's docs/sql.md; the rules are those of
spec/attribution.md §1 and §3. Each view's SQL is whole here; a later revision that changes a
view repeats its whole new text and keeps this text for its downgrade.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from migrations.viewops import create_view, drop_view

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

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
        SELECT date, hub, component, sum(amount) AS cost
        FROM (
            SELECT c.date, c.hub, coalesce(sc.component, 'other') AS component, c.amount
            FROM cost c
            LEFT JOIN service_component sc ON sc.service = c.service
            WHERE c.slice = 'attributable'
            UNION ALL
            SELECT m.date, m.hub, moved.component, moved.amount
            FROM component_cost_moves m
            CROSS JOIN LATERAL (VALUES
                ('compute', -(m.home_moved + m.core_moved)),
                ('home storage', m.home_moved),
                ('core', m.core_moved)
            ) AS moved (component, amount)
            WHERE moved.amount <> 0
        ) parts
        GROUP BY date, hub, component
        """,
    ),
    (
        "hub_costs",
        "Attributable cost per (date, hub); untagged cost is the hub 'support'.",
        """
        SELECT date, hub, sum(amount) AS cost
        FROM cost
        WHERE slice = 'attributable'
        GROUP BY date, hub
        """,
    ),
    (
        "total_costs",
        "Per date, the whole account's usage cost (name 'account') and the part attributable "
        "to the cluster (name 'attributable').",
        """
        SELECT date, slice AS name, sum(amount) AS cost
        FROM cost
        WHERE slice IN ('account', 'attributable')
        GROUP BY date, slice
        """,
    ),
    (
        "hub_activity",
        "One row per (date, hub) with attributable cost or usage on that date.",
        """
        SELECT date, hub FROM cost WHERE slice = 'attributable'
        UNION
        SELECT date, hub FROM usage
        """,
    ),
    (
        "user_shares",
        "Per (date, hub, component, user): the usage, the hub's total usage and the share "
        "(usage / hub total). Hub-days whose total is 0 have no rows (no usage).",
        """
        WITH totals AS (
            SELECT date, hub, component, sum(value) AS hub_usage
            FROM usage
            GROUP BY date, hub, component
        )
        SELECT u.date, u.hub, u.component, u.username, u.value AS usage, u.unit,
               t.hub_usage, u.value / t.hub_usage AS share
        FROM usage u
        JOIN totals t ON t.date = u.date AND t.hub = u.hub AND t.component = u.component
        WHERE t.hub_usage > 0
        """,
    ),
    (
        "user_costs",
        "Per (date, hub, component, user): component cost x usage / hub usage, unrounded "
        "(24 decimal places), for compute and home storage. One row per user, no groups.",
        """
        SELECT s.date, s.hub, s.component, s.username, s.usage, s.hub_usage, s.share,
               (c.cost * s.usage)::numeric(1000, 24) / s.hub_usage AS cost
        FROM user_shares s
        JOIN component_costs c
          ON c.date = s.date AND c.hub = s.hub AND c.component = s.component
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
            FROM (SELECT DISTINCT hub, date FROM user_group_snapshot) d
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
        SELECT uc.date, uc.hub, uc.component, uc.username,
               coalesce(g.usergroup, 'none') AS usergroup, uc.cost
        FROM user_costs uc
        LEFT JOIN LATERAL (
            SELECT max(s.date) AS date
            FROM user_group_snapshot s
            WHERE s.hub = uc.hub AND s.date <= uc.date
        ) snap ON true
        LEFT JOIN user_group_snapshot g
          ON g.date = snap.date AND g.hub = uc.hub AND g.username = uc.username
        """,
    ),
    (
        "group_costs",
        "Per (date, usergroup): the sum of the unrounded per-user costs of the group's members "
        "(users in several groups count in each).",
        """
        SELECT date, usergroup, sum(cost) AS cost
        FROM user_costs_by_group
        GROUP BY date, usergroup
        """,
    ),
    (
        "unattributed_costs",
        "Compute and home-storage cost of a (date, hub) with no usage of that component: "
        "cost that could not be attributed to users.",
        """
        SELECT c.date, c.hub, c.component, c.cost
        FROM component_costs c
        WHERE c.component IN ('compute', 'home storage')
          AND NOT EXISTS (
              SELECT FROM user_shares s
              WHERE s.date = c.date AND s.hub = c.hub AND s.component = c.component
          )
        """,
    ),
    (
        "latest_user_groups",
        "Each hub's latest group snapshot, as the exporter wrote it.",
        """
        SELECT g.hub, g.date, g.username, g.username_escaped, g.usergroup
        FROM user_group_snapshot g
        JOIN (SELECT hub, max(date) AS date FROM user_group_snapshot GROUP BY hub) latest
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
    for name, comment, sql in VIEWS:
        create_view(name, sql, comment)


def downgrade() -> None:
    for name, _comment, _sql in reversed(VIEWS):
        drop_view(name)
