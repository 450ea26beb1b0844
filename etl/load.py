"""Loaders: the rows a source fetched, written into the warehouse tables.

Each `save_*` takes a connection (the caller owns the transaction) and a chunk's rows, deletes
every row of the chunk's days for that table and inserts the new ones: re-running a chunk gives
identical tables, and a day that no longer has data loses its old rows. The row types below are
the contract between the sources and the loaders.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from core.schema import SLICES, cost, usage, user_group_snapshot

COST_UNIT = "USD"
COMPUTE_UNIT = "GiB-hours"
HOME_STORAGE_UNIT = "GiB"


DEFER_REFRESH = sa.text("SELECT set_config('hubcost.defer_refresh', :deferred, true)")
REFRESH_LOADED = sa.text(
    "SELECT attribution.refresh_loaded(:cluster, :first, :last, :snapshots_loaded)"
)


class LoadError(ValueError):
    """Rows that must not be stored (a unit other than USD, a day outside the chunk...)."""


@dataclass(frozen=True)
class CostRow:
    date: dt.date
    slice: str  # account | attributable | home | core
    hub: str | None  # None only for the account slice
    service: str
    amount: Decimal
    unit: str
    metric: str
    estimated: bool


@dataclass(frozen=True)
class UsageRow:
    date: dt.date
    hub: str
    component: str  # compute | home storage
    username: str
    value: Decimal  # GiB-hours for compute, mean GiB for home storage
    unit: str
    cpu_core_hours: Decimal | None = None


@dataclass(frozen=True)
class GroupRow:
    date: dt.date
    hub: str
    username: str
    usergroup: str
    username_escaped: str


@contextlib.contextmanager
def refreshed_once(
    conn: Connection, *, cluster: str, first: dt.date, last: dt.date, snapshots_loaded: bool
) -> Iterator[None]:
    """The writes inside refresh the rollups of the cluster's days first..last once, after
    them, instead of once per statement through the triggers (migration 0014).
    `snapshots_loaded`: they replace that cluster's group snapshots of those days."""
    conn.execute(DEFER_REFRESH, {"deferred": "on"})
    yield
    conn.execute(DEFER_REFRESH, {"deferred": "off"})
    params = {"cluster": cluster, "first": first, "last": last}
    conn.execute(REFRESH_LOADED, {**params, "snapshots_loaded": snapshots_loaded})


def save_costs(
    conn: Connection, rows: Iterable[CostRow], *, cluster: str, first: dt.date, last: dt.date
) -> int:
    """Replace the cluster's cost rows of days first..last (all slices); return the rows written."""
    rows = list(rows)
    for row in rows:
        _check_day(row.date, first, last)
        if row.unit != COST_UNIT:
            raise LoadError(
                f"Cost Explorer answered in {row.unit!r} for {row.service} on {row.date}; "
                f"only {COST_UNIT} is stored, units are never mixed"
            )
        if row.slice not in SLICES:
            raise LoadError(f"unknown cost slice {row.slice!r}")
    days = {"cluster": cluster, "first": first, "last": last}
    with refreshed_once(conn, **days, snapshots_loaded=False):
        return _replace(conn, cost, rows, cluster, first, last)


def save_usage_day(
    conn: Connection,
    usage_rows: Iterable[UsageRow],
    group_rows: Iterable[GroupRow],
    *,
    cluster: str,
    first: dt.date,
    last: dt.date,
) -> int:
    """Replace the cluster's usage and group snapshots of days first..last, refreshed once."""
    days = {"cluster": cluster, "first": first, "last": last}
    with refreshed_once(conn, **days, snapshots_loaded=True):
        return save_usage(conn, usage_rows, **days) + save_groups(conn, group_rows, **days)


def save_usage(
    conn: Connection, rows: Iterable[UsageRow], *, cluster: str, first: dt.date, last: dt.date
) -> int:
    """Replace the cluster's usage rows (compute and home storage) of days first..last."""
    rows = list(rows)
    for row in rows:
        _check_day(row.date, first, last)
    return _replace(conn, usage, rows, cluster, first, last)


def save_groups(
    conn: Connection, rows: Iterable[GroupRow], *, cluster: str, first: dt.date, last: dt.date
) -> int:
    """Replace the cluster's group snapshots of days first..last."""
    rows = list(rows)
    for row in rows:
        _check_day(row.date, first, last)
    return _replace(conn, user_group_snapshot, rows, cluster, first, last)


def _check_day(day: dt.date, first: dt.date, last: dt.date) -> None:
    if not first <= day <= last:
        raise LoadError(f"a row dated {day} is outside the chunk {first}..{last}")


def _replace(
    conn: Connection, table: sa.Table, rows: list, cluster: str, first: dt.date, last: dt.date
) -> int:
    conn.execute(
        sa.delete(table).where(table.c.cluster == cluster, table.c.date.between(first, last))
    )
    if rows:
        # COPY, in the caller's transaction: executemany (pipelined) was ~40x slower here.
        names = [f.name for f in fields(rows[0])]
        columns = ", ".join(f'"{table.c[name].name}"' for name in [*names, "cluster"])
        cursor = conn.connection.driver_connection.cursor()
        with cursor.copy(f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row((*(getattr(row, name) for name in names), cluster))
    return len(rows)
