"""Figure 4 (and the ETL half of 5): the Prometheus backfill and the daily `hubcost etl`.

Both run as the real command in a child process against a real Prometheus over the history
of bench.prometheus_history, into their own database; Cost Explorer is a local endpoint
answering 50 hubs x 12 services a day (botocore talks HTTP to it through AWS_ENDPOINT_URL).
Per-chunk figures come from the run log, which the ETL itself writes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg

from bench import generate
from bench.server import PeakMemory
from tests.etl.prometheus_history import start_server
from tests.etl.sources.aws_endpoint import FakeCostExplorer, answer

HUB_TAG = "2i2c:hub-name"
CE_HUBS = [f"hub-{i:02d}" for i in range(50)]
CE_SERVICES = [service for service, _ in generate.SERVICES]  # 12 services
# Groups per page: Cost Explorer's real page size is not documented; this is an assumption.
PAGE_GROUPS = 5000


def _slice(request: dict) -> str:
    text = json.dumps(request.get("Filter", {}))
    if len(request.get("GroupBy", [])) == 1:
        return "account"
    if "home-nfs" in text:
        return "home"
    if '"core"' in text:
        return "core"
    return "attributable"


def _groups(kind: str, day: dt.date) -> list[tuple[list[str], str]]:
    """A day's groups of one slice, with amounts in the generator's proportions."""
    scale = 1 + day.toordinal() % 7 / 10
    bases = dict(generate.SERVICES)

    def money(x: float) -> str:
        return f"{x * scale:.10f}"

    if kind == "account":
        return [([s], money(bases[s] * len(CE_HUBS) * 1.3)) for s in CE_SERVICES]
    if kind == "home":
        return [([f"{HUB_TAG}${h}", "EC2 - Other"], money(4)) for h in CE_HUBS]
    if kind == "core":
        core = [("EC2 - Other", 1.5), ("Amazon Elastic Compute Cloud - Compute", 6)]
        return [([f"{HUB_TAG}${h}", s], money(x)) for h in CE_HUBS for s, x in core]
    return [([f"{HUB_TAG}${h}", s], money(bases[s])) for h in [*CE_HUBS, ""] for s in CE_SERVICES]


def respond(request: dict) -> tuple[int, dict]:
    """Answer GetCostAndUsage at realistic size, PAGE_GROUPS groups a page at most."""
    period = request["TimePeriod"]
    first = dt.date.fromisoformat(period["Start"])
    end = dt.date.fromisoformat(period["End"])
    kind = _slice(request)
    days = [first + dt.timedelta(days=i) for i in range((end - first).days)]
    start_day = int(request.get("NextPageToken") or 0)
    page, count, day_index = [], 0, start_day
    while day_index < len(days):
        groups = _groups(kind, days[day_index])
        if page and count + len(groups) > PAGE_GROUPS:
            break
        page.append((days[day_index].isoformat(), groups))
        count += len(groups)
        day_index += 1
    token = str(day_index) if day_index < len(days) else None
    return 200, answer(page, token=token)


def etl_env(database_url: str, *, prometheus_url: str, ce_url: str | None) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "PROMETHEUS_", "CLUSTER_NAME", "DEMO"))
    }
    env.update(
        DATABASE_URL=database_url,
        # The cluster's name from the first load on: usage loaded without it would be another
        # cluster's (`default`), and the daily run would load its usage again from scratch.
        CLUSTER_NAME="bench",
        PROMETHEUS_URL=prometheus_url,
        DEMO="0",
        LOG_LEVEL="WARNING",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        AWS_EC2_METADATA_DISABLED="true",
    )
    if ce_url:
        env.update(
            AWS_ENDPOINT_URL=ce_url,
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            AWS_REGION="us-east-1",
        )
    return env


def hubcost(args: list[str], env: dict, log: Path) -> dict:
    """Run `hubcost ARGS`; its wall time and peak RSS (VmHWM sampled from /proc)."""
    started = time.perf_counter()
    with log.open("a") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "hubcost.cli", *args], env=env, stdout=out, stderr=out
        )
        with PeakMemory(process.pid, interval_s=0.05) as peak:
            status = process.wait(timeout=3600)
    if status != 0:
        raise RuntimeError(f"hubcost {' '.join(args)} exited {status}: see {log}")
    return {"seconds": time.perf_counter() - started, "peak_rss_mib": peak.peak_kib / 1024}


def prometheus_queries(url: str) -> float:
    """Instant queries Prometheus has answered so far (its own request counter)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("prometheus_http_requests_total{") and 'handler="/api/v1/query"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def chunks(database_url: str, source: str, since: dt.datetime) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT first_day, last_day, requests, rows, "
            "extract(epoch FROM finished_at - started_at)::float8, status "
            "FROM run_log WHERE source = %s AND started_at >= %s ORDER BY id",
            (source, since),
        ).fetchall()


