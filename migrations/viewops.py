"""Operations for views, after alembic's "replaceable objects" recipe.

A revision passes each view's whole SQL; the downgrade passes the previous text (or drops
the view). Every view is granted to the API's read-only role and carries its COMMENT.
"""

from alembic import context, op


def reader_role() -> str:
    return context.config.attributes["api_db_role"]


def create_view(name: str, select_sql: str, comment: str) -> None:
    op.execute(f'CREATE VIEW "{name}" AS {select_sql}')
    _describe_and_grant(name, comment)


def replace_view(name: str, select_sql: str, comment: str) -> None:
    """Replace a view's text; DROP+CREATE so that columns may change, grants re-applied."""
    op.execute(f'DROP VIEW IF EXISTS "{name}"')
    create_view(name, select_sql, comment)


def drop_view(name: str) -> None:
    op.execute(f'DROP VIEW IF EXISTS "{name}"')


def _describe_and_grant(name: str, comment: str) -> None:
    quoted = comment.replace("'", "''")
    op.execute(f"COMMENT ON VIEW \"{name}\" IS '{quoted}'")
    role = reader_role()
    op.execute(
        f"""DO $$ BEGIN
          IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
            GRANT SELECT ON "{name}" TO "{role}";
          END IF;
        END $$"""
    )
