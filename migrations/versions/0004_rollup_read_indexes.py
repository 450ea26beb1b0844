"""Covering indexes for the rollups' two slow reads at a year's scale (issue 5, BENCHMARKS.md).

- Ranking users within a hub and component (`/costs-per-user?hub=X&component=compute&limit=N`)
  read user_cost_daily, which had only its (date, hub, component, username) key: a year's
  range scanned all of it (2 million rows, 250 ms). An index led by (hub, component, date)
  carrying username and cost answers it from the index alone.
- Filtering by group (`usergroup=G`) read the rows of user_group_cost_daily found through
  (usergroup, date), scattered over the heap (a year: 55,000 rows on 25,000 pages). The same
  index carrying hub, component, username and cost replaces it, so the read stays in the index.

Indexes only: no view or rollup changes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX user_cost_daily_hub_component_date "
        "ON attribution.user_cost_daily (hub, component, date) INCLUDE (username, cost)"
    )
    op.execute("DROP INDEX attribution.user_group_cost_daily_usergroup_date")
    op.execute(
        "CREATE INDEX user_group_cost_daily_usergroup_date "
        "ON attribution.user_group_cost_daily (usergroup, date) "
        "INCLUDE (hub, component, username, cost)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX attribution.user_group_cost_daily_usergroup_date")
    op.execute(
        "CREATE INDEX user_group_cost_daily_usergroup_date "
        "ON attribution.user_group_cost_daily (usergroup, date)"
    )
    op.execute("DROP INDEX attribution.user_cost_daily_hub_component_date")
