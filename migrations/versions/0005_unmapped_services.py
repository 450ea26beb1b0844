"""The view unmapped_services: Cost Explorer services the component map does not know.

Their cost counts as 'other' (docs/attribution.md §3.1); the ETL warns in its logs, and this view
lets /metrics and analysts see them too, so an operator knows to extend service_component.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from migrations.viewops import create_view, drop_view

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UNMAPPED_SERVICES = """
SELECT c.service, min(c.date) AS first_day, max(c.date) AS last_day, sum(c.amount) AS cost
FROM cost c
WHERE c.slice = 'attributable'
  AND NOT EXISTS (SELECT FROM service_component sc WHERE sc.service = c.service)
GROUP BY c.service
"""


def upgrade() -> None:
    create_view(
        "unmapped_services",
        UNMAPPED_SERVICES,
        "Cost Explorer services in the attributable cost that service_component does not map: "
        "their cost counts as component 'other'. Add them to service_component to map them.",
    )


def downgrade() -> None:
    drop_view("unmapped_services")
