"""Delivering events to real webhook receivers on 127.0.0.1 (etl.notify, docs/budgets.md §5):
the exact bodies, once only (a killed and restarted run, two runs at once), a receiver down
then back, a slow receiver bounded by its timeout, and the URL nowhere in any output."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import threading
import time
from decimal import Decimal

import pytest
import sqlalchemy as sa

from core.database import create_engine
from core.settings import Settings, SettingsError
from core.webhooks import Webhook, parse_webhooks
from etl import jobs, notify, scheduler
from etl.alerts import Alerts
from etl.evaluate import AnomalyRule
from etl.load import CostRow
from etl.payloads import Event, slack_payload
from etl.windows import Chunk
from tests.etl.alert_data import TODAY, add_budget, march
from tests.etl.receivers import SECRET_TOKEN, Receiver
from tests.etl.sources_of import sources_of
from tests.reliability.conftest import database_name
from tests.reliability.processes import (
    child_env,
    hubcost,
    run_hubcost,
    sessions_at_work,
    wait_until,
)
from tests.rows import CLUSTER, select_all

NOW = dt.datetime(2026, 3, 10, 6, 0, tzinfo=dt.UTC)
RULE = AnomalyRule(Decimal(5), Decimal(5))
MARCH_KEYS = [
    "cost_anomaly:default:hub:lab::2026-03-10",
    "budget_threshold:pool:2026-03-01:10",
    "budget_threshold:prod-monthly:2026-03-01:50",
    "budget_threshold:prod-monthly:2026-03-01:80",
    "budget_forecast:prod-monthly:2026-03-01",
]


@pytest.fixture
def engine(database_url):
    """The test's own connection beside the two a run holds (the lock's and the work's)."""
    engine = create_engine(database_url, pool_size=3)
    yield engine
    engine.dispose()


def clock():
    return NOW


def hooks(*entries: str) -> tuple[Webhook, ...]:
    return parse_webhooks(",".join(entries))


def alerts(receivers, *, timeout_s=5.0, max_seconds=30.0) -> Alerts:
    return Alerts(RULE, receivers, timeout_s, max_seconds)


def march_costs(first, last, counter):
    """What Cost Explorer would say of tests.etl.alert_data.march's days."""
    day = first
    while day <= last:
        counter.count += 1
        yield CostRow(day, "attributable", "prod", "EC2 - Other", Decimal(10), "USD", "x", False)
        lab = Decimal(50) if day == TODAY else Decimal(1)
        yield CostRow(day, "attributable", "lab", "EC2 - Other", lab, "USD", "x", False)
        day += dt.timedelta(days=1)


def budgets_only(conn):
    """march's budgets, without its costs: the run loads those."""
    march(conn)
    conn.execute(sa.text("DELETE FROM cost"))
    conn.commit()


def run(engine, receivers, **kwargs) -> jobs.RunResult:
    return jobs.run_etl(
        engine,
        sources_of(costs=march_costs),
        clock=clock,
        lookback_days=3,
        initial_days=9,
        alerts=alerts(receivers, **kwargs),
    )


def deliver(engine, receivers, **kwargs) -> notify.Report:
    return alerts(receivers, **kwargs).deliver(engine, clock=clock)


def status(conn):
    return select_all(conn, "SELECT * FROM notification_status ORDER BY receiver")


def event_id(conn, key: str) -> int:
    return conn.execute(
        sa.text("SELECT id FROM notification_event WHERE key = :k"), {"k": key}
    ).scalar_one()


# ---- the bodies ----


