"""The OpenAPI 3 document, built from the same endpoint table as the routes.

Parameters carry real types (dates, integers, arrays of names) so that generated tests send
realistic values; every row has its schema under components/schemas. Each endpoint of
per-cluster data is documented twice (docs/api.md §9): at its path, where rows may carry a last
key `cluster`, and under /clusters/{cluster}, the single-cluster contract.
"""

from __future__ import annotations

from api.endpoints import LIST_ENDPOINTS, ROUTED_ENDPOINTS, ListEndpoint
from core.schema import BUDGET_PERIODS

DAY = {
    "anyOf": [
        {"type": "string", "format": "date"},
        {"type": "string", "format": "date-time"},
        {"type": "string", "pattern": "^[0-9]{1,15}$", "description": "epoch milliseconds"},
    ]
}
DATE_DESCRIPTION = {
    "from": "First day (inclusive). YYYY-MM-DD, an ISO 8601 date-time (`Z` or an offset; none "
    "means UTC) or epoch milliseconds; each becomes a UTC calendar day. Default: `to` - 30 days.",
    "to": "Last day (inclusive), same forms as `from`. Default and upper bound: today (UTC).",
    "as_of": "The day of the status, in the forms of `from`. Default and upper bound: today (UTC).",
}
FILTER_DESCRIPTION = (
    "Any of these names (exact match). Repeat the parameter or use Grafana's `{a,b}`; absent, "
    "empty or `all` means no filter."
)
CLUSTER_FILTER_DESCRIPTION = (
    "Only these clusters (names from /cluster-names). Repeat the parameter or use Grafana's "
    "`{a,b}`; absent, empty or `all` means every cluster. An unknown name is a 422."
)
CLUSTER_KEY = {
    "type": "string",
    "description": "The row's cluster: present, as the last key, only at the paths without "
    "/clusters/{cluster} when the warehouse holds several clusters.",
}
CLUSTER_PATH_PARAMETER = {
    "name": "cluster",
    "in": "path",
    "required": True,
    "description": "A cluster listed by /cluster-names; the answer is that cluster's alone, "
    "exactly as a single-cluster warehouse answers it.",
    "schema": {"type": "string"},
}
COLUMN_SCHEMAS = {
    "date": {"type": "string", "format": "date"},
    "cost": {"type": "number", "description": "USD, rounded half up to 2 decimals"},
}


def _nullable(type_: str, description: str, **schema) -> dict:
    return {"type": [type_, "null"], "description": description, **schema}


USD = {"type": "number", "description": "USD, rounded half up to 2 decimals"}
# Per row schema, the columns whose schema differs from COLUMN_SCHEMAS' (or a string's).
ROW_COLUMN_SCHEMAS = {
    "UserCost": {
        "value": {"type": "number", "description": "USD, rounded half up to 4 decimals"},
    },
    "UsageShare": {
        "value": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "description": "the user's share of the hub's usage, unrounded",
        },
    },
    "Budget": {
        "cluster": _nullable("string", "the scope's cluster; null: every cluster"),
        "hub": _nullable("string", "the scope's hub; null: any hub"),
        "usergroup": _nullable("string", "the scope's user group; null: any group"),
        "user": _nullable("string", "the scope's user; null: any user"),
        "period": {"type": "string", "enum": list(BUDGET_PERIODS)},
        "period_start": {"type": "string", "format": "date"},
        "period_end": _nullable("string", "null for a `total` budget", format="date"),
        "amount": USD,
        "spent": {**USD, "description": "USD through `last_day`, rounded half up to 2 decimals"},
        "daily_rate": _nullable(
            "number", "mean daily cost of the last 7 loaded days, USD to 2 decimals"
        ),
        "forecast": _nullable("number", "USD at the period end; null for a `total` budget"),
        "spent_ratio": {"type": "number", "description": "spent / amount, to 4 decimals"},
        "forecast_ratio": _nullable("number", "forecast / amount, to 4 decimals"),
        "amount_reached_on": _nullable(
            "string", "the day spend reached (or is forecast to reach) the amount", format="date"
        ),
        "last_day": _nullable(
            "string", "the last loaded day not after as_of; null before any data", format="date"
        ),
        "alert_at": {
            "type": "array",
            "items": {"type": "integer", "minimum": 1, "maximum": 1000},
            "description": "thresholds in percent of the amount",
        },
    },
    "CostAnomaly": {
        "cluster": {"type": "string"},
        "scope": {"type": "string", "enum": ["hub", "user"]},
        "user": _nullable("string", "the user; null for a hub's anomaly"),
        "baseline": {**USD, "description": "median of the previous 28 days' costs, USD"},
        "mad": {**USD, "description": "median absolute deviation around the baseline, USD"},
        "score": {"type": "number", "description": "(cost - baseline) / (1.4826 x mad)"},
        "history_days": {"type": "integer", "minimum": 7, "maximum": 28},
    },
}
ERROR = {
    "type": "object",
    "required": ["detail"],
    "properties": {"detail": {"type": "string"}},
}
VALIDATION_ERROR = {
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["loc", "msg", "type"],
                "properties": {
                    "loc": {"type": "array", "items": {"type": "string"}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        }
    },
}


