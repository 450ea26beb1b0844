"""Writes a realistic large warehouse straight into the tables with COPY.

Scale (issue 5): a year of days, 50 hubs, 5,000 users (100 per hub), about 600 of them running
servers on a given day, every user with a home directory, 40 groups with about 10% of users in
several, and every cost slice (account, attributable, home, core). Deterministic: the same seed
gives the same rows. Smaller warehouses (fewer hubs, users and active users a day) are the
same rows' shape at a smaller scale, and `cluster_column=False` writes them as the revisions
before 0006 stored them (no `cluster` column, no `cluster` table), for the upgrade tests and
the migration's lock figure. `clusters=N` (N > 1) writes N clusters, `cluster-00` and on,
each with the whole scale of hubs and users of its own (the same names in every cluster, as two
clusters' `staging` hubs are two hubs) and rows drawn from a seed of its own; one cluster is the
default cluster (`core.schema.DEFAULT_CLUSTER`), as before.

    python -m bench.generate --database-url URL [--days 365] [--end 2026-10-31] [--clusters 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time
from decimal import Decimal

import psycopg

from core.schema import DEFAULT_CLUSTER as CLUSTER

HUBS = [f"hub-{i:02d}" for i in range(50)]
USERS_PER_HUB = 100
GROUPS = [f"group-{i:02d}" for i in range(40)]
ACTIVE_PER_DAY = 600
SERVICES = [
    ("EC2 - Other", 14.0),
    ("Amazon Elastic Compute Cloud - Compute", 22.0),
    ("Amazon Elastic File System", 3.0),
    ("Amazon Simple Storage Service", 0.8),
    ("Amazon Elastic Load Balancing", 0.6),
    ("Amazon Virtual Private Cloud", 0.4),
    ("Amazon Elastic Container Service for Kubernetes", 2.4),
    ("AWS Backup", 0.3),
    ("Amazon Route 53", 0.05),
    ("AmazonCloudWatch", 0.2),
    ("Amazon Elastic Container Registry (ECR)", 0.1),
    ("AWS Key Management Service", 0.02),
]
GIB = 2**30


def users(hubs: int = len(HUBS), users_per_hub: int = USERS_PER_HUB):
    """(hub, username, groups): each user in one hub; ~10% in two or three groups."""
    rng = random.Random(1)
    result = []
    for h, hub in enumerate(HUBS[:hubs]):
        for u in range(users_per_hub):
            name = f"user-{h:02d}-{u:03d}"
            roll = rng.random()
            if roll < 0.05:
                groups = []
            elif roll < 0.15:
                groups = rng.sample(GROUPS, rng.choice([2, 3]))
            else:
                groups = [rng.choice(GROUPS)]
            result.append((hub, name, groups))
    return result


def cluster_names(clusters: int) -> list[str]:
    return [CLUSTER] if clusters == 1 else [f"cluster-{i:02d}" for i in range(clusters)]


def day_seed(day: dt.date, cluster_index: int) -> int | str:
    """The first cluster keeps the single cluster's seeds, so its rows are the same."""
    return day.toordinal() if cluster_index == 0 else f"{cluster_index}:{day.isoformat()}"


def _money(x: float) -> str:
    return str(Decimal(x).quantize(Decimal("0.0000000001")))


def cost_rows(day: dt.date, rng: random.Random, hubs: list[str] = HUBS):
    for service, base in SERVICES:
        account = base * len(hubs) * 1.3 * rng.uniform(0.8, 1.2)
        yield (day, "account", None, service, _money(account))
    for hub in hubs + ["support"]:
        for service, base in SERVICES:
            yield (day, "attributable", hub, service, _money(base * rng.uniform(0.5, 1.5)))
        yield (day, "home", hub, "EC2 - Other", _money(4 * rng.uniform(0.5, 1.5)))
        yield (day, "core", hub, "EC2 - Other", _money(1.5 * rng.uniform(0.5, 1.5)))
        yield (
            day,
            "core",
            hub,
            "Amazon Elastic Compute Cloud - Compute",
            _money(6 * rng.uniform(0.8, 1.2)),
        )


def usage_rows(day: dt.date, population, rng: random.Random, active_per_day: int = ACTIVE_PER_DAY):
    active = rng.sample(range(len(population)), active_per_day)
    for i in active:
        hub, name, _ = population[i]
        gib_hours = rng.uniform(0.5, 16) * rng.uniform(1, 24)
        yield (day, hub, "compute", name, f"{gib_hours:.6f}", "GiB-hours", f"{gib_hours / 4:.6f}")
    for hub, name, _ in population:
        yield (day, hub, "home storage", name, f"{rng.uniform(0.01, 50):.6f}", "GiB", None)


