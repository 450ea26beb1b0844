"""One plain SELECT on the public views per endpoint, with bound parameters.

Each function returns a `Select`: the statement giving the endpoint's rows (its output columns
are the response's keys, in order, plus any hidden sort column), and the ORDER BY over them.
Rounding happens here, in SQL on `numeric` (half up), before the value becomes a float8 for
JSON. `run_json` lets PostgreSQL build the whole JSON array in one statement, which also reads
the freshness time from the status view; `run_csv` lets it write CSV (COPY); `run_rows`
returns plain rows.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from api.params import Listing
from core.schema import USER_COMPONENTS

LOADED_AT = "(SELECT max(last_success_at) FROM etl_status)"


@dataclass(frozen=True)
class Select:
    sql: str
    params: dict
    columns: Sequence[str]
    order: str
    # Names endpoints answer with an array of strings instead of objects.
    scalar: bool = False


def _where(listing: Listing, columns: dict[str, str], *, date: str | None = "date"):
    """WHERE conditions and parameters for the filters a listing carries.

    `columns` maps a filter (hubs, components, users, usergroups) to the view's column.
    Only fixed fragments are joined; every value is a bound parameter.
    """
    conditions = []
    params: dict = {}
    if date is not None and listing.days is not None:
        conditions.append(f"{date} BETWEEN :first AND :last")
        params.update(first=listing.days.first, last=listing.days.last)
    for name, column in columns.items():
        values = getattr(listing, name)
        if values is not None:
            conditions.append(f"{column} = ANY(:{name})")
            params[name] = list(values)
    return (" WHERE " + " AND ".join(conditions)) if conditions else "", params


def hub_names(listing: Listing) -> Select:
    where, params = _where(listing, {})
    return Select(
        f"SELECT DISTINCT hub FROM hub_activity{where}",  # noqa: S608 (fixed fragments only)
        params,
        ("hub",),
        "hub",
        scalar=True,
    )


def component_names() -> Select:
    return Select(
        "SELECT component, position FROM components WHERE component = ANY(:user_components)",
        {"user_components": list(USER_COMPONENTS)},
        ("component",),
        "position NULLS LAST, component",
        scalar=True,
    )


def total_costs(listing: Listing) -> Select:
    where, params = _where(listing, {})
    return Select(
        f"SELECT date, round(cost, 2)::float8 AS cost, name FROM total_costs{where}",  # noqa: S608
        params,
        ("date", "cost", "name"),
        "date, name",
    )


def total_costs_per_hub(listing: Listing) -> Select:
    where, params = _where(listing, {})
    return Select(
        f"SELECT date, round(cost, 2)::float8 AS cost, hub AS name FROM hub_costs{where}",  # noqa: S608
        params,
        ("date", "cost", "name"),
        "date, name",
    )


def total_costs_per_component(listing: Listing) -> Select:
    where, params = _where(listing, {"hubs": "c.hub", "components": "c.component"}, date="c.date")
    return Select(
        "SELECT c.date, round(sum(c.cost), 2)::float8 AS cost, c.component, k.position "  # noqa: S608
        "FROM component_costs c LEFT JOIN components k ON k.component = c.component"
        f"{where} GROUP BY c.date, c.component, k.position",
        params,
        ("date", "cost", "component"),
        "date, position NULLS LAST, component",
    )


def costs_per_user(listing: Listing) -> Select:
    filters = {"hubs": "hub", "components": "component", "users": "username"}
    where, params = _where(listing, {**filters, "usergroups": "usergroup"})
    rows = f"SELECT date, hub, component, username, usergroup, cost FROM user_costs_by_group{where}"  # noqa: S608
    if listing.limit is not None:
        rows += (" AND " if where else " WHERE ") + f"username IN ({_top_users(listing)})"
        params["limit"] = listing.limit
    return Select(
        'SELECT date, hub, component, username AS "user", round(cost, 4)::float8 AS value, '  # noqa: S608
        f"usergroup FROM ({rows}) costs",
        params,
        ("date", "hub", "component", "user", "value", "usergroup"),
        'date, hub, component, value DESC, "user", usergroup',
    )


def _top_users(listing: Listing) -> str:
    """The N users with the highest total cost over the rows the other filters keep.

    A user's (date, hub, component) counts once however many groups repeat it: without a
    group filter the ranking reads user_costs (one row per user); with one, the distinct
    (date, hub, component, user, cost) rows of the matching groups, which keeps the read on
    the group index instead of joining every group row of the range back to user_costs
    (a year: 1.7 s -> 0.2 s). Ties go to the smaller username.
    """
    filters = {"hubs": "hub", "components": "component", "users": "username"}
    if listing.usergroups is None:
        where, _ = _where(listing, filters)
        rows = f"user_costs{where}"
    else:
        where, _ = _where(listing, {**filters, "usergroups": "usergroup"})
        rows = (
            "(SELECT DISTINCT date, hub, component, username, cost "  # noqa: S608
            f"FROM user_costs_by_group{where}) keyed"
        )
    return (
        f"SELECT username FROM {rows} "  # noqa: S608
        "GROUP BY username ORDER BY sum(cost) DESC, username LIMIT :limit"
    )


def total_usage(listing: Listing) -> Select:
    where, params = _where(listing, {"hubs": "hub", "components": "component", "users": "username"})
    return Select(
        'SELECT date, username AS "user", hub, component, share::float8 AS value '  # noqa: S608
        f"FROM user_shares{where}",
        params,
        ("date", "user", "hub", "component", "value"),
        'date, component, hub, "user"',
    )


def total_costs_per_group(listing: Listing) -> Select:
    where, params = _where(listing, {})
    return Select(
        f"SELECT date, usergroup, round(cost, 2)::float8 AS cost FROM group_costs{where}",  # noqa: S608
        params,
        ("date", "usergroup", "cost"),
        "date, usergroup",
    )


def user_groups(listing: Listing) -> Select:
    # A snapshot row applies from its date until the hub's next snapshot (valid_to NULL: still).
    where, params = _where(
        listing,
        {"hubs": "hub", "users": "username", "usergroups": "usergroup"},
        date=None,
    )
    overlap = "valid_from <= :last AND (valid_to IS NULL OR valid_to >= :first)"
    where = f"{where} AND {overlap}" if where else f" WHERE {overlap}"
    params.update(first=listing.days.first, last=listing.days.last)
    return Select(
        "SELECT DISTINCT hub, username, username_escaped, usergroup "  # noqa: S608
        f"FROM user_group_memberships{where}",
        params,
        ("hub", "username", "username_escaped", "usergroup"),
        "hub, username, usergroup, username_escaped",
    )


def users_with_multiple_groups(listing: Listing) -> Select:
    where, params = _where(listing, {"hubs": "hub", "users": "username"}, date=None)
    return Select(
        f"SELECT username, hub, usergroup FROM users_with_multiple_groups{where}",  # noqa: S608
        params,
        ("username", "hub", "usergroup"),
        "hub, username, usergroup",
    )


def users_with_no_groups(listing: Listing) -> Select:
    where, params = _where(listing, {"hubs": "hub", "users": "username"}, date=None)
    return Select(
        f"SELECT username, hub FROM users_with_no_groups{where}",  # noqa: S608
        params,
        ("username", "hub"),
        "hub, username",
    )


def known_components(conn: Connection) -> set[str]:
    return set(conn.execute(sa.text("SELECT component FROM components")).scalars())


def data_loaded_at(conn: Connection) -> dt.datetime | None:
    return conn.execute(sa.text(f"SELECT {LOADED_AT}")).scalar_one()  # noqa: S608


def etl_status(conn: Connection) -> list[sa.Row]:
    return list(
        conn.execute(
            sa.text(
                "SELECT source, schema_version, last_success_at, last_day_loaded, "
                "rows_loaded_24h, requests_24h, failed_chunks_24h, last_failure_at, "
                "running_chunks FROM etl_status ORDER BY source"
            )
        )
    )


def unmapped_services(conn: Connection) -> list[sa.Row]:
    return list(conn.execute(sa.text("SELECT service, cost FROM unmapped_services")))


def run_json(conn: Connection, select: Select) -> tuple[str, dt.datetime | None]:
    """The rows as one JSON array built by PostgreSQL, and the freshness time."""
    if select.scalar:
        (column,) = select.columns
        element = f'q."{column}"'
    else:
        # A row of just the output columns: its JSON keeps their order and has no spaces.
        columns = ", ".join(f'q."{c}"' for c in select.columns)
        element = f"(SELECT r FROM (SELECT {columns}) r)"  # noqa: S608
    statement = (
        f"SELECT coalesce(json_agg({element} ORDER BY {_qualified(select.order)}), '[]')::text, "  # noqa: S608
        f"{LOADED_AT} FROM ({select.sql}) q"
    )
    body, loaded_at = conn.execute(sa.text(statement), select.params).one()
    return body, loaded_at


def run_csv(conn: Connection, select: Select) -> str:
    """The rows as CSV with a header line, written by PostgreSQL (COPY ... TO STDOUT).

    Building a 200,000-row CSV in Python took twice as long as fetching the rows; COPY's
    CSV is the same text (minimal quoting, shortest float8 digits, empty for NULL). COPY
    takes no server-side parameters, so psycopg binds them client-side, quoting each value.
    """
    statement = _PARAMETER.sub(r"%(\1)s", _ordered_rows(select))
    with conn.connection.driver_connection.cursor() as cursor:
        copy_sql = f"COPY ({statement}) TO STDOUT (FORMAT csv, HEADER)"
        with cursor.copy(copy_sql, select.params) as copy:
            return b"".join(copy).decode()


# SQLAlchemy's `:name` placeholders (not `::type` casts), rewritten to psycopg's `%(name)s`.
_PARAMETER = re.compile(r"(?<![:\w]):([a-z_]+)")


def _ordered_rows(select: Select) -> str:
    columns = ", ".join(f'q."{c}"' for c in select.columns)
    return f"SELECT {columns} FROM ({select.sql}) q ORDER BY {_qualified(select.order)}"  # noqa: S608


def run_rows(conn: Connection, select: Select) -> list[tuple]:
    return [tuple(row) for row in conn.execute(sa.text(_ordered_rows(select)), select.params)]


def _qualified(order: str) -> str:
    """`date, value DESC` → `q.date, q.value DESC` (order items name output columns)."""
    items = []
    for item in order.split(","):
        column, *rest = item.strip().split(" ", 1)
        items.append(" ".join([f"q.{column}", *rest]))
    return ", ".join(items)
