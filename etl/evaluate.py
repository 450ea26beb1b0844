"""After a run that loaded something: judge its days for anomalies, record the new events.

`evaluate` runs once per run, in one transaction, under the run lock (docs/budgets.md §3, §5):
`attribution.detect_anomalies` re-judges the clusters and days the run loaded; then one
statement records every event not recorded yet (a budget threshold crossed by spend, a
budget's forecast passing its amount, a new anomaly on one of the last ANOMALY_EVENT_DAYS) and
one delivery per receiver that should get it. An event's key names what it is about, and the
insert does nothing on a key already there: a repeated run, a re-loaded day or two runs at
once never record an event (nor its deliveries) twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine

from core.webhooks import Webhook
from etl.windows import Chunk

log = logging.getLogger("hubcost.etl.evaluate")

# Anomalies on older days (a backfill's) are in the view but not posted: old news.
ANOMALY_EVENT_DAYS = 7


@dataclass(frozen=True)
class AnomalyRule:
    factor: Decimal  # ANOMALY_FACTOR: the least score
    min_usd: Decimal  # ANOMALY_MIN_USD: the least cost, and the least excess over the baseline


@dataclass(frozen=True)
class Evaluation:
    anomalies: int  # anomaly rows detected on the loaded days
    events: int  # events recorded by this evaluation
    deliveries: int  # deliveries those events are waiting for


@dataclass(frozen=True)
class LoadedSpan:
    """The clusters a run loaded and the days from its first loaded day to its last."""

    clusters: tuple[str, ...]
    first: dt.date
    last: dt.date

    @classmethod
    def of(cls, chunks: Iterable[Chunk]) -> LoadedSpan | None:
        chunks = list(chunks)
        if not chunks:
            return None
        return cls(
            clusters=tuple(sorted({c.cluster for c in chunks if c.cluster is not None})),
            first=min(c.first for c in chunks),
            last=max(c.last for c in chunks),
        )


DETECT = sa.text(
    "SELECT attribution.detect_anomalies("
    "CAST(:clusters AS text[]), :first, :last, :factor, :min_usd)"
).bindparams(
    sa.bindparam("clusters", type_=postgresql.ARRAY(sa.Text)),
    sa.bindparam("factor", type_=sa.Numeric),
    sa.bindparam("min_usd", type_=sa.Numeric),
)

# Dates in keys go through to_char: a date's text form follows the server's DateStyle.
RECORD_EVENTS = sa.text(
    """
