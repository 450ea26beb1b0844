"""Recording events after a run (etl.evaluate): which events, their keys and details, who gets
them, and never twice: a repeated run, a re-loaded day or two evaluations at once."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import sqlalchemy as sa

from core.database import create_engine
from core.webhooks import parse_webhooks
from etl.evaluate import AnomalyRule, Evaluation, LoadedSpan, evaluate, record_events
from etl.windows import Chunk
from tests.etl.alert_data import TODAY, march
from tests.rows import CLUSTER, add_costs, select_all

RULE = AnomalyRule(Decimal(5), Decimal(5))
LOADED = [Chunk("costs", dt.date(2026, 3, 1), TODAY, cluster=CLUSTER)]
RECEIVERS = parse_webhooks(
    "http://127.0.0.1:9/everything, ops=http://127.0.0.1:9/ops, finance=http://127.0.0.1:9/f"
)
UNNAMED = RECEIVERS[0].name


def events(conn):
    return select_all(
        conn, "SELECT key, kind, cluster, budget, about_day FROM notification_event ORDER BY id"
    )


def deliveries(conn):
    return select_all(
        conn,
        "SELECT e.key, d.receiver, d.attempts, d.delivered_at FROM notification_delivery d "
        "JOIN notification_event e ON e.id = d.event_id ORDER BY e.id, d.receiver",
    )


def run_evaluation(engine, today=TODAY, loaded=LOADED):
    return evaluate(engine, loaded=loaded, today=today, rule=RULE, receivers=RECEIVERS)


def test_thresholds_forecast_and_anomaly_are_recorded_with_their_keys(engine, conn):
    march(conn)
    assert run_evaluation(engine) == Evaluation(anomalies=1, events=5, deliveries=6)
    assert events(conn) == [
        ("cost_anomaly:default:hub:lab::2026-03-10", "cost_anomaly", CLUSTER, None, TODAY),
        ("budget_threshold:pool:2026-03-01:10", "budget_threshold", None, "pool", TODAY),
        ("budget_threshold:prod-monthly:2026-03-01:50", "budget_threshold", None, "prod-monthly", TODAY),
        ("budget_threshold:prod-monthly:2026-03-01:80", "budget_threshold", None, "prod-monthly", TODAY),
        ("budget_forecast:prod-monthly:2026-03-01", "budget_forecast", None, "prod-monthly", TODAY),
    ]  # fmt: skip
    [(details,)] = select_all(
        conn,
        "SELECT details FROM notification_event WHERE key = :key",
        key="budget_threshold:prod-monthly:2026-03-01:80",
    )
    assert details == {
        "period": "month",
        "period_start": "2026-03-01",
        "period_end": "2026-03-31",
        "last_day": "2026-03-10",
        "amount": "120.00",
        "spent": "100",
        "spent_ratio": "0.83333333333333333333",
        "daily_rate": "10.0000000000000000",
        "forecast": "310.0000000000000000",
        "forecast_ratio": "2.5833333333333333",
        "amount_reached_on": "2026-03-12",
        "scope": {"cluster": None, "hub": "prod", "group": None, "user": None},
        "threshold_percent": 80,
    }
    [(anomaly,)] = select_all(
        conn, "SELECT details FROM notification_event WHERE kind = 'cost_anomaly'"
    )
    assert anomaly == {
        "scope": "hub",
        "hub": "lab",
        "user": None,
        "cost": "50",
        "baseline": "1.00000000000000000000",
        "mad": "0.00000000000000000000",
        "score": "4900.00000000000000000000",
        "history_days": 9,
    }


def test_unnamed_receivers_get_every_event_named_ones_only_their_budgets(engine, conn):
    march(conn)
    run_evaluation(engine)
    got = {}
    for key, receiver, attempts, delivered_at in deliveries(conn):
        assert (attempts, delivered_at) == (0, None)
        got.setdefault(receiver, []).append(key)
    assert got == {
        UNNAMED: [
            "cost_anomaly:default:hub:lab::2026-03-10",
            "budget_threshold:pool:2026-03-01:10",
            "budget_threshold:prod-monthly:2026-03-01:50",
            "budget_threshold:prod-monthly:2026-03-01:80",
            "budget_forecast:prod-monthly:2026-03-01",
        ],
        "ops": ["budget_threshold:pool:2026-03-01:10"],
    }


def test_a_repeated_run_and_a_reloaded_day_record_only_what_is_new(engine, conn):
    march(conn)
    run_evaluation(engine)
    before = (events(conn), deliveries(conn))
    assert run_evaluation(engine) == Evaluation(anomalies=1, events=0, deliveries=0)
    assert (events(conn), deliveries(conn)) == before
    # March 6-10 re-loaded at $14 a day for prod: $120 spent, the 100% threshold is new (each
    # day only $4 above prod's baseline: no anomaly); lab's anomaly, judged again, is old news.
    conn.execute(sa.text("DELETE FROM cost WHERE date >= '2026-03-06' AND hub = 'prod'"))
    add_costs(
        conn,
        [(f"2026-03-{d:02d}", "attributable", "prod", "EC2 - Other", 14) for d in range(6, 11)],
    )
    conn.commit()
    reloaded = [Chunk("costs", dt.date(2026, 3, 6), TODAY, cluster=CLUSTER)]
    assert run_evaluation(engine, loaded=reloaded) == Evaluation(
        anomalies=1, events=1, deliveries=1
    )
    assert events(conn)[len(before[0]) :] == [
        (
            "budget_threshold:prod-monthly:2026-03-01:100",
            "budget_threshold",
            None,
            "prod-monthly",
            TODAY,
        )
    ]


def test_two_evaluations_at_once_record_each_event_once(database_url, conn):
    march(conn)
    barrier = threading.Barrier(2)
    counts = []
    engine = create_engine(database_url, pool_size=2)

    def record():
        with engine.begin() as mine:
            barrier.wait(timeout=10)
            counts.append(
                record_events(mine, LoadedSpan.of(LOADED), today=TODAY, receivers=RECEIVERS)
            )

    threads = [threading.Thread(target=record) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    engine.dispose()
    assert sorted(counts) == [(0, 0), (4, 5)]  # the anomaly is not detected here: 4 events
    assert len(events(conn)) == 4
    assert len(deliveries(conn)) == 5


def test_an_anomaly_on_an_old_day_is_kept_but_not_posted(engine, conn):
    march(conn)
    later = TODAY + dt.timedelta(days=7)  # the 10th is 7 days back: outside the last 7
    result = run_evaluation(engine, today=later)
    assert result.anomalies == 1
    assert [key for key, *_ in events(conn) if key.startswith("cost_anomaly")] == []
    assert len(select_all(conn, "SELECT * FROM cost_anomalies")) == 1


def test_a_run_that_loaded_nothing_records_nothing_about_anomalies(engine, conn):
    march(conn)
    assert run_evaluation(engine, loaded=[]).anomalies == 0
    assert select_all(conn, "SELECT count(*) FROM cost_anomalies") == [(0,)]
