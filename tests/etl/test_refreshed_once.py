"""A chunk's save refreshes the rollups once (etl/load.py `refreshed_once`, migration 0014).

Two clusters get the same chunks: `once` through the loaders (their statements' triggers
skipped, one `refresh_loaded` after them), `each` through the same statements with the
triggers refreshing after every one, as any other writer is refreshed. Attribution never
crosses clusters, so after every chunk every public view must hold the same rows for both,
the rendered answers included: a day's snapshots replaced (carried forward to the later
days), a hub's snapshots removed from a day, a cost chunk of several days, empty chunks.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa

from core.schema import PUBLIC_VIEWS
from etl.load import (
    CostRow,
    GroupRow,
    UsageRow,
    save_costs,
    save_groups,
    save_usage,
    save_usage_day,
)

DAYS = [dt.date(2026, 3, 1) + dt.timedelta(days=n) for n in range(5)]
EC2 = "Amazon Elastic Compute Cloud - Compute"


def costs(day: dt.date, amount: str) -> list[CostRow]:
    return [
        CostRow(day, "attributable", hub, service, Decimal(amount), "USD", "UnblendedCost", False)
        for hub in ("a", "b")
        for service in (EC2, "EC2 - Other")
    ] + [CostRow(day, "account", None, EC2, Decimal(amount) * 3, "USD", "UnblendedCost", False)]


def usage(day: dt.date, scale: int = 1) -> list[UsageRow]:
    return [
        UsageRow(day, hub, "compute", user, Decimal(value * scale), "GiB-hours")
        for hub in ("a", "b")
        for user, value in (("ann", 3), ("bob", 1), ("cy", 7))
    ] + [UsageRow(day, "a", "home storage", "ann", Decimal("2.5"), "GiB")]


def groups(day: dt.date, pairs: list[tuple[str, str, str]]) -> list[GroupRow]:
    return [GroupRow(day, hub, user, group, user) for hub, user, group in pairs]


def save_each(conn, usage_rows, group_rows, **days) -> None:
    """The same statements as `save_usage_day`, refreshed by the triggers one by one."""
    save_usage(conn, usage_rows, **days)
    save_groups(conn, group_rows, **days)


def views(conn, cluster: str) -> dict[str, list[tuple]]:
    state = {}
    for name in PUBLIC_VIEWS:
        columns = [c["name"] for c in sa.inspect(conn).get_columns(name)]
        if "cluster" not in columns:
            continue
        kept = ", ".join(f'"{c}"' for c in columns if c != "cluster")
        rows = conn.execute(
            sa.text(f'SELECT {kept} FROM "{name}" WHERE cluster = :cluster'), {"cluster": cluster}
        )
        state[name] = sorted((tuple(r) for r in rows), key=repr)
    return state


def test_one_refresh_per_chunk_leaves_what_a_refresh_per_statement_leaves(conn):
    usage_chunks = [
        (DAYS[0], usage(DAYS[0]), groups(DAYS[0], [("a", "ann", "phy"), ("b", "cy", "chem")])),
        (DAYS[1], usage(DAYS[1]), groups(DAYS[1], [("a", "ann", "phy"), ("a", "bob", "art")])),
        (DAYS[3], usage(DAYS[3], 2), groups(DAYS[3], [("a", "cy", "phy")])),
        (DAYS[4], usage(DAYS[4]), []),
        # Again: day 1's snapshots change (carried to days 2 and 3's hub b), day 3 loses hub a.
        (DAYS[1], usage(DAYS[1], 3), groups(DAYS[1], [("b", "bob", "geo")])),
        (DAYS[3], [], []),
    ]
    cost_chunks = [(DAYS[0], DAYS[4], "10.5"), (DAYS[1], DAYS[2], "0.333"), (DAYS[4], DAYS[4], "0")]
    for first, last, amount in cost_chunks[:1]:
        rows = [row for day in DAYS if first <= day <= last for row in costs(day, amount)]
        for cluster in ("once", "each"):
            save_costs(conn, rows, cluster=cluster, first=first, last=last)
    for day, usage_rows, group_rows in usage_chunks:
        save_usage_day(conn, usage_rows, group_rows, cluster="once", first=day, last=day)
        save_each(conn, usage_rows, group_rows, cluster="each", first=day, last=day)
        assert views(conn, "once") == views(conn, "each"), day
    for first, last, amount in cost_chunks[1:]:
        rows = [row for day in DAYS if first <= day <= last for row in costs(day, amount)]
        save_costs(conn, rows, cluster="once", first=first, last=last)
        # The triggers' way: the same two statements, each refreshed.
        conn.execute(
            sa.text("DELETE FROM cost WHERE cluster = 'each' AND date BETWEEN :f AND :l"),
            {"f": first, "l": last},
        )
        conn.execute(
            sa.text(
                "INSERT INTO cost (date, slice, hub, service, amount, unit, metric, estimated, "
                "cluster) SELECT date, slice, hub, service, amount, unit, metric, estimated, "
                "'each' FROM cost WHERE cluster = 'once' AND date BETWEEN :f AND :l"
            ),
            {"f": first, "l": last},
        )
        assert views(conn, "once") == views(conn, "each"), (first, last)
    assert views(conn, "once")["user_costs_by_group"]  # not two empty warehouses
    assert views(conn, "once")["json_rows_daily"]


def test_other_writers_are_refreshed_by_the_triggers(conn):
    save_usage_day(conn, usage(DAYS[0]), [], cluster="c", first=DAYS[0], last=DAYS[0])
    # After a loader's refresh the setting is off again in the same transaction.
    conn.execute(sa.text("UPDATE usage SET value = value * 2 WHERE username = 'ann'"))
    shares = conn.execute(
        sa.text("SELECT usage FROM user_shares WHERE username = 'ann' AND component = 'compute'")
    ).scalars()
    assert sorted(shares) == [Decimal(6), Decimal(6)]