WITH status AS (
    SELECT * FROM budget_status(:today) WHERE last_day IS NOT NULL
), budget_details AS (
    SELECT s.*, jsonb_build_object(
        'period', s.period,
        'period_start', to_char(s.period_start, 'YYYY-MM-DD'),
        'period_end', to_char(s.period_end, 'YYYY-MM-DD'),
        'last_day', to_char(s.last_day, 'YYYY-MM-DD'),
        'amount', s.amount::text,
        'spent', s.spent::text,
        'spent_ratio', s.spent_ratio::text,
        'daily_rate', s.daily_rate::text,
        'forecast', s.forecast::text,
        'forecast_ratio', s.forecast_ratio::text,
        'amount_reached_on', to_char(s.amount_reached_on, 'YYYY-MM-DD'),
        'scope', jsonb_build_object(
            'cluster', s.cluster, 'hub', s.hub, 'group', s.usergroup, 'user', s.username)
    ) AS details
    FROM status s
), candidate (key, kind, cluster, budget, about_day, details, rank) AS (
    SELECT 'budget_threshold:' || b.name || ':' || to_char(b.period_start, 'YYYY-MM-DD')
               || ':' || t.percent,
           'budget_threshold', b.cluster, b.name, b.last_day,
           b.details || jsonb_build_object('threshold_percent', t.percent), t.percent
    FROM budget_details b
    CROSS JOIN LATERAL unnest(b.alert_at) AS t (percent)
    WHERE b.spent_ratio >= t.percent::numeric / 100
    UNION ALL
    SELECT 'budget_forecast:' || b.name || ':' || to_char(b.period_start, 'YYYY-MM-DD'),
           'budget_forecast', b.cluster, b.name, b.last_day, b.details, 1001
    FROM budget_details b
    WHERE b.forecast_ratio >= 1
    UNION ALL
    SELECT 'cost_anomaly:' || a.cluster || ':' || a.scope || ':' || a.hub || ':' || a.username
               || ':' || to_char(a.date, 'YYYY-MM-DD'),
           'cost_anomaly', a.cluster, NULL, a.date,
           jsonb_build_object(
               'scope', a.scope, 'hub', a.hub, 'user', nullif(a.username, ''),
               'cost', a.cost::text, 'baseline', a.baseline::text, 'mad', a.mad::text,
               'score', a.score::text, 'history_days', a.history_days), 0
    FROM attribution.cost_anomaly a
    WHERE a.cluster = ANY (CAST(:clusters AS text[])) AND a.date BETWEEN :first AND :last
      AND a.date > CAST(:today AS date) - CAST(:anomaly_event_days AS integer)
), new AS (
    INSERT INTO notification_event (key, kind, cluster, budget, about_day, details)
    SELECT key, kind, cluster, budget, about_day, details FROM candidate
    -- Ids in the order to post: by day, then a budget's thresholds rising, then its forecast.
    ORDER BY about_day, coalesce(budget, ''), rank, key
    ON CONFLICT (key) DO NOTHING
    RETURNING id, budget
), delivery AS (
    INSERT INTO notification_delivery (event_id, receiver)
    SELECT new.id, r.name
    FROM new
    CROSS JOIN unnest(CAST(:receivers AS text[]), CAST(:named AS boolean[])) AS r (name, named)
    LEFT JOIN budget b ON b.name = new.budget
    WHERE NOT r.named OR r.name = ANY (b.notify)
    RETURNING 1
)
SELECT (SELECT count(*) FROM new) AS events, (SELECT count(*) FROM delivery) AS deliveries
"""
).bindparams(
    sa.bindparam("clusters", type_=postgresql.ARRAY(sa.Text)),
    sa.bindparam("receivers", type_=postgresql.ARRAY(sa.Text)),
    sa.bindparam("named", type_=postgresql.ARRAY(sa.Boolean)),
    sa.bindparam("today", type_=sa.Date),
    sa.bindparam("first", type_=sa.Date),
    sa.bindparam("last", type_=sa.Date),
)

NAMED_IN_BUDGETS = sa.text("SELECT DISTINCT unnest(notify) FROM budget ORDER BY 1")


def evaluate(
    engine: Engine,
    *,
    loaded: Iterable[Chunk],
    today: dt.date,
    rule: AnomalyRule,
    receivers: tuple[Webhook, ...],
) -> Evaluation:
    """Detect the anomalies of the loaded span, then record the new events, in one transaction."""
    span = LoadedSpan.of(loaded)
    with engine.begin() as conn:
        anomalies = detect_anomalies(conn, span, rule) if span else 0
        events, deliveries = record_events(conn, span, today=today, receivers=receivers)
        _warn_of_unknown_receivers(conn, receivers)
    return Evaluation(anomalies=anomalies, events=events, deliveries=deliveries)


def detect_anomalies(conn: Connection, span: LoadedSpan, rule: AnomalyRule) -> int:
    """Re-judge the span's days (their previous anomaly rows are replaced); rows written."""
    return conn.execute(
        DETECT,
        {
            "clusters": list(span.clusters),
            "first": span.first,
            "last": span.last,
            "factor": rule.factor,
            "min_usd": rule.min_usd,
        },
    ).scalar_one()


def record_events(
    conn: Connection, span: LoadedSpan | None, *, today: dt.date, receivers: tuple[Webhook, ...]
) -> tuple[int, int]:
    """Record the events not recorded yet, with their deliveries; (events, deliveries)."""
    row = conn.execute(
        RECORD_EVENTS,
        {
            "today": today,
            "clusters": list(span.clusters) if span else [],
            "first": span.first if span else today,
            "last": span.last if span else today,
            "anomaly_event_days": ANOMALY_EVENT_DAYS,
            "receivers": [r.name for r in receivers],
            "named": [r.named for r in receivers],
        },
    ).one()
    return row.events, row.deliveries


def _warn_of_unknown_receivers(conn: Connection, receivers: tuple[Webhook, ...]) -> None:
    known = {r.name for r in receivers if r.named}
    unknown = [name for (name,) in conn.execute(NAMED_IN_BUDGETS) if name not in known]
    if unknown:
        log.warning(
            "budgets notify %s, which NOTIFY_WEBHOOK_URLS does not name: their events go to "
            "the unnamed webhooks only",
            ", ".join(unknown),
        )
