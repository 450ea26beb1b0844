"""/metrics: the per-budget gauges, the open cost anomalies per cluster and the webhook delivery
figures, read from a hand-made warehouse; the exposition lines are written out.

The API's clock is 2026-01-10 (tests/api/conftest.py), so the budgets' status is that day's.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa

from core import schema
from tests.rows import add_costs


def costs(conn, cluster: str = "default") -> None:
    """prod USD 10 a day from Jan 1 to 8, staging USD 2 a day from Jan 5 to 8."""
    days = [dt.date(2026, 1, d) for d in range(1, 9)]
    rows = [(d, "attributable", "prod", "EC2 - Other", 10) for d in days]
    rows += [(d, "attributable", "staging", "EC2 - Other", 2) for d in days[4:]]
    add_costs(conn, rows, cluster=cluster)


def add_budgets(conn, rows: list[dict]) -> None:
    """Each row's scope keys and start_date default to NULL."""
    keys = {"cluster": None, "hub": None, "usergroup": None, "username": None, "start_date": None}
    conn.execute(sa.insert(schema.budget), [keys | row for row in rows])


def budgets(conn) -> None:
    add_budgets(
        conn,
        [
            {"name": "prod-monthly", "hub": "prod", "amount": Decimal(200), "period": "month"},
            {
                "name": "credits",
                "amount": Decimal(100),
                "period": "total",
                "start_date": dt.date(2026, 1, 5),
            },
            {
                "name": "nobody's",
                "cluster": "default",
                "usergroup": "physics",
                "username": 'o"brien',
                "amount": Decimal("10.50"),
                "period": "year",
            },
            # Starts after the API's today: no period contains it, so no series.
            {
                "name": "later",
                "amount": Decimal(5),
                "period": "total",
                "start_date": dt.date(2026, 2, 1),
            },
        ],
    )


def family(text: str, name: str) -> list[str]:
    """The exposition lines of one family: HELP, TYPE and its samples."""
    return [
        line
        for line in text.splitlines()
        if line.split(" ", 3)[2:3] == [name] or line.split("{")[0].split(" ")[0] == name
    ]


def samples(text: str, name: str) -> list[str]:
    return [line for line in family(text, name) if not line.startswith("#")]


def day_start(day: str) -> float:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), dt.UTC).timestamp()


# The exposition sorts labels by name, and escapes values: the user o"brien.
PROD = 'budget="prod-monthly",cluster="",hub="prod",period="month",user="",usergroup=""'
CREDITS = 'budget="credits",cluster="",hub="",period="total",user="",usergroup=""'
NOBODY = (
    'budget="nobody\'s",cluster="default",hub="",period="year",user="o\\"brien",usergroup="physics"'
)


