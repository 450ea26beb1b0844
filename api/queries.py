"""One SELECT on the public views per endpoint, built with SQLAlchemy Core.

Each function returns a `Select`: the Core statement giving the endpoint's rows (its output
columns are the response's keys, in order, plus any hidden sort column), and the sort keys over
them. Every value is a bound parameter; no SQL text is assembled. Rounding happens here, in SQL
on `numeric` (half up), before the value becomes a float8 for JSON. `run_json` lets PostgreSQL
build the whole JSON array in one statement, which also reads the freshness time from the
status view; `stream_json` reads the same array's elements row by row, rendered by PostgreSQL,
for answers too large to hold; `stream_rendered_json` reads the same bytes of an unfiltered
`/costs-per-user` or `/total-usage` from the days rendered at load time (`Select.rendered`,
docs/api.md §3.4); `stream_csv` lets it write CSV (COPY) in chunks; `run_rows` returns plain
rows.

Clusters (docs/api.md §9) are handled in two places: `_conditions` applies the cluster filter
with the others, and `_per_cluster` makes a statement answer per cluster (the `cluster` column
last, in the grouping and last in the order) when the listing asks for it.

A statement depends only on the listing's shape (which parameters are given), not on their
values, which are bound at execution (`Select.params`): each endpoint builds its statement once
per shape (`_per_shape`), so a request spends no time building or compiling SQL.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field

import psycopg.adapt
import psycopg.rows
import psycopg.sql
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect
from sqlalchemy.engine import Connection

from api.params import DateRange, Listing
from core.schema import USER_COMPONENTS

FLOAT8 = postgresql.DOUBLE_PRECISION
NAMES = postgresql.ARRAY(sa.Text)
# COPY cannot take server-side parameters: its statement is compiled for psycopg, which binds
# the values client-side. The named form is the one bench/http_figures.py rewrites itself.
PSYCOPG = psycopg_dialect.dialect()
COPY_CSV = psycopg.sql.SQL("COPY ({}) TO STDOUT (FORMAT csv, HEADER)")
# A streamed answer is sent in pieces of about these sizes (docs/api.md §3.3).
CHUNK_BYTES = 256 * 1024
ROWS_PER_CHUNK = 2000
# A rendered day of a bulk answer is 0.2-1 MB (1,000-5,000 users).
DAYS_PER_CHUNK = 2
# What `json_agg` puts between two records, and so the rendered days between their rows.
RECORD_SEPARATOR = b", \n "


def _view(name: str, *columns: str) -> sa.TableClause:
    return sa.table(name, *(sa.column(column) for column in columns))


# The public views the API reads (docs/sql.md), with the columns it reads.
HUB_ACTIVITY = _view("hub_activity", "cluster", "date", "hub")
COMPONENTS = _view("components", "component", "position")
TOTAL_COSTS = _view("total_costs", "cluster", "date", "name", "cost")
HUB_COSTS = _view("hub_costs", "cluster", "date", "hub", "cost")
COMPONENT_COSTS = _view("component_costs", "cluster", "date", "hub", "component", "cost")
USER_COSTS = _view("user_costs", "cluster", "date", "hub", "component", "username", "cost")
USER_COSTS_BY_GROUP = _view(
    "user_costs_by_group", "cluster", "date", "hub", "component", "username", "usergroup", "cost"
)
USER_SHARES = _view("user_shares", "cluster", "date", "hub", "component", "username", "share")
GROUP_COSTS = _view("group_costs", "cluster", "date", "usergroup", "cost")
MEMBERSHIPS = _view(
    "user_group_memberships",
    "cluster",
    "hub",
    "username",
    "username_escaped",
    "usergroup",
    "valid_from",
    "valid_to",
)
CLUSTERS = _view("clusters", "cluster", "first_day", "last_day")
JSON_ROWS_DAILY = _view("json_rows_daily", "answer", "cluster", "date", "body")
MULTIPLE_GROUPS = _view("users_with_multiple_groups", "cluster", "username", "hub", "usergroup")
NO_GROUPS = _view("users_with_no_groups", "cluster", "username", "hub")
UNMAPPED_SERVICES = _view("unmapped_services", "cluster", "service", "cost")
COST_ANOMALIES = _view(
    "cost_anomalies",
    "cluster",
    "date",
    "scope",
    "hub",
    "username",
    "cost",
    "baseline",
    "mad",
    "score",
    "history_days",
)
# The columns of the function budget_status(as_of) (docs/budgets.md §2), in its order.
BUDGET_STATUS_COLUMNS = (
    "name",
    "cluster",
    "hub",
    "usergroup",
    "username",
    "period",
    "period_start",
    "period_end",
    "amount",
    "last_day",
    "spent",
    "daily_rate",
    "forecast",
    "spent_ratio",
    "forecast_ratio",
    "amount_reached_on",
    "alert_at",
)
ETL_STATUS = _view(
    "etl_status",
    "cluster",
    "source",
    "schema_version",
    "last_success_at",
    "last_day_loaded",
    "rows_loaded_24h",
    "requests_24h",
    "failed_chunks_24h",
    "last_failure_at",
    "running_chunks",
)


@dataclass(frozen=True)
class Key:
    """One sort key: an output column of the rows, ascending unless `descending`."""

    column: str
    descending: bool = False
    nulls_last: bool = False

    def over(self, rows: sa.FromClause) -> sa.ColumnElement:
        key = rows.c[self.column]
        key = key.desc() if self.descending else key.asc()
        return key.nulls_last() if self.nulls_last else key


@dataclass(frozen=True)
class Select:
    rows: sa.Select
    columns: Sequence[str]
    order: Sequence[Key]
    # Names endpoints answer with an array of strings instead of objects.
    scalar: bool = False
    # The values of the rows' bound parameters.
    params: dict = field(default_factory=dict)
    # The clusters whose loads the freshness time is of (None: every cluster's).
    scope: Sequence[str] | None = None
    # Whether the JSON statement also reads the clusters' names (`run_json`).
    with_clusters: bool = False
    # The answer whose days are rendered at load time (`json_rows_daily`), when the rows
    # are the whole answer's: no filter but days and clusters, no limit, one cluster's form.
    rendered: str | None = None


# A given parameter, in a listing's shape: the statement needs its placeholder, not its value.
_GIVEN_DAYS = DateRange(dt.date.min, dt.date.min)


def _shape(listing: Listing) -> Listing:
    """The listing with every given value replaced by one placeholder: what a statement is of."""
    given = {}
    for item in dataclasses.fields(listing):
        value = getattr(listing, item.name)
        if isinstance(value, DateRange):
            given[item.name] = _GIVEN_DAYS
        elif isinstance(value, dt.date):
            given[item.name] = dt.date.min
        elif isinstance(value, list | tuple):
            given[item.name] = ()
        elif isinstance(value, int) and not isinstance(value, bool):
            given[item.name] = 0
    return dataclasses.replace(listing, **given)


def _params(listing: Listing) -> dict:
    """The values of a listing's bound parameters, named as `_conditions` and `_days` name them."""
    params: dict = {}
    if listing.days is not None:
        params.update(first=listing.days.first, last=listing.days.last)
    if listing.as_of is not None:
        params["as_of"] = listing.as_of
    for name in ("hubs", "components", "users", "usergroups", "clusters"):
        values = getattr(listing, name)
        if values is not None:
            params[name] = list(values)
    if listing.limit is not None:
        params["limit"] = listing.limit
    return params


