"""The warehouse tables: cost and usage facts, group snapshots, components, the run log.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

COMPONENTS = [
    ("compute", 1),
    ("home storage", 2),
    ("object storage", 3),
    ("networking", 4),
    ("core", 5),
    ("backup", 6),
    ("other", 7),
]
SERVICES = [
    ("EC2 - Other", "compute"),
    ("Amazon Elastic Compute Cloud - Compute", "compute"),
    ("Amazon Elastic File System", "home storage"),
    ("Amazon Simple Storage Service", "object storage"),
    ("Amazon Elastic Load Balancing", "networking"),
    ("Amazon Virtual Private Cloud", "networking"),
    ("Amazon Elastic Container Service for Kubernetes", "core"),
    ("AWS Backup", "backup"),
]


def upgrade() -> None:
    component = op.create_table(
        "component",
        sa.Column("name", sa.Text, primary_key=True),
        # NULL for components added by an operator: they sort after the canonical seven, by name.
        sa.Column("position", sa.Integer, nullable=True, unique=True),
        sa.CheckConstraint("name <> ''", name="component_name_not_empty"),
    )
    service_component = op.create_table(
        "service_component",
        sa.Column("service", sa.Text, primary_key=True),
        sa.Column(
            "component",
            sa.Text,
            sa.ForeignKey("component.name", onupdate="CASCADE"),
            nullable=False,
        ),
    )
    op.bulk_insert(component, [{"name": n, "position": p} for n, p in COMPONENTS])
    op.bulk_insert(service_component, [{"service": s, "component": c} for s, c in SERVICES])

    op.create_table(
        "cost",
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("slice", sa.Text, nullable=False),
        sa.Column("hub", sa.Text, nullable=True),
        sa.Column("service", sa.Text, nullable=False),
        sa.Column("amount", sa.Numeric, nullable=False),
        sa.Column("unit", sa.Text, nullable=False),
        sa.Column("metric", sa.Text, nullable=False),
        sa.Column("estimated", sa.Boolean, nullable=False),
        sa.CheckConstraint(
            "slice IN ('account', 'attributable', 'home', 'core')", name="cost_slice_known"
        ),
        sa.CheckConstraint(
            "(slice = 'account') = (hub IS NULL)", name="cost_hub_only_on_hub_slices"
        ),
        sa.CheckConstraint("unit = 'USD'", name="cost_unit_usd"),
    )
    # One row per (day, slice, hub, service); account rows have no hub.
    op.execute(
        "CREATE UNIQUE INDEX cost_day_slice_hub_service ON cost "
        "(date, slice, coalesce(hub, ''), service)"
    )
    op.create_index("cost_slice_date_hub", "cost", ["slice", "date", "hub"])

    op.create_table(
        "usage",
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("hub", sa.Text, nullable=False),
        sa.Column("component", sa.Text, nullable=False),
        sa.Column("username", sa.Text, nullable=False),
        sa.Column("value", sa.Numeric, nullable=False),
        sa.Column("unit", sa.Text, nullable=False),
        sa.Column("cpu_core_hours", sa.Numeric, nullable=True),
        sa.PrimaryKeyConstraint("date", "hub", "component", "username"),
        sa.CheckConstraint(
            "component IN ('compute', 'home storage')", name="usage_component_known"
        ),
        sa.CheckConstraint(
            "(component = 'compute' AND unit = 'GiB-hours') "
            "OR (component = 'home storage' AND unit = 'GiB')",
            name="usage_unit_matches_component",
        ),
        sa.CheckConstraint("value >= 0", name="usage_value_not_negative"),
    )
    op.create_index("usage_username_date", "usage", ["username", "date"])

    op.create_table(
        "user_group_snapshot",
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("hub", sa.Text, nullable=False),
        sa.Column("username", sa.Text, nullable=False),
        sa.Column("usergroup", sa.Text, nullable=False),
        sa.Column("username_escaped", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("date", "hub", "username", "usergroup"),
    )
    op.create_index("user_group_snapshot_hub_date", "user_group_snapshot", ["hub", "date"])

    op.create_table(
        "run_log",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("first_day", sa.Date, nullable=False),
        sa.Column("last_day", sa.Date, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False, server_default="0"),
        sa.Column("requests", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text, nullable=True),
        sa.CheckConstraint("source IN ('costs', 'usage')", name="run_log_source_known"),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed')", name="run_log_status_known"
        ),
        sa.CheckConstraint("first_day <= last_day", name="run_log_window_ordered"),
    )
    op.create_index(
        "run_log_source_status_finished", "run_log", ["source", "status", "finished_at"]
    )
    op.create_index("run_log_started", "run_log", ["started_at"])


def downgrade() -> None:
    op.drop_table("run_log")
    op.drop_table("user_group_snapshot")
    op.drop_table("usage")
    op.drop_table("cost")
    op.drop_table("service_component")
    op.drop_table("component")
