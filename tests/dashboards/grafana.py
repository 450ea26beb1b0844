"""What Grafana does to a query before sending it, done by hand for the tests.

Only the parts our dashboards use: the SQL datasources' `$__timeFilter(col)`, `$__timeFrom()`
and `$__timeTo()` macros, the global `${__from:date}` / `${__to:date}`, and template variables
as `$name`, `${name}` or `${name:format}`. Anything else left with a `$` is an error, so a
dashboard cannot use a macro the tests do not understand.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from tests.conftest import ROOT

DASHBOARDS = ROOT / "dashboards"
POSTGRES_DASHBOARDS = sorted((DASHBOARDS / "postgres").glob("*.json"))
INFINITY_DASHBOARDS = sorted((DASHBOARDS / "infinity").glob("*.json"))

# The dashboard time range the tests pick: January 2026, as Grafana sends it (UTC).
TIME_FROM = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
TIME_TO = dt.datetime(2026, 1, 31, 23, 59, 59, 999000, tzinfo=dt.UTC)

VARIABLE = re.compile(r"\$\{(?P<braced>\w+)(?::(?P<format>\w+))?\}|\$(?P<plain>\w+)")
TIME_FILTER = re.compile(r"\$__timeFilter\((?P<column>[^()]+)\)")


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def panels(dashboard: dict) -> Iterator[dict]:
    """Every panel, including those inside collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def variables(dashboard: dict) -> dict[str, dict]:
    return {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}


def _rfc3339(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _grafana_date(moment: dt.datetime) -> str:
    # `${__from:date}` is ISO 8601 with milliseconds, in UTC.
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _sql_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def expand_sql(sql: str, values: dict[str, list[str]], definitions: dict[str, dict]) -> str:
    """A SQL datasource query as the database receives it.

    Multi-value and include-all variables become a quoted, comma-separated list (Grafana's
    default for SQL datasources); single-value variables go in as they are.
    """
    sql = TIME_FILTER.sub(
        lambda m: f"{m['column']} BETWEEN '{_rfc3339(TIME_FROM)}' AND '{_rfc3339(TIME_TO)}'", sql
    )
    sql = sql.replace("$__timeFrom()", f"'{_rfc3339(TIME_FROM)}'")
    sql = sql.replace("$__timeTo()", f"'{_rfc3339(TIME_TO)}'")

    def variable(match: re.Match) -> str:
        name = match["braced"] or match["plain"]
        fmt = match["format"]
        if name not in values:
            raise AssertionError(f"unknown variable or macro ${name} in:\n{sql}")
        chosen = values[name]
        definition = definitions[name]
        if fmt == "sqlstring" or (
            fmt is None and (definition.get("multi") or definition.get("includeAll"))
        ):
            return ",".join(_sql_quote(v) for v in chosen)
        if fmt in (None, "raw") and len(chosen) == 1:
            return chosen[0]
        raise AssertionError(f"format {fmt!r} of ${name} is not one the tests expand")

    expanded = VARIABLE.sub(variable, sql)
    assert "$" not in expanded, f"unexpanded macro left in:\n{expanded}"
    return expanded


def expand_url(url: str, values: dict[str, list[str]], definitions: dict[str, dict]) -> str:
    """An Infinity URL as Grafana sends it.

    `${__from:date}` is ISO 8601 with milliseconds; a multi-value variable is `{a,b}`; "All"
    with an `allValue` is that value; `:percentencode` URL-encodes the whole result.
    """
    url = url.replace("${__from:date}", _grafana_date(TIME_FROM))
    url = url.replace("${__to:date}", _grafana_date(TIME_TO))

    def variable(match: re.Match) -> str:
        name = match["braced"] or match["plain"]
        fmt = match["format"]
        if name not in values:
            raise AssertionError(f"unknown variable or macro ${name} in {url}")
        chosen = values[name]
        definition = definitions[name]
        if chosen == ["$__all"]:
            text = definition["allValue"]
        elif definition.get("multi") and len(chosen) != 1:
            text = "{" + ",".join(chosen) + "}"
        else:
            text = chosen[0] if chosen else ""
        if fmt == "percentencode":
            return quote(text, safe="")
        if fmt in (None, "raw"):
            return text
        raise AssertionError(f"format {fmt!r} of ${name} is not one the tests expand")

    expanded = VARIABLE.sub(variable, url)
    assert "$" not in expanded, f"unexpanded macro left in {expanded}"
    return expanded


def check_column_value(column: dict, value, where: str) -> None:
    """An Infinity column's value has the type the column declares."""
    kind = column["type"]
    if kind == "number":
        assert isinstance(value, int | float) and not isinstance(value, bool), where
    elif kind == "string":
        assert isinstance(value, str), where
    elif kind == "timestamp":
        assert isinstance(value, str), where
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        raise AssertionError(f"{where}: column type {kind} is not one the tests check")