def _per_shape(build: Callable[[Listing], Select]) -> Callable[[Listing], Select]:
    """`build` run once per shape of listing; the request's values go to `Select.params`."""
    cached = functools.lru_cache(maxsize=256)(build)

    @functools.wraps(build)
    def select(listing: Listing) -> Select:
        return dataclasses.replace(cached(_shape(listing)), params=_params(listing))

    return select


def _keys(*names: str) -> tuple[Key, ...]:
    return tuple(Key(name) for name in names)


def _names(name: str) -> sa.BindParameter:
    return sa.bindparam(name, type_=NAMES)


def _rounded(value, places: int) -> sa.ColumnElement:
    """Half-up rounding of a numeric, as float8 for JSON."""
    return sa.cast(sa.func.round(value, sa.literal_column(str(int(places)))), FLOAT8)


def _conditions(
    view: sa.FromClause, listing: Listing, columns: dict[str, str], *, dated: bool = True
) -> list[sa.ColumnElement]:
    """The WHERE conditions for the filters a listing carries.

    `columns` maps a filter (hubs, components, users, usergroups) to the view's column; the
    view's `date` is kept to the listing's days when `dated`.
    """
    conditions = []
    if dated and listing.days is not None:
        conditions.append(view.c.date.between(*_days()))
    for name, column in {**columns, "clusters": "cluster"}.items():
        if getattr(listing, name) is not None:
            conditions.append(view.c[column] == sa.any_(_names(name)))
    return conditions


