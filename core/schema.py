"""The warehouse tables (SQLAlchemy Core) and the names of the public views.

Tables are created only by the Alembic migrations; these objects are for building
statements. The views are listed by name only, and `is_view` lets Alembic's autogenerate skip
them: their SQL lives whole in the migration that creates or changes them.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

SLICES = ("account", "attributable", "home", "core")
SOURCES = ("costs", "usage")
RUN_STATUSES = ("running", "succeeded", "failed")
CANONICAL_COMPONENTS = (
    "compute",
    "home storage",
    "object storage",
    "networking",
    "core",
    "backup",
    "other",
)
USER_COMPONENTS = ("compute", "home storage")
SUPPORT_HUB = "support"

component = sa.Table(
    "component",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("position", sa.Integer, nullable=True, unique=True),
)

service_component = sa.Table(
    "service_component",
    metadata,
    sa.Column("service", sa.Text, primary_key=True),
    sa.Column(
        "component", sa.Text, sa.ForeignKey("component.name", onupdate="CASCADE"), nullable=False
    ),
)

cost = sa.Table(
    "cost",
    metadata,
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("slice", sa.Text, nullable=False),
    sa.Column("hub", sa.Text, nullable=True),
    sa.Column("service", sa.Text, nullable=False),
    sa.Column("amount", sa.Numeric, nullable=False),
    sa.Column("unit", sa.Text, nullable=False),
    sa.Column("metric", sa.Text, nullable=False),
    sa.Column("estimated", sa.Boolean, nullable=False),
    sa.Index("cost_slice_date_hub", "slice", "date", "hub"),
)
sa.Index(
    "cost_day_slice_hub_service",
    cost.c.date,
    cost.c.slice,
    sa.func.coalesce(cost.c.hub, sa.text("''")),
    cost.c.service,
    unique=True,
)

usage = sa.Table(
    "usage",
    metadata,
    sa.Column("date", sa.Date, primary_key=True),
    sa.Column("hub", sa.Text, primary_key=True),
    sa.Column("component", sa.Text, primary_key=True),
    sa.Column("username", sa.Text, primary_key=True),
    sa.Column("value", sa.Numeric, nullable=False),
    sa.Column("unit", sa.Text, nullable=False),
    sa.Column("cpu_core_hours", sa.Numeric, nullable=True),
    sa.Index("usage_username_date", "username", "date"),
)

user_group_snapshot = sa.Table(
    "user_group_snapshot",
    metadata,
    sa.Column("date", sa.Date, primary_key=True),
    sa.Column("hub", sa.Text, primary_key=True),
    sa.Column("username", sa.Text, primary_key=True),
    sa.Column("usergroup", sa.Text, primary_key=True),
    sa.Column("username_escaped", sa.Text, nullable=False),
    sa.Index("user_group_snapshot_hub_date", "hub", "date"),
)

run_log = sa.Table(
    "run_log",
    metadata,
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
    sa.Index("run_log_source_status_finished", "source", "status", "finished_at"),
    sa.Index("run_log_started", "started_at"),
)

# The public views, in dependency order. docs/sql.md documents each one.
PUBLIC_VIEWS = (
    "components",
    "component_cost_moves",
    "component_costs",
    "hub_costs",
    "total_costs",
    "hub_activity",
    "user_shares",
    "user_costs",
    "user_group_memberships",
    "user_costs_by_group",
    "group_costs",
    "unattributed_costs",
    "latest_user_groups",
    "users_with_multiple_groups",
    "users_with_no_groups",
    "unmapped_services",
)
STATUS_VIEW = "etl_status"
VIEWS = PUBLIC_VIEWS + (STATUS_VIEW,)


def is_view(name: str) -> bool:
    """Views are made by hand-written SQL in the migrations; autogenerate must skip them."""
    return name in VIEWS


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic's autogenerate filter: views and the alembic_version table are not ours to diff."""
    return not (type_ == "table" and (is_view(name) or name == "alembic_version"))