def test_every_budget_has_its_amount_spend_and_forecast(engine, client):
    with engine.begin() as conn:
        costs(conn)
        budgets(conn)
    text = client.get("/metrics").text
    # prod: spent 8 x 10; the last 7 loaded days' mean is 10, and 23 days are left in January.
    # credits (everything since Jan 5): 4 x (10 + 2) = 48, no end so no forecast; the last 7
    # days' mean is 78/7, so the remaining 52 last 5 more days: Jan 13. nobody's: no cost.
    assert family(text, "hubcost_budget_amount_usd") == [
        "# HELP hubcost_budget_amount_usd The budget's amount for its period, USD.",
        "# TYPE hubcost_budget_amount_usd gauge",
        f"hubcost_budget_amount_usd{{{CREDITS}}} 100.0",
        f"hubcost_budget_amount_usd{{{NOBODY}}} 10.5",
        f"hubcost_budget_amount_usd{{{PROD}}} 200.0",
    ]
    assert samples(text, "hubcost_budget_spent_usd") == [
        f"hubcost_budget_spent_usd{{{CREDITS}}} 48.0",
        f"hubcost_budget_spent_usd{{{NOBODY}}} 0.0",
        f"hubcost_budget_spent_usd{{{PROD}}} 80.0",
    ]
    assert samples(text, "hubcost_budget_forecast_usd") == [
        f"hubcost_budget_forecast_usd{{{NOBODY}}} 0.0",
        f"hubcost_budget_forecast_usd{{{PROD}}} 310.0",
    ]
    assert samples(text, "hubcost_budget_spent_ratio") == [
        f"hubcost_budget_spent_ratio{{{CREDITS}}} 0.48",
        f"hubcost_budget_spent_ratio{{{NOBODY}}} 0.0",
        f"hubcost_budget_spent_ratio{{{PROD}}} 0.4",
    ]
    assert samples(text, "hubcost_budget_forecast_ratio") == [
        f"hubcost_budget_forecast_ratio{{{NOBODY}}} 0.0",
        f"hubcost_budget_forecast_ratio{{{PROD}}} 1.55",
    ]
    # prod reaches 200 after 12 more days at 10 a day: Jan 20. nobody's never does.
    assert day_start("2026-01-13") == 1_768_262_400
    assert day_start("2026-01-20") == 1_768_867_200
    assert samples(text, "hubcost_budget_amount_reached_timestamp_seconds") == [
        f"hubcost_budget_amount_reached_timestamp_seconds{{{CREDITS}}} 1.7682624e+09",
        f"hubcost_budget_amount_reached_timestamp_seconds{{{PROD}}} 1.7688672e+09",
    ]


def test_a_removed_budget_loses_its_series(engine, client):
    with engine.begin() as conn:
        costs(conn)
        budgets(conn)
    assert len(samples(client.get("/metrics").text, "hubcost_budget_amount_usd")) == 3
    with engine.begin() as conn:
        conn.execute(sa.delete(schema.budget).where(schema.budget.c.name != "credits"))
    text = client.get("/metrics").text
    assert samples(text, "hubcost_budget_amount_usd") == [
        f"hubcost_budget_amount_usd{{{CREDITS}}} 100.0"
    ]
    assert samples(text, "hubcost_budget_forecast_usd") == []


def test_the_families_are_there_before_any_budget(client):
    text = client.get("/metrics").text
    assert "hubcost_api_database_up 1.0" in text
    assert family(text, "hubcost_budget_spent_usd") == [
        "# HELP hubcost_budget_spent_usd The scope's cost from the period start through the "
        "last loaded day, USD.",
        "# TYPE hubcost_budget_spent_usd gauge",
    ]
    assert family(text, "hubcost_cost_anomalies_open") == [
        "# HELP hubcost_cost_anomalies_open Hub and user cost anomalies on the cluster's last "
        "loaded cost day.",
        "# TYPE hubcost_cost_anomalies_open gauge",
    ]


def anomaly(cluster: str, day: str, scope: str, hub: str, username: str = "") -> dict:
    return {
        "cluster": cluster,
        "date": dt.date.fromisoformat(day),
        "scope": scope,
        "hub": hub,
        "username": username,
        "cost": Decimal(40),
        "baseline": Decimal(10),
        "mad": Decimal(1),
        "score": Decimal("20.2"),
        "history_days": 28,
    }


COST_ANOMALY = sa.table(
    "cost_anomaly",
    *(sa.column(c) for c in anomaly("c", "2026-01-01", "hub", "h")),
    schema="attribution",
)


def test_open_anomalies_are_those_of_each_clusters_last_cost_day(engine, client):
    west = [("2026-01-06", "attributable", "prod", "EC2 - Other", 3)]
    with engine.begin() as conn:
        costs(conn, "east")  # last cost day Jan 8
        add_costs(conn, west, cluster="west")
        costs(conn, "quiet")
        conn.execute(
            sa.insert(COST_ANOMALY),
            [
                anomaly("east", "2026-01-08", "hub", "prod"),
                anomaly("east", "2026-01-08", "user", "prod", "alice"),
                anomaly("east", "2026-01-07", "hub", "staging"),  # an earlier day: not open
                anomaly("west", "2026-01-06", "user", "prod", "bob"),
                anomaly("quiet", "2026-01-02", "hub", "prod"),
            ],
        )
    assert samples(client.get("/metrics").text, "hubcost_cost_anomalies_open") == [
        'hubcost_cost_anomalies_open{cluster="east"} 2.0',
        'hubcost_cost_anomalies_open{cluster="quiet"} 0.0',
        'hubcost_cost_anomalies_open{cluster="west"} 1.0',
    ]
    # A new day loaded for west closes its anomaly of Jan 6.
    with engine.begin() as conn:
        add_costs(conn, [("2026-01-07", "attributable", "prod", "EC2 - Other", 3)], cluster="west")
    text = client.get("/metrics").text
    assert 'hubcost_cost_anomalies_open{cluster="west"} 0.0' in samples(
        text, "hubcost_cost_anomalies_open"
    )


