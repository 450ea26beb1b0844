"""`latest_user_groups` reads one cluster's snapshot days when the query names its cluster.

The view found each hub's latest snapshot day with one GROUP BY over every cluster's snapshot
days; a filter on the view's `cluster` reached the snapshot rows but not that aggregate
(PostgreSQL derives no equality from `cluster = ANY (...)` across the join). At 20 clusters x
365 days, `/clusters/{c}/users-with-multiple-groups` aggregated 146,000 rows for one cluster's
7,300: 58 ms of its 59. The view now takes its clusters from the table `cluster` and each one's
latest days through a LATERAL subquery on `snapshot_day`'s key (cluster, hub, date), so the
filter lands on `cluster` and only that cluster's days are read. Same columns, same rows.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

import importlib

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

LATEST_USER_GROUPS = """
CREATE OR REPLACE VIEW latest_user_groups AS
SELECT c.name AS cluster, g.hub, g.date, g.username, g.username_escaped, g.usergroup
FROM cluster c
CROSS JOIN LATERAL (
    SELECT d.hub, max(d.date) AS date
    FROM attribution.snapshot_day d
    WHERE d.cluster = c.name
    GROUP BY d.hub
) latest
JOIN user_group_snapshot g
  ON g.cluster = c.name AND g.hub = latest.hub AND g.date = latest.date
"""


def upgrade() -> None:
    op.execute(LATEST_USER_GROUPS)


def downgrade() -> None:
    earlier = importlib.import_module("migrations.versions.0006_cluster_dimension")
    [(_name, _comment, sql)] = [v for v in earlier.VIEWS if v[0] == "latest_user_groups"]
    op.execute(f"CREATE OR REPLACE VIEW latest_user_groups AS {sql}")
