"""Smoke test of the benchmark's pieces: the generator fills the tables and the rollups, and
the bulk figure's bare-SQL query returns the endpoint's rows. No time is asserted."""

import datetime as dt

import sqlalchemy as sa

from api import queries
from api.params import DateRange, Listing
from bench import budget_figures, generate, http_figures

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


def test_budget_figures_on_a_small_warehouse(database_url):
    generate.generate(database_url, days=2, end=LAST)
    url = sa.engine.make_url(database_url).set(drivername="postgresql").render_as_string(False)

    prepared = budget_figures.prepare(url, LAST)
    sql = budget_figures.sql_latency(url, LAST, rounds=1)
    evaluation = budget_figures.evaluation_seconds(url, LAST, rounds=1)

    assert prepared["budgets"] == 200
    assert sql["budget_status(as_of)"]["rows"] == 200
    assert evaluation["events"] > 0  # some budgets pass a threshold in two days
    # Rolled back: the next round, like the next run, finds the same events new.
    assert budget_figures.evaluation_seconds(url, LAST, rounds=1)["events"] == evaluation["events"]
    # The HTTP figures have the SQL ones' shape; a server is too dear for a smoke test.
    labels = [label for label, _ in budget_figures.requests(LAST)]
    http = {label: {**f, "failures": {}} for label, f in zip(labels, sql.values(), strict=True)}
    figures = {"prepared": prepared, "http": http, "sql": sql, "evaluation": evaluation}
    text = "\n".join(budget_figures.report(figures))
    assert "/budgets" in text and "ETL's added time" in text
