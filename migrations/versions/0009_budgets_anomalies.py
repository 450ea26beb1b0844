"""Budgets, their status on any day, and cost anomalies (docs/budgets.md).

`budget` holds the operator's budgets (written by `hubcost budget`, read by the API's role
through the view `budgets`). `budget_status(as_of)` computes every budget's period, spend and
forecast on a day from the public views only, so the read-only role may call it; the view
`budget_status` is that function on today (UTC). Anomalies need each scope's median over the
previous 28 days, too costly to compute per request at a year's scale, so the ETL detects them
after each run (`attribution.detect_anomalies`) into `attribution.cost_anomaly`, read through
the view `cost_anomalies`. Money stays `numeric` throughout: the median is taken on numeric
arrays, never through percentile_cont's float8.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from alembic import op

from migrations.viewops import create_view, drop_view, reader_role

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BUDGET_TABLE = """
CREATE TABLE budget (
    name text PRIMARY KEY,
    cluster text,
    hub text,
    usergroup text,
    username text,
    amount numeric(14, 2) NOT NULL,
    period text NOT NULL,
    start_date date,
    alert_at integer[] NOT NULL DEFAULT '{50,80,100}',
    notify text[] NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT budget_name_not_empty CHECK (name <> ''),
    CONSTRAINT budget_amount_positive CHECK (amount > 0),
    CONSTRAINT budget_period_known CHECK (period IN ('month', 'quarter', 'year', 'total')),
    CONSTRAINT budget_start_with_total CHECK ((period = 'total') = (start_date IS NOT NULL)),
    CONSTRAINT budget_alert_at_range CHECK (
        cardinality(alert_at) > 0 AND 1 <= ALL (alert_at) AND 1000 >= ALL (alert_at))
);
COMMENT ON TABLE budget IS
    'Budgets: a scope (any of cluster, hub, usergroup, username; NULL = any), an amount in '
    'USD per period, alert thresholds in percent and the named webhooks to notify.';

-- The reads a budget's spend makes per scope: one scope's days, by name then date.
CREATE INDEX hub_cost_daily_hub_date
    ON attribution.hub_cost_daily (hub, date) INCLUDE (cluster, cost);
CREATE INDEX user_cost_daily_username_date
    ON attribution.user_cost_daily (username, date) INCLUDE (cluster, hub, cost);
CREATE INDEX group_cost_daily_usergroup_date
    ON attribution.group_cost_daily (usergroup, date) INCLUDE (cluster, cost);
