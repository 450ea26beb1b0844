"""The demo source: deterministic synthetic answers shaped like the real ones.

`DemoCostExplorer` and `DemoPrometheus` stand in for the boto3 `ce` client and for
PrometheusConnect: they answer the very requests `cost_explorer.fetch_costs` and
`prometheus.fetch_usage_day` send (GetCostAndUsage pages, instant-query vectors), so demo data
goes through the real parsers, loaders and run log. Every number comes from a random generator
seeded by the date (and hub, user...), never by the wall clock: a day always has the same data.

Three hubs, twenty users, four groups (some users in several, some in none).
"""

from __future__ import annotations

import datetime as dt
import random
import re
from decimal import Decimal

from core.schema import DEMO_CLUSTER
from etl.sources import cost_explorer, prometheus
from etl.sources.base import Sources
from etl.sources.costs import CostsSource
from etl.sources.usage import UsageSource

HUBS = ("prod", "staging", "workshop")
USERS = (
    "ada",
    "alan.turing",
    "barbara",
    "claude",
    "dennis",
    "edsger",
    "frances",
    "grace.hopper",
    "guido",
    "hedy",
    "john",
    "katherine",
    "ken",
    "linus",
    "margaret",
    "niklaus",
    "radia",
    "shafi",
    "tim",
    "yukihiro",
)
GROUPS = ("research", "teaching", "staff", "admins")
GIB = 2**30
PAGE_DAYS = 10  # the demo answers in pages, as Cost Explorer does for long windows

_HUB_USERS = {
    "prod": USERS[:12],
    "staging": USERS[8:16],
    "workshop": USERS[12:],
}
# Each user's groups: most in one, a few in two, some in none.
_USER_GROUPS = {
    user: (
        ()
        if i % 7 == 3
        else (GROUPS[i % 4], GROUPS[(i + 1) % 4])
        if i % 5 == 0
        else (GROUPS[i % 4],)
    )
    for i, user in enumerate(USERS)
}
_ACCOUNT_ONLY_SERVICES = {"Amazon Route 53": "0.50", "AWS Key Management Service": "0.10"}


def demo_sources() -> Sources:
    """The costs and usage sources, answered by the demo clients (what `DEMO=1` runs)."""
    ce = DemoCostExplorer()
    query = cost_explorer.CostQuery(cluster_name=DEMO_CLUSTER)
    prom = DemoPrometheus()
    costs = CostsSource(
        DEMO_CLUSTER,
        lambda first, last, requests: cost_explorer.fetch_costs(
            ce, query, first=first, last=last, counter=requests
        ),
    )
    usage = UsageSource(
        DEMO_CLUSTER,
        lambda day, now, earlier: prometheus.fetch_usage_day(
            prom, day, now=now, earlier_usernames=earlier
        ),
    )
    return Sources((costs, usage), demo=True)


def _rng(*parts) -> random.Random:
    return random.Random("/".join(str(p) for p in parts))


def active_users(day: dt.date, hub: str) -> list[str]:
    rng = _rng("active", day, hub)
    return [u for u in _HUB_USERS[hub] if rng.random() < 0.7]


def memory_gib(day: dt.date, hub: str, user: str) -> int:
    return _rng("memory", day, hub, user).choice((1, 2, 4, 8))


def active_points(day: dt.date, hub: str, user: str) -> int:
    """How many of the day's 288 five-minute points the user's server ran."""
    return _rng("points", day, hub, user).randrange(12, 289)


def home_gib(hub: str, user: str, day: dt.date) -> float:
    # Home directories grow slowly with time.
    base = _rng("home", hub, user).randrange(1, 40)
    return base + (day.toordinal() % 365) / 100


class DemoCostExplorer:
    """Answers GetCostAndUsage requests as Cost Explorer would, for the demo cluster."""

    def get_cost_and_usage(self, **request) -> dict:
        start = dt.date.fromisoformat(request["TimePeriod"]["Start"])
        end = dt.date.fromisoformat(request["TimePeriod"]["End"])
        metric = request["Metrics"][0]
        slice_ = _slice_of(request)
        page = int(request.get("NextPageToken") or 0)
        days = [start + dt.timedelta(days=i) for i in range((end - start).days)]
        chunk = days[page * PAGE_DAYS : (page + 1) * PAGE_DAYS]
        tag = request["GroupBy"][0]["Key"] if slice_ != "account" else None
        answer = {
            "GroupDefinitions": request["GroupBy"],
            "ResultsByTime": [
                {
                    "TimePeriod": {
                        "Start": day.isoformat(),
                        "End": (day + dt.timedelta(days=1)).isoformat(),
                    },
                    "Total": {},
                    "Groups": [
                        {
                            "Keys": keys if tag is None else [f"{tag}${keys[0]}", keys[1]],
                            "Metrics": {metric: {"Amount": amount, "Unit": "USD"}},
                        }
                        for keys, amount in _groups(day, slice_)
                    ],
                    "Estimated": False,
                }
                for day in chunk
            ],
            "DimensionValueAttributes": [],
        }
        if (page + 1) * PAGE_DAYS < len(days):
            answer["NextPageToken"] = str(page + 1)
        return answer


def _slice_of(request: dict) -> str:
    if len(request["GroupBy"]) == 1:
        return "account"
    parts = request["Filter"]["And"]
    if len(parts) == 2:
        return "attributable"
    return "core" if "Or" in parts[2] else "home"


