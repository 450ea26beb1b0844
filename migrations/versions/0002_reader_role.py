"""The read-only role (API_DB_ROLE) the API and analysts use.

Roles are cluster-wide: create it only when missing, grant on this database only, and on
downgrade revoke this database's grants but never drop the role (another database may use it).
The views' own revisions grant SELECT on each view to it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from alembic import op

from migrations.viewops import reader_role

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    role = reader_role()
    op.execute(
        f"""DO $$ BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
            BEGIN
              CREATE ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
              NULL;  -- another database's migration created it at the same moment
            END;
          END IF;
          EXECUTE format('GRANT CONNECT ON DATABASE %I TO "{role}"', current_database());
          -- The API connects as the migrating user and drops to this role with SET ROLE.
          IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
             AND NOT pg_has_role(current_user, '{role}', 'MEMBER') THEN
            EXECUTE format('GRANT "{role}" TO %I', current_user);
          END IF;
        END $$"""
    )
    op.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
    # PostgreSQL 15 made this the default; on 14 every role could still create tables in
    # public, so the reader would not be read-only. Not restored on downgrade (safer as is).
    op.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")


def downgrade() -> None:
    role = reader_role()
    op.execute(
        f"""DO $$ BEGIN
          IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
            EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM "{role}"', current_database());
            REVOKE USAGE ON SCHEMA public FROM "{role}";
          END IF;
        END $$"""
    )
