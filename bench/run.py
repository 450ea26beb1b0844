"""Every figure of issue 5 in one run: `make bench` (or `python -m bench.run [--quick]`).

1. dashboard-shaped requests, p50/p95/p99 over real HTTP, 30- and 365-day ranges
2. bulk answers (JSON, CSV): rows per second and the ratio API / bare SQL
3. throughput of the dashboard mix with 8 concurrent clients
4. the 30-day Prometheus backfill and the daily `hubcost etl` (Cost Explorer answered locally)
5. peak RSS of `hubcost serve` under 3 and of the ETL commands of 4
6. budgets and anomalies (200 budgets): `/budgets` and `/cost-anomalies` beside their SQL, and
   the ETL's added time for evaluating them after a daily run
7. the pages under /ui/: weight and time to first paint in headless chromium
8. the upgrade from the previous release (0005) on a warehouse of the same days: how long its
   locks are held and what the API's reads see meanwhile (a database of its own, rebuilt)
9. speed (issue 14), the code before issue 14 (a git worktree of its commit) and this one in
   the same run: one dashboard load of ten requests cold and repeated (1,000 users x 20 hubs x
   30 days), the bulk answers of 2 against bare SQL with peak RSS and gzip, 20 clusters x
   1,000 users x 365 days with and without a cluster filter, and the load average throughout
   (`--only 9` runs this figure alone)

The database is BENCH_DATABASE_URL, else the embedded PostgreSQL under var/bench-pgdata.
The generated warehouse and the Prometheus history are reused while their markers match.
Figures are printed and written to var/bench-results.json; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import time
from pathlib import Path

import psycopg

from bench import (
    budget_figures,
    http_figures,
    page_figures,
    speed_figures,
    upgrade_figures,
    warehouse,
)
from bench.server import ApiServer, memory_kib

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
LAST_DAY = dt.date(2026, 10, 31)

FULL = dict(
    days=365,
    rounds=30,
    bulk_repeat=5,
    clients=8,
    load_s=30.0,
    etl_days=30,
    etl_hubs=20,
    etl_users=1000,
    etl_clusters=20,
)
QUICK = dict(
    days=35,
    rounds=3,
    bulk_repeat=1,
    clients=8,
    load_s=3.0,
    etl_days=2,
    etl_hubs=4,
    etl_users=200,
    etl_clusters=3,
)


def machine(url: str) -> dict:
    with psycopg.connect(url) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
    memory_kib_total = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(memory_kib_total / 2**20, 1),
        "cpu": _cpu_model(),
        "postgresql": version,
        "python": platform.python_version(),
    }


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def api_figures(url: str, size: dict) -> dict:
    figures: dict = {}
    with ApiServer(url, log_path=VAR / "bench-serve.log") as server:
        pid = server.process.pid
        figures["serve_rss_idle_mib"] = memory_kib(pid)["VmRSS"] / 1024
        for days in (30, 365):
            figures[f"dashboard_{days}d"] = http_figures.dashboard_latency(
                server.base, LAST_DAY, days=days, rounds=size["rounds"]
            )
        figures["serve_hwm_after_dashboards_mib"] = memory_kib(pid)["VmHWM"] / 1024
        figures["bulk"] = http_figures.bulk(
            server.base, url, LAST_DAY, days=30, repeat=size["bulk_repeat"]
        )
        figures["serve_hwm_after_bulk_mib"] = memory_kib(pid)["VmHWM"] / 1024
    # Figure 1 again with every answer read: with the cache (above) a repeated round is a
    # lookup, so this is what the statements cost.
    uncached = {"RESPONSE_CACHE_MB": "0"}
    with ApiServer(url, log_path=VAR / "bench-serve.log", env=uncached) as server:
        for days in (30, 365):
            figures[f"dashboard_uncached_{days}d"] = http_figures.dashboard_latency(
                server.base, LAST_DAY, days=days, rounds=size["rounds"]
            )
        # Figure 5 asks for the peak under the load of 3: a fresh server, so bulk's
        # 200,000-row answers do not set its high-water mark.
    with ApiServer(url, log_path=VAR / "bench-serve.log") as server:
        figures["throughput"] = http_figures.throughput(
            server.base, LAST_DAY, clients=size["clients"], seconds=size["load_s"]
        )
        figures["serve_hwm_under_throughput_mib"] = memory_kib(server.process.pid)["VmHWM"] / 1024
    return figures


def etl_part(size: dict, quick: bool) -> dict:
    from bench import etl_figures, prometheus_history

    if shutil.which("prometheus") is None or shutil.which("promtool") is None:
        return {"skipped": "needs prometheus and promtool (Debian's prometheus package)"}
    today = dt.datetime.now(dt.UTC).date()
    last = today - dt.timedelta(days=1)
    first = last - dt.timedelta(days=size["etl_days"] - 1)
    workdir = VAR / ("bench-prometheus-quick" if quick else "bench-prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    history = prometheus_history.ensure_history(
        workdir / "tsdb",
        first=first,
        days=size["etl_days"],
        hubs=size["etl_hubs"],
        users=size["etl_users"],
    )
    history["seconds"] = time.perf_counter() - started
    url = warehouse.recreate_database("hubcost_bench_etl")
    warehouse.migrate_to_head(url)
    figures = etl_figures.etl_figures(
        url, workdir / "tsdb", workdir, first=first, last=last, clusters=size["etl_clusters"]
    )
    return {"history": history, **figures}


def speed_part(url: str, quick: bool) -> dict:
    before = speed_figures.before_checkout()
    started = time.perf_counter()
    prepared = speed_figures.prepare(LAST_DAY, quick=quick)
    ready_s = time.perf_counter() - started
    figures = speed_figures.figures(
        prepared["dashboard_url"],
        url,
        prepared["clusters_url"],
        LAST_DAY,
        size=speed_figures.QUICK if quick else speed_figures.FULL,
        before=before,
        log_path=VAR / "bench-serve.log",
    )
    warehouses = {k: v for k, v in prepared.items() if k.endswith("_warehouse")}
    return {**figures, "warehouses": warehouses, "warehouses_ready_s": ready_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a reduced smoke run")
    parser.add_argument("--skip-etl", action="store_true", help="only figures 1-3 and 5")
    parser.add_argument("--skip-upgrade", action="store_true", help="not figure 8")
    parser.add_argument("--skip-speed", action="store_true", help="not figure 9")
    parser.add_argument(
        "--only", choices=["api", "9"], help="figures 1-3 and 5 (api), or figure 9, alone"
    )
    args = parser.parse_args()
    size = QUICK if args.quick else FULL
    VAR.mkdir(exist_ok=True)
    database = warehouse.DATABASE + ("_quick" if args.quick else "")
    url = warehouse.bench_database_url(database)
    results: dict = {"command": "make bench" + (" (--quick)" if args.quick else "")}
    results["machine"] = machine(url)
    started = time.perf_counter()
    results["warehouse"] = warehouse.ensure_warehouse(url, days=size["days"], last_day=LAST_DAY)
    results["warehouse"]["ready_s"] = time.perf_counter() - started
    results["warehouse"]["rows"] = table_sizes(url)
    if args.only == "9":
        results["speed"] = speed_part(url, args.quick)
        write(results, "bench-results-speed" + ("-quick" if args.quick else ""))
        return
    results["load_average_before"] = os.getloadavg()
    results["api"] = api_figures(url, size)
    results["load_average_after_api"] = os.getloadavg()
    if args.only == "api":
        write(results, "bench-results-api" + ("-quick" if args.quick else ""))
        return
    results["budgets"] = budget_figures.figures(
        url, LAST_DAY, rounds=size["rounds"], log_path=VAR / "bench-serve.log"
    )
    results["pages"] = page_figures.figures(
        url, LAST_DAY, rounds=size["rounds"], log_path=VAR / "bench-serve.log"
    )
    if not args.skip_etl:
        results["etl"] = etl_part(size, args.quick)
    if not args.skip_upgrade:
        upgrade_url = warehouse.recreate_database(upgrade_figures.DATABASE)
        results["upgrade"] = upgrade_figures.figures(upgrade_url, days=size["days"])
    if not args.skip_speed:
        results["speed"] = speed_part(url, args.quick)
    write(results, "bench-results" + ("-quick" if args.quick else ""))


def write(results: dict, name: str) -> None:
    out = VAR / f"{name}.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    print(report(results))
    print(f"\n(all figures as JSON: {out})")


def table_sizes(url: str) -> dict:
    with psycopg.connect(url) as conn:
        return dict(
            conn.execute(
                "SELECT 'cost', count(*) FROM cost UNION ALL SELECT 'usage', count(*) FROM usage "
                "UNION ALL SELECT 'user_group_snapshot', count(*) FROM user_group_snapshot "
                "UNION ALL SELECT 'user_costs_by_group', count(*) "
                "FROM attribution.user_group_cost_daily"
            ).fetchall()
        )


def report(r: dict) -> str:
    lines = [machine_line(r["machine"])]
    if "api" not in r:  # --only 9
        lines.append(warehouse_line(r["warehouse"]))
        lines.extend(speed_report(r["speed"]))
        return "\n".join(lines)
    lines.append(
        "load average (1, 5, 15 min) before the API figures "
        f"{tuple(round(x, 1) for x in r['load_average_before'])}, after "
        f"{tuple(round(x, 1) for x in r['load_average_after_api'])}"
    )
    lines.append(warehouse_line(r["warehouse"]))
    api = r["api"]
    lines.append(
        "\n1. dashboard requests, one client, ms (target p95 < 50 at 30 d, < 250 at 365 d); "
        "repeated rounds answered from the response cache"
    )
    lines.extend(dashboard_table(api, "dashboard"))
    lines.append("\n1b. the same without the response cache (RESPONSE_CACHE_MB=0)")
    lines.extend(dashboard_table(api, "dashboard_uncached"))
    lines.append("\n2. bulk answers, 30 days unfiltered (target ratio API / bare SQL < 1.5)")
    lines.append(
        f"{'request':24} {'rows':>8} {'MB':>6} {'API s':>7} {'SQL s':>7} {'rows/s':>9} {'ratio':>6}"
    )
    for b in api["bulk"]:
        lines.append(
            f"{b['request']:24} {b['rows']:8d} {b['mb']:6.1f} {b['api_s']:7.3f} "
            f"{b['sql_s']:7.3f} {b['rows_per_s']:9.0f} {b['ratio']:6.2f}  (rounds: "
            + ", ".join(f"{x:.2f}" for x in b["ratios"])
            + ")"
        )
    t = api["throughput"]
    lines.append(
        f"\n3. throughput, dashboard mix (30 + 365 d), {t['clients']} clients: "
        f"{t['rps']:.1f} requests/s ({t['requests']} in {t['seconds']:.1f} s; "
        f"p50 {t['p50']:.0f} ms, p95 {t['p95']:.0f} ms, p99 {t['p99']:.0f} ms; "
        f"answers other than 200: {t['failures'] or 'none'})"
    )
    for label, p in t["by_request"].items():
        lines.append(f"   {label:57} n {p['n']:4d} p50 {p['p50']:7.1f} p95 {p['p95']:7.1f} ms")
    etl = r.get("etl")
    if etl and "skipped" not in etl:
        h, bf, d = etl["history"], etl["backfill"], etl["daily_etl"]
        lines.append(
            f"\n4. ETL: history {h['days']} days x {h['hubs']} hubs x {h['users']} users "
            f"({'reused' if h['reused'] else 'built'} in {h['seconds']:.0f} s)"
        )
        lines.append(
            f"   usage backfill: {bf['seconds']:.1f} s for {bf['days']} days = "
            f"{bf['seconds_per_day']:.2f} s/day; queries/day {bf['queries_per_day_run_log']:.1f} "
            f"(Prometheus counted {bf['queries_per_day_prometheus']:.1f}); "
            f"{bf['rows_per_day']:.0f} rows/day; peak RSS {bf['peak_rss_mib']:.0f} MiB"
        )
        cb = etl["costs_backfill"]
        lines.append(
            f"   costs backfill (same days): {cb['seconds']:.1f} s, chunks (first, last, "
            f"requests, rows) {cb['chunks']}; peak RSS {cb['peak_rss_mib']:.0f} MiB"
        )
        lines.append(
            f"   daily hubcost etl: {d['seconds']:.1f} s (target < 10 s); cost chunks "
            f"{d['cost_chunks']} (target 4 requests + pages); usage chunks {d['usage_chunks']}; "
            f"CE requests served {d['ce_requests_served']}, Prometheus queries "
            f"{d['prometheus_queries']:.0f}; peak RSS {d['peak_rss_mib']:.0f} MiB"
        )
        m = etl["many_clusters"]
        lines.append(
            f"   daily hubcost etl of {m['clusters']} clusters (HUBCOST_CLUSTERS, one linked "
            f"account each, same sizes): {m['seconds']:.1f} s ({m['seconds'] / m['clusters']:.2f} "
            f"s/cluster; first run {m['first_run_seconds']:.1f} s); CE requests served "
            f"{m['ce_requests_served']} ({m['ce_requests_served'] / m['clusters']:.1f}/cluster); "
            f"chunks (n, requests, failed) {m['chunks']}; Prometheus queries "
            f"{m['prometheus_queries']:.0f}; peak RSS {m['peak_rss_mib']:.0f} MiB"
        )
    elif etl:
        lines.append(f"\n4. ETL: skipped: {etl['skipped']}")
    lines.append(
        f"\n5. peak RSS of hubcost serve: {api['serve_hwm_under_throughput_mib']:.0f} MiB under "
        f"the load of 3 (idle {api['serve_rss_idle_mib']:.0f} MiB; after the dashboards "
        f"{api['serve_hwm_after_dashboards_mib']:.0f} MiB, after bulk "
        f"{api['serve_hwm_after_bulk_mib']:.0f} MiB)"
    )
    if "budgets" not in r:  # --only api
        return "\n".join(lines)
    lines.extend(budget_figures.report(r["budgets"]))
    lines.extend(page_figures.report(r["pages"]))
    if "upgrade" in r:
        lines.extend(upgrade_figures.report(r["upgrade"]))
    if "speed" in r:
        lines.extend(speed_report(r["speed"]))
    return "\n".join(lines)


def dashboard_table(api: dict, name: str) -> list[str]:
    lines = [
        f"{'request':52} {'30d p50':>8} {'p95':>7} {'p99':>7} {'365d p50':>9} {'p95':>7} {'p99':>7}"
    ]
    month, year = api[f"{name}_30d"], api[f"{name}_365d"]
    for label in month:
        a, b = month[label], year[label]
        lines.append(
            f"{label:52} {a['p50']:8.1f} {a['p95']:7.1f} {a['p99']:7.1f} "
            f"{b['p50']:9.1f} {b['p95']:7.1f} {b['p99']:7.1f}"
        )
    for days, figure in ((30, month), (365, year)):
        lines.append(f"   failures at {days} d: {figure['all']['failures'] or 'none'}")
    return lines


def machine_line(m: dict) -> str:
    return (
        f"machine: {m['nproc']} cores ({m['cpu']}), {m['memory_gib']} GiB, "
        f"PostgreSQL {m['postgresql']}, Python {m['python']}"
    )


def warehouse_line(w: dict) -> str:
    return (
        f"warehouse: {w['days']} days to {w['last_day']}, rows {w['rows']}, "
        f"{'reused' if w['reused'] else 'generated'} in {w['ready_s']:.0f} s"
    )


def speed_report(s: dict) -> list[str]:
    lines = speed_figures.report(s)
    for name, w in s["warehouses"].items():
        lines.append(
            f"   {name}: {w['days']} days, scale {w['scale']}, "
            f"{'reused' if w['reused'] else 'generated'}"
        )
    return lines


if __name__ == "__main__":
    main()