def group_rows(day: dt.date, population):
    for hub, name, groups in population:
        if not groups:
            yield (day, hub, name, "none", name)
            continue
        if len(groups) > 1:
            yield (day, hub, name, "multiple", name)
        for group in groups:
            yield (day, hub, name, group, name)


COST_COLUMNS = ("date", "slice", "hub", "service", "amount", "unit", "metric", "estimated")
USAGE_COLUMNS = ("date", "hub", "component", "username", "value", "unit", "cpu_core_hours")
GROUP_COLUMNS = ("date", "hub", "username", "usergroup", "username_escaped")
RUN_LOG_COLUMNS = (
    "source",
    "first_day",
    "last_day",
    "started_at",
    "finished_at",
    "status",
    "rows",
    "requests",
)


def _columns(names: tuple[str, ...], cluster_column: bool) -> str:
    return ", ".join((*names, "cluster") if cluster_column else names)


def generate(
    database_url: str,
    *,
    days: int,
    end: dt.date,
    hubs: int = len(HUBS),
    users_per_hub: int = USERS_PER_HUB,
    active_per_day: int = ACTIVE_PER_DAY,
    cluster_column: bool = True,
    clusters: int = 1,
) -> dict:
    """Empty the facts and write `days` days to `end`; `cluster_column=False` for revision 0005."""
    if clusters > 1 and not cluster_column:
        raise ValueError("several clusters need the cluster column")
    population = users(hubs, users_per_hub)
    hub_names = HUBS[:hubs]
    names = cluster_names(clusters)
    first = end - dt.timedelta(days=days - 1)
    counts = {"cost": 0, "usage": 0, "user_group_snapshot": 0}
    started = time.perf_counter()
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        with conn.cursor() as cur:
            if cluster_column:
                cur.execute("TRUNCATE cost, usage, user_group_snapshot, run_log, cluster")
                cur.executemany("INSERT INTO cluster (name) VALUES (%s)", [(n,) for n in names])
            else:
                cur.execute("TRUNCATE cost, usage, user_group_snapshot, run_log")
            # One rollup rebuild at the end instead of one per COPY (needs a superuser).
            cur.execute("SET session_replication_role = replica")
            for offset in range(days):
                day = first + dt.timedelta(days=offset)
                for index, name in enumerate(names):
                    cluster = (name,) if cluster_column else ()
                    rng = random.Random(day_seed(day, index))
                    with cur.copy(
                        f"COPY cost ({_columns(COST_COLUMNS, cluster_column)}) FROM STDIN"
                    ) as copy:
                        for row in cost_rows(day, rng, hub_names):
                            copy.write_row((*row, "USD", "UnblendedCost", False, *cluster))
                            counts["cost"] += 1
                    with cur.copy(
                        f"COPY usage ({_columns(USAGE_COLUMNS, cluster_column)}) FROM STDIN"
                    ) as copy:
                        for row in usage_rows(day, population, rng, active_per_day):
                            copy.write_row((*row, *cluster))
                            counts["usage"] += 1
                    with cur.copy(
                        f"COPY user_group_snapshot ({_columns(GROUP_COLUMNS, cluster_column)}) "
                        "FROM STDIN"
                    ) as copy:
                        for row in group_rows(day, population):
                            copy.write_row((*row, *cluster))
                            counts["user_group_snapshot"] += 1
            now = dt.datetime.now(dt.UTC)
            with cur.copy(
                f"COPY run_log ({_columns(RUN_LOG_COLUMNS, cluster_column)}) FROM STDIN"
            ) as copy:
                for name in names:
                    cluster = (name,) if cluster_column else ()
                    for source in ("costs", "usage"):
                        # Every cluster has as many rows of each table.
                        rows = counts["cost"] if source == "costs" else counts["usage"]
                        copy.write_row(
                            (
                                source,
                                first,
                                end,
                                now,
                                now,
                                "succeeded",
                                rows // len(names),
                                4,
                                *cluster,
                            )
                        )
            cur.execute("SET session_replication_role = DEFAULT")
            loaded = time.perf_counter()
            # Without statistics of the new rows the rebuild's joins are planned as nested loops.
            cur.execute("ANALYZE cost, usage, user_group_snapshot")
            cur.execute("SELECT attribution.refresh_all()")
            counts["rollup_seconds"] = round(time.perf_counter() - loaded, 1)
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    counts["seconds"] = round(time.perf_counter() - started, 1)
    counts["days"] = days
    counts["clusters"] = clusters
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--end", type=dt.date.fromisoformat, default=dt.date(2026, 10, 31))
    parser.add_argument("--clusters", type=int, default=1)
    args = parser.parse_args()
    print(generate(args.database_url, days=args.days, end=args.end, clusters=args.clusters))


if __name__ == "__main__":
    main()