def _per_cluster(
    listing: Listing, view: sa.FromClause, columns: Sequence[str], order: Sequence[Key]
) -> tuple[tuple[sa.ColumnElement, ...], tuple[str, ...], tuple[Key, ...]]:
    """The cluster column to select (and group by), the answer's keys and its order.

    One answer per cluster: `cluster` is the rows' last key and the last sort key, so two
    clusters' rows of the same hub or day are never merged; else the single-cluster answer.
    """
    if not listing.by_cluster:
        return (), tuple(columns), tuple(order)
    return (view.c.cluster,), (*columns, "cluster"), (*order, Key("cluster"))


def _rendered(listing: Listing, answer: str) -> str | None:
    """`answer` when the listing asks for its rows whole (`Select.rendered`), else None."""
    filtered = (listing.hubs, listing.components, listing.users, listing.usergroups)
    if listing.by_cluster or listing.limit is not None or any(f is not None for f in filtered):
        return None
    return answer


def _days() -> tuple[sa.BindParameter, sa.BindParameter]:
    return sa.bindparam("first", type_=sa.Date), sa.bindparam("last", type_=sa.Date)


@_per_shape
def hub_names(listing: Listing) -> Select:
    # Names, not rows: a hub name in several clusters appears once (docs/api.md §9).
    v = HUB_ACTIVITY
    rows = sa.select(v.c.hub).distinct().where(*_conditions(v, listing, {}))
    return Select(rows, ("hub",), _keys("hub"), scalar=True)


@functools.cache
def cluster_names() -> Select:
    v = CLUSTERS
    return Select(sa.select(v.c.cluster), ("cluster",), _keys("cluster"), scalar=True)


@functools.cache
def component_names() -> Select:
    v = COMPONENTS
    rows = sa.select(v.c.component, v.c.position).where(
        v.c.component == sa.any_(_names("user_components"))
    )
    return Select(
        rows,
        ("component",),
        (Key("position", nulls_last=True), Key("component")),
        scalar=True,
        params={"user_components": list(USER_COMPONENTS)},
    )


@_per_shape
def total_costs(listing: Listing) -> Select:
    v = TOTAL_COSTS
    cluster, columns, order = _per_cluster(
        listing, v, ("date", "cost", "name"), _keys("date", "name")
    )
    rows = sa.select(v.c.date, _rounded(v.c.cost, 2).label("cost"), v.c.name, *cluster).where(
        *_conditions(v, listing, {})
    )
    return Select(rows, columns, order)


@_per_shape
def total_costs_per_hub(listing: Listing) -> Select:
    v = HUB_COSTS
    cluster, columns, order = _per_cluster(
        listing, v, ("date", "cost", "name"), _keys("date", "name")
    )
    rows = sa.select(
        v.c.date, _rounded(v.c.cost, 2).label("cost"), v.c.hub.label("name"), *cluster
    ).where(*_conditions(v, listing, {}))
    return Select(rows, columns, order)