def _hub_day_costs(day: dt.date, hub: str) -> dict[str, Decimal]:
    """The attributable costs of a hub-day by service; the untagged part is hub ''."""
    rng = _rng("cost", day, hub)
    if hub == "":
        return {"EC2 - Other": _money(rng.uniform(3, 5))}
    gib_hours = sum(
        memory_gib(day, hub, u) * active_points(day, hub, u) / 12 for u in active_users(day, hub)
    )
    costs = {
        "Amazon Elastic Compute Cloud - Compute": _money(gib_hours * 0.006 + rng.uniform(4, 6)),
        "EC2 - Other": _money(rng.uniform(2, 4)),
        "Amazon Elastic File System": _money(rng.uniform(0.5, 1.5)),
        "Amazon Simple Storage Service": _money(rng.uniform(0.1, 0.6)),
        "Amazon Elastic Load Balancing": _money(rng.uniform(0.5, 0.6)),
        "Amazon Elastic Container Service for Kubernetes": _money(Decimal("3.2")),
        "AWS Backup": _money(rng.uniform(0.05, 0.2)),
        "AmazonCloudWatch": _money(rng.uniform(0.01, 0.05)),
    }
    return costs


def _groups(day: dt.date, slice_: str) -> list[tuple[list[str], str]]:
    hubs = ("",) + HUBS
    if slice_ == "account":
        totals: dict[str, Decimal] = {}
        for hub in hubs:
            for service, amount in _hub_day_costs(day, hub).items():
                totals[service] = totals.get(service, Decimal(0)) + amount
        for service, amount in _ACCOUNT_ONLY_SERVICES.items():
            totals[service] = Decimal(amount)
        return [([s], str(a)) for s, a in sorted(totals.items())]
    rows = []
    for hub in hubs:
        costs = _hub_day_costs(day, hub)
        if slice_ == "attributable":
            rows += [([hub, s], str(a)) for s, a in sorted(costs.items())]
        elif slice_ == "home" and hub:
            # The home NFS volume: part of the hub's EC2 - Other (EBS) cost.
            rows.append(([hub, "EC2 - Other"], str(_money(costs["EC2 - Other"] * Decimal("0.4")))))
        elif slice_ == "core":
            # Core nodes: part of the instance cost; the untagged hub's EC2 - Other is all core.
            if hub:
                part = costs["Amazon Elastic Compute Cloud - Compute"] * Decimal("0.2")
                rows.append(([hub, "Amazon Elastic Compute Cloud - Compute"], str(_money(part))))
            else:
                rows.append(([hub, "EC2 - Other"], str(costs["EC2 - Other"])))
    return rows


def _money(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.0000000001"))


class DemoPrometheus:
    """Answers the four instant queries of prometheus.fetch_usage_day for the demo hubs."""

    url = "demo://prometheus"

    def custom_query(self, query: str, params: dict | None = None, timeout=None) -> list[dict]:
        at = dt.datetime.fromtimestamp(float(params["time"]), dt.UTC)
        day = at.date()
        match = re.search(r"\[(\d+)s:5m\]", query)
        # The share of the day's 288 points already past (1 for a whole day).
        fraction = 1.0 if match is None else min(1.0, (int(match.group(1)) // 300 + 1) / 288)
        if "jupyterhub_user_group_info" in query:
            return self._groups(day)
        if 'resource="memory"' in query:
            return self._requests(day, fraction, lambda d, h, u: memory_gib(d, h, u) * GIB)
        if 'resource="cpu"' in query:
            return self._requests(day, fraction, lambda d, h, u: memory_gib(d, h, u) / 4)
        if "dirsize_total_size_bytes" in query:
            return self._home(day)
        raise ValueError("the demo Prometheus does not know this query")

    def _requests(self, day, fraction, per_point):
        return [
            {
                "metric": {
                    "namespace": hub,
                    "annotation_hub_jupyter_org_username": user,
                    "username": user,
                },
                "value": [
                    0,
                    repr(per_point(day, hub, user) * active_points(day, hub, user) * fraction),
                ],
            }
            for hub in HUBS
            for user in active_users(day, hub)
        ]

    def _home(self, day):
        series = [
            {
                "metric": {"namespace": hub, "directory": _escape(user)},
                "value": [0, repr(home_gib(hub, user, day) * GIB)],
            }
            for hub in HUBS
            for user in _HUB_USERS[hub]
        ]
        series += [
            {"metric": {"namespace": hub, "directory": "_shared"}, "value": [0, repr(50.0 * GIB)]}
            for hub in HUBS
        ]
        return series

    def _groups(self, day):
        series = []
        for hub in HUBS:
            for user in _HUB_USERS[hub]:
                groups = _USER_GROUPS[user]
                labels = ("none",) if not groups else groups
                if len(groups) > 1:
                    labels = ("multiple",) + groups
                for group in labels:
                    series.append(
                        {
                            "metric": {
                                "namespace": hub,
                                "username": user,
                                "username_escaped": _escape(user),
                                "usergroup": group,
                            },
                            "value": [0, "1"],
                        }
                    )
        return series


def _escape(username: str) -> str:
    import escapism

    return escapism.escape(username, safe="abcdefghijklmnopqrstuvwxyz0123456789", escape_char="-")
