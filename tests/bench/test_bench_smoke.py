"""Smoke test of the benchmark's pieces: the generator fills the tables and the rollups, and
the bulk figure's bare-SQL query returns the endpoint's rows. No time is asserted."""

import datetime as dt

import sqlalchemy as sa

from api import queries
from api.params import DateRange, Listing
from bench import generate, http_figures

LAST = dt.date(2026, 10, 31)


def test_generator_and_bare_sql_query(database_url, engine):
    counts = generate.generate(database_url, days=2, end=LAST)

    assert counts["usage"] == 2 * (generate.ACTIVE_PER_DAY + 50 * generate.USERS_PER_HUB)
    listing = Listing(days=DateRange(LAST - dt.timedelta(days=1), LAST))
    with engine.connect() as conn:
        view_rows = conn.execute(
            sa.text("SELECT count(*) FROM user_costs_by_group WHERE date >= :d"),
            {"d": LAST - dt.timedelta(days=1)},
        ).scalar_one()
        api_rows = queries.run_rows(conn, queries.costs_per_user(listing))
    url = sa.engine.make_url(database_url).set(drivername="postgresql").render_as_string(False)
    _, sql_rows = http_figures.bare_sql_seconds(url, queries.costs_per_user, listing, repeat=1)
    assert view_rows > 0
    assert sql_rows == len(api_rows) == view_rows