@_per_shape
def total_costs_per_component(listing: Listing) -> Select:
    c = COMPONENT_COSTS.alias("c")
    k = COMPONENTS.alias("k")
    cluster, columns, order = _per_cluster(
        listing,
        c,
        ("date", "cost", "component"),
        (Key("date"), Key("position", nulls_last=True), Key("component")),
    )
    rows = (
        sa.select(c.c.date, _rounded(sa.func.sum(c.c.cost), 2).label("cost"), c.c.component)
        .add_columns(k.c.position, *cluster)
        .select_from(c.outerjoin(k, k.c.component == c.c.component))
        .where(*_conditions(c, listing, {"hubs": "hub", "components": "component"}))
        .group_by(c.c.date, c.c.component, k.c.position, *cluster)
    )
    return Select(rows, columns, order)


USER_FILTERS = {"hubs": "hub", "components": "component", "users": "username"}


@_per_shape
def costs_per_user(listing: Listing) -> Select:
    v = USER_COSTS_BY_GROUP
    conditions = _conditions(v, listing, {**USER_FILTERS, "usergroups": "usergroup"})
    if listing.limit is not None:
        user = sa.tuple_(v.c.cluster, v.c.username) if listing.by_cluster else v.c.username
        conditions.append(user.in_(_top_users(listing)))
    cluster, _, _ = _per_cluster(listing, v, (), ())
    costs = (
        sa.select(v.c.date, v.c.hub, v.c.component, v.c.username, v.c.usergroup, v.c.cost, *cluster)
        .where(*conditions)
        .subquery("costs")
    )
    cluster, columns, order = _per_cluster(
        listing,
        costs,
        ("date", "hub", "component", "user", "value", "usergroup"),
        (
            *_keys("date", "hub", "component"),
            Key("value", descending=True),
            *_keys("user", "usergroup"),
        ),
    )
    rows = sa.select(
        costs.c.date,
        costs.c.hub,
        costs.c.component,
        costs.c.username.label("user"),
        _rounded(costs.c.cost, 4).label("value"),
        costs.c.usergroup,
        *cluster,
    )
    return Select(rows, columns, order, rendered=_rendered(listing, "costs-per-user"))


def _top_users(listing: Listing) -> sa.Select:
    """The N users with the highest total cost over the rows the other filters keep.

    A user's (date, hub, component) counts once however many groups repeat it: without a
    group filter the ranking reads user_costs (one row per user); with one, the distinct
    (date, hub, component, user, cost) rows of the matching groups, which keeps the read on
    the group index instead of joining every group row of the range back to user_costs
    (a year: 1.7 s -> 0.2 s). Ties go to the smaller username.

    Per cluster, the N users of each cluster, as (cluster, username): a username in two
    clusters is two users.
    """
    conditions = []
    if listing.usergroups is None:
        source = USER_COSTS
        conditions = _conditions(source, listing, USER_FILTERS)
    else:
        v = USER_COSTS_BY_GROUP
        filters = {**USER_FILTERS, "usergroups": "usergroup"}
        cluster, _, _ = _per_cluster(listing, v, (), ())
        source = (
            sa.select(v.c.date, v.c.hub, v.c.component, v.c.username, v.c.cost, *cluster)
            .distinct()
            .where(*_conditions(v, listing, filters))
            .subquery("keyed")
        )
    limit = sa.bindparam("limit", type_=sa.BigInteger)
    total = sa.func.sum(source.c.cost)
    if not listing.by_cluster:
        return (
            sa.select(source.c.username)
            .where(*conditions)
            .group_by(source.c.username)
            .order_by(total.desc(), source.c.username)
            .limit(limit)
        )
    rank = sa.func.row_number().over(
        partition_by=source.c.cluster, order_by=(total.desc(), source.c.username)
    )
    ranked = (
        sa.select(source.c.cluster, source.c.username, rank.label("rank"))
        .where(*conditions)
        .group_by(source.c.cluster, source.c.username)
        .subquery("ranked")
    )
    return sa.select(ranked.c.cluster, ranked.c.username).where(ranked.c.rank <= limit)


@_per_shape
def total_usage(listing: Listing) -> Select:
    v = USER_SHARES
    cluster, columns, order = _per_cluster(
        listing,
        v,
        ("date", "user", "hub", "component", "value"),
        _keys("date", "component", "hub", "user"),
    )
    rows = sa.select(
        v.c.date,
        v.c.username.label("user"),
        v.c.hub,
        v.c.component,
        sa.cast(v.c.share, FLOAT8).label("value"),
        *cluster,
    ).where(*_conditions(v, listing, USER_FILTERS))
    return Select(rows, columns, order, rendered=_rendered(listing, "total-usage"))


