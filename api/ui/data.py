"""The pages' numbers: the JSON endpoints' own statements (api/queries.py) run with `run_rows`,
turned into Decimal series and rows.

A value is the endpoint's value: `Decimal(repr(float8))` gives the digits its JSON shows.
Totals over a range are sums of the rows shown (each already rounded, as the API rounds it),
so a page's total is the sum of its own table.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy.engine import Connection

from api import queries
from api.params import Listing
from api.ui.charts import Series
from api.ui.selection import Selection

ZERO = Decimal(0)
SOURCES = ("costs", "usage")


def amount(value) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def pivot(
    rows: Iterable[tuple[dt.date, str, Decimal]], *, filled: Iterable[str] = ()
) -> list[Series]:
    """(day, name, value) rows in the endpoint's order → one series per name.

    The names are kept in the order the rows give them each day (the canonical component order,
    say), merged over the days: a name absent on the first day still lands in its place.
    """
    values: dict[str, dict[dt.date, Decimal]] = {}
    order: list[str] = []
    previous: tuple[dt.date | None, str | None] = (None, None)
    for day, name, value in rows:
        if name not in values:
            values[name] = {}
            after = previous[1] if previous[0] == day else None
            order.insert(order.index(after) + 1 if after in order else len(order), name)
        values[name][day] = values[name].get(day, ZERO) + value
        previous = (day, name)
    filled = set(filled)
    return [Series(name, values[name], filled=name in filled) for name in order]


@dataclass(frozen=True)
class Total:
    """A name's cost over the range (its daily values summed) and the values themselves."""

    name: str
    total: Decimal
    values: dict[dt.date, Decimal]
    # For people: the cost per component over the range.
    components: dict[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class Freshness:
    # The last day each source has loaded (None: never), of the page's cluster.
    through: dict[str, dt.date | None]


def freshness(conn: Connection, sel: Selection) -> Freshness:
    through: dict[str, dt.date | None] = dict.fromkeys(SOURCES)
    for row in queries.etl_status(conn):
        if sel.cluster is not None and row.cluster != sel.cluster:
            continue
        if row.source in through and row.last_day_loaded is not None:
            known = through[row.source]
            through[row.source] = max(known, row.last_day_loaded) if known else row.last_day_loaded
    return Freshness(through)


@dataclass(frozen=True)
class Overview:
    totals: list[Series]
    components: list[Series]
    hubs: list[Total]


def overview(conn: Connection, sel: Selection) -> Overview:
    listing = sel.listing()
    totals = [
        (day, name, amount(cost))
        for day, cost, name in queries.run_rows(conn, queries.total_costs(listing))
    ]
    # The attributable part is drawn as an area under the account's line.
    series = {s.name: s for s in pivot(totals, filled=("attributable",))}
    ordered = [series[name] for name in ("attributable", "account") if name in series]
    hubs = pivot(
        (day, name, amount(cost))
        for day, cost, name in queries.run_rows(conn, queries.total_costs_per_hub(listing))
    )
    return Overview(ordered, components(conn, sel), ranked(hubs))


@dataclass(frozen=True)
class BudgetLine:
    """A budget's status as /budgets gives it, for the page's last day."""

    name: str
    scope: str
    period: str
    amount: Decimal
    spent: Decimal
    forecast: Decimal | None
    spent_ratio: Decimal | None
    forecast_ratio: Decimal | None
    last_day: dt.date | None


def budgets(conn: Connection, sel: Selection) -> list[BudgetLine]:
    """The /budgets rows on the page's last day (today at the latest), of the budgets that
    count the page's cluster: those of that cluster and those of every cluster."""
    select = queries.budgets(Listing(as_of=min(sel.days.last, sel.today)))
    lines = []
    for values in queries.run_rows(conn, select):
        row = dict(zip(select.columns, values, strict=True))
        if sel.cluster is not None and row["cluster"] not in (None, sel.cluster):
            continue
        lines.append(
            BudgetLine(
                name=row["name"],
                scope=scope_text(row),
                period=row["period"],
                amount=amount(row["amount"]),
                spent=amount(row["spent"]),
                forecast=_maybe(row["forecast"]),
                spent_ratio=_maybe(row["spent_ratio"]),
                forecast_ratio=_maybe(row["forecast_ratio"]),
                last_day=row["last_day"],
            )
        )
    return lines


def scope_text(row: dict) -> str:
    """`hub prod · group g1`; `everything` for a budget with no scope."""
    parts = [
        f"{label} {row[key]}"
        for key, label in (("cluster", "cluster"), ("hub", "hub"), ("usergroup", "group"))
        if row[key] is not None
    ]
    if row["user"] is not None:
        parts.append(f"user {row['user']}")
    return " · ".join(parts) or "everything"


def _maybe(value) -> Decimal | None:
    return None if value is None else amount(value)


@dataclass(frozen=True)
class Anomaly:
    day: dt.date
    scope: str
    hub: str
    user: str | None
    cost: Decimal
    baseline: Decimal
    score: Decimal


def anomalies(conn: Connection, sel: Selection) -> list[Anomaly]:
    """The /cost-anomalies rows of the page's range and cluster, latest first."""
    select = queries.cost_anomalies(sel.listing())
    found = []
    for values in queries.run_rows(conn, select):
        row = dict(zip(select.columns, values, strict=True))
        found.append(
            Anomaly(
                day=row["date"],
                scope=row["scope"],
                hub=row["hub"],
                user=row["user"],
                cost=amount(row["cost"]),
                baseline=amount(row["baseline"]),
                score=amount(row["score"]),
            )
        )
    return found


def components(conn: Connection, sel: Selection, hub: str | None = None) -> list[Series]:
    listing = sel.listing(hubs=None if hub is None else [hub])
    rows = queries.run_rows(conn, queries.total_costs_per_component(listing))
    return pivot((day, component, amount(cost)) for day, cost, component in rows)


def ranked(series: Iterable[Series]) -> list[Total]:
    """Highest total first, then by name."""
    totals = [Total(s.name, sum(s.values.values(), ZERO), dict(s.values)) for s in series]
    return sorted(totals, key=lambda t: (-t.total, t.name))


@dataclass(frozen=True)
class UserCost:
    day: dt.date
    hub: str
    component: str
    user: str
    value: Decimal
    groups: tuple[str, ...]


def user_costs(conn: Connection, sel: Selection, **filters) -> list[UserCost]:
    """The /costs-per-user rows, one per (day, hub, component, user) with the user's groups:
    the endpoint repeats a user's cost on each of their groups' rows."""
    rows = queries.run_rows(conn, queries.costs_per_user(sel.listing(**filters)))
    merged: dict[tuple, tuple[Decimal, list[str]]] = {}
    for day, hub, component, user, value, usergroup in rows:
        key = (day, hub, component, user)
        if key not in merged:
            merged[key] = (amount(value), [])
        merged[key][1].append(usergroup)
    return [UserCost(*key, value, tuple(groups)) for key, (value, groups) in merged.items()]


def people(costs: Iterable[UserCost]) -> list[Total]:
    """Each user's cost per day and per component, highest total first."""
    days: dict[str, dict[dt.date, Decimal]] = defaultdict(dict)
    parts: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for cost in costs:
        days[cost.user][cost.day] = days[cost.user].get(cost.day, ZERO) + cost.value
        parts[cost.user][cost.component] = parts[cost.user].get(cost.component, ZERO) + cost.value
    totals = [
        Total(user, sum(values.values(), ZERO), values, parts[user])
        for user, values in days.items()
    ]
    return sorted(totals, key=lambda t: (-t.total, t.name))


def group_totals(costs: Iterable[UserCost]) -> list[Total]:
    """Each group's members' cost (a user in several groups counts in each), highest first."""
    days: dict[str, dict[dt.date, Decimal]] = defaultdict(dict)
    for cost in costs:
        for group in cost.groups:
            days[group][cost.day] = days[group].get(cost.day, ZERO) + cost.value
    return ranked(Series(name, values) for name, values in days.items())


@dataclass(frozen=True)
class HubPage:
    components: list[Series]
    users: list[Total]
    groups: list[Total]


def hub(conn: Connection, sel: Selection, name: str) -> HubPage:
    costs = user_costs(conn, sel, hubs=[name])
    return HubPage(components(conn, sel, name), people(costs), group_totals(costs))


@dataclass(frozen=True)
class GroupPage:
    daily: Series
    members: list[Total]
    hubs: list[Total]


def group(conn: Connection, sel: Selection, name: str) -> GroupPage:
    rows = queries.run_rows(conn, queries.total_costs_per_group(sel.listing()))
    daily = Series(name, {day: amount(cost) for day, usergroup, cost in rows if usergroup == name})
    costs = user_costs(conn, sel, usergroups=[name])
    per_hub = pivot((c.day, c.hub, c.value) for c in sorted(costs, key=lambda c: (c.day, c.hub)))
    return GroupPage(daily, people(costs), ranked(per_hub))


@dataclass(frozen=True)
class Membership:
    hub: str
    group: str


@dataclass(frozen=True)
class UserPage:
    # One series per (hub, component), named "hub · component".
    series: list[Series]
    hubs: list[Total]
    groups: list[Membership]


def user(conn: Connection, sel: Selection, name: str, hub: str | None = None) -> UserPage:
    """The user's costs and groups, on every hub or on `hub` only."""
    hubs = None if hub is None else [hub]
    costs = user_costs(conn, sel, users=[name], hubs=hubs)
    series = pivot((c.day, f"{c.hub} · {c.component}", c.value) for c in costs)
    per_hub = pivot((c.day, c.hub, c.value) for c in costs)
    rows = queries.run_rows(conn, queries.user_groups(sel.listing(users=[name], hubs=hubs)))
    groups = [Membership(hub, usergroup) for hub, _user, _escaped, usergroup in rows]
    return UserPage(series, ranked(per_hub), groups)
