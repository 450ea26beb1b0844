"""Figure 6 (issue 12): budgets and cost anomalies at the year's scale.

- 200 budgets over the generated warehouse (everything, its cluster, every hub, the groups,
  90 users, a few group-on-hub; months, quarters, years and credit pools), written on every
  run; the anomalies of its last 30 days detected once per generated warehouse;
- `/budgets?as_of` and `/cost-anomalies` over 30 days: p50/p95/p99 over real HTTP, beside the
  SQL they run (`budget_status(:as_of)`, the 30-day select of `cost_anomalies`);
- the ETL's added time after a daily run (etl.evaluate): detecting the anomalies of the
  lookback days of every cluster, then recording the events, which reads budget_status(today).
  Each round is rolled back, so every round records the same events as a first run would.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from decimal import Decimal
from pathlib import Path

import psycopg

from bench import generate, http_figures, warehouse
from bench.server import ApiServer
from core.database import create_engine

LOOKBACK_DAYS = 3  # the default LOOKBACK_DAYS: the days a daily run reloads
ANOMALY_DAYS = 30  # the days /cost-anomalies is asked for, detected beforehand
FACTOR, MIN_USD = Decimal(5), Decimal(5)  # ANOMALY_FACTOR, ANOMALY_MIN_USD defaults
POOL_START = dt.date(2026, 6, 1)


def budget_rows() -> list[dict]:
    """The 200 budgets: amounts near each scope's spend, so that some pass their thresholds."""
    cluster = generate.CLUSTER
    rows = [
        _budget("everything", 1_000_000, "year"),
        _budget("everything-pool", 900_000, "total", start_date=dt.date(2026, 1, 1)),
        _budget(f"cluster-{cluster}", 85_000, "month", cluster=cluster),
    ]
    periods = (("month", 1_700), ("quarter", 5_000), ("year", 20_000))
    for i, hub in enumerate(generate.HUBS):
        period, amount = periods[i % 3]
        rows.append(_budget(f"hub-{hub}", amount, period, hub=hub))
    for hub in generate.HUBS[:3]:
        rows.append(_budget(f"pool-{hub}", 9_000, "total", hub=hub, start_date=POOL_START))
    for i, group in enumerate(generate.GROUPS):
        rows.append(_budget(f"group-{group}", 1_600, "month", usergroup=group))
        if i % 5 == 0:
            rows.append(_budget(f"group-{group}-year", 19_000, "year", usergroup=group))
    population = generate.users()
    for i, (hub, user, _) in enumerate(population[:: len(population) // 90][:90]):
        if i % 5 == 0:
            rows.append(_budget(f"user-{user}", 50, "total", username=user, start_date=POOL_START))
        else:
            rows.append(_budget(f"user-{user}", 12, "month", hub=hub, username=user))
    for i in range(6):
        group, hub = generate.GROUPS[i], generate.HUBS[i * 7]
        rows.append(_budget(f"{group}-on-{hub}", 40, "month", hub=hub, usergroup=group))
    return rows


def _budget(name, amount, period, **scope) -> dict:
    return {
        "name": name,
        "cluster": None,
        "hub": None,
        "usergroup": None,
        "username": None,
        "start_date": None,
        **scope,
        "amount": Decimal(amount),
        "period": period,
    }


UPSERT = """
INSERT INTO budget (name, cluster, hub, usergroup, username, amount, period, start_date)
VALUES (%(name)s, %(cluster)s, %(hub)s, %(usergroup)s, %(username)s, %(amount)s, %(period)s,
        %(start_date)s)
ON CONFLICT (name) DO UPDATE SET
    cluster = excluded.cluster, hub = excluded.hub, usergroup = excluded.usergroup,
    username = excluded.username, amount = excluded.amount, period = excluded.period,
    start_date = excluded.start_date
"""

# Beside bench.warehouse's marker: the generated warehouse whose anomalies were detected.
MARKER = """
CREATE TABLE IF NOT EXISTS bench.anomalies (generated_at timestamptz, seconds float8)
"""
WAREHOUSE_GENERATED = "SELECT max(generated_at) FROM bench.warehouse"
DETECT = "SELECT attribution.detect_anomalies(%s, %s, %s, %s, %s)"


def prepare(url: str, last_day: dt.date) -> dict:
    """Write the budgets; detect the last 30 days' anomalies unless done for this warehouse."""
    rows = budget_rows()
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM budget WHERE name <> ALL (%s)", ([r["name"] for r in rows],))
        conn.cursor().executemany(UPSERT, rows)
        conn.execute(warehouse.MARKER)
        conn.execute(MARKER)
        generated = conn.execute(WAREHOUSE_GENERATED).fetchone()[0]
        done = conn.execute(
            "SELECT seconds FROM bench.anomalies WHERE generated_at = %s "
            "AND EXISTS (SELECT FROM cost_anomalies)",
            (generated,),
        )
        detected = done.fetchone()
        if detected is None:
            started = time.perf_counter()
            first = last_day - dt.timedelta(days=ANOMALY_DAYS - 1)
            conn.execute(DETECT, ([generate.CLUSTER], first, last_day, FACTOR, MIN_USD))
            detected = (time.perf_counter() - started,)
            conn.execute("DELETE FROM bench.anomalies")
            conn.execute("INSERT INTO bench.anomalies VALUES (%s, %s)", (generated, detected[0]))
        anomalies = conn.execute(
            "SELECT count(*) FROM cost_anomalies WHERE date > %s",
            (last_day - dt.timedelta(days=ANOMALY_DAYS),),
        ).fetchone()[0]
    return {
        "budgets": len(rows),
        "anomalies_30d": anomalies,
        "anomaly_detection_30d_s": detected[0],
    }


def figures(url: str, last_day: dt.date, *, rounds: int, log_path: Path) -> dict:
    """Figure 6: the budgets written, then HTTP (a server of its own), SQL and the ETL's part."""
    prepared = prepare(url, last_day)
    with ApiServer(url, log_path=log_path) as server:
        http = http_latency(server.base, last_day, rounds=rounds)
    return {
        "prepared": prepared,
        "http": http,
        "sql": sql_latency(url, last_day, rounds=rounds),
        "evaluation": evaluation_seconds(url, last_day, rounds=max(3, rounds // 6)),
    }


def requests(last_day: dt.date) -> list[tuple[str, str]]:
    first = last_day - dt.timedelta(days=ANOMALY_DAYS - 1)
    return [
        ("/budgets", f"/budgets?as_of={last_day}"),
        ("/cost-anomalies 30 d", f"/cost-anomalies?from={first}&to={last_day}"),
    ]


def http_latency(base: str, last_day: dt.date, *, rounds: int) -> dict:
    """One client, the two requests in turn after a warm-up round: p50/p95/p99 (ms)."""
    plan = {"base": base, "requests": requests(last_day), "concurrency": 1}
    http_figures.load({**plan, "rounds": 1, "time_limit_s": 120})
    result = http_figures.load({**plan, "rounds": rounds, "time_limit_s": 600})
    figures = {}
    for label, _ in requests(last_day):
        mine = [r for r in result["results"] if r["label"] == label]
        figures[label] = {
            **http_figures.percentiles([r["seconds"] for r in mine]),
            "failures": http_figures.failures(mine),
        }
    return figures


def sql_latency(url: str, last_day: dt.date, *, rounds: int) -> dict:
    """The statements the two endpoints are built on, fetched by psycopg (ms)."""
    first = last_day - dt.timedelta(days=ANOMALY_DAYS - 1)
    statements = {
        "budget_status(as_of)": ("SELECT * FROM budget_status(%s)", (last_day,)),
        "cost_anomalies 30 d": (
            "SELECT * FROM cost_anomalies WHERE date BETWEEN %s AND %s "
            "ORDER BY date DESC, score DESC, cluster, scope, hub, username",
            (first, last_day),
        ),
    }
    figures = {}
    with psycopg.connect(url) as conn:
        for label, (sql, params) in statements.items():
            conn.execute(sql, params).fetchall()  # warm-up
            times, rows = [], 0
            for _ in range(rounds):
                started = time.perf_counter()
                rows = len(conn.execute(sql, params).fetchall())
                times.append(time.perf_counter() - started)
            figures[label] = {**http_figures.percentiles(times), "rows": rows}
    return figures


def evaluation_seconds(url: str, today: dt.date, *, rounds: int) -> dict:
    """etl.evaluate after a daily run that loaded today's lookback days: medians (s)."""
    from etl import evaluate  # the bench stands above etl and api, as the CLI does

    span = evaluate.LoadedSpan(
        clusters=(generate.CLUSTER,), first=today - dt.timedelta(days=LOOKBACK_DAYS - 1), last=today
    )
    rule = evaluate.AnomalyRule(factor=FACTOR, min_usd=MIN_USD)
    engine = create_engine(url, pool_size=1)
    detect, record, found, events = [], [], 0, 0
    try:
        for _ in range(rounds):
            with engine.connect() as conn:
                transaction = conn.begin()
                started = time.perf_counter()
                found = evaluate.detect_anomalies(conn, span, rule)
                detected = time.perf_counter()
                events, _ = evaluate.record_events(conn, span, today=today, receivers=())
                detect.append(detected - started)
                record.append(time.perf_counter() - detected)
                transaction.rollback()
    finally:
        engine.dispose()
    return {
        "days": LOOKBACK_DAYS,
        "rounds": rounds,
        "detect_s": statistics.median(detect),
        "record_events_s": statistics.median(record),
        "total_s": statistics.median(d + r for d, r in zip(detect, record, strict=True)),
        "anomalies": found,
        "events": events,
    }


def report(figures: dict) -> list[str]:
    p = figures["prepared"]
    lines = [
        f"\n6. budgets and anomalies ({p['budgets']} budgets; {p['anomalies_30d']} anomalies in "
        f"the last {ANOMALY_DAYS} days, detected in {p['anomaly_detection_30d_s']:.1f} s once "
        "per warehouse), ms",
        f"{'request':28} {'HTTP p50':>9} {'p95':>7} {'p99':>7} {'SQL p50':>8} {'p95':>7} "
        f"{'rows':>6}  target",
    ]
    targets = {"/budgets": "p95 < 50", "/cost-anomalies 30 d": "p95 < 100"}
    for (label, h), s in zip(figures["http"].items(), figures["sql"].values(), strict=True):
        failed = f"  answers other than 200: {h['failures']}" if h["failures"] else ""
        lines.append(
            f"{label:28} {h['p50']:9.1f} {h['p95']:7.1f} {h['p99']:7.1f} {s['p50']:8.1f} "
            f"{s['p95']:7.1f} {s['rows']:6d}  {targets[label]}{failed}"
        )
    e = figures["evaluation"]
    lines.append(
        f"   ETL's added time after a daily run ({e['days']} days, median of {e['rounds']}): "
        f"{e['total_s']:.2f} s (target < 2 s) = detect_anomalies {e['detect_s']:.2f} s "
        f"({e['anomalies']} rows) + recording events {e['record_events_s']:.2f} s "
        f"({e['events']} events, budget_status(today) included)"
    )
    return lines