def etl_figures(
    database_url: str,
    tsdb: Path,
    workdir: Path,
    *,
    first: dt.date,
    last: dt.date,
    clusters: int = 20,
) -> dict:
    log = workdir / "etl.log"
    process, prom_url = start_server(tsdb, workdir)
    try:
        with FakeCostExplorer(respond) as ce:
            figures: dict = {}
            env = etl_env(database_url, prometheus_url=prom_url, ce_url=None)
            since = dt.datetime.now(dt.UTC)
            before = prometheus_queries(prom_url)
            span = ["--from", first.isoformat(), "--to", last.isoformat()]
            run = hubcost(["backfill", "--source", "usage", *span], env, log)
            days = chunks(database_url, "usage", since)
            figures["backfill"] = {
                **run,
                "days": len(days),
                "seconds_per_day": run["seconds"] / len(days),
                "chunk_seconds": [d[4] for d in days],
                "queries_per_day_run_log": sum(d[2] for d in days) / len(days),
                "queries_per_day_prometheus": (prometheus_queries(prom_url) - before) / len(days),
                "rows_per_day": sum(d[3] for d in days) / len(days),
            }
            env = etl_env(database_url, prometheus_url=prom_url, ce_url=ce.url)
            since = dt.datetime.now(dt.UTC)
            run = hubcost(["backfill", "--source", "costs", *span], env, log)
            figures["costs_backfill"] = {
                **run,
                "chunks": [
                    (str(c[0]), str(c[1]), c[2], c[3]) for c in chunks(database_url, "costs", since)
                ],
            }
            since = dt.datetime.now(dt.UTC)
            served = len(ce.requests)
            before = prometheus_queries(prom_url)
            run = hubcost(["etl"], env, log)
            figures["daily_etl"] = {
                **run,
                "cost_chunks": [
                    (str(c[0]), str(c[1]), c[2], c[3]) for c in chunks(database_url, "costs", since)
                ],
                "usage_chunks": [
                    (str(c[0]), str(c[1]), c[2], c[3]) for c in chunks(database_url, "usage", since)
                ],
                "ce_requests_served": len(ce.requests) - served,
                "prometheus_queries": prometheus_queries(prom_url) - before,
            }
            figures["many_clusters"] = many_clusters_daily(
                database_url, env, ce, prom_url, workdir, clusters=clusters
            )
            return figures
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def many_clusters_daily(
    database_url: str, env: dict, ce, prom_url: str, workdir: Path, *, clusters: int
) -> dict:
    """The daily `hubcost etl` of `clusters` clusters (HUBCOST_CLUSTERS), each in its own
    linked account, with the single cluster's Cost Explorer and Prometheus sizes.

    A first run loads each cluster's initial 3 days; the second is the steady daily run
    measured (each cluster's lookback window of costs, its last two days of usage).
    """
    names = [f"bench-{i:02d}" for i in range(clusters)]
    path = workdir / "clusters.toml"
    path.write_text(
        "[defaults]\ninitial_days = 3\n"
        + "".join(
            f'\n[[cluster]]\nname = "{name}"\naws_account_id = "{100000000000 + i}"\n'
            f'prometheus_url = "{prom_url}"\n'
            for i, name in enumerate(names)
        )
    )
    env = {k: v for k, v in env.items() if k not in ("CLUSTER_NAME", "PROMETHEUS_URL")}
    env["HUBCOST_CLUSTERS"] = str(path)
    log = workdir / "etl-many-clusters.log"
    first_run = hubcost(["etl"], env, log)
    since = dt.datetime.now(dt.UTC)
    served = len(ce.requests)
    before = prometheus_queries(prom_url)
    run = hubcost(["etl"], env, log)
    with psycopg.connect(database_url) as conn:
        per_source = conn.execute(
            "SELECT source, count(*), sum(requests), count(*) FILTER (WHERE status <> "
            "'succeeded') FROM run_log WHERE started_at >= %s AND cluster = ANY(%s) "
            "GROUP BY source ORDER BY source",
            (since, names),
        ).fetchall()
    return {
        **run,
        "clusters": clusters,
        "first_run_seconds": first_run["seconds"],
        "ce_requests_served": len(ce.requests) - served,
        "prometheus_queries": prometheus_queries(prom_url) - before,
        "chunks": {source: (n, requests, failed) for source, n, requests, failed in per_source},
    }


def many_clusters_alone(*, clusters: int = 20, history_days: int = 4) -> dict:
    """Only the many-clusters daily run, over a short history that still holds every day its
    runs read (the first run's 3 days back, the daily run's yesterday; today has no samples in
    any history): 15 s to build for 4 days instead of 453 s for figure 4's 30. Its own
    database and history under var/."""
    from bench import prometheus_history, warehouse

    workdir = Path(__file__).resolve().parent.parent / "var" / "bench-prometheus-clusters"
    workdir.mkdir(parents=True, exist_ok=True)
    last = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    prometheus_history.ensure_history(
        workdir / "tsdb",
        first=last - dt.timedelta(days=history_days - 1),
        days=history_days,
        hubs=20,
        users=1000,
    )
    url = warehouse.recreate_database("hubcost_etl_clusters")
    warehouse.migrate_to_head(url)
    process, prom_url = start_server(workdir / "tsdb", workdir)
    try:
        with FakeCostExplorer(respond) as ce:
            env = etl_env(url, prometheus_url=prom_url, ce_url=ce.url)
            return many_clusters_daily(url, env, ce, prom_url, workdir, clusters=clusters)
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    # python -m bench.etl_figures: figure 4b's daily run of 20 clusters, alone.
    print(json.dumps(many_clusters_alone(), indent=2))