@_per_shape
def total_costs_per_group(listing: Listing) -> Select:
    v = GROUP_COSTS
    cluster, columns, order = _per_cluster(
        listing, v, ("date", "usergroup", "cost"), _keys("date", "usergroup")
    )
    rows = sa.select(v.c.date, v.c.usergroup, _rounded(v.c.cost, 2).label("cost"), *cluster).where(
        *_conditions(v, listing, {})
    )
    return Select(rows, columns, order)


@_per_shape
def user_groups(listing: Listing) -> Select:
    # A snapshot row applies from its date until the hub's next snapshot (valid_to NULL: still).
    v = MEMBERSHIPS
    first, last = _days()
    filters = {"hubs": "hub", "users": "username", "usergroups": "usergroup"}
    cluster, columns, order = _per_cluster(
        listing,
        v,
        ("hub", "username", "username_escaped", "usergroup"),
        _keys("hub", "username", "usergroup", "username_escaped"),
    )
    rows = (
        sa.select(v.c.hub, v.c.username, v.c.username_escaped, v.c.usergroup, *cluster)
        .distinct()
        .where(
            *_conditions(v, listing, filters, dated=False),
            v.c.valid_from <= last,
            sa.or_(v.c.valid_to.is_(None), v.c.valid_to >= first),
        )
    )
    return Select(rows, columns, order)


@_per_shape
def users_with_multiple_groups(listing: Listing) -> Select:
    v = MULTIPLE_GROUPS
    cluster, columns, order = _per_cluster(
        listing, v, ("username", "hub", "usergroup"), _keys("hub", "username", "usergroup")
    )
    rows = sa.select(v.c.username, v.c.hub, v.c.usergroup, *cluster).where(
        *_conditions(v, listing, {"hubs": "hub", "users": "username"}, dated=False)
    )
    return Select(rows, columns, order)


@_per_shape
def users_with_no_groups(listing: Listing) -> Select:
    v = NO_GROUPS
    cluster, columns, order = _per_cluster(
        listing, v, ("username", "hub"), _keys("hub", "username")
    )
    rows = sa.select(v.c.username, v.c.hub, *cluster).where(
        *_conditions(v, listing, {"hubs": "hub", "users": "username"}, dated=False)
    )
    return Select(rows, columns, order)


BUDGET_KEYS = (
    "name",
    "cluster",
    "hub",
    "usergroup",
    "user",
    "period",
    "period_start",
    "period_end",
    "amount",
    "spent",
    "daily_rate",
    "forecast",
    "spent_ratio",
    "forecast_ratio",
    "amount_reached_on",
    "last_day",
    "alert_at",
)


@_per_shape
def budgets(listing: Listing) -> Select:
    """Every budget's status on `as_of` (the function budget_status), by name."""
    status = (
        sa.func.budget_status(sa.bindparam("as_of", type_=sa.Date))
        .table_valued(*BUDGET_STATUS_COLUMNS)
        .alias("status")
    )
    c = status.c
    rows = sa.select(
        c.name,
        c.cluster,
        c.hub,
        c.usergroup,
        c.username.label("user"),
        c.period,
        c.period_start,
        c.period_end,
        _rounded(c.amount, 2).label("amount"),
        _rounded(c.spent, 2).label("spent"),
        _rounded(c.daily_rate, 2).label("daily_rate"),
        _rounded(c.forecast, 2).label("forecast"),
        _rounded(c.spent_ratio, 4).label("spent_ratio"),
        _rounded(c.forecast_ratio, 4).label("forecast_ratio"),
        c.amount_reached_on,
        c.last_day,
        c.alert_at,
    ).select_from(status)
    return Select(rows, BUDGET_KEYS, _keys("name"))


ANOMALY_KEYS = (
    "date",
    "cluster",
    "scope",
    "hub",
    "user",
    "cost",
    "baseline",
    "mad",
    "score",
    "history_days",
)


