"""save_costs / save_usage / save_groups replace exactly the chunk's days, and the run log."""

import datetime as dt
from decimal import Decimal

import pytest

from etl import runs
from etl.load import CostRow, GroupRow, LoadError, UsageRow, save_costs, save_groups, save_usage
from etl.windows import Chunk
from tests.rows import CLUSTER, add_costs, add_groups, add_usage, select_all

NOW = dt.datetime(2026, 3, 20, 6, 0, tzinfo=dt.UTC)


def d(text):
    return dt.date.fromisoformat(text)


def cost_row(
    day, slice_="attributable", hub="prod", service="EC2 - Other", amount="1.5", unit="USD"
):
    return CostRow(d(day), slice_, hub, service, Decimal(amount), unit, "UnblendedCost", True)


def test_save_costs_replaces_only_the_window_days(conn):
    add_costs(
        conn,
        [
            (day, "attributable", "prod", "EC2 - Other", 9)
            for day in ("2026-03-01", "2026-03-02", "2026-03-03")
        ],
    )
    written = save_costs(
        conn,
        [cost_row("2026-03-02", amount="0.1234567890123"), cost_row("2026-03-02", "account", None)],
        cluster=CLUSTER,
        first=d("2026-03-02"),
        last=d("2026-03-02"),
    )
    assert written == 2
    assert select_all(
        conn, "SELECT date::text, slice, hub, amount, estimated FROM cost ORDER BY date, slice"
    ) == [
        ("2026-03-01", "attributable", "prod", Decimal(9), False),
        ("2026-03-02", "account", None, Decimal("1.5"), True),
        ("2026-03-02", "attributable", "prod", Decimal("0.1234567890123"), True),
        ("2026-03-03", "attributable", "prod", Decimal(9), False),
    ]


def test_save_costs_refuses_other_units_and_days_outside_the_chunk(conn):
    with pytest.raises(LoadError, match="'EUR'"):
        save_costs(
            conn,
            [cost_row("2026-03-02", unit="EUR")],
            cluster=CLUSTER,
            first=d("2026-03-02"),
            last=d("2026-03-02"),
        )
    with pytest.raises(LoadError, match="outside the chunk"):
        save_costs(
            conn,
            [cost_row("2026-03-03")],
            cluster=CLUSTER,
            first=d("2026-03-02"),
            last=d("2026-03-02"),
        )


def test_save_usage_and_groups_replace_the_day(conn):
    add_usage(
        conn,
        [("2026-03-01", "prod", "compute", "old", 1), ("2026-03-02", "prod", "compute", "keep", 1)],
    )
    add_groups(conn, [("2026-03-01", "prod", "old", "g"), ("2026-03-02", "prod", "keep", "g")])
    day = d("2026-03-01")
    save_usage(
        conn,
        [
            UsageRow(day, "prod", "compute", "ann", Decimal("2.5"), "GiB-hours", Decimal("0.25")),
            UsageRow(day, "prod", "home storage", "ann", Decimal("3"), "GiB"),
        ],
        cluster=CLUSTER,
        first=day,
        last=day,
    )
    save_groups(
        conn, [GroupRow(day, "prod", "ann", "staff", "ann")], cluster=CLUSTER, first=day, last=day
    )
    assert select_all(
        conn,
        "SELECT date::text, username, component, value, cpu_core_hours FROM usage ORDER BY 1, 2, 3",
    ) == [
        ("2026-03-01", "ann", "compute", Decimal("2.5"), Decimal("0.25")),
        ("2026-03-01", "ann", "home storage", Decimal(3), None),
        ("2026-03-02", "keep", "compute", Decimal(1), None),
    ]
    assert select_all(
        conn, "SELECT date::text, username, usergroup FROM user_group_snapshot ORDER BY 1"
    ) == [
        ("2026-03-01", "ann", "staff"),
        ("2026-03-02", "keep", "g"),
    ]


def test_run_log_rows_go_running_then_succeeded_with_the_data(engine):
    chunk = Chunk("costs", d("2026-03-01"), d("2026-03-02"), CLUSTER)
    run_id = runs.start_chunk(engine, chunk, now=NOW)
    with engine.connect() as other:
        # Committed on its own: another session sees the chunk running.
        assert select_all(other, "SELECT status FROM run_log") == [("running",)]
    with engine.begin() as conn:
        save_costs(
            conn, [cost_row("2026-03-01")], cluster=CLUSTER, first=chunk.first, last=chunk.last
        )
        runs.mark_succeeded(conn, run_id, rows=1, requests=4, now=NOW)
    with engine.connect() as conn:
        assert select_all(
            conn,
            "SELECT source, first_day::text, last_day::text, status, rows, requests, error FROM run_log",
        ) == [("costs", "2026-03-01", "2026-03-02", "succeeded", 1, 4, None)]
        assert runs.last_loaded_day(conn, CLUSTER, "costs") == d("2026-03-02")
        assert runs.last_loaded_day(conn, CLUSTER, "usage") is None
        assert runs.succeeded_chunks(conn, CLUSTER, "costs", d("2026-03-01"), d("2026-03-31")) == {
            (d("2026-03-01"), d("2026-03-02"))
        }


def test_a_failed_chunk_keeps_its_error_and_no_data(engine):
    chunk = Chunk("usage", d("2026-03-01"), d("2026-03-01"), CLUSTER)
    run_id = runs.start_chunk(engine, chunk, now=NOW)
    with pytest.raises(LoadError), engine.begin() as conn:
        save_usage(
            conn,
            [UsageRow(d("2026-03-01"), "h", "compute", "u", Decimal(1), "GiB-hours")],
            cluster=CLUSTER,
            first=chunk.first,
            last=chunk.last,
        )
        runs.mark_succeeded(conn, run_id, rows=1, requests=4, now=NOW)
        raise LoadError("injected")
    runs.mark_failed(engine, run_id, error="injected", requests=2, now=NOW)
    with engine.connect() as conn:
        assert select_all(conn, "SELECT status, rows, requests, error FROM run_log") == [
            ("failed", 0, 2, "injected")
        ]
        assert select_all(conn, "SELECT count(*) FROM usage") == [(0,)]
