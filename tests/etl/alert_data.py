"""A hand-made March with budgets, for the tests of events and their delivery."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa

from core import schema
from tests.rows import add_costs

TODAY = dt.date(2026, 3, 10)


def add_budget(conn, name, amount, *, period="month", start=None, alert_at=(50, 80, 100), **scope):
    conn.execute(
        sa.insert(schema.budget).values(
            name=name,
            amount=Decimal(amount),
            period=period,
            start_date=start,
            alert_at=list(alert_at),
            notify=list(scope.pop("notify", ())),
            **scope,
        )
    )


def march(conn):
    """prod: $10 a day on March 1-10; lab: $1 a day, then $50 on the 10th (an anomaly)."""
    add_costs(
        conn,
        [(f"2026-03-{d:02d}", "attributable", "prod", "EC2 - Other", 10) for d in range(1, 11)]
        + [
            (f"2026-03-{d:02d}", "attributable", "lab", "EC2 - Other", 50 if d == 10 else 1)
            for d in range(1, 11)
        ],
    )
    # prod-monthly: $100 of $120 spent (83%): 50% and 80% crossed; forecast 100 + 21 days ×
    # $10 = $310, over the amount. pool: $159 of a $1,000 credit (15.9%), its one alert at 10%.
    add_budget(conn, "prod-monthly", "120", hub="prod")
    add_budget(
        conn,
        "pool",
        "1000",
        period="total",
        start=dt.date(2026, 3, 1),
        alert_at=(10,),
        notify=["ops"],
    )
    conn.commit()
