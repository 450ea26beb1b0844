"""docs/attribution.md §7 windows and chunks, as pure functions of today and the run log."""

import datetime as dt

from etl.windows import Chunk, cost_chunks, costs_window, usage_chunks, usage_window


def d(text):
    return dt.date.fromisoformat(text)


def test_costs_reload_the_lookback_days():
    # Loaded up to yesterday: today, yesterday and the day before (LOOKBACK_DAYS=3).
    assert costs_window(
        d("2026-03-20"), last_loaded=d("2026-03-19"), lookback_days=3, initial_days=30
    ) == (d("2026-03-18"), d("2026-03-20"))


def test_costs_catch_up_days_missed_while_down():
    assert costs_window(
        d("2026-03-20"), last_loaded=d("2026-03-10"), lookback_days=3, initial_days=30
    ) == (d("2026-03-11"), d("2026-03-20"))


def test_costs_take_the_whole_previous_month_in_the_first_five_days():
    for today in ("2026-03-01", "2026-03-05"):
        assert costs_window(d(today), last_loaded=d(today), lookback_days=3, initial_days=30) == (
            d("2026-02-01"),
            d(today),
        )
    assert costs_window(
        d("2026-03-06"), last_loaded=d("2026-03-06"), lookback_days=3, initial_days=30
    ) == (d("2026-03-04"), d("2026-03-06"))
    # January reaches back into the previous year.
    assert costs_window(
        d("2026-01-02"), last_loaded=d("2026-01-01"), lookback_days=3, initial_days=30
    ) == (d("2025-12-01"), d("2026-01-02"))


def test_first_run_on_an_empty_database_starts_initial_days_back():
    assert costs_window(d("2026-03-20"), last_loaded=None, lookback_days=3, initial_days=30) == (
        d("2026-02-18"),
        d("2026-03-20"),
    )
    assert usage_window(d("2026-03-20"), last_loaded=None, initial_days=30) == (
        d("2026-02-18"),
        d("2026-03-20"),
    )


def test_usage_reloads_from_the_day_before_the_last_succeeded_day():
    assert usage_window(d("2026-03-20"), last_loaded=d("2026-03-20"), initial_days=30) == (
        d("2026-03-19"),
        d("2026-03-20"),
    )
    assert usage_window(d("2026-03-20"), last_loaded=d("2026-03-12"), initial_days=30) == (
        d("2026-03-11"),
        d("2026-03-20"),
    )


def test_cost_chunks_are_calendar_months_never_past_today():
    assert cost_chunks(d("2026-01-30"), d("2026-03-31"), d("2026-03-02")) == [
        Chunk("costs", d("2026-01-30"), d("2026-01-31")),
        Chunk("costs", d("2026-02-01"), d("2026-02-28")),
        Chunk("costs", d("2026-03-01"), d("2026-03-02")),
    ]
    assert cost_chunks(d("2026-03-05"), d("2026-03-05"), d("2026-03-05")) == [
        Chunk("costs", d("2026-03-05"), d("2026-03-05"))
    ]
    assert cost_chunks(d("2026-03-06"), d("2026-03-09"), d("2026-03-05")) == []


def test_usage_chunks_are_single_days_never_past_today():
    assert usage_chunks(d("2026-02-27"), d("2026-03-03"), d("2026-03-01")) == [
        Chunk("usage", d("2026-02-27"), d("2026-02-27")),
        Chunk("usage", d("2026-02-28"), d("2026-02-28")),
        Chunk("usage", d("2026-03-01"), d("2026-03-01")),
    ]
    assert Chunk("usage", d("2026-03-01"), d("2026-03-02")).days() == [
        d("2026-03-01"),
        d("2026-03-02"),
    ]
