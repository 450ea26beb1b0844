"""Figure 9 (issue 14): answers near the machine's limit, before and after in one run.

"Before" is the code of BEFORE_COMMIT (the last commit before issue 14's work) checked out as a
`git worktree` and served by this virtualenv; "after" is this checkout. Both read the same
databases at the head schema (the older code ignores what 0011 and 0012 added):

a. the ten requests of one dashboard load, 1,000 users x 20 hubs x 30 days (a database of its
   own), a fresh server each time: every request's ms and the total on first request (cold),
   then repeated as a Grafana refresh of unchanged data, with `If-None-Match` (304) and without
   (the response cache);
b. the bulk answers of figure 2 (year warehouse, 30 days), JSON and CSV, API / bare SQL and the
   server's peak RSS through them; and with `Accept-Encoding: gzip`, bytes and time both ways;
c. 20 clusters x 1,000 users x 365 days (a database of its own): the dashboard requests of one
   cluster (`/clusters/{cluster}/...`) and of all clusters, p50/p95 at 30 and 365 days, with no
   response cache (every answer runs its statement) and, after, with it;
d. the machine's load average, sampled every second throughout.

    python -m bench.run --only 9 [--quick]

The cause of a slow request is in its statement's plan: `python -m bench.speed_figures
--days 365 [--all-clusters] [--quick]` writes EXPLAIN (ANALYZE, BUFFERS) of the dashboard requests'
statements on the clusters' warehouse to var/ and prints each one's execution time.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from api import queries
from api.params import DateRange, Listing
from bench import http_figures, warehouse
from bench.http_figures import GROUP, HUB, failures, grafana_date, load, percentiles
from bench.server import ApiServer, PeakMemory, memory_kib

ROOT = Path(__file__).resolve().parent.parent
BEFORE_COMMIT = "473da7d"
BEFORE_CHECKOUT = Path("/tmp/hubcost-before")
DASHBOARD_DATABASE = "hubcost_bench_dash"
CLUSTERS_DATABASE = "hubcost_bench_clusters"
DASHBOARD_SCALE = dict(hubs=20, users_per_hub=50, active_per_day=120)  # 12% active, as the year
CLUSTER = "cluster-01"
# Not one of the ten: the older code's /health/ready refuses the head schema, and a readiness
# request among the ten would warm (or, after, cache) the answer the cold figure measures.
READY_PATH = "/cluster-names"
DASHBOARD_MODES = ("cold", "cold_gzip", "revalidated", "repeated", "repeated_gzip")

FULL = dict(
    cold_servers=3,
    rounds=20,
    bulk_repeat=5,
    clusters=20,
    cluster_days=365,
    cluster_rounds={"one": 20, "all": 5},
)
QUICK = dict(
    cold_servers=1,
    rounds=2,
    bulk_repeat=1,
    clusters=3,
    cluster_days=35,
    cluster_rounds={"one": 2, "all": 1},
)


@dataclass(frozen=True)
class Variant:
    """A code base and its settings, served by a fresh `hubcost serve` per figure."""

    name: str
    source: Path | None = None  # None: this checkout
    env: dict = field(default_factory=dict)

    def server(self, url: str, log_path: Path) -> ApiServer:
        return ApiServer(
            url, log_path=log_path, env=self.env, source=self.source, ready_path=READY_PATH
        )


def before_checkout(path: Path = BEFORE_CHECKOUT, commit: str = BEFORE_COMMIT) -> Path:
    """A worktree of `commit` at `path`, added unless it is already there."""
    if not (path / ".git").exists():
        git = ["git", "-C", str(ROOT), "worktree"]
        subprocess.run([*git, "prune"], check=True, timeout=60)
        subprocess.run([*git, "add", "--detach", str(path), commit], check=True, timeout=120)
    head = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    wanted = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", commit], capture_output=True, text=True, check=True
    ).stdout.strip()
    if head != wanted:
        raise RuntimeError(f"{path} is at {head[:7]}, not {commit}: remove it (git worktree)")
    return path


def after_code() -> dict:
    """The commit "after" serves, and the code changed in the checkout since (served too)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
        return done.stdout.strip()

    changed = git("status", "--porcelain", "--", "api", "core", "etl", "hubcost", "migrations")
    lines = [line.strip() for line in changed.splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD"), "uncommitted": lines}


def variants(before: Path | None) -> list[Variant]:
    after = Variant("after")
    return [after] if before is None else [Variant("before", source=before), after]


class LoadAverage:
    """The 1-minute load average from /proc/loadavg, sampled every second until stopped."""

    def __init__(self, interval_s: float = 1.0):
        self.interval_s = interval_s
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.samples.append(float(Path("/proc/loadavg").read_text().split()[0]))
            self._stop.wait(self.interval_s)

    def __enter__(self) -> LoadAverage:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def summary(self) -> dict:
        s = self.samples
        return {"n": len(s), "min": min(s), "max": max(s), "mean": statistics.fmean(s)}


def dashboard_load(last_day: dt.date, days: int = 30) -> list[tuple[str, str]]:
    """The ten requests one load of the dashboard sends over the whole range (issue 14)."""
    first = last_day - dt.timedelta(days=days - 1)
    span = f"from={grafana_date(first)}&to={grafana_date(last_day, end=True)}"
    return [
        ("/total-costs", f"/total-costs?{span}"),
        ("/total-costs-per-hub", f"/total-costs-per-hub?{span}"),
        ("/total-costs-per-component", f"/total-costs-per-component?{span}&hub=all"),
        ("/total-costs-per-component?hub=X", f"/total-costs-per-component?{span}&hub={HUB}"),
        ("/costs-per-user", f"/costs-per-user?{span}"),
        ("/costs-per-user?hub=X&limit=5", f"/costs-per-user?{span}&hub={HUB}&limit=5"),
        ("/total-usage", f"/total-usage?{span}"),
        ("/total-costs-per-group", f"/total-costs-per-group?{span}"),
        ("/hub-names", f"/hub-names?{span}"),
        ("/users-with-multiple-groups", "/users-with-multiple-groups?hub_name=all&user_name="),
    ]


def _plan(base: str, requests: list, rounds: int, **options) -> dict:
    return {
        "base": base,
        "requests": requests,
        "rounds": rounds,
        "concurrency": 1,
        "time_limit_s": 900,
        **options,
    }


def _rounds(results: list[dict], per_round: int) -> list[list[dict]]:
    return [results[i : i + per_round] for i in range(0, len(results), per_round)]


def _load_summary(rounds: list[list[dict]]) -> dict:
    """Per request the median ms, and the ten's total per round: median, max."""
    totals = [sum(r["seconds"] for r in one) * 1000 for one in rounds]
    by_label: dict[str, list[float]] = {}
    for one in rounds:
        for r in one:
            by_label.setdefault(r["label"], []).append(r["seconds"] * 1000)
    flat = [r for one in rounds for r in one]
    return {
        "total_ms": statistics.median(totals),
        "total_max_ms": max(totals),
        "rounds": len(rounds),
        "by_request": {label: statistics.median(v) for label, v in by_label.items()},
        "bytes": {r["label"]: r["bytes"] for r in rounds[-1]},
        "statuses": sorted({r["status"] for r in flat}),
        "failures": {k: v for k, v in failures(flat).items() if k != "304"},
    }


def dashboard_figures(url: str, last_day: dt.date, variants: list, size: dict, log: Path):
    """Cold: a fresh server per load (median of `cold_servers`); then the refreshes, each
    variant in turn, their servers side by side, so drift in the machine's load touches all."""
    requests = dashboard_load(last_day)
    n, rounds = len(requests), size["rounds"]
    gzip = {"Accept-Encoding": "gzip"}
    runs: dict = {v.name: {"cold": [], "cold_gzip": []} for v in variants}
    for _ in range(size["cold_servers"]):
        for mode, headers in (("cold", {}), ("cold_gzip", gzip)):
            for v in variants:
                with v.server(url, log) as server:
                    plan = _plan(server.base, requests, 1, headers=headers)
                    runs[v.name][mode].append(load(plan)["results"])
    refreshes = {
        # The loader's first round learns the ETags; the refreshes are the rounds after it.
        "revalidated": (dict(revalidate=True), 1),
        "repeated": ({}, 0),
        "repeated_gzip": (dict(headers=gzip), 0),
    }
    with contextlib.ExitStack() as stack:
        servers = {v.name: stack.enter_context(v.server(url, log)) for v in variants}
        for server in servers.values():
            load(_plan(server.base, requests, 1))  # the first load, then the refreshes
        for mode, (options, learning) in refreshes.items():
            for name, server in servers.items():
                done = load(_plan(server.base, requests, rounds + learning, **options))
                runs[name][mode] = _rounds(done["results"], n)[learning:]
    return {name: {m: _load_summary(r) for m, r in modes.items()} for name, modes in runs.items()}


def bulk_figures(url: str, last_day: dt.date, variant: Variant, size: dict, log: Path) -> dict:
    """Figure 2's bulk answers and ratios, the server's peak RSS, then the same with gzip."""
    with variant.server(url, log) as server:
        pid = server.process.pid
        idle_mib = memory_kib(pid)["VmRSS"] / 1024
        with PeakMemory(pid, interval_s=0.05) as peak:
            bulk = http_figures.bulk(
                server.base, url, last_day, days=30, repeat=size["bulk_repeat"]
            )
        encoded = compression(server.base, last_day, repeat=size["bulk_repeat"])
        hwm_after_gzip = memory_kib(pid)["VmHWM"] / 1024
    return {
        "bulk": bulk,
        "idle_mib": idle_mib,
        "peak_mib": peak.peak_kib / 1024,
        "peak_after_gzip_mib": hwm_after_gzip,
        "gzip": encoded,
    }


RENDERED_DAYS = sql.SQL(
    "SELECT body FROM json_rows_daily WHERE answer = %s AND date BETWEEN %s AND %s ORDER BY date"
)


def rendered_fetch(url: str, last_day: dt.date, *, repeat: int) -> dict:
    """The bare fetch of each bulk answer's rendered days (what the JSON answer now reads),
    beside figure 2's bare fetch of its rows: seconds (median) and bytes."""
    first = last_day - dt.timedelta(days=29)
    figures = {}
    with psycopg.connect(url) as conn:
        for path in http_figures.BULK:
            times, size = [], 0
            for _ in range(repeat + 1):
                started = time.perf_counter()
                bodies = conn.execute(RENDERED_DAYS, (path.strip("/"), first, last_day)).fetchall()
                times.append(time.perf_counter() - started)
                size = sum(len(body) for (body,) in bodies)
            figures[path] = {"s": statistics.median(times[1:]), "bytes": size, "days": len(bodies)}
    return figures


def compression(base: str, last_day: dt.date, *, repeat: int) -> list[dict]:
    """Each bulk answer with and without `Accept-Encoding: gzip`: bytes on the wire and time."""
    first = last_day - dt.timedelta(days=29)
    figures = []
    for path in http_figures.BULK:
        for fmt in ("json", "csv"):
            url = f"{path}?from={first}&to={last_day}" + ("&format=csv" if fmt == "csv" else "")
            row: dict = {"request": f"{path} {fmt}"}
            for way, headers in (("identity", {}), ("gzip", {"Accept-Encoding": "gzip"})):
                plan = _plan(base, [[row["request"], url]], repeat + 1, headers=headers)
                results = load(plan)["results"][1:]  # the first is a warm-up
                row[way] = {
                    "bytes": results[-1]["bytes"],
                    "encoding": results[-1]["encoding"],
                    "s": statistics.median(r["seconds"] for r in results),
                    "statuses": sorted({r["status"] for r in results}),
                }
            figures.append(row)
    return figures


def cluster_requests(last_day: dt.date, days: int, cluster: str | None):
    """The dashboard requests of figure 1: one cluster's (§9.1 form), or every cluster's."""
    requests = http_figures.dashboard_requests(last_day, days)
    if cluster is None:
        return requests
    return [(label, f"/clusters/{cluster}{path}") for label, path in requests]


def latency(base: str, requests: list, rounds: int) -> dict:
    """One client, one warm-up round, then `rounds`: per request and overall p50/p95 (ms)."""
    load(_plan(base, requests, 1))
    results = load(_plan(base, requests, rounds))["results"]
    by_label: dict[str, list[float]] = {}
    for r in results:
        by_label.setdefault(r["label"], []).append(r["seconds"])
    figures = {label: percentiles(values) for label, values in by_label.items()}
    figures["all"] = {**percentiles([r["seconds"] for r in results]), "failures": failures(results)}
    return figures


def cluster_figures(url: str, last_day: dt.date, columns: dict, size: dict, log: Path):
    """Each column's (a variant's) latencies, their servers side by side, taken in turn."""
    figures: dict = {name: {} for name in columns}
    with contextlib.ExitStack() as stack:
        servers = {name: stack.enter_context(v.server(url, log)) for name, v in columns.items()}
        for days in (30, size["cluster_days"]):
            for scope, cluster in (("one", CLUSTER), ("all", None)):
                requests = cluster_requests(last_day, days, cluster)
                rounds = size["cluster_rounds"][scope]
                for name, server in servers.items():
                    figures[name][f"{scope}_{days}d"] = latency(server.base, requests, rounds)
    return figures


def figures(
    dashboard_url: str,
    bulk_url: str,
    clusters_url: str,
    last_day: dt.date,
    *,
    size: dict,
    before: Path | None,
    log_path: Path,
) -> dict:
    """Every part of figure 9 for each variant, the load average sampled throughout."""
    result: dict = {
        "before_commit": BEFORE_COMMIT if before else None,
        "after_code": after_code(),
        "size": size,
    }
    both = variants(before)
    # Without the response cache every answer runs its statement; after, also with it.
    columns = {
        (v.name, "clusters"): Variant(v.name, v.source, {"RESPONSE_CACHE_MB": "0"}) for v in both
    }
    columns["after", "clusters_cached"] = Variant("after")
    with LoadAverage() as loadavg:
        dashboards = dashboard_figures(dashboard_url, last_day, both, size, log_path)
        for v in both:
            result[v.name] = {
                "dashboard": dashboards[v.name],
                "bulk": bulk_figures(bulk_url, last_day, v, size, log_path),
            }
        result["rendered_fetch"] = rendered_fetch(bulk_url, last_day, repeat=size["bulk_repeat"])
        clusters = cluster_figures(clusters_url, last_day, columns, size, log_path)
        for (name, part), figure in clusters.items():
            result[name][part] = figure
    result["load_average"] = loadavg.summary()
    return result


def prepare(last_day: dt.date, *, quick: bool) -> dict:
    """The two databases of their own (reused while their markers match); the URLs."""
    suffix = "_quick" if quick else ""
    dashboard = warehouse.bench_database_url(DASHBOARD_DATABASE + suffix)
    clusters = warehouse.bench_database_url(CLUSTERS_DATABASE + suffix)
    size = QUICK if quick else FULL
    scale = {**DASHBOARD_SCALE, "clusters": size["clusters"]}
    return {
        "dashboard_url": dashboard,
        "clusters_url": clusters,
        "dashboard_warehouse": warehouse.ensure_warehouse(
            dashboard, days=30, last_day=last_day, **DASHBOARD_SCALE
        ),
        "clusters_warehouse": warehouse.ensure_warehouse(
            clusters, days=size["cluster_days"], last_day=last_day, **scale
        ),
    }


def report(r: dict) -> list[str]:
    names = [n for n in ("before", "after") if n in r]
    la = r["load_average"]
    lines = [
        f"\n9. speed (issue 14): {' vs '.join(names)}"
        + (f" (before = {r['before_commit']})" if r.get("before_commit") else "")
        + f"; load average (1 min) during the figure: min {la['min']:.2f}, max {la['max']:.2f}, "
        f"mean {la['mean']:.2f} ({la['n']} samples)"
    ]
    after = r.get("after_code")
    if after:
        lines.append(
            f"   after = {after['commit']}"
            + (f" + uncommitted: {', '.join(after['uncommitted'])}" if after["uncommitted"] else "")
        )
    lines.extend(_dashboard_report(r, names))
    lines.extend(_bulk_report(r, names))
    lines.extend(_cluster_report(r, names))
    return lines


def _dashboard_report(r: dict, names: list[str]) -> list[str]:
    lines = [
        "9a. one dashboard load, 10 requests, 1,000 users x 20 hubs x 30 days, ms, "
        f"{' / '.join(names)} (targets: total < 200 cold, < 50 repeated)",
        f"{'request':34}" + "".join(f" {m:>17}" for m in DASHBOARD_MODES),
    ]

    def cells(values: list[float]) -> str:
        return "".join(f" {'/'.join(f'{v:.1f}' for v in one):>17}" for one in values)

    for label in r[names[0]]["dashboard"]["cold"]["by_request"]:
        values = [
            [r[n]["dashboard"][m]["by_request"][label] for n in names] for m in DASHBOARD_MODES
        ]
        lines.append(f"{label:34}" + cells(values))
    totals = [[r[n]["dashboard"][m]["total_ms"] for n in names] for m in DASHBOARD_MODES]
    lines.append(f"{'total of the ten (median)':34}" + cells(totals))
    worst = [[r[n]["dashboard"][m]["total_max_ms"] for n in names] for m in DASHBOARD_MODES]
    lines.append(f"{'total of the ten (max)':34}" + cells(worst))
    for n in names:
        d = r[n]["dashboard"]
        statuses = ", ".join(f"{m} {d[m]['statuses']}" for m in DASHBOARD_MODES)
        failed = {m: d[m]["failures"] for m in DASHBOARD_MODES if d[m]["failures"]}
        lines.append(
            f"   {n}: statuses {statuses}; failures {failed or 'none'}; bodies of the ten "
            f"{sum(d['cold']['bytes'].values())} bytes, gzip {sum(d['cold_gzip']['bytes'].values())}"
        )
    return lines


def _bulk_report(r: dict, names: list[str]) -> list[str]:
    lines = [
        "9b. bulk answers, year warehouse, 30 days unfiltered (targets: API / bare SQL < 1.1, "
        "peak RSS < 150 MB)",
        f"{'request':22} {'variant':7} {'rows':>7} {'MB':>6} {'API s':>7} {'SQL s':>7} "
        f"{'ratio':>6}  rounds",
    ]
    for n in names:
        for b in r[n]["bulk"]["bulk"]:
            lines.append(
                f"{b['request']:22} {n:7} {b['rows']:7d} {b['mb']:6.1f} {b['api_s']:7.3f} "
                f"{b['sql_s']:7.3f} {b['ratio']:6.2f}  "
                + ", ".join(f"{x:.2f}" for x in b["ratios"])
            )
    for path, f in r.get("rendered_fetch", {}).items():
        lines.append(
            f"   bare fetch of {path}'s rendered days (json_rows_daily, {f['days']} rows, "
            f"{f['bytes'] / 1e6:.1f} MB): {f['s']:.3f} s"
        )
    for n in names:
        b = r[n]["bulk"]
        lines.append(
            f"   {n}: hubcost serve peak RSS through the bulk answers {b['peak_mib']:.0f} MiB "
            f"(idle {b['idle_mib']:.0f} MiB; after the gzip ones {b['peak_after_gzip_mib']:.0f})"
        )
    lines.append(
        f"{'with Accept-Encoding: gzip':22} {'variant':7} {'MB':>6} {'s':>7} {'gzip MB':>8} {'s':>7}"
    )
    for n in names:
        for g in r[n]["bulk"]["gzip"]:
            i, z = g["identity"], g["gzip"]
            lines.append(
                f"{g['request']:22} {n:7} {i['bytes'] / 1e6:6.2f} {i['s']:7.3f} "
                f"{z['bytes'] / 1e6:8.2f} {z['s']:7.3f}  (encoding {z['encoding'] or 'none'})"
            )
    return lines


def _cluster_report(r: dict, names: list[str]) -> list[str]:
    days = r["size"]["cluster_days"]
    lines = [
        f"9c. {r['size']['clusters']} clusters x 1,000 users x {days} days: dashboard "
        f"requests of {CLUSTER} (/clusters/{{c}}/...) and of all clusters, p50 / p95 ms "
        "(targets for one cluster: p95 < 50 at 30 d, < 250 at 365 d)"
    ]
    columns = [(n, "clusters") for n in names]
    if "clusters_cached" in r.get("after", {}):
        columns.append(("after", "clusters_cached"))
    for scope in ("one", "all"):
        for d in (30, days):
            key = f"{scope}_{d}d"
            heading = "one cluster" if scope == "one" else "all clusters"
            lines.append(
                f"{heading + f', {d} d':52}"
                + "".join(
                    f" {(n + (' cache' if part == 'clusters_cached' else ' no cache')):>17}"
                    for n, part in columns
                )
            )
            for label in r[names[0]]["clusters"][key]:
                cells = [r[n][part][key][label] for n, part in columns]
                lines.append(
                    f"   {label:49}" + "".join(f" {c['p50']:8.1f}/{c['p95']:8.1f}" for c in cells)
                )
            fails = {f"{n} {part}": r[n][part][key]["all"]["failures"] for n, part in columns}
            if any(fails.values()):
                lines.append(f"   answers other than 200: {fails}")
    return lines


def dashboard_statements(last_day: dt.date, days: int, cluster: str | None) -> list:
    """(label, builder, listing) of each request of `cluster_requests`, as the API parses it."""
    span = DateRange(last_day - dt.timedelta(days=days - 1), last_day)
    scope = {"clusters": [cluster]} if cluster else {"by_cluster": True}
    labels = [label for label, _ in http_figures.dashboard_requests(last_day, days)]
    statements = [
        (queries.total_costs, dict(days=span)),
        (queries.total_costs_per_hub, dict(days=span)),
        (queries.total_costs_per_component, dict(days=span)),
        (queries.total_costs_per_component, dict(days=span, hubs=[HUB])),
        (queries.costs_per_user, dict(days=span, hubs=[HUB], components=["compute"], limit=10)),
        (queries.costs_per_user, dict(days=span, usergroups=[GROUP], limit=10)),
        (queries.total_costs_per_group, dict(days=span)),
        (queries.hub_names, dict(days=span)),
        (queries.users_with_multiple_groups, {}),
    ]
    return [
        (label, build, Listing(**fields, **scope))
        for label, (build, fields) in zip(labels, statements, strict=True)
    ]


def explain(database_url: str, build, listing: Listing) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of the endpoint's statement as the bare SQL fetch runs it."""
    statement, params = queries.psycopg_statement(build(listing))
    query = sql.SQL("EXPLAIN (ANALYZE, BUFFERS) {}").format(sql.SQL(statement))
    with psycopg.connect(database_url) as conn:
        conn.execute("SET jit = off")  # as the API's connections run
        return [line for (line,) in conn.execute(query, params)]


def main() -> None:
    parser = argparse.ArgumentParser(description="EXPLAIN of figure 9c's statements")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--all-clusters", action="store_true", help="not one cluster's")
    parser.add_argument("--last-day", type=dt.date.fromisoformat, default=dt.date(2026, 10, 31))
    parser.add_argument("--quick", action="store_true", help="the --quick run's warehouse")
    args = parser.parse_args()
    url = warehouse.bench_database_url(CLUSTERS_DATABASE + ("_quick" if args.quick else ""))
    cluster = None if args.all_clusters else CLUSTER
    out = ROOT / "var" / f"bench-explain-{'all' if cluster is None else cluster}-{args.days}d.txt"
    with out.open("w") as f:
        for label, build, listing in dashboard_statements(args.last_day, args.days, cluster):
            plan = explain(url, build, listing)
            f.write(f"== {label}\n" + "\n".join(plan) + "\n\n")
            took = next(line for line in plan if line.startswith("Execution Time"))
            print(f"{label:52} {took.removeprefix('Execution Time: ')}")
    print(f"(plans in {out})")


if __name__ == "__main__":
    main()