def test_each_form_is_posted_exactly(engine, conn):
    march(conn)
    with Receiver() as plain, Receiver() as slack:
        receivers = hooks(f"json:{plain.url}", f"slack:{slack.url}")
        assert alerts(receivers).evaluate(
            engine, [Chunk("costs", TODAY, TODAY, CLUSTER)], today=TODAY
        )
        report = deliver(engine, receivers)
    assert (report.delivered, report.failed_attempts, report.left) == (10, 0, 0)
    assert plain.keys() == MARCH_KEYS
    threshold, forecast, anomaly = (
        event_id(conn, MARCH_KEYS[3]),
        event_id(conn, MARCH_KEYS[4]),
        event_id(conn, MARCH_KEYS[0]),
    )
    budget_details = {
        "period": "month",
        "period_start": "2026-03-01",
        "period_end": "2026-03-31",
        "last_day": "2026-03-10",
        "amount": "120.00",
        "spent": "100.00",
        "spent_ratio": "0.8333",
        "daily_rate": "10.00",
        "forecast": "310.00",
        "forecast_ratio": "2.5833",
        "amount_reached_on": "2026-03-12",
        "scope": {"cluster": None, "hub": "prod", "group": None, "user": None},
    }
    assert plain.acknowledged[3] == {
        "event": "budget_threshold",
        "key": "budget_threshold:prod-monthly:2026-03-01:80",
        "id": threshold,
        "cluster": None,
        "budget": "prod-monthly",
        "day": "2026-03-10",
        "details": {**budget_details, "threshold_percent": 80},
    }
    assert plain.acknowledged[4]["id"] == forecast
    assert plain.acknowledged[4]["details"] == budget_details
    assert plain.acknowledged[0] == {
        "event": "cost_anomaly",
        "key": "cost_anomaly:default:hub:lab::2026-03-10",
        "id": anomaly,
        "cluster": "default",
        "budget": None,
        "day": "2026-03-10",
        "details": {
            "scope": "hub",
            "hub": "lab",
            "user": None,
            "cost": "50.00",
            "baseline": "1.00",
            "mad": "0.00",
            "score": "4900.00",
            "history_days": 9,
        },
    }

    def field(title, value):
        return {"title": title, "value": value, "short": True}

    budget_fields = [
        field("Budget", "prod-monthly"),
        field("Scope", "hub prod"),
        field("Period", "month from 2026-03-01 to 2026-03-31"),
        field("Amount", "$120.00"),
        field("Spent", "$100.00"),
        field("Forecast", "$310.00"),
    ]
    assert slack.acknowledged[3] == {
        "text": "Budget prod-monthly: 83% of its monthly amount spent ($100.00 of $120.00 "
        "through 2026-03-10), past its 80% alert",
        "attachments": [
            {
                "fields": budget_fields
                + [field("Alert at", "80%"), field("Last day loaded", "2026-03-10")]
            }
        ],
    }
    assert slack.acknowledged[4] == {
        "text": "Budget prod-monthly: forecast $310.00 by 2026-03-31, over its monthly amount "
        "of $120.00 ($100.00 spent through 2026-03-10)",
        "attachments": [{"fields": budget_fields + [field("Last day loaded", "2026-03-10")]}],
    }
    assert slack.acknowledged[0] == {
        "text": "Cost anomaly: hub lab (default) cost $50.00 on 2026-03-10, against a usual "
        "$1.00 (score 4900.00)",
        "attachments": [
            {
                "fields": [
                    field("Cluster", "default"),
                    field("Hub", "lab"),
                    field("Day", "2026-03-10"),
                    field("Cost", "$50.00"),
                    field("Baseline", "$1.00"),
                    field("Score", "4900.00"),
                    field("History days", "9"),
                ]
            }
        ],
    }


def test_slack_text_escapes_names_and_a_total_budget_has_no_period_end():
    event = Event(
        id=7,
        key="budget_threshold:<!channel>:2026-01-01:100",
        kind="budget_threshold",
        cluster=None,
        budget="<!channel>",
        day=dt.date(2026, 3, 10),
        details={
            "period": "total",
            "period_start": "2026-01-01",
            "period_end": None,
            "last_day": "2026-03-10",
            "amount": "5000",
            "spent": "5123.456",
            "spent_ratio": "1.0246912",
            "forecast": None,
            "threshold_percent": 100,
            "scope": {"cluster": None, "hub": None, "group": "a&b", "user": None},
        },
    )
    payload = slack_payload(event)
    assert payload["text"] == (
        "Budget &lt;!channel&gt;: 102% of its total amount spent ($5,123.46 of $5,000.00 "
        "through 2026-03-10), past its 100% alert"
    )
    fields = {f["title"]: f["value"] for f in payload["attachments"][0]["fields"]}
    assert fields["Scope"] == "group a&amp;b"
    assert fields["Period"] == "total from 2026-01-01"
    assert "Forecast" not in fields


