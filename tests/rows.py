"""Writing hand-made facts straight into the tables, for tests that exercise the views.

Each helper writes its rows in ONE statement: the rollups behind the views are refreshed by
statement-level triggers, so row-by-row executemany would refresh once per row.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa

from core import schema

# The cluster of the tests' hand-made facts: a single-cluster warehouse's default one.
CLUSTER = schema.DEFAULT_CLUSTER


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def add_costs(conn, rows, *, metric: str = "UnblendedCost", cluster: str = CLUSTER) -> None:
    """rows: (date, slice, hub, service, amount)."""
    conn.execute(
        sa.insert(schema.cost).values(
            [
                {
                    "date": day(d) if isinstance(d, str) else d,
                    "slice": s,
                    "hub": hub,
                    "service": service,
                    "amount": Decimal(str(amount)),
                    "unit": "USD",
                    "metric": metric,
                    "estimated": False,
                    "cluster": cluster,
                }
                for d, s, hub, service, amount in rows
            ]
        )
    )


def add_usage(conn, rows, *, cluster: str = CLUSTER) -> None:
    """rows: (date, hub, component, username, value)."""
    conn.execute(
        sa.insert(schema.usage).values(
            [
                {
                    "date": day(d) if isinstance(d, str) else d,
                    "hub": hub,
                    "component": component,
                    "username": username,
                    "value": Decimal(str(value)),
                    "unit": "GiB-hours" if component == "compute" else "GiB",
                    "cluster": cluster,
                }
                for d, hub, component, username, value in rows
            ]
        )
    )


def add_groups(conn, rows, *, cluster: str = CLUSTER) -> None:
    """rows: (date, hub, username, usergroup); username_escaped is the username."""
    conn.execute(
        sa.insert(schema.user_group_snapshot).values(
            [
                {
                    "date": day(d) if isinstance(d, str) else d,
                    "hub": hub,
                    "username": username,
                    "username_escaped": username,
                    "usergroup": group,
                    "cluster": cluster,
                }
                for d, hub, username, group in rows
            ]
        )
    )


def select_all(conn, sql: str, **params) -> list[tuple]:
    return [tuple(r) for r in conn.execute(sa.text(sql), params)]
