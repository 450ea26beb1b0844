"""The warehouse tables (SQLAlchemy Core) and the names of the public views.

Tables are created only by the Alembic migrations; these objects are for building
statements. The views are listed by name only, and `is_view` lets Alembic's autogenerate skip
them: their SQL lives whole in the migration that creates or changes them.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata = sa.MetaData()

SLICES = ("account", "attributable", "home", "core")
SOURCES = ("costs", "usage")
RUN_STATUSES = ("running", "succeeded", "failed", "interrupted")
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
# The cluster of a single-cluster deployment without CLUSTER_NAME, and of the demo's data.
DEFAULT_CLUSTER = "default"
DEMO_CLUSTER = "demo-cluster"

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

cluster = sa.Table(
    "cluster",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    comment="Every cluster the warehouse holds data of; kept after a cluster is gone.",
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
    sa.Column("cluster", sa.Text, nullable=False),
    sa.Index("cost_slice_date_cluster_hub", "slice", "date", "cluster", "hub"),
)
sa.Index(
    "cost_day_cluster_slice_hub_service",
    cost.c.date,
    cost.c.cluster,
    cost.c.slice,
    sa.func.coalesce(cost.c.hub, sa.text("''")),
    cost.c.service,
    unique=True,
)

usage = sa.Table(
    "usage",
    metadata,
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("hub", sa.Text, nullable=False),
    sa.Column("component", sa.Text, nullable=False),
    sa.Column("username", sa.Text, nullable=False),
    sa.Column("value", sa.Numeric, nullable=False),
    sa.Column("unit", sa.Text, nullable=False),
    sa.Column("cpu_core_hours", sa.Numeric, nullable=True),
    sa.Column("cluster", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("date", "cluster", "hub", "component", "username", name="usage_pkey"),
    sa.Index("usage_username_date", "username", "date"),
)

user_group_snapshot = sa.Table(
    "user_group_snapshot",
    metadata,
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("hub", sa.Text, nullable=False),
    sa.Column("username", sa.Text, nullable=False),
    sa.Column("usergroup", sa.Text, nullable=False),
    sa.Column("username_escaped", sa.Text, nullable=False),
    sa.Column("cluster", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint(
        "date", "cluster", "hub", "username", "usergroup", name="user_group_snapshot_pkey"
    ),
    sa.Index("user_group_snapshot_cluster_hub_date", "cluster", "hub", "date"),
)

source = sa.Table(
    "source",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    comment="Every source the ETL has loaded or knows (run_log.source)",
)

run_log = sa.Table(
    "run_log",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "source",
        sa.Text,
        sa.ForeignKey("source.name", name="run_log_source_fkey"),
        nullable=False,
    ),
    sa.Column("first_day", sa.Date, nullable=False),
    sa.Column("last_day", sa.Date, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False, server_default="0"),
    sa.Column("requests", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("cluster", sa.Text, nullable=False),
    sa.Index(
        "run_log_cluster_source_status_finished", "cluster", "source", "status", "finished_at"
    ),
    sa.Index("run_log_started", "started_at"),
)

budget = sa.Table(
    "budget",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("cluster", sa.Text, nullable=True),
    sa.Column("hub", sa.Text, nullable=True),
    sa.Column("usergroup", sa.Text, nullable=True),
    sa.Column("username", sa.Text, nullable=True),
    sa.Column("amount", sa.Numeric(14, 2), nullable=False),
    sa.Column("period", sa.Text, nullable=False),
    sa.Column("start_date", sa.Date, nullable=True),
    sa.Column(
        "alert_at",
        postgresql.ARRAY(sa.Integer),
        nullable=False,
        server_default=sa.text("'{50,80,100}'::integer[]"),
    ),
    sa.Column(
        "notify",
        postgresql.ARRAY(sa.Text),
        nullable=False,
        server_default=sa.text("'{}'::text[]"),
    ),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    comment="Budgets: a scope (any of cluster, hub, usergroup, username; NULL = any), an amount "
    "in USD per period, alert thresholds in percent and the named webhooks to notify.",
)
BUDGET_PERIODS = ("month", "quarter", "year", "total")
DEFAULT_ALERT_AT = (50, 80, 100)

notification_event = sa.Table(
    "notification_event",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("cluster", sa.Text, nullable=True),
    sa.Column("budget", sa.Text, nullable=True),
    sa.Column("about_day", sa.Date, nullable=False),
    sa.Column(
        "detected_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("details", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.UniqueConstraint("key", name="notification_event_key_key"),
    comment="Every notification event, once: key names what it is about (budget_threshold:"
    "<budget>:<period_start>:<percent>, budget_forecast:<budget>:<period_start>, cost_anomaly:"
    "<cluster>:<scope>:<hub>:<user>:<date>); amounts in details are exact numeric text.",
)
NOTIFICATION_KINDS = ("budget_threshold", "budget_forecast", "cost_anomaly")

notification_delivery = sa.Table(
    "notification_delivery",
    metadata,
    sa.Column(
        "event_id",
        sa.BigInteger,
        sa.ForeignKey("notification_event.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("receiver", sa.Text, primary_key=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Index(
        "notification_delivery_pending",
        "event_id",
        postgresql_where=sa.text("delivered_at IS NULL"),
    ),
    comment="One row per event and receiver (the webhook's name, never its URL): attempts "
    "made, when it was delivered, and the last failure, a text free of the URL.",
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
    "clusters",
    "budgets",
    "cost_anomalies",
    "budget_status",
    "notification_status",
    "json_rows_daily",
)
STATUS_VIEW = "etl_status"
VIEWS = PUBLIC_VIEWS + (STATUS_VIEW,)


def is_view(name: str) -> bool:
    """Views are made by hand-written SQL in the migrations; autogenerate must skip them."""
    return name in VIEWS


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic's autogenerate filter: views and the alembic_version table are not ours to diff."""
    return not (type_ == "table" and (is_view(name) or name == "alembic_version"))
