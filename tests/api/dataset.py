"""One hand-made warehouse for the API tests, with the answers worked out by hand.

Costs (USD) on 2026-01-04 and 2026-01-05 (the tests' today is 2026-01-10):

    01-04 account 20.004; prod: EC2 10 (1 of it home NFS), EFS 3, S3 1.005; support: Backup 2,
          Route 53 0.5 (other)
    01-05 account 30; prod: EC2 6, EFS 1, S3 0.004; staging: EC2 4, S3 0.004

so component costs are 01-04 prod compute 9, home storage 4, object storage 1.005, support
backup 2, other 0.5; 01-05 prod compute 6, home storage 1 (no home usage that day: unattributed),
object storage 0.004, staging compute 4, object storage 0.004.

Usage: 01-04 prod compute alice 1, bob 2; home storage alice 1, bob 1, carol 2. 01-05 prod
compute alice, bob, carol 1 each; staging compute dave 1, erin 2; binder home storage gina 5
(binder has no cost). Per-user costs: 01-04 compute alice 3, bob 6; home alice 1, bob 1,
carol 2; 01-05 compute alice, bob, carol 2 each; dave 4/3, erin 8/3.

Group snapshots: prod on 01-04 (alice g1; bob g1, g2, multiple; carol none) and 01-07 (alice
g2; bob g1, g2, multiple; carol none; frank none); staging on 01-07 (dave none; erin g3, g4,
multiple). Staging has no snapshot on or before 01-05, so its users are `none` there.
"""

from __future__ import annotations

from tests.rows import CLUSTER, add_costs, add_groups, add_usage

EC2 = "EC2 - Other"
EFS = "Amazon Elastic File System"
S3 = "Amazon Simple Storage Service"

COSTS = [
    ("2026-01-04", "account", None, EC2, "20.004"),
    ("2026-01-04", "attributable", "prod", EC2, "10"),
    ("2026-01-04", "attributable", "prod", EFS, "3"),
    ("2026-01-04", "attributable", "prod", S3, "1.005"),
    ("2026-01-04", "home", "prod", EC2, "1"),
    ("2026-01-04", "attributable", "support", "AWS Backup", "2"),
    ("2026-01-04", "attributable", "support", "Amazon Route 53", "0.5"),
    ("2026-01-05", "account", None, EC2, "30"),
    ("2026-01-05", "attributable", "prod", EC2, "6"),
    ("2026-01-05", "attributable", "prod", EFS, "1"),
    ("2026-01-05", "attributable", "prod", S3, "0.004"),
    ("2026-01-05", "attributable", "staging", EC2, "4"),
    ("2026-01-05", "attributable", "staging", S3, "0.004"),
]
USAGE = [
    ("2026-01-04", "prod", "compute", "alice", 1),
    ("2026-01-04", "prod", "compute", "bob", 2),
    ("2026-01-04", "prod", "home storage", "alice", 1),
    ("2026-01-04", "prod", "home storage", "bob", 1),
    ("2026-01-04", "prod", "home storage", "carol", 2),
    ("2026-01-05", "prod", "compute", "alice", 1),
    ("2026-01-05", "prod", "compute", "bob", 1),
    ("2026-01-05", "prod", "compute", "carol", 1),
    ("2026-01-05", "staging", "compute", "dave", 1),
    ("2026-01-05", "staging", "compute", "erin", 2),
    ("2026-01-05", "binder", "home storage", "gina", 5),
]
GROUPS = [
    ("2026-01-04", "prod", "alice", "g1"),
    ("2026-01-04", "prod", "bob", "g1"),
    ("2026-01-04", "prod", "bob", "g2"),
    ("2026-01-04", "prod", "bob", "multiple"),
    ("2026-01-04", "prod", "carol", "none"),
    ("2026-01-07", "prod", "alice", "g2"),
    ("2026-01-07", "prod", "bob", "g1"),
    ("2026-01-07", "prod", "bob", "g2"),
    ("2026-01-07", "prod", "bob", "multiple"),
    ("2026-01-07", "prod", "carol", "none"),
    ("2026-01-07", "prod", "frank", "none"),
    ("2026-01-07", "staging", "dave", "none"),
    ("2026-01-07", "staging", "erin", "g3"),
    ("2026-01-07", "staging", "erin", "g4"),
    ("2026-01-07", "staging", "erin", "multiple"),
]


def load_dataset(conn, *, cluster: str = CLUSTER) -> None:
    add_costs(conn, COSTS, cluster=cluster)
    add_usage(conn, USAGE, cluster=cluster)
    add_groups(conn, GROUPS, cluster=cluster)