def _error(description: str, schema: str = "Error") -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


COMMON_ERRORS = {
    "401": _error("API_TOKEN is set and the bearer token is missing or wrong"),
    "500": _error("Unexpected error (generic message; details are in the server's log)"),
    "503": _error("The database is unavailable or timed out"),
}


def _row_schema(spec: ListEndpoint) -> dict:
    if spec.scalar:
        return {"type": "string"}
    properties = {}
    special = ROW_COLUMN_SCHEMAS.get(spec.row_name, {})
    for column in spec.columns:
        properties[column] = special.get(column) or COLUMN_SCHEMAS.get(column, {"type": "string"})
    schema = {
        "type": "object",
        "required": list(spec.columns),
        "additionalProperties": False,
        "properties": properties,
    }
    if spec.clustered:
        schema["patternProperties"] = {"^cluster$": CLUSTER_KEY}
    return schema


def _parameters(spec: ListEndpoint, *, scoped: bool) -> list[dict]:
    parameters = [CLUSTER_PATH_PARAMETER] if scoped else []
    dates = ["from", "to"] if spec.dates else []
    if spec.as_of:
        dates.append("as_of")
    for name in dates:
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": DATE_DESCRIPTION[name],
                "schema": DAY,
            }
        )
    for name in spec.filters:
        parameters.append(
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": FILTER_DESCRIPTION,
                "style": "form",
                "explode": True,
                "schema": {"type": "array", "items": {"type": "string"}},
            }
        )
    if spec.takes_cluster and not scoped:
        parameters.append(
            {
                "name": "cluster",
                "in": "query",
                "required": False,
                "description": CLUSTER_FILTER_DESCRIPTION,
                "style": "form",
                "explode": True,
                "schema": {"type": "array", "items": {"type": "string"}},
            }
        )
    if spec.limit:
        parameters.append(
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "description": "Keep the N users with the highest total cost over the filtered "
                "rows (ties: by username); with several clusters, the N of each cluster. "
                "Absent, empty or `all`: every user.",
                "schema": {"type": "integer", "minimum": 1},
            }
        )
    parameters.append(
        {
            "name": "format",
            "in": "query",
            "required": False,
            "description": "`csv` for the same rows as CSV (as does `Accept: text/csv`).",
            "schema": {"type": "string", "enum": ["json", "csv"]},
        }
    )
    return parameters