@_per_shape
def cost_anomalies(listing: Listing) -> Select:
    """The anomalies of the range, latest day first, then the strongest."""
    v = COST_ANOMALIES
    rows = sa.select(
        v.c.date,
        v.c.cluster,
        v.c.scope,
        v.c.hub,
        v.c.username.label("user"),
        _rounded(v.c.cost, 2).label("cost"),
        _rounded(v.c.baseline, 2).label("baseline"),
        _rounded(v.c.mad, 2).label("mad"),
        _rounded(v.c.score, 2).label("score"),
        v.c.history_days,
    ).where(*_conditions(v, listing, {"hubs": "hub", "users": "username"}))
    order = (
        Key("date", descending=True),
        Key("score", descending=True),
        *_keys("cluster", "scope", "hub", "user"),
    )
    return Select(rows, ANOMALY_KEYS, order)


_KNOWN_COMPONENTS = sa.select(COMPONENTS.c.component)
_KNOWN_CLUSTERS = sa.select(CLUSTERS.c.cluster).order_by(CLUSTERS.c.cluster)
_CLUSTER_NAMES = sa.select(
    sa.func.array_agg(CLUSTERS.c.cluster).aggregate_order_by(CLUSTERS.c.cluster)
).scalar_subquery()


_DATA_VERSION = sa.select(sa.func.data_version())


def has_data_version(conn: Connection) -> bool:
    """Whether the schema has `data_version()` (0011): before it, answers carry no ETag."""
    function = sa.bindparam("function", "public.data_version()", type_=sa.Text)
    return conn.execute(sa.select(sa.func.to_regprocedure(function).is_not(None))).scalar_one()


def data_version(conn: Connection) -> int:
    """The data version: it changes when a write to what the views read commits (0011)."""
    return conn.execute(_DATA_VERSION).scalar_one()


def known_components(conn: Connection) -> set[str]:
    return set(conn.execute(_KNOWN_COMPONENTS).scalars())


def has_view(conn: Connection, name: str) -> bool:
    """Whether the schema has the public view `name` (one a later revision added)."""
    view = sa.bindparam("view", f"public.{name}", type_=sa.Text)
    return conn.execute(sa.select(sa.func.to_regclass(view).is_not(None))).scalar_one()


def known_clusters(conn: Connection) -> list[str]:
    """Every cluster of the `clusters` view, by name: one or none means a single cluster."""
    return list(conn.execute(_KNOWN_CLUSTERS).scalars())


def _loaded_at(scoped: bool) -> sa.ScalarSelect:
    """The freshness time: the latest successful chunk of any source (of the `scope` clusters)."""
    v = ETL_STATUS
    latest = sa.select(sa.func.max(v.c.last_success_at))
    if scoped:
        latest = latest.where(v.c.cluster == sa.any_(_names("scope")))
    return latest.scalar_subquery()


@functools.cache
def _loaded_at_statement(scoped: bool) -> sa.Select:
    return sa.select(_loaded_at(scoped))


def _scope_params(scope: Sequence[str] | None) -> dict:
    return {} if scope is None else {"scope": list(scope)}


def data_loaded_at(conn: Connection, scope: Sequence[str] | None = None) -> dt.datetime | None:
    statement = _loaded_at_statement(scope is not None)
    return conn.execute(statement, _scope_params(scope)).scalar_one()


def etl_status(conn: Connection) -> list[sa.Row]:
    """One row per (cluster, source); the cluster is NULL before any cluster is known."""
    v = ETL_STATUS
    return list(conn.execute(sa.select(v).order_by(v.c.cluster, v.c.source)))


def unmapped_services(conn: Connection) -> list[sa.Row]:
    v = UNMAPPED_SERVICES
    return list(conn.execute(sa.select(v.c.cluster, v.c.service, v.c.cost)))


def json_statement(select: Select) -> sa.Select:
    """One row: the rows as a JSON array built by PostgreSQL, and the freshness time."""
    return _json_statement(
        select.rows,
        tuple(select.columns),
        tuple(select.order),
        select.scalar,
        select.scope is not None,
        select.with_clusters,
    )


