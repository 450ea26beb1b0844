"""The anomaly rule (docs/budgets.md §3) on hand-made series, through the ETL's detection call.

Each series is written into the fact tables with tests/rows.py; the rollups give the hub and
user costs the rule reads. Expected baselines, MADs and scores are worked out by hand below.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa

from etl.evaluate import AnomalyRule, LoadedSpan, detect_anomalies
from tests.rows import CLUSTER, add_costs, add_usage, select_all

DEFAULT_RULE = AnomalyRule(factor=Decimal(5), min_usd=Decimal(5))
START = dt.date(2026, 3, 1)


def days(n: int, start: dt.date = START) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range(n)]


def hub_series(conn, hub: str, costs: list[str], start: dt.date = START) -> None:
    add_costs(
        conn,
        [
            (day, "attributable", hub, "EC2 - Other", cost)
            for day, cost in zip(days(len(costs), start), costs, strict=True)
        ],
    )


def detect(conn, first: dt.date, last: dt.date, rule: AnomalyRule = DEFAULT_RULE) -> int:
    return detect_anomalies(conn, LoadedSpan((CLUSTER,), first, last), rule)


def anomalies(conn) -> list[tuple]:
    return select_all(
        conn,
        "SELECT date, scope, hub, username, cost, baseline, mad, round(score, 6), history_days "
        "FROM cost_anomalies ORDER BY date, scope, hub, username",
    )


# 10 days of history: sorted 9, 9, 10, 10, 10, 10, 11, 11, 12, 13 → median 10; the absolute
# deviations sorted 0, 0, 0, 0, 1, 1, 1, 1, 2, 3 → MAD 1. On the 11th day 40: score
# (40 - 10) / (1.4826 × 1) = 20.234723 (to 6 places).
SPIKED = ["10", "12", "9", "11", "10", "13", "10", "9", "11", "10", "40"]


def test_a_spike_is_found_with_its_baseline_mad_and_score(conn):
    hub_series(conn, "prod", SPIKED)
    written = detect(conn, START, START + dt.timedelta(days=10))
    assert written == 1
    assert anomalies(conn) == [
        (
            dt.date(2026, 3, 11),
            "hub",
            "prod",
            None,
            Decimal(40),
            Decimal(10),
            Decimal(1),
            Decimal("20.234723"),
            10,
        )
    ]


def test_a_flat_series_with_noise_is_no_anomaly(conn):
    # ±3% around $100: the 20 days' median is 100.00 and their MAD 1.00 (scaled 1.4826). The
    # last day, 104.50, is 4.50 above: score 3.04, under the factor even with no minimum.
    noisy = [
        "100.00", "101.20", "98.90", "100.40", "99.10", "102.30", "97.80", "100.90", "99.60",
        "101.70", "98.40", "100.00", "99.30", "102.10", "98.70", "100.60", "99.90", "101.30",
        "97.90", "100.20", "104.50",
    ]  # fmt: skip
    hub_series(conn, "prod", noisy)
    last = START + dt.timedelta(days=len(noisy) - 1)
    assert detect(conn, START, last, AnomalyRule(Decimal(5), Decimal(0))) == 0
    assert anomalies(conn) == []
    median, mad = conn.execute(
        sa.text(
            "SELECT attribution.median(c), attribution.median("
            "ARRAY(SELECT abs(x - attribution.median(c)) FROM unnest(c) x)) "
            "FROM (SELECT array_agg(cost) c FROM hub_costs WHERE date < :last) s"
        ),
        {"last": last},
    ).one()
    assert (median, mad) == (Decimal("100.00"), Decimal("1.00"))
    # The same day at 112: 12 above, score 8.09: found.
    conn.execute(sa.text("DELETE FROM cost WHERE date = :last"), {"last": last})
    hub_series(conn, "prod", ["112"], last)
    assert detect(conn, START, last, AnomalyRule(Decimal(5), Decimal(0))) == 1
    [(_, _, _, _, cost, baseline, found_mad, score, history)] = anomalies(conn)
    assert (cost, baseline, found_mad, history) == (Decimal(112), Decimal("100.00"), mad, 20)
    assert score == Decimal("8.093889")  # 12 / (1.4826 × 1.00)


def test_a_user_with_less_than_seven_days_of_history_is_never_an_anomaly(conn):
    # prod costs $100 a day, shared by memory requested. ann requests 100 GiB-hours every day;
    # dee 1 on days 1-7 and cy 1 on days 2-7, both 100 on day 8: each goes from about $0.98 to
    # $33.33. dee has 7 days of history (an anomaly); cy 6 (none). ann's share falls: no rise.
    eight = days(8)
    add_costs(conn, [(day, "attributable", "prod", "EC2 - Other", 100) for day in eight])
    add_usage(conn, [(day, "prod", "compute", "ann", 100) for day in eight])
    add_usage(
        conn, [(day, "prod", "compute", "dee", 100 if day == eight[-1] else 1) for day in eight]
    )
    add_usage(
        conn, [(day, "prod", "compute", "cy", 100 if day == eight[-1] else 1) for day in eight[1:]]
    )
    assert detect(conn, eight[0], eight[-1]) == 1
    [row] = anomalies(conn)
    assert row[:4] == (eight[-1], "user", "prod", "dee")
    assert row[8] == 7
    # Baseline: the median of 100/101 and six days of 100/102; MAD 0, so the 1-cent floor.
    assert round(row[5], 6) == Decimal("0.980392")  # 100 / 102
    assert row[6] == 0


def test_the_minimum_amount_is_respected(conn):
    # A hub going from $0.02 to $0.10: score 0.08 / 0.01 = 8 (MAD 0, the 1-cent floor), but
    # 8 cents above its baseline is under ANOMALY_MIN_USD.
    hub_series(conn, "tiny", ["0.02"] * 10 + ["0.10"])
    last = START + dt.timedelta(days=10)
    assert detect(conn, START, last) == 0
    assert detect(conn, START, last, AnomalyRule(Decimal(5), Decimal("0.05"))) == 1
    assert anomalies(conn) == [
        (last, "hub", "tiny", None, Decimal("0.10"), Decimal("0.02"), 0, Decimal(8), 10)
    ]
    # The factor still counts: at 9 no, at 8 yes.
    assert detect(conn, START, last, AnomalyRule(Decimal(9), Decimal("0.05"))) == 0
    assert detect(conn, START, last, AnomalyRule(Decimal(8), Decimal("0.05"))) == 1


def test_only_rises_are_anomalies(conn):
    hub_series(conn, "prod", SPIKED[:-1] + ["0.50"])
    assert (
        detect(conn, START, START + dt.timedelta(days=10), AnomalyRule(Decimal(1), Decimal(0))) == 0
    )


def test_detecting_again_replaces_the_days_rows(conn):
    hub_series(conn, "prod", SPIKED)
    spike_day = START + dt.timedelta(days=10)
    assert detect(conn, START, spike_day) == 1
    assert detect(conn, START, spike_day) == 1  # the same row, not a second one
    assert len(anomalies(conn)) == 1
    # Cost Explorer revises the day (a re-load replaces its facts): judged again, no anomaly.
    conn.execute(sa.text("DELETE FROM cost WHERE date = :d"), {"d": spike_day})
    hub_series(conn, "prod", ["11"], spike_day)
    assert detect(conn, spike_day, spike_day) == 0
    assert anomalies(conn) == []


def test_detection_touches_only_the_span_clusters_and_days(conn):
    hub_series(conn, "prod", SPIKED)
    add_costs(
        conn,
        [
            (day, "attributable", "prod", "EC2 - Other", cost)
            for day, cost in zip(days(11), SPIKED, strict=True)
        ],
        cluster="other",
    )
    spike_day = START + dt.timedelta(days=10)
    assert detect(conn, START, spike_day) == 1
    assert detect_anomalies(conn, LoadedSpan(("other",), START, spike_day), DEFAULT_RULE) == 1
    # Re-judging the day before the spike leaves the spike's row alone.
    assert detect(conn, START, spike_day - dt.timedelta(days=1)) == 0
    assert select_all(conn, "SELECT cluster, date FROM cost_anomalies ORDER BY 1") == [
        (CLUSTER, spike_day),
        ("other", spike_day),
    ]
