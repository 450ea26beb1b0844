"""The `/metrics` families of budgets, open cost anomalies and webhook delivery.

Read from the warehouse at scrape time, one statement per family: every budget's status on the
API's today (`budget_status(as_of)`, as `/budgets` answers by default), the anomalies of each
cluster's last loaded cost day, and the view `notification_status` once the schema has it.
Each scrape replaces the whole snapshot at once, so a series a budget no longer has (its
forecast once NULL, a removed budget) disappears, and a scrape that cannot read the database
leaves the last snapshot in place (as the ETL figures; `hubcost_api_database_up` says so).
Money is rounded to cents and ratios to 4 places in SQL, as `/budgets` rounds them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator, Sequence

import sqlalchemy as sa
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import Connection

BUDGET_LABELS = ("budget", "period", "cluster", "hub", "usergroup", "user")
ANOMALY_LABELS = ("cluster",)
RECEIVER_LABELS = ("receiver",)

# name -> (help, the column of budget_status it reads). A NULL value is no sample.
BUDGET_GAUGES = {
    "hubcost_budget_amount_usd": ("The budget's amount for its period, USD.", "amount"),
    "hubcost_budget_spent_usd": (
        "The scope's cost from the period start through the last loaded day, USD.",
        "spent",
    ),
    "hubcost_budget_forecast_usd": (
        "Forecast cost at the period end, USD (absent for a total budget, which has no end).",
        "forecast",
    ),
    "hubcost_budget_spent_ratio": ("Spent over amount (1 = the whole amount).", "spent_ratio"),
    "hubcost_budget_forecast_ratio": ("Forecast over amount.", "forecast_ratio"),
    "hubcost_budget_amount_reached_timestamp_seconds": (
        "Start (00:00 UTC) of the day the amount was or is forecast to be reached; absent "
        "when not within the period.",
        "amount_reached_on",
    ),
}
OPEN_ANOMALIES = "hubcost_cost_anomalies_open"
PENDING = "hubcost_notifications_pending"
DELIVERED = "hubcost_notifications_delivered"
FAILURES = "hubcost_notification_failures"


def _view(name: str, *columns: str) -> sa.TableClause:
    return sa.table(name, *(sa.column(column) for column in columns))


TOTAL_COSTS = _view("total_costs", "cluster", "date")
COST_ANOMALIES = _view("cost_anomalies", "cluster", "date")
NOTIFICATION_STATUS = _view(
    "notification_status", "receiver", "pending", "delivered", "failed_attempts"
)


def _budget_statement() -> sa.Select:
    status = (
        sa.func.budget_status(sa.bindparam("as_of", type_=sa.Date))
        .table_valued(
            "name",
            "cluster",
            "hub",
            "usergroup",
            "username",
            "period",
            "amount",
            "spent",
            "forecast",
            "spent_ratio",
            "forecast_ratio",
            "amount_reached_on",
        )
        .alias("status")
    )
    c = status.c
    return sa.select(
        c.name,
        c.period,
        c.cluster,
        c.hub,
        c.usergroup,
        c.username,
        sa.func.round(c.amount, 2).label("amount"),
        sa.func.round(c.spent, 2).label("spent"),
        sa.func.round(c.forecast, 2).label("forecast"),
        sa.func.round(c.spent_ratio, 4).label("spent_ratio"),
        sa.func.round(c.forecast_ratio, 4).label("forecast_ratio"),
        c.amount_reached_on,
    ).order_by(c.name)


def _open_anomalies_statement() -> sa.Select:
    """Per cluster with cost, the anomalies of its last loaded cost day (0 if none)."""
    last = (
        sa.select(TOTAL_COSTS.c.cluster, sa.func.max(TOTAL_COSTS.c.date).label("last_day"))
        .group_by(TOTAL_COSTS.c.cluster)
        .subquery("last")
    )
    a = COST_ANOMALIES
    joined = last.outerjoin(a, sa.and_(a.c.cluster == last.c.cluster, a.c.date == last.c.last_day))
    return (
        sa.select(last.c.cluster, sa.func.count(a.c.date).label("open"))
        .select_from(joined)
        .group_by(last.c.cluster)
        .order_by(last.c.cluster)
    )


BUDGETS = _budget_statement()
ANOMALIES = _open_anomalies_statement()
NOTIFICATIONS = sa.select(NOTIFICATION_STATUS).order_by(NOTIFICATION_STATUS.c.receiver)
HAS_NOTIFICATIONS = sa.select(sa.func.to_regclass("public.notification_status").is_not(None))


@dataclasses.dataclass(frozen=True)
class Snapshot:
    budgets: Sequence[sa.Row] = ()
    anomalies: Sequence[sa.Row] = ()
    notifications: Sequence[sa.Row] = ()


class BudgetFigures(Collector):
    """A registry collector: the families of the last snapshot `read` took."""

    def __init__(self) -> None:
        self._snapshot = Snapshot()
        self._notifications_view = False

    def read(self, conn: Connection, today: dt.date) -> None:
        budgets = list(conn.execute(BUDGETS, {"as_of": today}))
        anomalies = list(conn.execute(ANOMALIES))
        notifications = list(conn.execute(NOTIFICATIONS)) if self._has_notifications(conn) else []
        self._snapshot = Snapshot(budgets, anomalies, notifications)

    def _has_notifications(self, conn: Connection) -> bool:
        # Looked for until found (a schema before its migration has none), then assumed.
        if not self._notifications_view:
            self._notifications_view = bool(conn.execute(HAS_NOTIFICATIONS).scalar_one())
        return self._notifications_view

    def describe(self) -> Iterator[Metric]:
        return self._families(Snapshot())

    def collect(self) -> Iterator[Metric]:
        return self._families(self._snapshot)

    def _families(self, snapshot: Snapshot) -> Iterator[Metric]:
        yield from _budget_families(snapshot.budgets)
        yield _anomaly_family(snapshot.anomalies)
        yield from _notification_families(snapshot.notifications)


def _budget_families(rows: Sequence[sa.Row]) -> Iterator[Metric]:
    for name, (documentation, column) in BUDGET_GAUGES.items():
        family = GaugeMetricFamily(name, documentation, labels=BUDGET_LABELS)
        for row in rows:
            value = getattr(row, column)
            if value is None:
                continue
            if isinstance(value, dt.date):
                value = dt.datetime.combine(value, dt.time(), dt.UTC).timestamp()
            family.add_metric(_budget_labels(row), float(value))
        yield family


def _budget_labels(row: sa.Row) -> list[str]:
    """The budget's name, period and scope; an empty string is "any"."""
    return [
        row.name,
        row.period,
        row.cluster or "",
        row.hub or "",
        row.usergroup or "",
        row.username or "",
    ]


def _anomaly_family(rows: Sequence[sa.Row]) -> Metric:
    family = GaugeMetricFamily(
        OPEN_ANOMALIES,
        "Hub and user cost anomalies on the cluster's last loaded cost day.",
        labels=ANOMALY_LABELS,
    )
    for row in rows:
        family.add_metric([row.cluster], row.open)
    return family


def _notification_families(rows: Sequence[sa.Row]) -> Iterator[Metric]:
    pending = GaugeMetricFamily(
        PENDING, "Events not yet delivered to the receiver.", labels=RECEIVER_LABELS
    )
    delivered = CounterMetricFamily(
        DELIVERED, "Events delivered to the receiver.", labels=RECEIVER_LABELS
    )
    failures = CounterMetricFamily(
        FAILURES,
        "Delivery attempts to the receiver that failed (unreachable, timed out or 5xx).",
        labels=RECEIVER_LABELS,
    )
    for row in rows:
        pending.add_metric([row.receiver], row.pending)
        delivered.add_metric([row.receiver], row.delivered)
        failures.add_metric([row.receiver], row.failed_attempts)
    yield pending
    yield delivered
    yield failures