@functools.lru_cache(maxsize=256)
def _json_statement(
    rows: sa.Select,
    columns: tuple[str, ...],
    order: tuple[Key, ...],
    scalar: bool,
    scoped: bool,
    with_clusters: bool,
) -> sa.Select:
    q = rows.subquery("q")
    if scalar:
        (column,) = columns
        element = q.c[column]
    else:
        # A row of just the output columns: its JSON keeps their order and has no spaces.
        row = sa.select(*(q.c[c] for c in columns)).correlate(q).subquery("r")
        element = sa.select(row.table_valued()).scalar_subquery()
    answer = sa.func.json_agg(element).aggregate_order_by(*(key.over(q) for key in order))
    body = sa.func.coalesce(sa.cast(answer, sa.Text), "[]")
    clusters = (_CLUSTER_NAMES,) if with_clusters else ()
    return sa.select(body, _loaded_at(scoped), *clusters).select_from(q)


def run_json(conn: Connection, select: Select) -> tuple[str, dt.datetime | None, list[str] | None]:
    """The rows as one JSON array built by PostgreSQL, the freshness time and, when the
    select asks for them, the clusters' names, all read at once."""
    params = {**select.params, **_scope_params(select.scope)}
    body, loaded_at, *clusters = conn.execute(json_statement(select), params).one()
    return body, loaded_at, (clusters[0] or []) if clusters else None


def ordered_rows(select: Select) -> sa.Select:
    """The output columns of the rows, in the endpoint's order."""
    return _ordered_rows(select.rows, tuple(select.columns), tuple(select.order))


@functools.lru_cache(maxsize=256)
def _ordered_rows(rows: sa.Select, columns: tuple[str, ...], order: tuple[Key, ...]) -> sa.Select:
    q = rows.subquery("q")
    return (
        sa.select(*(q.c[c] for c in columns))
        .select_from(q)
        .order_by(*(key.over(q) for key in order))
    )


@functools.lru_cache(maxsize=256)
def _copy_statement(statement: sa.Select) -> tuple[psycopg.sql.Composed, sa.engine.Compiled]:
    compiled = statement.compile(dialect=PSYCOPG)
    return COPY_CSV.format(psycopg.sql.SQL(str(compiled))), compiled


@contextlib.contextmanager
def _driver(conn: Connection) -> Generator[psycopg.Connection]:
    """The driver's connection, for what SQLAlchemy does not run (COPY, a server-side
    cursor). SQLAlchemy does not see its errors: after an operational one (the server gone,
    a statement cancelled) the connection is invalidated, so that closing it does not try a
    rollback on a connection that may be lost."""
    driver = conn.connection.driver_connection
    try:
        yield driver
    except psycopg.OperationalError:
        conn.invalidate()
        raise


def stream_csv(conn: Connection, select: Select) -> Generator[bytes]:
    """The rows as CSV with a header line, written by PostgreSQL (COPY ... TO STDOUT), in
    chunks of about `CHUNK_BYTES` as they arrive.

    Building a 200,000-row CSV in Python took twice as long as fetching the rows; COPY's
    CSV is the same text (minimal quoting, shortest float8 digits, empty for NULL). COPY
    takes no server-side parameters: the statement is compiled for psycopg, which binds its
    parameters client-side, quoting each value. Nothing runs before the first chunk is asked
    for; closing the generator early cancels the COPY.
    """
    statement, compiled = _copy_statement(ordered_rows(select))
    params = compiled.construct_params(select.params)
    with _driver(conn) as driver, driver.cursor() as cursor:
        with cursor.copy(statement, params) as copy:
            chunk = bytearray()
            for data in copy:  # one row each
                chunk += data
                if len(chunk) >= CHUNK_BYTES:
                    yield bytes(chunk)
                    chunk.clear()
            if chunk:
                yield bytes(chunk)


def json_rows_statement(select: Select) -> sa.Select:
    """The answer's elements, one row each as JSON text rendered by PostgreSQL, in order:
    the very text `json_agg` puts between its separators."""
    return _json_rows_statement(ordered_rows(select), select.scalar)


