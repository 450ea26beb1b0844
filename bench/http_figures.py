"""Figures 1-3 and 5: dashboard latency, bulk rows per second against bare SQL, throughput.

Every HTTP request is sent by bench.loadgen in a second process; this module plans the
requests, runs the loader and summarises its timings.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import subprocess
import sys
import time

import psycopg

from api import queries
from api.params import DateRange, Listing

HUB = "hub-07"
GROUP = "group-07"


def grafana_date(day: dt.date, *, end: bool = False) -> str:
    """As Grafana's ${__from:date} / ${__to:date} render."""
    clock = "23:59:59.999" if end else "00:00:00.000"
    return f"{day.isoformat()}T{clock}Z"


def dashboard_requests(last_day: dt.date, days: int) -> list[tuple[str, str]]:
    first = last_day - dt.timedelta(days=days - 1)
    span = f"from={grafana_date(first)}&to={grafana_date(last_day, end=True)}"
    return [
        ("/total-costs", f"/total-costs?{span}"),
        ("/total-costs-per-hub", f"/total-costs-per-hub?{span}"),
        ("/total-costs-per-component", f"/total-costs-per-component?{span}&hub=all"),
        ("/total-costs-per-component?hub=X", f"/total-costs-per-component?{span}&hub={HUB}"),
        (
            "/costs-per-user?hub=X&component=compute&limit=10",
            f"/costs-per-user?{span}&hub={HUB}&component=compute&usergroup=all&limit=10",
        ),
        (
            "/costs-per-user?usergroup=G&limit=10",
            f"/costs-per-user?{span}&hub=all&component=all&usergroup={GROUP}&limit=10",
        ),
        ("/total-costs-per-group", f"/total-costs-per-group?{span}"),
        ("/hub-names", f"/hub-names?{span}"),
        ("/users-with-multiple-groups", "/users-with-multiple-groups?hub_name=all&user_name="),
    ]


def load(plan: dict) -> dict:
    """Run bench.loadgen in its own process (answers other than 200 are counted by callers)."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.loadgen"],
        input=json.dumps(plan),
        capture_output=True,
        text=True,
        check=True,
        timeout=plan["time_limit_s"] + 120,
    )
    return json.loads(done.stdout)


def failures(results: list[dict]) -> dict[str, int]:
    """Answers other than 200, by status."""
    counts: dict[str, int] = {}
    for r in results:
        if r["status"] != 200:
            counts[str(r["status"])] = counts.get(str(r["status"]), 0) + 1
    return counts


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    if len(ms) == 1:
        return {"n": 1, "p50": ms[0], "p95": ms[0], "p99": ms[0]}
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return {"n": len(ms), "p50": cuts[49], "p95": cuts[94], "p99": cuts[98]}


def dashboard_latency(base: str, last_day: dt.date, *, days: int, rounds: int) -> dict:
    """One client, requests one after another: per-request and overall p50/p95/p99 (ms)."""
    requests = dashboard_requests(last_day, days)
    load({"base": base, "requests": requests, "rounds": 1, "concurrency": 1, "time_limit_s": 120})
    result = load(
        {
            "base": base,
            "requests": requests,
            "rounds": rounds,
            "concurrency": 1,
            "time_limit_s": 600,
        }
    )
    by_label: dict[str, list[float]] = {}
    for r in result["results"]:
        by_label.setdefault(r["label"], []).append(r["seconds"])
    figures = {label: percentiles(values) for label, values in by_label.items()}
    figures["all"] = percentiles([r["seconds"] for r in result["results"]])
    figures["all"]["failures"] = failures(result["results"])
    return figures


def throughput(base: str, last_day: dt.date, *, clients: int, seconds: float) -> dict:
    """The 30- and 365-day dashboard mix from `clients` concurrent connections for `seconds`."""
    mix = [
        (f"{days}d {label}", path)
        for days in (30, 365)
        for label, path in dashboard_requests(last_day, days)
    ]
    result = load(
        {
            "base": base,
            "requests": mix,
            "rounds": 100_000,
            "concurrency": clients,
            "time_limit_s": seconds,
        }
    )
    n = len(result["results"])
    return {
        "clients": clients,
        "requests": n,
        "seconds": result["elapsed_s"],
        "rps": n / result["elapsed_s"],
        "failures": failures(result["results"]),
        "by_request": {
            label: percentiles([r["seconds"] for r in result["results"] if r["label"] == label])
            for label in dict.fromkeys(r["label"] for r in result["results"])
        },
        **{k: v for k, v in percentiles([r["seconds"] for r in result["results"]]).items()},
    }


BULK = {"/costs-per-user": queries.costs_per_user, "/total-usage": queries.total_usage}


def bare_sql_seconds(database_url: str, build, listing: Listing, *, repeat: int):
    """The endpoint's own statement (api.queries.run_rows's), fetched as rows by psycopg."""
    statement, params = queries.psycopg_statement(build(listing))
    times, rows = [], 0
    with psycopg.connect(database_url) as conn:
        for _ in range(repeat):
            started = time.perf_counter()
            rows = len(conn.execute(statement, params).fetchall())
            times.append(time.perf_counter() - started)
    return statistics.median(times), rows


def bulk(base: str, database_url: str, last_day: dt.date, *, days: int, repeat: int) -> list:
    """Unfiltered bulk answers, JSON and CSV: rows per second and the ratio to bare SQL.

    The bare query and the two HTTP answers are timed in turn, `repeat` rounds after one
    warm-up round, so drift in the machine's load touches both sides alike; medians compared.
    """
    first = last_day - dt.timedelta(days=days - 1)
    listing = Listing(days=DateRange(first, last_day))
    span = f"from={first}&to={last_day}"
    figures = []
    for path, build in BULK.items():
        sql_times, api = [], {"json": [], "csv": []}
        for round_ in range(repeat + 1):
            sql_s, sql_rows = bare_sql_seconds(database_url, build, listing, repeat=1)
            for fmt in api:
                url = f"{path}?{span}" + ("&format=csv" if fmt == "csv" else "")
                plan = {
                    "base": base,
                    "requests": [[f"{path} {fmt}", url]],
                    "rounds": 1,
                    "concurrency": 1,
                    "time_limit_s": 600,
                    "count_rows": True,
                }
                (result,) = load(plan)["results"]
                if result["status"] != 200:
                    raise RuntimeError(f"{path} {fmt}: answered {result['status']}")
                if round_:  # round 0 warms both sides up
                    api[fmt].append(result)
            if round_:
                sql_times.append(sql_s)
        sql_s = statistics.median(sql_times)
        for fmt, results in api.items():
            api_s = statistics.median(r["seconds"] for r in results)
            rows = results[0]["rows"]
            figures.append(
                {
                    "request": f"{path} {fmt}",
                    "rows": rows,
                    "sql_rows": sql_rows,
                    "mb": results[0]["bytes"] / 1e6,
                    "api_s": api_s,
                    "sql_s": sql_s,
                    "rows_per_s": rows / api_s,
                    "ratio": api_s / sql_s,
                    "ratios": [r["seconds"] / q for r, q in zip(results, sql_times, strict=True)],
                }
            )
    return figures
