"""The two bulk answers' rows rendered as JSON at load time, one text per cluster and day.

`/costs-per-user` and `/total-usage` unfiltered are most of a dashboard load's bytes (5.2 and
3.9 MB of a month at 1,000 users), and PostgreSQL spent about half of their time sorting
their rows and writing each as JSON on every request. `attribution.json_rows_daily` holds,
per answer, cluster and day, that day's rows as the answer writes them: each row the
`to_json` text of the endpoint's record, in the endpoint's order, joined by `json_agg`'s
separator. An unfiltered answer over a range is then the days' texts in date order between
`[` and `]`, the same bytes (docs/api.md §3.4).

The texts are kept where the rollups are: `attribution.refresh` renders `total-usage` after
it has rebuilt `usage_total_daily`, `attribution.refresh_groups` renders `costs-per-user`
after `user_group_cost_daily`, both from the public views the endpoints read
(`user_shares`, `user_costs_by_group`), for the clusters and days they recomputed, inside the
writer's transaction. `extra_float_digits` is pinned to 1 while rendering, so a value's digits
do not depend on the writing session (1 is PostgreSQL's default: the shortest exact form).

The public view `json_rows_daily` gives the reader role the texts.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

import importlib

from alembic import op

from migrations.viewops import create_view, drop_view

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TABLE = """
CREATE TYPE attribution.user_cost_json AS (
    date date, hub text, component text, "user" text, value double precision, usergroup text
);
CREATE TYPE attribution.usage_share_json AS (
    date date, "user" text, hub text, component text, value double precision
);
CREATE TABLE attribution.json_rows_daily (
    answer text NOT NULL,
    date date NOT NULL,
    cluster text NOT NULL,
    body text NOT NULL,
    PRIMARY KEY (answer, date, cluster),
    CONSTRAINT json_rows_daily_answer_known CHECK (answer IN ('costs-per-user', 'total-usage'))
);
COMMENT ON TABLE attribution.json_rows_daily IS
    'Private: per answer, cluster and day, the rows of /costs-per-user or /total-usage as '
    'JSON text in the answer''s order; kept by attribution.refresh and refresh_groups.';

-- Each answer's record and order as api/queries.py writes them (costs_per_user, total_usage).
CREATE FUNCTION attribution.render_days(
    answer text, clusters text[], first_day date, last_day date
) RETURNS void LANGUAGE plpgsql SET extra_float_digits = 1 AS $fn$
BEGIN
    IF first_day IS NULL OR last_day IS NULL OR first_day > last_day THEN
        RETURN;
    END IF;
    DELETE FROM attribution.json_rows_daily j
    WHERE j.answer = render_days.answer AND j.date BETWEEN first_day AND last_day
      AND j.cluster = ANY (clusters);
    IF render_days.answer = 'costs-per-user' THEN
        INSERT INTO attribution.json_rows_daily (answer, date, cluster, body)
        SELECT 'costs-per-user', r.date, r.cluster,
               string_agg(to_json(r.element)::text, E', \\n '
                          ORDER BY r.hub, r.component, r.value DESC, r.username, r.usergroup)
        FROM (
            SELECT v.date, v.cluster, v.hub, v.component, v.username, v.usergroup,
                   round(v.cost, 4)::double precision AS value,
                   ROW(v.date, v.hub, v.component, v.username,
                       round(v.cost, 4)::double precision,
                       v.usergroup)::attribution.user_cost_json AS element
            FROM public.user_costs_by_group v
            WHERE v.date BETWEEN first_day AND last_day AND v.cluster = ANY (clusters)
        ) r
        GROUP BY r.date, r.cluster;
    ELSE
        INSERT INTO attribution.json_rows_daily (answer, date, cluster, body)
        SELECT 'total-usage', v.date, v.cluster,
               string_agg(
                   to_json(ROW(v.date, v.username, v.hub, v.component,
                               v.share::double precision)::attribution.usage_share_json)::text,
                   E', \\n ' ORDER BY v.component, v.hub, v.username)
        FROM public.user_shares v
        WHERE v.date BETWEEN first_day AND last_day AND v.cluster = ANY (clusters)
        GROUP BY v.date, v.cluster;
    END IF;
END
$fn$;
"""

# Revision 0006's rollup functions, each calling render_days once its inputs are rebuilt.
ROLLUP_FUNCTIONS = """
CREATE OR REPLACE FUNCTION attribution.refresh_groups(clusters text[], first_day date, last_day date)
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

    PERFORM attribution.render_days('costs-per-user', clusters, first_day, last_day);
END
$fn$;

CREATE OR REPLACE FUNCTION attribution.refresh(clusters text[], first_day date, last_day date)
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

    PERFORM attribution.render_days('total-usage', clusters, first_day, last_day);
    PERFORM attribution.refresh_groups(clusters, first_day, last_day);
END
$fn$;

CREATE OR REPLACE FUNCTION attribution.refresh_all() RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
    TRUNCATE attribution.snapshot_day, attribution.component_cost_daily, attribution.hub_cost_daily,
             attribution.total_cost_daily, attribution.usage_total_daily,
             attribution.user_cost_daily, attribution.user_group_cost_daily,
             attribution.group_cost_daily, attribution.json_rows_daily;
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

RENDER_EVERYTHING = """
SELECT attribution.render_days(answer, ARRAY(SELECT name FROM public.cluster),
                               (SELECT min(date) FROM public.usage),
                               (SELECT max(date) FROM public.usage))
FROM (VALUES ('total-usage'), ('costs-per-user')) AS answers (answer);
"""

VIEW = (
    "json_rows_daily",
    "Per answer (costs-per-user, total-usage), cluster and day: that day's rows of the "
    "unfiltered answer as JSON text, in the answer's order, joined by ', \\n '. The API "
    "answers an unfiltered range with the days' texts in date order between [ and ].",
    "SELECT answer, cluster, date, body FROM attribution.json_rows_daily",
)


def upgrade() -> None:
    op.execute(TABLE)
    op.execute(ROLLUP_FUNCTIONS)
    op.execute(RENDER_EVERYTHING)
    name, comment, sql = VIEW
    create_view(name, sql, comment)


def downgrade() -> None:
    drop_view(VIEW[0])
    op.execute("DROP FUNCTION attribution.refresh_all()")
    op.execute("DROP FUNCTION attribution.refresh(text[], date, date)")
    op.execute("DROP FUNCTION attribution.refresh_groups(text[], date, date)")
    earlier = importlib.import_module("migrations.versions.0006_cluster_dimension")
    op.execute(earlier.ROLLUP_FUNCTIONS)
    op.execute("DROP FUNCTION attribution.render_days(text, text[], date, date)")
    op.execute("DROP TABLE attribution.json_rows_daily")
    op.execute("DROP TYPE attribution.usage_share_json")
    op.execute("DROP TYPE attribution.user_cost_json")