# ---- once only ----


def test_a_receiver_down_then_back_gets_each_event_once_on_the_next_run(engine, conn):
    budgets_only(conn)
    with Receiver(status=503) as receiver:
        receivers = hooks(receiver.url)
        first = run(engine, receivers)
        assert (first.exit_status, first.succeeded) == (0, 1)
        # Three tries of the oldest delivery with backoff, then left for the next run.
        assert len(receiver.received) == notify.MAX_TRIES_PER_RUN
        assert receiver.acknowledged == []
        name = receivers[0].name
        assert status(conn) == [(name, 5, 0, notify.MAX_TRIES_PER_RUN)]
        assert select_all(
            conn,
            "SELECT attempts, last_error FROM notification_delivery WHERE attempts > 0",
        ) == [(notify.MAX_TRIES_PER_RUN, "HTTP 503")]
        receiver.status = 200
        second = run(engine, receivers)
        assert second.exit_status == 0
        third = run(engine, receivers)  # nothing left: nothing posted again
        assert third.exit_status == 0
    assert receiver.keys() == MARCH_KEYS
    assert status(conn) == [(name, 0, 5, notify.MAX_TRIES_PER_RUN)]
    assert len(select_all(conn, "SELECT * FROM notification_event")) == 5


def test_a_receiver_refusing_one_event_still_gets_the_others(engine, conn):
    budgets_only(conn)
    with Receiver(script=[400]) as receiver:
        receivers = hooks(receiver.url)
        run(engine, receivers)
        assert receiver.keys() == MARCH_KEYS[1:]  # the refused one is tried by the next run
        run(engine, receivers)
    assert receiver.keys() == MARCH_KEYS[1:] + MARCH_KEYS[:1]
    assert status(conn) == [(receivers[0].name, 0, 5, 1)]


