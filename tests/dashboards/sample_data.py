"""A small month of facts that gives every public view rows: what the dashboards and the SQL
catalogue's ready queries are run against.

January 2026, hubs prod, staging and support. Prod has compute and home-storage usage by alice
and bob; staging has compute usage by carol but none of its home storage is used (unattributed);
support is untagged cost with no usage (unattributed compute). Alice is in two groups.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from core import schema
from tests.rows import add_costs, add_groups, add_usage

DAYS = ("2026-01-05", "2026-01-06", "2026-01-07")
FIRST_DAY = "2026-01-01"
LAST_DAY = "2026-01-31"
HUBS = ("prod", "staging", "support")
USERS = ("alice", "bob", "carol")
GROUPS = ("chemistry", "multiple", "none", "physics")


def load_sample(conn, *, now: dt.datetime) -> None:
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
    add_costs(conn, costs)
    usage = []
    for d in DAYS:
        usage += [
            (d, "prod", "compute", "alice", 30),
            (d, "prod", "compute", "bob", 10),
            (d, "prod", "home storage", "alice", 2),
            (d, "prod", "home storage", "bob", 6),
            (d, "staging", "compute", "carol", 12),
        ]
    add_usage(conn, usage)
    add_groups(
        conn,
        [
            (DAYS[0], "prod", "alice", "multiple"),
            (DAYS[0], "prod", "alice", "physics"),
            (DAYS[0], "prod", "alice", "chemistry"),
            (DAYS[0], "prod", "bob", "none"),
            (DAYS[0], "staging", "carol", "physics"),
        ],
    )
    conn.execute(
        sa.insert(schema.run_log),
        [
            {
                "cluster": schema.DEFAULT_CLUSTER,
                "source": source,
                "first_day": dt.date.fromisoformat(DAYS[0]),
                "last_day": dt.date.fromisoformat(DAYS[-1]),
                "started_at": now - dt.timedelta(hours=2),
                "finished_at": now - dt.timedelta(hours=1),
                "status": "succeeded",
                "rows": 36,
                "requests": 4,
            }
            for source in schema.SOURCES
        ],
    )
    conn.commit()
