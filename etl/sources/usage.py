"""The usage source: per-user usage and the day's group snapshot, one day per chunk.

The rows come from any `fetch(day, now, earlier_usernames)` returning a UsageDay; Prometheus
is the one configured today (PROMETHEUS_URL). Before fetching it reads each hub's latest
snapshot before the day, so escaped directory names map back to the usernames it saw.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from etl.load import save_usage_day
from etl.sources.base import RequestCounter, register
from etl.sources.prometheus import UsageDay
from etl.windows import Chunk, usage_chunks, usage_window

FetchUsage = Callable[[dt.date, dt.datetime, Mapping[str, Mapping[str, str]]], UsageDay]


@dataclass(frozen=True)
class UsageSource:
    cluster: str
    fetch_day: FetchUsage
    name: str = "usage"
    initial_days: int | None = None  # the cluster's own INITIAL_DAYS; None: the run's

    def window(self, today, *, last_loaded, lookback_days, initial_days):
        return usage_window(
            today, last_loaded=last_loaded, initial_days=self.initial_days or initial_days
        )

    def chunks(self, first: dt.date, last: dt.date, today: dt.date) -> list[Chunk]:
        return usage_chunks(first, last, today)

    def before_fetch(self, conn: Connection, chunk: Chunk) -> dict[str, dict[str, str]]:
        return earlier_usernames(conn, self.cluster, chunk.first)

    def fetch(self, chunk: Chunk, context, *, now: dt.datetime, requests: RequestCounter):
        day = self.fetch_day(chunk.first, now, context)
        requests.count += day.requests
        return day

    def save(self, conn: Connection, chunk: Chunk, batch: UsageDay, *, said: set[str]) -> int:
        days = {"cluster": self.cluster, "first": chunk.first, "last": chunk.last}
        return save_usage_day(conn, batch.usage, batch.groups, **days)


@register("usage")
def prometheus_source(cluster, clusters) -> UsageSource | None:
    if not cluster.usage_enabled:
        return None
    from etl.sources import prometheus

    client = prometheus.make_client(cluster)
    return UsageSource(
        cluster.name,
        lambda day, now, earlier: prometheus.fetch_usage_day(
            client, day, now=now, earlier_usernames=earlier
        ),
        initial_days=cluster.initial_days,
    )


def earlier_usernames(conn: Connection, cluster: str, day: dt.date) -> dict[str, dict[str, str]]:
    """hub → username_escaped → username, from each hub's latest snapshot before `day`."""
    rows = conn.execute(
        sa.text(
            """
            SELECT g.hub, g.username_escaped, g.username
            FROM user_group_snapshot g
            JOIN (SELECT hub, max(date) AS date FROM user_group_snapshot
                  WHERE cluster = :cluster AND date < :day GROUP BY hub) latest
              ON latest.hub = g.hub AND latest.date = g.date
            WHERE g.cluster = :cluster
            """
        ),
        {"cluster": cluster, "day": day},
    )
    names: dict[str, dict[str, str]] = {}
    for hub, escaped, username in rows:
        names.setdefault(hub, {})[escaped] = username
    return names