@functools.lru_cache(maxsize=256)
def _json_rows_statement(ordered: sa.Select, scalar: bool) -> sa.Select:
    # The whole row of the ordered rows, rather than the record `_json_statement` builds per
    # row: the same text in a quarter less of PostgreSQL's time (a month of /costs-per-user,
    # 5,000 users: 506 ms vs 676 ms). A subquery with ORDER BY is never flattened, and a
    # projection over it keeps its order.
    r = ordered.subquery("r")
    element = r.c[0] if scalar else r.table_valued()
    return sa.select(sa.cast(sa.func.to_json(element), sa.Text)).select_from(r)


@functools.lru_cache(maxsize=256)
def _psycopg_compiled(statement: sa.Select) -> tuple[str, sa.engine.Compiled]:
    compiled = statement.compile(dialect=PSYCOPG)
    return str(compiled), compiled


def stream_json(conn: Connection, select: Select) -> Generator[bytes]:
    """The rows as the JSON array `run_json` builds, byte for byte, in chunks of
    `ROWS_PER_CHUNK` rows read through a server-side cursor as they are sent.

    `json_agg` separates elements with ", " and puts a line break before a record; the
    elements are the same `to_json` text. Nothing runs before the first chunk is asked for.
    """
    statement, compiled = _psycopg_compiled(json_rows_statement(select))
    params = compiled.construct_params(select.params)
    separator = ", " if select.scalar else RECORD_SEPARATOR.decode()
    with (
        _driver(conn) as driver,
        driver.cursor(name="hubcost_answer", row_factory=psycopg.rows.scalar_row) as cursor,
    ):
        cursor.execute(statement, params)
        rows = cursor.fetchmany(ROWS_PER_CHUNK)
        yield ("[" + separator.join(rows)).encode()
        while rows := cursor.fetchmany(ROWS_PER_CHUNK):
            yield (separator + separator.join(rows)).encode()
        yield b"]"


@functools.lru_cache(maxsize=8)
def _rendered_days_statement(scoped: bool) -> sa.Select:
    v = JSON_ROWS_DAILY
    conditions = [v.c.answer == sa.bindparam("answer", type_=sa.Text), v.c.date.between(*_days())]
    if scoped:
        conditions.append(v.c.cluster == sa.any_(_names("clusters")))
    return sa.select(v.c.body).where(*conditions).order_by(v.c.date, v.c.cluster)


class _Utf8Bytes(psycopg.adapt.Loader):
    """A text column as the bytes the server sent (UTF-8): no decoding to encode again."""

    def load(self, data) -> bytes:
        return bytes(data)


def stream_rendered_json(conn: Connection, select: Select) -> Generator[bytes]:
    """`stream_json`'s bytes for an answer whose days are rendered (`Select.rendered`):
    each day's text of `json_rows_daily`, in date order, read `DAYS_PER_CHUNK` at a time
    through a server-side cursor, joined by the separator the days' rows are joined by."""
    params = {**select.params, "answer": select.rendered}
    statement, compiled = _psycopg_compiled(_rendered_days_statement("clusters" in params))
    with (
        _driver(conn) as driver,
        driver.cursor(name="hubcost_rendered", row_factory=psycopg.rows.scalar_row) as cursor,
    ):
        cursor.adapters.register_loader("text", _Utf8Bytes)
        cursor.execute(statement, compiled.construct_params(params))
        opening = b"["
        while days := cursor.fetchmany(DAYS_PER_CHUNK):
            yield opening + RECORD_SEPARATOR.join(days)
            opening = RECORD_SEPARATOR
        yield b"[]" if opening == b"[" else b"]"


def psycopg_statement(select: Select) -> tuple[str, dict]:
    """`run_rows`'s statement as psycopg runs it: its SQL text and the bound parameters."""
    compiled = ordered_rows(select).compile(dialect=PSYCOPG)
    return str(compiled), compiled.construct_params(select.params)


def run_rows(conn: Connection, select: Select) -> list[tuple]:
    return [tuple(row) for row in conn.execute(ordered_rows(select), select.params)]