def test_the_last_figures_stay_when_the_database_cannot_be_read(engine, client):
    with engine.begin() as conn:
        costs(conn)
        budgets(conn)
    before = samples(client.get("/metrics").text, "hubcost_budget_spent_usd")
    client.app.state.hubcost.engine.dispose()
    client.app.state.hubcost.engine = sa.create_engine("postgresql+psycopg://127.0.0.1:9/x")
    text = client.get("/metrics").text
    assert "hubcost_api_database_up 0.0" in text
    assert samples(text, "hubcost_budget_spent_usd") == before


def test_no_notification_figures_on_a_schema_without_them(engine, client):
    with engine.begin() as conn:
        conn.execute(sa.text("DROP VIEW IF EXISTS notification_status"))
    text = client.get("/metrics").text
    assert "hubcost_api_database_up 1.0" in text
    assert samples(text, "hubcost_notifications_pending") == []
    assert family(text, "hubcost_notification_failures_total") == [
        "# HELP hubcost_notification_failures_total Delivery attempts to the receiver that "
        "failed (unreachable, timed out or 5xx).",
        "# TYPE hubcost_notification_failures_total counter",
    ]


def deliveries(conn, rows) -> None:
    """rows: (event key, receiver, attempts, delivered); one budget event per key."""
    keys = sorted({key for key, *_ in rows})
    ids = dict(
        conn.execute(
            sa.text(
                "INSERT INTO notification_event (key, kind, budget, about_day) "
                "SELECT k, 'budget_threshold', 'prod-monthly', '2026-01-08' FROM unnest(CAST(:keys AS text[])) k "
                "RETURNING key, id"
            ),
            {"keys": keys},
        ).all()
    )
    conn.execute(
        sa.text(
            "INSERT INTO notification_delivery (event_id, receiver, attempts, delivered_at) "
            "VALUES (:event, :receiver, :attempts, CASE WHEN CAST(:delivered AS boolean) THEN now() END)"
        ),
        [
            {"event": ids[key], "receiver": r, "attempts": a, "delivered": d}
            for key, r, a, d in rows
        ],
    )


def test_each_receiver_has_its_pending_deliveries_and_failed_attempts(engine, client):
    with engine.begin() as conn:
        deliveries(
            conn,
            [
                ("a:50", "ops-slack", 3, True),  # delivered at the third attempt
                ("a:80", "ops-slack", 4, False),  # four failures, still pending
                ("a:80", "team-a", 1, True),
                ("a:100", "team-a", 0, False),  # not tried yet
            ],
        )
    text = client.get("/metrics").text
    assert samples(text, "hubcost_notifications_pending") == [
        'hubcost_notifications_pending{receiver="ops-slack"} 1.0',
        'hubcost_notifications_pending{receiver="team-a"} 1.0',
    ]
    assert samples(text, "hubcost_notifications_delivered_total") == [
        'hubcost_notifications_delivered_total{receiver="ops-slack"} 1.0',
        'hubcost_notifications_delivered_total{receiver="team-a"} 1.0',
    ]
    assert samples(text, "hubcost_notification_failures_total") == [
        'hubcost_notification_failures_total{receiver="ops-slack"} 6.0',
        'hubcost_notification_failures_total{receiver="team-a"} 0.0',
    ]