-- A group's budget on one hub: without it, the (usergroup, date) index reads the group's rows
-- on every hub (BENCHMARKS.md, figure 6: 0.8 ms a budget at a year's scale, against 0.1).
CREATE INDEX user_group_cost_daily_usergroup_hub_date
    ON attribution.user_group_cost_daily (usergroup, hub, date) INCLUDE (cluster, username, cost);
"""

ANOMALY_TABLE = """
CREATE TABLE attribution.cost_anomaly (
    cluster text NOT NULL,
    date date NOT NULL,
    scope text NOT NULL CHECK (scope IN ('hub', 'user')),
    hub text NOT NULL,
    username text NOT NULL DEFAULT '',
    cost numeric NOT NULL,
    baseline numeric NOT NULL,
    mad numeric NOT NULL,
    score numeric NOT NULL,
    history_days integer NOT NULL,
    PRIMARY KEY (date, cluster, scope, hub, username)
);
COMMENT ON TABLE attribution.cost_anomaly IS
    'Private: the days detect_anomalies found a hub or user cost far above its baseline.';

CREATE FUNCTION attribution.median(numeric[]) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT (sorted[(n + 1) / 2] + sorted[(n + 2) / 2]) / 2
    FROM (SELECT array_agg(x ORDER BY x) AS sorted, count(x)::integer AS n
          FROM unnest($1) AS x) s
    WHERE n > 0
$fn$;

-- Re-detects the anomalies of the given clusters' days first_day..last_day. A scope-day is an
-- anomaly when the scope had cost on at least 7 of the previous 28 days (its history), and its
-- cost exceeds the history's median by at least min_usd and by at least `factor` times the
-- history's scaled MAD (1.4826 x MAD, at least one cent). Returns the rows written.
CREATE FUNCTION attribution.detect_anomalies(
    clusters text[], first_day date, last_day date, factor numeric, min_usd numeric)
RETURNS integer LANGUAGE plpgsql AS $fn$
DECLARE
    written integer;
BEGIN
    DELETE FROM attribution.cost_anomaly
    WHERE date BETWEEN first_day AND last_day AND cluster = ANY (clusters);
    WITH series AS (
        SELECT cluster, 'hub'::text AS scope, hub, ''::text AS username, date, cost
        FROM attribution.hub_cost_daily
        WHERE date BETWEEN first_day - 28 AND last_day AND cluster = ANY (clusters)
        UNION ALL
        SELECT cluster, 'user', hub, username, date, sum(cost)
        FROM attribution.user_cost_daily
        WHERE date BETWEEN first_day - 28 AND last_day AND cluster = ANY (clusters)
        GROUP BY cluster, hub, username, date
    ), candidate AS (
        SELECT * FROM series
        WHERE date BETWEEN first_day AND last_day AND cost >= min_usd
    ), history AS (
        SELECT c.cluster, c.scope, c.hub, c.username, c.date, c.cost,
               array_agg(h.cost) AS costs, count(*)::integer AS days
        FROM candidate c
        JOIN series h
          ON h.cluster = c.cluster AND h.scope = c.scope AND h.hub = c.hub
         AND h.username = c.username AND h.date BETWEEN c.date - 28 AND c.date - 1
        GROUP BY c.cluster, c.scope, c.hub, c.username, c.date, c.cost
        HAVING count(*) >= 7
    ), baseline AS (
        SELECT history.*, attribution.median(costs) AS median FROM history
        WHERE cost - attribution.median(costs) >= min_usd
    ), scored AS (
        SELECT b.*, attribution.median(
                   ARRAY(SELECT abs(x - b.median) FROM unnest(b.costs) AS x)) AS mad
        FROM baseline b
    )
    INSERT INTO attribution.cost_anomaly
        (cluster, date, scope, hub, username, cost, baseline, mad, score, history_days)
    SELECT cluster, date, scope, hub, username, cost, median, mad,
           (cost - median) / greatest(1.4826 * mad, 0.01), days
    FROM scored
    WHERE (cost - median) / greatest(1.4826 * mad, 0.01) >= factor
    -- Two detections of the same days at once (never under the run lock, but possible from
    -- psql) both delete, then both insert: the second one's rows win instead of failing.
    ON CONFLICT (date, cluster, scope, hub, username) DO UPDATE
        SET cost = excluded.cost, baseline = excluded.baseline, mad = excluded.mad,
            score = excluded.score, history_days = excluded.history_days;
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$fn$;
"""

BUDGETS_COMMENT = (
    "Every budget: its scope (NULL = any cluster, hub, group or user), amount in USD, period "
    "(month, quarter, year, or total from start_date) and alert thresholds in percent."
)
BUDGETS = """
SELECT name, cluster, hub, usergroup, username, amount, period, start_date, alert_at, notify
FROM budget
"""

COST_ANOMALIES_COMMENT = (
    "Days on which a hub's or a user's cost (on that hub) departed from its own baseline, as "
    "the ETL detected them after loading the day: cost, baseline (median of the scope's cost "
    "on its days with cost among the previous 28), MAD and score (excess over the baseline in "
    "scaled MADs). username is NULL for a hub's anomaly."
)
COST_ANOMALIES = """
SELECT cluster, date, scope, hub, nullif(username, '') AS username, cost, baseline, mad, score,
       history_days
FROM attribution.cost_anomaly
"""

# The cost rows of one budget's scope, from the public views (several a day where the view
# has several: a user's components, a cluster-less hub's clusters); not summed per day, since
# the spend only needs their total. Each branch applies to one shape of scope (the others'
# gates are false, so their scans never run) and reads an index that starts with the scope's
# name.
SCOPE_COSTS = """
CREATE FUNCTION budget_scope_costs(
    p_cluster text, p_hub text, p_usergroup text, p_username text, p_from date, p_to date)
RETURNS TABLE (date date, cost numeric)
LANGUAGE sql STABLE AS $fn$
    SELECT parts.date, parts.cost
    FROM (
        SELECT t.date, t.cost FROM total_costs t
        WHERE p_hub IS NULL AND p_usergroup IS NULL AND p_username IS NULL
          AND t.name = 'attributable' AND t.date BETWEEN p_from AND p_to
          AND (p_cluster IS NULL OR t.cluster = p_cluster)
        UNION ALL
        SELECT h.date, h.cost FROM hub_costs h
        WHERE p_hub IS NOT NULL AND p_usergroup IS NULL AND p_username IS NULL
          AND h.hub = p_hub AND h.date BETWEEN p_from AND p_to
          AND (p_cluster IS NULL OR h.cluster = p_cluster)
        UNION ALL
        SELECT u.date, u.cost FROM user_costs u
        WHERE p_usergroup IS NULL AND p_username IS NOT NULL
          AND u.username = p_username AND u.date BETWEEN p_from AND p_to
          AND (p_cluster IS NULL OR u.cluster = p_cluster)
          AND (p_hub IS NULL OR u.hub = p_hub)
        UNION ALL
        SELECT g.date, g.cost FROM group_costs g
        WHERE p_usergroup IS NOT NULL AND p_hub IS NULL AND p_username IS NULL
          AND g.usergroup = p_usergroup AND g.date BETWEEN p_from AND p_to
          AND (p_cluster IS NULL OR g.cluster = p_cluster)
        UNION ALL
        SELECT ug.date, ug.cost FROM user_costs_by_group ug
        WHERE p_usergroup IS NOT NULL AND p_hub IS NOT NULL
          AND ug.usergroup = p_usergroup AND ug.hub = p_hub AND ug.date BETWEEN p_from AND p_to
          AND (p_cluster IS NULL OR ug.cluster = p_cluster)
          AND (p_username IS NULL OR ug.username = p_username)
        UNION ALL
        SELECT ug.date, ug.cost FROM user_costs_by_group ug
        WHERE p_usergroup IS NOT NULL AND p_hub IS NULL AND p_username IS NOT NULL
          AND ug.usergroup = p_usergroup AND ug.username = p_username
          AND ug.date BETWEEN p_from AND p_to
          AND (p_cluster IS NULL OR ug.cluster = p_cluster)
    ) parts
$fn$;
"""

# Every budget's period containing as_of (UTC calendar periods; a total budget, a credit pool,
# runs from its start with no end), with spend through the last loaded day (a day with cost in
# the budget's cluster, or any) not after as_of, and the forecast: spend + the days left in the
# period x the mean daily cost of the last 7 loaded days (fewer at the warehouse's start; the
# scope's days without cost count as 0). A total budget has no end to forecast at, only the day
# its amount is reached. The projected day is left NULL beyond the period, or a century for a
# pool, before it is turned into a date (a tiny rate would overflow one). A total budget
# starting after as_of has no row.
STATUS_FUNCTION = """
CREATE FUNCTION budget_status(as_of date)
RETURNS TABLE (
    name text, cluster text, hub text, usergroup text, username text, period text,
    period_start date, period_end date, amount numeric, last_day date, spent numeric,
    daily_rate numeric, forecast numeric, spent_ratio numeric, forecast_ratio numeric,
    amount_reached_on date, alert_at integer[])
LANGUAGE sql STABLE AS $fn$
    WITH period AS (
        SELECT b.*,
               CASE b.period
                   WHEN 'total' THEN b.start_date
                   ELSE date_trunc(b.period, as_of::timestamp)::date
               END AS period_start,
               CASE b.period
                   WHEN 'month' THEN (date_trunc('month', as_of::timestamp)
                                      + interval '1 month' - interval '1 day')::date
                   WHEN 'quarter' THEN (date_trunc('quarter', as_of::timestamp)
                                        + interval '3 months' - interval '1 day')::date
                   WHEN 'year' THEN (date_trunc('year', as_of::timestamp)
                                     + interval '1 year' - interval '1 day')::date
               END AS period_end
        FROM budgets b
        WHERE b.period <> 'total' OR b.start_date <= as_of
    ), loaded AS (
        SELECT p.*, w.last_day, w.window_start, w.window_days
        FROM period p
        CROSS JOIN LATERAL (
            SELECT max(d.date) AS last_day, min(d.date) AS window_start,
                   count(*)::integer AS window_days
            FROM (SELECT DISTINCT t.date FROM total_costs t
                  WHERE t.date <= as_of AND (p.cluster IS NULL OR t.cluster = p.cluster)
                  ORDER BY t.date DESC LIMIT 7) d
        ) w
    ), spend AS (
        SELECT l.*,
               coalesce(s.spent, 0) AS spent,
               s.recent,
               greatest(l.last_day, l.period_start - 1) AS counted_through
        FROM loaded l
        LEFT JOIN LATERAL (
            SELECT sum(c.cost) FILTER (WHERE c.date >= l.period_start) AS spent,
                   coalesce(sum(c.cost) FILTER (WHERE c.date >= l.window_start), 0) AS recent
            FROM budget_scope_costs(l.cluster, l.hub, l.usergroup, l.username,
                                    least(l.period_start, l.window_start), l.last_day) c
        ) s ON l.last_day IS NOT NULL
    ), reached AS (
        -- The day the running spend reached the amount, read again day by day only for the
        -- budgets whose spend has: the condition inside the subquery gates its scan, where
        -- in the ON clause it would only filter its result.
        SELECT s.*, r.reached_on
        FROM spend s
        LEFT JOIN LATERAL (
            SELECT min(d.date) AS reached_on
            FROM (
                SELECT c.date, sum(sum(c.cost)) OVER (ORDER BY c.date) AS running
                FROM budget_scope_costs(s.cluster, s.hub, s.usergroup, s.username,
                                        s.period_start, s.last_day) c
                WHERE s.spent >= s.amount
                GROUP BY c.date
            ) d
            WHERE d.running >= s.amount
        ) r ON true
    ), projected AS (
        -- Multiplied before dividing by the window's days, so that the forecast and the days
        -- to the amount are exact where the arithmetic is.
        SELECT s.*,
               s.recent / s.window_days AS daily_rate,
               s.spent + (s.period_end - s.counted_through) * s.recent / s.window_days
                   AS forecast,
               CASE WHEN s.recent > 0 AND s.reached_on IS NULL
                    THEN ceil((s.amount - s.spent) * s.window_days / s.recent)
               END AS days_to_amount
        FROM reached s
    )
    SELECT p.name, p.cluster, p.hub, p.usergroup, p.username, p.period,
           p.period_start, p.period_end, p.amount, p.last_day, p.spent, p.daily_rate,
           p.forecast,
           p.spent / p.amount AS spent_ratio,
           p.forecast / p.amount AS forecast_ratio,
           coalesce(
               p.reached_on,
               CASE WHEN p.days_to_amount <= coalesce(p.period_end - p.counted_through, 36525)
                    THEN p.counted_through + p.days_to_amount::integer END
           ) AS amount_reached_on,
           p.alert_at
    FROM projected p
$fn$;
"""

BUDGET_STATUS_COMMENT = (
    "budget_status(today, UTC): every budget's current period, spend through the last "
    "loaded day, daily rate, forecast at the period end and the day the amount is (or is "
    "forecast to be) reached. Call budget_status(date) for another day."
)
# Today in UTC, whatever the session's time zone (current_date follows it).
BUDGET_STATUS = "SELECT * FROM budget_status((now() AT TIME ZONE 'UTC')::date)"

VIEWS = [
    ("budgets", BUDGETS_COMMENT, BUDGETS),
    ("cost_anomalies", COST_ANOMALIES_COMMENT, COST_ANOMALIES),
]


def upgrade() -> None:
    op.execute(BUDGET_TABLE)
    op.execute(ANOMALY_TABLE)
    for name, comment, sql in VIEWS:
        create_view(name, sql, comment)
    op.execute(SCOPE_COSTS)
    op.execute(STATUS_FUNCTION)
    create_view("budget_status", BUDGET_STATUS, BUDGET_STATUS_COMMENT)
    role = reader_role()
    op.execute(
        f"""DO $$ BEGIN
          IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
            GRANT EXECUTE ON FUNCTION budget_status(date) TO "{role}";
            GRANT EXECUTE ON FUNCTION budget_scope_costs(text, text, text, text, date, date)
                TO "{role}";
          END IF;
        END $$"""
    )


def downgrade() -> None:
    drop_view("budget_status")
    op.execute("DROP FUNCTION budget_status(date)")
    op.execute("DROP FUNCTION budget_scope_costs(text, text, text, text, date, date)")
    for name, _comment, _sql in reversed(VIEWS):
        drop_view(name)
    op.execute("DROP FUNCTION attribution.detect_anomalies(text[], date, date, numeric, numeric)")
    op.execute("DROP FUNCTION attribution.median(numeric[])")
    op.execute("DROP TABLE attribution.cost_anomaly")
    op.execute("DROP INDEX attribution.user_group_cost_daily_usergroup_hub_date")
    op.execute("DROP INDEX attribution.group_cost_daily_usergroup_date")
    op.execute("DROP INDEX attribution.user_cost_daily_username_date")
    op.execute("DROP INDEX attribution.hub_cost_daily_hub_date")
    op.execute("DROP TABLE budget")
