"""Everything a reader can see in a database, to compare an interrupted and a clean run."""

from __future__ import annotations

import sqlalchemy as sa

from core.schema import PUBLIC_VIEWS

FACT_TABLES = ("cost", "usage", "user_group_snapshot")


def visible_state(engine, *, before=None) -> dict[str, list[tuple]]:
    """Every fact table and every public view, rows sorted; days from `before` on left out."""
    state = {}
    with engine.connect() as conn:
        for name in (*FACT_TABLES, *PUBLIC_VIEWS):
            columns = [c["name"] for c in sa.inspect(conn).get_columns(name)]
            sql = f'SELECT * FROM "{name}"'
            if before is not None and "date" in columns:
                sql += " WHERE date < :before"
            rows = conn.execute(sa.text(sql), {"before": before}).all()
            state[name] = sorted((tuple(r) for r in rows), key=repr)
    return state


def run_log(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.text(
                    "SELECT source, first_day::text, last_day::text, status, error "
                    "FROM run_log ORDER BY id"
                )
            )
        ]
