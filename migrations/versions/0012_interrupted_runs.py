"""A run-log status of its own for a chunk stopped with its process: `interrupted`.

A pod stop (SIGTERM) or Ctrl-C rolls the chunk in flight back and records it `interrupted`,
with the signal in `error`. It was `failed` before (and, under `hubcost run`, left `running`
until the next run): a rolling update then looked like a broken source to whoever counts
failures. `etl_status` keeps counting `failed` and `running` rows only, so an interrupted
chunk is neither a failure nor a load in flight; its days are loaded again by the next run
whose window covers them, as after a failure.

The downgrade turns `interrupted` rows back into `failed` ones (their error still says
"interrupted by ..."), the only status of the previous release for them.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE run_log DROP CONSTRAINT run_log_status_known;
ALTER TABLE run_log ADD CONSTRAINT run_log_status_known
    CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted'));
"""

DOWNGRADE = """
UPDATE run_log SET status = 'failed' WHERE status = 'interrupted';
ALTER TABLE run_log DROP CONSTRAINT run_log_status_known;
ALTER TABLE run_log ADD CONSTRAINT run_log_status_known
    CHECK (status IN ('running', 'succeeded', 'failed'));
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