def test_two_deliveries_at_once_post_each_event_once(database_url, conn):
    march(conn)
    engine = create_engine(database_url, pool_size=3)
    try:
        with Receiver(delay_s=0.2) as receiver:
            receivers = hooks(receiver.url)
            alerts(receivers).evaluate(engine, [Chunk("costs", TODAY, TODAY, CLUSTER)], today=TODAY)
            reports = []
            threads = [
                threading.Thread(target=lambda: reports.append(deliver(engine, receivers)))
                for _ in range(2)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
    finally:
        engine.dispose()
    assert sorted(receiver.keys(receiver.received)) == sorted(MARCH_KEYS)  # no post twice
    assert sum(r.delivered for r in reports) == 5
    assert all(r.delivered for r in reports), "both deliveries took some of the work"
    assert status(conn) == [(receivers[0].name, 0, 5, 0)]


def test_the_scheduled_run_evaluates_and_delivers_through_the_same_path(engine, conn):
    budgets_only(conn)
    with Receiver() as receiver:
        scheduler.scheduled_run(
            engine,
            sources_of(costs=march_costs),
            lookback_days=3,
            initial_days=9,
            alerts=alerts(hooks(receiver.url)),
            clock=clock,
        )
    assert receiver.keys() == MARCH_KEYS


def test_named_receivers_get_only_the_budgets_that_name_them(engine, conn):
    budgets_only(conn)
    with Receiver() as everything, Receiver() as ops, Receiver() as finance:
        run(engine, hooks(everything.url, f"ops={ops.url}", f"finance={finance.url}"))
    assert everything.keys() == MARCH_KEYS
    assert ops.keys() == ["budget_threshold:pool:2026-03-01:10"]
    assert finance.keys() == []


def test_an_evaluation_the_database_refuses_fails_the_run_and_keeps_its_loads(engine, conn, caplog):
    budgets_only(conn)
    conn.execute(
        sa.text("DROP FUNCTION attribution.detect_anomalies(text[], date, date, numeric, numeric)")
    )
    conn.commit()
    with Receiver() as receiver:
        result = run(engine, hooks(receiver.url))
    assert (result.succeeded, result.evaluation_failed, result.exit_status) == (1, True, 1)
    assert "not evaluated (database error ProgrammingError)" in caplog.text
    assert receiver.received == []  # nothing half-recorded: the evaluation rolled back whole
    assert select_all(conn, "SELECT count(*) FROM notification_event") == [(0,)]
    assert select_all(conn, "SELECT count(DISTINCT date) FROM hub_costs") == [(10,)]


# ---- bounded ----


def test_a_hanging_receiver_is_bounded_by_its_timeout(engine, conn):
    budgets_only(conn)
    timeout = 0.5
    with Receiver(status=None) as receiver:
        started = time.monotonic()
        result = run(engine, hooks(receiver.url), timeout_s=timeout)
        took = time.monotonic() - started
    assert result.exit_status == 0
    # Three tries of one timeout each, the backoff between them, and the run itself.
    tries = notify.MAX_TRIES_PER_RUN
    assert took < tries * timeout + sum(notify.BACKOFF_S[: tries - 1]) + 5
    assert len(receiver.received) == tries
    assert select_all(
        conn, "SELECT attempts, last_error FROM notification_delivery WHERE attempts > 0"
    ) == [(tries, "timed out after 0.5 s")]


def test_the_delivery_step_ends_within_notify_max_seconds(engine, conn):
    march(conn)
    with Receiver(status=None) as one, Receiver(status=None) as two:
        receivers = hooks(one.url, two.url.replace("/services", "/other"))
        alerts(receivers).evaluate(engine, [Chunk("costs", TODAY, TODAY, CLUSTER)], today=TODAY)
        started = time.monotonic()
        report = deliver(engine, receivers, timeout_s=20, max_seconds=1.0)
        took = time.monotonic() - started
    assert took < 1.0 + 1.0
    assert report.delivered == 0
    assert report.left == 10


# ---- the URL is a secret ----


def table_texts(conn) -> str:
    """Every row of every table of the warehouse, as text."""
    tables = select_all(
        conn,
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_schema IN ('public', 'attribution') AND table_type = 'BASE TABLE'",
    )
    assert ("public", "notification_delivery") in tables
    return "\n".join(
        str(row)
        for schema_name, table in tables
        for row in select_all(conn, f'SELECT t::text FROM "{schema_name}"."{table}" t')
    )


def test_no_output_shows_a_webhook_url(engine, conn, caplog, capsys):
    budgets_only(conn)
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    closed = Receiver()
    closed._server.server.server_close()  # its port now refuses connections
    with Receiver() as good, Receiver(status=500) as failing, Receiver(status=None) as hanging:
        receivers = hooks(
            f"good={good.url}",
            failing.url,
            hanging.url.replace("/services", "/hang"),
            f"json:{closed.url}".replace("/services", "/closed"),
            f"pw=http://user:{SECRET_TOKEN}x@127.0.0.1:9/",
        )
        add_budget(conn, "loud", "1", notify=["good", "pw"])
        conn.commit()
        result = run(engine, receivers, timeout_s=0.3)
    assert result.exit_status == 0
    assert good.acknowledged, "the good receiver was notified"
    records = [r for r in caplog.records if r.name.startswith("urllib3")]
    assert records, "urllib3's DEBUG lines were captured"
    assert any("***" in r.getMessage() for r in records)
    texts = [caplog.text, *(r.getMessage() for r in caplog.records)]
    texts += [str(r.exc_info) for r in caplog.records if r.exc_info]
    texts += list(capsys.readouterr())
    texts.append(table_texts(conn))
    texts.append(repr(Alerts(RULE, receivers, 1, 1)))
    for text in texts:
        assert SECRET_TOKEN not in text
    for hook in receivers:
        assert hook.name in caplog.text


def test_a_bad_webhook_entry_is_named_by_its_position_never_its_url():
    for value in (
        f"https://hooks.slack.com/services/{SECRET_TOKEN}, ftp://example.org/{SECRET_TOKEN}",
        f"ops=https://a.example/{SECRET_TOKEN},ops=https://b.example/{SECRET_TOKEN}",
        f"https://example.org:port/{SECRET_TOKEN}",
    ):
        with pytest.raises(SettingsError, match="NOTIFY_WEBHOOK_URLS entry [12]") as raised:
            Settings.from_env({"NOTIFY_WEBHOOK_URLS": value})
        assert SECRET_TOKEN not in str(raised.value)
    settings = Settings.from_env(
        {"NOTIFY_WEBHOOK_URLS": f"https://hooks.slack.com/services/{SECRET_TOKEN}"}
    )
    assert SECRET_TOKEN not in repr(settings)
    [hook] = settings.notify_webhooks
    assert (hook.format, hook.named, hook.name.startswith("webhook-")) == ("slack", False, True)


# ---- real processes ----

WINDOW = ["--from", "2026-01-30", "--to", "2026-02-02"]  # the demo's data, as the other tests
POOL_KEYS = [f"budget_threshold:pool:2026-01-01:{t}" for t in (50, 80, 100)]


def demo_env(tmp_path, database_url, receiver: Receiver, **extra: str) -> dict[str, str]:
    return child_env(
        tmp_path, DATABASE_URL=database_url, NOTIFY_WEBHOOK_URLS=f"json:{receiver.url}", **extra
    )


def pool_budget(engine):
    """$1 of credit from January 1st: the demo's four days cross its 50, 80 and 100%."""
    with engine.begin() as conn:
        add_budget(conn, "pool", "1", period="total", start=dt.date(2026, 1, 1))


def deliveries(engine):
    with engine.connect() as conn:
        return select_all(
            conn,
            "SELECT e.key, d.attempts, d.delivered_at IS NOT NULL FROM notification_delivery d "
            "JOIN notification_event e ON e.id = d.event_id ORDER BY e.id",
        )


@pytest.mark.slow
def test_a_run_killed_mid_delivery_then_restarted_delivers_each_event_once(
    engine, database_url, admin_engine, tmp_path
):
    pool_budget(engine)
    with Receiver(script=[200, None]) as receiver:  # the second post hangs
        env = demo_env(tmp_path, database_url, receiver, NOTIFY_TIMEOUT_S="600")
        child = hubcost(["backfill", *WINDOW], env, tmp_path, "killed")
        try:
            wait_until(lambda: len(receiver.received) == 2, timeout=90, what="the hanging post")
            child.signal(signal.SIGKILL)
            assert child.wait(30) == -signal.SIGKILL
        finally:
            child.stop()
        wait_until(
            lambda: not sessions_at_work(admin_engine, database_name(database_url)),
            timeout=30,
            what="the killed process's session to end",
        )
        # The first is delivered; the one in flight rolled back (no attempt counted).
        assert deliveries(engine) == [
            (POOL_KEYS[0], 1, True),
            (POOL_KEYS[1], 0, False),
            (POOL_KEYS[2], 0, False),
        ]
        receiver.release.set()
        code, err = run_hubcost(["backfill", *WINDOW], env, tmp_path, "restarted")
        assert code == 0, err
    assert receiver.keys() == POOL_KEYS
    assert receiver.keys(receiver.received) == [POOL_KEYS[0], POOL_KEYS[1], *POOL_KEYS[1:]]
    assert deliveries(engine) == [(key, 1, True) for key in POOL_KEYS]
    for output in (err, child.stderr(), child.stdout()):
        assert SECRET_TOKEN not in output


@pytest.mark.slow
def test_two_runs_started_together_deliver_each_event_once(engine, database_url, tmp_path):
    pool_budget(engine)
    with Receiver(delay_s=0.3) as receiver:
        env = demo_env(tmp_path, database_url, receiver, LOG_LEVEL="DEBUG")
        children = [hubcost(["backfill", *WINDOW], env, tmp_path, f"run{i}") for i in (1, 2)]
        try:
            codes = [child.wait(120) for child in children]
        finally:
            for child in children:
                child.stop()
    assert codes == [0, 0]
    # Whether the second run waited or found the lock taken, and in whatever order the two
    # delivered: each event was posted once.
    assert sorted(receiver.keys(receiver.received)) == sorted(POOL_KEYS)
    assert deliveries(engine) == [(key, 1, True) for key in POOL_KEYS]
    for child in children:
        assert SECRET_TOKEN not in child.stderr() + child.stdout()