def _list_operation(spec: ListEndpoint, *, scoped: bool = False) -> dict:
    if scoped:
        rows = (
            f"The cluster's rows ordered by {spec.order}; `[]` when nothing matches. The "
            "X-Data-Loaded-At header is the time of the cluster's last successful load."
        )
    elif spec.clustered and spec.scalar:
        rows = (
            f"Names ordered by {spec.order}, each once whatever the clusters that have it; "
            "`[]` when nothing matches. The X-Data-Loaded-At header is the time of the last "
            "successful load."
        )
    elif spec.clustered:
        rows = (
            f"Rows ordered by {spec.order}, then by cluster; `[]` when nothing matches. With "
            "several clusters every object row ends with its `cluster`. The X-Data-Loaded-At "
            "header is the time of the last successful load."
        )
    else:
        rows = (
            f"Ordered by {spec.order}; `[]` when nothing matches. The X-Data-Loaded-At header "
            "is the time of the last successful load."
        )
    responses = {
        "200": {
            "description": rows,
            "headers": {"X-Data-Loaded-At": {"schema": {"type": "string", "format": "date-time"}}},
            "content": {
                "application/json": {
                    "schema": {
                        "type": "array",
                        "items": {"$ref": f"#/components/schemas/{spec.row_name}"},
                    }
                },
                "text/csv": {"schema": {"type": "string"}},
            },
        },
        "422": _error("Invalid parameters, one item per problem", "ValidationError"),
        **COMMON_ERRORS,
    }
    operation_id = spec.path.strip("/").replace("-", "_")
    summary, description = spec.summary, spec.description
    if scoped:
        responses["404"] = _error("No cluster of that name (after the parameters are checked)")
        operation_id = f"cluster_{operation_id}"
        summary = f"{summary} of one cluster"
        description = f"{description} Only the cluster's rows, as a single-cluster warehouse."
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "description": description,
            "parameters": _parameters(spec, scoped=scoped),
            "responses": responses,
        }
    }


def _plain(summary: str, description: str, schema: dict, media: str = "application/json"):
    return {
        "get": {
            "summary": summary,
            "description": description,
            "responses": {
                "200": {"description": "OK", "content": {media: {"schema": schema}}},
                **COMMON_ERRORS,
            },
        }
    }


def openapi_document() -> dict:
    paths = {
        "/": _plain(
            "Index",
            "A message with links to the endpoints and this document.",
            {
                "type": "object",
                "required": ["message"],
                "properties": {
                    "message": {"type": "string"},
                    "endpoints": {"type": "array", "items": {"type": "string"}},
                    "clusters": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "With several clusters only: their names.",
                    },
                    "cluster_endpoints": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "With several clusters only: the paths of one cluster.",
                    },
                },
            },
        ),
        "/health/ready": _plain(
            "Ready",
            "200 when the database answers and its schema is at the migrations' head, 503 "
            "otherwise. Never needs the bearer token.",
            {"$ref": "#/components/schemas/Ready"},
        ),
    }
    for spec in ROUTED_ENDPOINTS:
        paths[spec.path] = _list_operation(spec)
    for spec in LIST_ENDPOINTS:
        paths[spec.cluster_path] = _list_operation(spec, scoped=True)
    paths["/openapi.json"] = _plain("OpenAPI", "This document.", {"type": "object"})
    paths["/metrics"] = _plain(
        "Metrics",
        "Prometheus text format: requests and latencies per endpoint; per source and cluster, "
        "the last successful load, rows loaded, requests made and failed chunks (last 24 "
        "hours).",
        {"type": "string"},
        media="text/plain",
    )
    paths["/health/ready"]["get"]["security"] = []
    schemas = {spec.row_name: _row_schema(spec) for spec in ROUTED_ENDPOINTS}
    source = {
        "type": "object",
        "properties": {
            "last_success_at": {"type": ["string", "null"], "format": "date-time"},
            "last_day_loaded": {"type": ["string", "null"], "format": "date"},
            "failed_chunks_24h": {"type": "integer"},
            "running_chunks": {"type": "integer"},
            "cluster": {
                "type": "string",
                "description": "With several clusters only; the key is then `<cluster>/<source>`.",
            },
        },
    }
    schemas["Ready"] = {
        "type": "object",
        "required": ["status", "schema_version", "data_loaded_at", "sources"],
        "properties": {
            "status": {"type": "string", "enum": ["ready"]},
            "schema_version": {"type": "string"},
            "data_loaded_at": {"type": ["string", "null"], "format": "date-time"},
            "sources": {"type": "object", "additionalProperties": source},
        },
    }
    schemas["Error"] = ERROR
    schemas["ValidationError"] = VALIDATION_ERROR
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hubcost",
            "version": "1",
            "description": "What each JupyterHub hub, component, group and user cost, read from "
            "the attribution views. Every number comes from the database; no request calls AWS "
            "or Prometheus. Every endpoint of per-cluster data is also served under "
            "/clusters/{cluster} as one cluster's single-cluster answer; at the other paths, "
            "a warehouse of several clusters answers for all of them, each row ending with its "
            "`cluster` (docs/api.md §9).",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{}, {"bearer": []}],
    }
