"""The costs source: daily cost rows per slice, loaded in calendar-month chunks.

The rows come from any `fetch(first, last, requests)` that yields CostRow; Cost Explorer is
the one configured today (CLUSTER_NAME), and its days start at `cost_explorer.oldest_day`: a
window reaching older days is cut there, with one warning naming the days not asked (their
stored rows stay, since no chunk replaces them). After saving, it warns about services the component
map does not know and about home/core cost that could not move out of compute.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from core.schema import SLICES
from etl.load import CostRow, save_costs
from etl.sources import cost_explorer
from etl.sources.base import RequestCounter, register
from etl.windows import Chunk, cost_chunks, costs_window

log = logging.getLogger("hubcost.etl")

FetchCosts = Callable[[dt.date, dt.date, RequestCounter], Iterable[CostRow]]


@dataclass(frozen=True)
class CostsSource:
    cluster: str
    fetch_rows: FetchCosts
    name: str = "costs"
    # The cluster's own LOOKBACK_DAYS / INITIAL_DAYS; None: the run's.
    lookback_days: int | None = None
    initial_days: int | None = None
    # today → the oldest day `fetch_rows` can still serve; None: any day.
    oldest_day: Callable[[dt.date], dt.date] | None = None

    def window(self, today, *, last_loaded, lookback_days, initial_days):
        return costs_window(
            today,
            last_loaded=last_loaded,
            lookback_days=self.lookback_days or lookback_days,
            initial_days=self.initial_days or initial_days,
        )

    def chunks(self, first: dt.date, last: dt.date, today: dt.date) -> list[Chunk]:
        return cost_chunks(self._within_reach(first, last, today), last, today)

    def _within_reach(self, first: dt.date, last: dt.date, today: dt.date) -> dt.date:
        """The window's first day moved up to the oldest day served, saying which days it left."""
        oldest = first if self.oldest_day is None else self.oldest_day(today)
        if first >= oldest:
            return first
        left = min(last, oldest - dt.timedelta(days=1))
        days = f"{first}" if first == left else f"{first}..{left}"
        log.warning(
            "%s %s: Cost Explorer keeps %d months; %s not asked (older than %s); "
            "their stored days are kept",
            self.cluster,
            self.name,
            cost_explorer.HISTORY_MONTHS,
            days,
            oldest,
        )
        return oldest

    def before_fetch(self, conn: Connection, chunk: Chunk) -> None:
        return None

    def fetch(self, chunk: Chunk, context, *, now: dt.datetime, requests: RequestCounter):
        return list(self.fetch_rows(chunk.first, chunk.last, requests))

    def save(self, conn: Connection, chunk: Chunk, batch: list[CostRow], *, said: set[str]) -> int:
        written = save_costs(conn, batch, cluster=self.cluster, first=chunk.first, last=chunk.last)
        _warn_unmapped_services(conn, {row.service for row in batch}, said)
        _warn_shortfalls(conn, self.cluster, chunk)
        return written


@register("costs")
def cost_explorer_source(cluster, clusters) -> CostsSource | None:
    if not cluster.costs_enabled:
        return None
    client = cost_explorer.make_client(cluster)
    query = cost_explorer.CostQuery.from_cluster(cluster)
    slices = None if owns_account_slice(cluster, clusters) else NON_ACCOUNT_SLICES
    return CostsSource(
        cluster.name,
        lambda first, last, requests: cost_explorer.fetch_costs(
            client, query, first=first, last=last, counter=requests, slices=slices
        ),
        lookback_days=cluster.lookback_days,
        initial_days=cluster.initial_days,
        oldest_day=cost_explorer.oldest_day,
    )


NON_ACCOUNT_SLICES = tuple(s for s in SLICES if s != "account")


def owns_account_slice(cluster, clusters) -> bool:
    """Whether the cluster loads its account's `account` slice: the first Cost Explorer
    cluster of that account does, the later ones of a shared (strict) account do not, so the
    account's total is stored once, never counted twice (docs/clusters.md §5)."""
    first = next(c for c in clusters if c.costs_enabled and c.cost_account == cluster.cost_account)
    return first.name == cluster.name


def _warn_unmapped_services(conn: Connection, services: set[str], said: set[str]) -> None:
    known = set(conn.execute(sa.text("SELECT service FROM service_component")).scalars())
    for service in sorted(services - known):
        if f"unmapped {service}" in said:
            continue
        log.warning(
            "Cost Explorer service %r is not in service_component: its cost counts as 'other' "
            "(add it with SQL to map it)",
            service,
        )
        said.add(f"unmapped {service}")


def _warn_shortfalls(conn: Connection, cluster: str, chunk: Chunk) -> None:
    rows = conn.execute(
        sa.text(
            "SELECT date, hub, shortfall FROM component_cost_moves WHERE cluster = :cluster "
            "AND date BETWEEN :first AND :last AND shortfall <> 0 ORDER BY date, hub"
        ),
        {"cluster": cluster, "first": chunk.first, "last": chunk.last},
    )
    for day, hub, shortfall in rows:
        log.warning(
            "%s hub %s: %s USD of home/core cost could not move out of compute (slices overlap)",
            day,
            hub,
            shortfall,
        )
