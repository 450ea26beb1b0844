"""The bulk answers' days rendered at load time (revision 0013, `json_rows_daily`).

Each rendered day must be, byte for byte, what the row path (`queries.stream_json`) writes
for that cluster and day, between the brackets; and it must stay so after every kind of
write the rollups follow: a chunk's days replaced, one usage value changed, a snapshot added
or removed (with its carry-forward), the component map edited, a fact table truncated. After
each write the kept days are also those a full rebuild (`refresh_all`) renders.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from api import queries
from api.params import DateRange, Listing
from core import migrate
from core.database import create_engine
from tests.conftest import READER_ROLE
from tests.rows import add_costs, add_groups, add_usage

ANSWERS = {"costs-per-user": queries.costs_per_user, "total-usage": queries.total_usage}
DAYS = [dt.date(2026, 3, 1) + dt.timedelta(days=n) for n in range(4)]
# Names JSON must escape, and some it need not.
HUBS = ('pro"d', "back\\slash")
USERS = ("ann", "bö\tb", "c\x01d", "💡")


def rendered(conn) -> dict[tuple[str, str, dt.date], bytes]:
    rows = conn.execute(sa.text("SELECT answer, cluster, date, body FROM json_rows_daily"))
    return {(answer, cluster, date): body.encode() for answer, cluster, date, body in rows}


def row_path(conn) -> dict[tuple[str, str, dt.date], bytes]:
    """Every (answer, cluster, day) the row path answers with rows: its elements' text."""
    clusters = conn.execute(sa.text("SELECT name FROM cluster")).scalars().all()
    expected = {}
    for answer, build in ANSWERS.items():
        for cluster in clusters:
            for day in [DAYS[0] - dt.timedelta(days=1), *DAYS, DAYS[-1] + dt.timedelta(days=5)]:
                listing = Listing(days=DateRange(day, day), clusters=[cluster])
                body = b"".join(queries.stream_json(conn, build(listing)))
                if body != b"[]":
                    expected[answer, cluster, day] = body[1:-1]
    return expected


def assert_kept(conn) -> None:
    kept = rendered(conn)
    assert kept == row_path(conn)
    conn.execute(sa.text("SELECT attribution.refresh_all()"))
    assert rendered(conn) == kept


def load(conn, cluster: str = "default") -> None:
    add_costs(
        conn,
        [
            (day, "attributable", hub, service, amount)
            for day in DAYS
            for hub in HUBS
            for service, amount in (
                ("Amazon Elastic Compute Cloud - Compute", "100.7"),
                ("EC2 - Other", "3.33333"),
            )
        ],
        cluster=cluster,
    )
    add_usage(
        conn,
        [
            (day, hub, component, user, value)
            for day in DAYS
            for hub in HUBS
            for component in ("compute", "home storage")
            for user, value in zip(USERS, (1e-12, 3, 7.25, 1e9), strict=True)
        ],
        cluster=cluster,
    )
    add_groups(
        conn,
        [
            (DAYS[1], HUBS[0], "ann", 'phy"sics'),
            (DAYS[1], HUBS[0], "ann", "chem"),
            (DAYS[0], HUBS[1], "💡", "art"),
        ],
        cluster=cluster,
    )


def test_rendered_days_are_the_row_paths_text(conn):
    load(conn)
    load(conn, cluster="other")
    kept = rendered(conn)
    assert {answer for answer, _, _ in kept} == set(ANSWERS)
    assert len(kept) == 2 * 2 * len(DAYS)
    assert_kept(conn)


def test_every_write_keeps_the_rendered_days(conn):
    load(conn)
    load(conn, cluster="other")
    writes = [
        # A chunk's day replaced, as the loaders do: delete, then insert.
        "DELETE FROM cost WHERE date = '2026-03-02' AND cluster = 'default'",
        "INSERT INTO cost (date, slice, hub, service, amount, unit, metric, estimated, cluster) "
        "VALUES ('2026-03-02', 'attributable', 'pro\"d', 'EC2 - Other', 9.5, 'USD', "
        "'UnblendedCost', false, 'default')",
        "UPDATE usage SET value = value * 2 WHERE username = 'ann' AND date = '2026-03-03'",
        "DELETE FROM usage WHERE date = '2026-03-04' AND cluster = 'other'",
        # A snapshot that governs the following days too, then its removal.
        "INSERT INTO user_group_snapshot (date, hub, username, usergroup, username_escaped, "
        "cluster) VALUES ('2026-03-02', 'back\\slash', 'ann', 'late', 'ann', 'default')",
        "DELETE FROM user_group_snapshot WHERE usergroup = 'art'",
        "UPDATE service_component SET component = 'home storage' WHERE service = 'EC2 - Other'",
        "TRUNCATE user_group_snapshot",
        "DELETE FROM cost WHERE cluster = 'other'",
    ]
    for statement in writes:
        conn.execute(sa.text(statement))
        assert_kept(conn)


def test_the_writers_float_setting_does_not_change_the_text(conn):
    load(conn)
    kept = rendered(conn)
    conn.execute(sa.text("SET extra_float_digits = -3"))
    conn.execute(sa.text("SELECT attribution.refresh_all()"))
    conn.execute(sa.text("RESET extra_float_digits"))
    assert rendered(conn) == kept == row_path(conn)


def test_the_upgrade_renders_the_days_already_loaded_and_the_downgrade_removes_them(
    empty_database_url,
):
    engine = create_engine(empty_database_url, pool_size=1)
    try:
        migrate.upgrade(engine, api_db_role=READER_ROLE, revision="0012")
        with engine.begin() as conn:
            load(conn)
        migrate.upgrade(engine, api_db_role=READER_ROLE)
        with engine.begin() as conn:
            assert len(rendered(conn)) == 2 * len(DAYS)
            assert_kept(conn)
        migrate.downgrade(engine, api_db_role=READER_ROLE, revision="0012")
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT to_regclass('json_rows_daily')")).scalar() is None
            # The rollups are kept as before, without the rendered days.
            conn.execute(sa.text("DELETE FROM usage WHERE date = '2026-03-01'"))
            assert (
                conn.execute(
                    sa.text("SELECT count(*) FROM user_costs WHERE date = '2026-03-01'")
                ).scalar_one()
                == 0
            )
    finally:
        engine.dispose()
