"""A small month of facts that gives every public view rows: what the dashboards and the SQL
catalogue's ready queries are run against.

January 2026, hubs prod, staging and support. Prod has compute and home-storage usage by alice
and bob; staging has compute usage by carol but none of its home storage is used (unattributed);
support is untagged cost with no usage (unattributed compute). Alice is in two groups.
Each cluster has three budgets of its own (its prod hub's month, its physics group's quarter,
a credit pool of alice's) and two cost anomalies on its last day, written as the ETL's
detection would have (three days are too few for the rule itself).

By default that month is one cluster's, the single-cluster warehouse's `default`. With
`clusters=CLUSTERS` it is loaded twice: `east` has exactly the month above and `west` a month
of its own with the same hub and user names (and a hub `dev` more), other amounts, other
shares and other groups, so any panel that adds two clusters' `staging` together, or joins
one cluster's groups to the other's users, gives a different answer than each cluster alone.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa

from core import schema
from tests.rows import add_costs, add_groups, add_usage

DAYS = ("2026-01-05", "2026-01-06", "2026-01-07")
FIRST_DAY = "2026-01-01"
LAST_DAY = "2026-01-31"
HUBS = ("prod", "staging", "support")
USERS = ("alice", "bob", "carol")
GROUPS = ("chemistry", "multiple", "none", "physics")

# The two-cluster warehouse: east is the month above, west its own month.
CLUSTERS = ("east", "west")
WEST = "west"
WEST_HUBS = ("dev", "prod", "staging", "support")
WEST_USERS = ("alice", "bob", "carol", "erin")
WEST_GROUPS = ("biology", "chemistry", "multiple", "none", "physics")


def _month() -> tuple[list, list, list]:
    costs = []
    for i, d in enumerate(DAYS):
        costs += [
            (d, "account", None, "EC2 - Other", 40 + i),
            (d, "account", None, "Amazon Route 53", 2),
            (d, "attributable", "prod", "EC2 - Other", 20 + i),
            (d, "attributable", "prod", "Amazon Elastic File System", 3),
            (d, "attributable", "prod", "Amazon Simple Storage Service", "0.5"),
            (d, "home", "prod", "EC2 - Other", 4),
            (d, "attributable", "staging", "EC2 - Other", 6),
            (d, "attributable", "staging", "Amazon Elastic File System", 1),
            (d, "attributable", "support", "EC2 - Other", 5),
            (d, "attributable", "support", "Amazon Elastic Container Service for Kubernetes", 2),
            (d, "attributable", "support", "Amazon Elastic Load Balancing", "1.25"),
            (d, "core", "support", "EC2 - Other", 3),
        ]
    usage = []
    for d in DAYS:
        usage += [
            (d, "prod", "compute", "alice", 30),
            (d, "prod", "compute", "bob", 10),
            (d, "prod", "home storage", "alice", 2),
            (d, "prod", "home storage", "bob", 6),
            (d, "staging", "compute", "carol", 12),
        ]
    groups = [
        (DAYS[0], "prod", "alice", "multiple"),
        (DAYS[0], "prod", "alice", "physics"),
        (DAYS[0], "prod", "alice", "chemistry"),
        (DAYS[0], "prod", "bob", "none"),
        (DAYS[0], "staging", "carol", "physics"),
    ]
    return costs, usage, groups


def _west_month() -> tuple[list, list, list]:
    """West: the same hub and user names, its own amounts, shares and groups."""
    costs = []
    for i, d in enumerate(DAYS):
        costs += [
            (d, "account", None, "EC2 - Other", 90 + 2 * i),
            (d, "attributable", "prod", "EC2 - Other", 11 + i),
            (d, "attributable", "prod", "Amazon Elastic File System", 2),
            (d, "home", "prod", "EC2 - Other", 3),
            (d, "attributable", "staging", "EC2 - Other", 9),
            (d, "attributable", "staging", "Amazon Elastic File System", 4),
            (d, "home", "staging", "EC2 - Other", 1),
            (d, "attributable", "support", "EC2 - Other", 7),
            (d, "core", "support", "EC2 - Other", 2),
            (d, "attributable", "dev", "EC2 - Other", "3.5"),
        ]
    usage = []
    for d in DAYS:
        usage += [
            (d, "prod", "compute", "alice", 5),
            (d, "prod", "compute", "bob", 15),
            (d, "prod", "home storage", "alice", 1),
            (d, "prod", "home storage", "bob", 1),
            (d, "staging", "compute", "carol", 8),
            (d, "staging", "compute", "alice", 2),
            (d, "staging", "home storage", "carol", 3),
            (d, "dev", "compute", "erin", 4),
        ]
    groups = [
        # In east alice is in physics and bob in none; here bob is, alice is not.
        (DAYS[0], "prod", "alice", "chemistry"),
        (DAYS[0], "prod", "bob", "physics"),
        (DAYS[0], "staging", "carol", "multiple"),
        (DAYS[0], "staging", "carol", "biology"),
        (DAYS[0], "staging", "carol", "physics"),
        (DAYS[0], "staging", "alice", "none"),
        (DAYS[0], "dev", "erin", "none"),
    ]
    return costs, usage, groups


# attribution.cost_anomaly, written by the ETL's detection; tests write it directly.
COST_ANOMALY = sa.table(
    "cost_anomaly",
    *(
        sa.column(name)
        for name in (
            "cluster",
            "date",
            "scope",
            "hub",
            "username",
            "cost",
            "baseline",
            "mad",
            "score",
            "history_days",
        )
    ),
    schema="attribution",
)


def _budgets(cluster: str) -> list[dict]:
    none = {"hub": None, "usergroup": None, "username": None, "start_date": None}
    return [
        none | {"name": f"prod-{cluster}", "hub": "prod", "amount": 100, "period": "month"},
        none
        | {"name": f"physics-{cluster}", "usergroup": "physics", "amount": 40, "period": "quarter"},
        none
        | {
            "name": f"alice-{cluster}",
            "username": "alice",
            "amount": 25,
            "period": "total",
            "start_date": dt.date.fromisoformat(FIRST_DAY),
        },
    ]


def _anomalies(cluster: str) -> list[dict]:
    """(scope, hub, username, cost, baseline, mad) on the last day, each cluster its own."""
    rows = (
        [("hub", "staging", "", 9, 4, "0.5"), ("user", "dev", "erin", 6, "1.5", "0.25")]
        if cluster == WEST
        else [("hub", "prod", "", 40, 25, 1), ("user", "prod", "alice", 30, 18, 2)]
    )
    return [
        {
            "cluster": cluster,
            "date": dt.date.fromisoformat(DAYS[-1]),
            "scope": scope,
            "hub": hub,
            "username": username,
            "cost": Decimal(str(cost)),
            "baseline": Decimal(str(baseline)),
            "mad": Decimal(mad),
            "score": (Decimal(str(cost)) - Decimal(str(baseline)))
            / (Decimal("1.4826") * Decimal(mad)),
            "history_days": 28,
        }
        for scope, hub, username, cost, baseline, mad in rows
    ]


def load_sample(
    conn, *, now: dt.datetime, clusters: tuple[str, ...] = (schema.DEFAULT_CLUSTER,)
) -> None:
    """Each cluster's month, budgets and anomalies, and a successful run of each source for
    each cluster."""
    for cluster in clusters:
        costs, usage, groups = _west_month() if cluster == WEST else _month()
        add_costs(conn, costs, cluster=cluster)
        add_usage(conn, usage, cluster=cluster)
        add_groups(conn, groups, cluster=cluster)
        conn.execute(
            sa.insert(schema.budget),
            [{"cluster": cluster} | budget for budget in _budgets(cluster)],
        )
        conn.execute(sa.insert(COST_ANOMALY), _anomalies(cluster))
    conn.execute(
        sa.insert(schema.run_log),
        [
            {
                "cluster": cluster,
                "source": source,
                "first_day": dt.date.fromisoformat(DAYS[0]),
                "last_day": dt.date.fromisoformat(DAYS[-1]),
                "started_at": now - dt.timedelta(hours=2),
                "finished_at": now - dt.timedelta(hours=1),
                "status": "succeeded",
                "rows": 36,
                "requests": 4,
            }
            for cluster in clusters
            for source in schema.SOURCES
        ],
    )
    conn.commit()
