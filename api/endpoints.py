"""The endpoints: parameters → query → rows → JSON or CSV.

`LIST_ENDPOINTS` declares each list endpoint once (path, parameters, query, row); the routes
and the OpenAPI document are both built from it, so they cannot disagree. Each one is served
twice (docs/api.md §9): at its path, for every cluster (with a `cluster` filter, and a `cluster`
key on each row when there are several), and under `/clusters/{cluster}`, as the
single-cluster contract scoped to that cluster. `ROOT_ENDPOINTS` are served at their path
only: `CLUSTER_NAMES` lists the clusters; `BUDGETS` and `COST_ANOMALIES`, whose rows always carry
their cluster, answer for every cluster (docs/api.md §9.4).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import sqlalchemy.exc
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from api import compression, http_cache, queries, streaming
from api.errors import ApiError, DatabaseUnavailable, is_unavailable
from api.params import Listing, Reader

FRESHNESS_HEADER = "X-Data-Loaded-At"
CLUSTER_PREFIX = "/clusters/{cluster}"
log = logging.getLogger("hubcost.api")


@dataclass(frozen=True)
class ListEndpoint:
    path: str
    summary: str
    description: str
    build: Callable[[Listing], queries.Select]
    row_name: str
    columns: tuple[str, ...]
    scalar: bool = False
    dates: bool = True
    # query parameter → the Listing field it fills
    filters: dict[str, str] = field(default_factory=dict)
    limit: bool = False
    order: str = ""
    # Reads per-cluster data: takes the `cluster` filter and is served under CLUSTER_PREFIX.
    clustered: bool = True
    # Served at its path only, but its rows carry `cluster` and it takes the `cluster` filter.
    cluster_filter: bool = False
    # Takes one day, `as_of` (default today), instead of a range.
    as_of: bool = False
    # Rows per user: its JSON is read row by row and streamed when large (docs/api.md §3.3);
    # the others' is built whole by PostgreSQL in one statement.
    streamed: bool = False

    @property
    def cluster_path(self) -> str:
        return CLUSTER_PREFIX + self.path

    @property
    def takes_cluster(self) -> bool:
        return self.clustered or self.cluster_filter


class UnknownCluster(ApiError):
    status_code = 404

    def __init__(self, name: str):
        super().__init__(f"unknown cluster {name!r}: /cluster-names lists the clusters")


LIST_ENDPOINTS = (
    ListEndpoint(
        "/hub-names",
        "Hub names",
        "Every hub with attributable cost or usage in the range (`support` holds untagged cost).",
        queries.hub_names,
        "HubName",
        ("hub",),
        scalar=True,
        order="by name",
    ),
    ListEndpoint(
        "/component-names",
        "Component names",
        "The components attributed to users, in canonical order.",
        lambda listing: queries.component_names(),
        "ComponentName",
        ("component",),
        scalar=True,
        dates=False,
        order="canonical component order",
    ),
    ListEndpoint(
        "/total-costs",
        "Total costs",
        "Per day, the whole account's usage cost (`account`) and the part attributable to the "
        "cluster (`attributable`), rounded to cents.",
        queries.total_costs,
        "TotalCost",
        ("date", "cost", "name"),
        order="date, name",
    ),
    ListEndpoint(
        "/total-costs-per-hub",
        "Total costs per hub",
        "Per day and hub, the attributable cost, rounded to cents.",
        queries.total_costs_per_hub,
        "HubCost",
        ("date", "cost", "name"),
        order="date, name",
    ),
    ListEndpoint(
        "/total-costs-per-component",
        "Total costs per component",
        "Per day and component, the cost of all hubs (or of the `hub` filter's hubs; "
        "`hub=support` is the untagged cost), rounded to cents after summing.",
        queries.total_costs_per_component,
        "ComponentCost",
        ("date", "cost", "component"),
        filters={"hub": "hubs", "component": "components"},
        order="date, canonical component order",
    ),
    ListEndpoint(
        "/costs-per-user",
        "Costs per user",
        "Per day, hub, component and user, the user's share of the component cost (compute and "
        "home storage), rounded to 4 decimals; one row per group of the user that day. `limit` "
        "keeps the N users with the highest total cost over the filtered rows.",
        queries.costs_per_user,
        "UserCost",
        ("date", "hub", "component", "user", "value", "usergroup"),
        filters={
            "hub": "hubs",
            "component": "components",
            "user": "users",
            "usergroup": "usergroups",
        },
        limit=True,
        order="date, hub, component, value descending, user, usergroup",
        streamed=True,
    ),
    ListEndpoint(
        "/total-usage",
        "Total usage",
        "Per day, user, hub and component, the user's share (0 to 1, unrounded) of the hub's "
        "usage.",
        queries.total_usage,
        "UsageShare",
        ("date", "user", "hub", "component", "value"),
        filters={"hub": "hubs", "component": "components", "user": "users"},
        order="date, component, hub, user",
        streamed=True,
    ),
    ListEndpoint(
        "/total-costs-per-group",
        "Total costs per group",
        "Per day and group, the rounded sum of the group members' unrounded costs (a user in "
        "several groups counts in each).",
        queries.total_costs_per_group,
        "GroupCost",
        ("date", "usergroup", "cost"),
        order="date, usergroup",
    ),
    ListEndpoint(
        "/user-groups",
        "User groups",
        "Each group-snapshot row (as the exporter wrote it, `none` and `multiple` included) in "
        "force on some day of the range.",
        queries.user_groups,
        "UserGroup",
        ("hub", "username", "username_escaped", "usergroup"),
        filters={"hub": "hubs", "username": "users", "usergroup": "usergroups"},
        order="hub, username, usergroup",
        streamed=True,
    ),
    ListEndpoint(
        "/users-with-multiple-groups",
        "Users with multiple groups",
        "One row per real group of each user with more than one, in each hub's latest snapshot.",
        queries.users_with_multiple_groups,
        "UserWithMultipleGroups",
        ("username", "hub", "usergroup"),
        dates=False,
        filters={"hub_name": "hubs", "user_name": "users"},
        order="hub, username, usergroup",
    ),
    ListEndpoint(
        "/users-with-no-groups",
        "Users with no groups",
        "Users whose only row in their hub's latest snapshot is `none`.",
        queries.users_with_no_groups,
        "UserWithNoGroups",
        ("username", "hub"),
        dates=False,
        filters={"hub_name": "hubs", "user_name": "users"},
        order="hub, username",
    ),
)
# Not part of the single-cluster contract: served at their paths only (docs/api.md §9.4).
CLUSTER_NAMES = ListEndpoint(
    "/cluster-names",
    "Cluster names",
    "Every cluster the warehouse holds data of (or whose first load is awaited), by name.",
    lambda listing: queries.cluster_names(),
    "ClusterName",
    ("cluster",),
    scalar=True,
    dates=False,
    order="name",
    clustered=False,
)
BUDGETS = ListEndpoint(
    "/budgets",
    "Budgets",
    "Every budget's status on `as_of`: the period containing it, the amount, the spend "
    "through the last loaded day not after `as_of`, the forecast at the period end (spent + "
    "days left x the mean daily cost of the last 7 loaded days) and the ratios to the amount "
    "(docs/budgets.md §2). A group budget counts a user in several groups in each.",
    queries.budgets,
    "Budget",
    queries.BUDGET_KEYS,
    dates=False,
    as_of=True,
    order="name",
    clustered=False,
)
COST_ANOMALIES = ListEndpoint(
    "/cost-anomalies",
    "Cost anomalies",
    "The days on which a hub's or a user's cost rose far above its own baseline (the median "
    "of its previous 28 days), as the ETL detected them (docs/budgets.md §3).",
    queries.cost_anomalies,
    "CostAnomaly",
    queries.ANOMALY_KEYS,
    filters={"hub": "hubs", "user": "users"},
    order="date descending, score descending, cluster, scope, hub, user",
    clustered=False,
    cluster_filter=True,
)
ROOT_ENDPOINTS = (CLUSTER_NAMES, BUDGETS, COST_ANOMALIES)
ROUTED_ENDPOINTS = (*LIST_ENDPOINTS, *ROOT_ENDPOINTS)


def list_endpoint(spec: ListEndpoint, *, scoped: bool = False):
    """The endpoint at `spec.path` (every cluster) or, `scoped`, at `spec.cluster_path`."""

    def endpoint(request: Request) -> Response:
        state = request.app.state.hubcost
        reader = Reader(request.query_params)
        fields: dict = {}
        if spec.dates:
            fields["days"] = reader.days(state.today(), state.settings.max_range_days)
        if spec.as_of:
            fields["as_of"] = reader.as_of(state.today())
        for param, name in spec.filters.items():
            fields[name] = reader.names(param)
        if spec.limit:
            fields["limit"] = reader.limit()
        wanted_clusters = reader.names("cluster") if spec.takes_cluster and not scoped else None
        response_format = reader.response_format(request.headers.get("accept", ""))
        wanted_components = fields.get("components")
        if wanted_components is None and wanted_clusters is None:
            # Nothing to check against the database: a bad request never needs a connection.
            reader.done()
        cluster = request.path_params["cluster"] if scoped else None
        if cluster is not None and "\x00" in cluster:
            raise UnknownCluster(cluster)  # no cluster's name, and no text PostgreSQL stores

        def check(known: list[str]) -> None:
            if wanted_clusters is not None:
                fields["clusters"] = reader.check_clusters(wanted_clusters, known)
            reader.done()
            if cluster is not None and cluster not in known:
                raise UnknownCluster(cluster)

        def answer(conn) -> tuple[Generator[bytes], str, dict[str, str]]:
            """The body's chunks, its media type and the freshness header, from the database.

            The chunks are read only when asked for; an error reading them is the database's.
            """
            if wanted_components is not None:
                fields["components"] = reader.check_components(
                    wanted_components, queries.known_components(conn)
                )
            if reader.problems:
                # Every problem at once, unknown clusters included.
                check(state.known_clusters(conn))
            if wanted_clusters is not None:
                fields["clusters"] = wanted_clusters
            scope = None if cluster is None else [cluster]
            if scope is not None:
                fields["clusters"] = scope
            if response_format == "csv" or spec.streamed:
                known = state.known_clusters(conn) if spec.takes_cluster else []
                check(known)
                by_cluster = spec.clustered and cluster is None and len(known) > 1
                listing = Listing(**fields, by_cluster=by_cluster)
                select = dataclasses.replace(spec.build(listing), scope=scope)
                headers = freshness(queries.data_loaded_at(conn, select.scope))
                if response_format == "csv":
                    return queries.stream_csv(conn, select), "text/csv", headers
                if select.rendered is not None and state.has_json_rows_daily(conn):
                    return queries.stream_rendered_json(conn, select), "application/json", headers
                return queries.stream_json(conn, select), "application/json", headers
            # One statement reads the rows and the clusters they were read with: it assumes
            # the form (one cluster or several) the last request found, and is run again in
            # the other form on the rare request that finds the number of clusters changed.
            several = state.several
            with_clusters = spec.takes_cluster and state.has_clusters_view(conn)
            while True:
                by_cluster = spec.clustered and cluster is None and several
                listing = Listing(**fields, by_cluster=by_cluster)
                select = dataclasses.replace(
                    spec.build(listing), scope=scope, with_clusters=with_clusters
                )
                body, loaded_at, known = queries.run_json(conn, select)
                check(known or [])
                one_form = not spec.clustered or not with_clusters or cluster is not None
                if one_form or (len(known) > 1) == several:
                    break
                several = state.several = len(known) > 1
            return streaming.whole(body.encode()), "application/json", freshness(loaded_at)

        def read(conn, held: contextlib.ExitStack, validators: dict[str, str]):
            """The answer whole (`Cached`), or, larger than the threshold, its stream, which
            takes the connection along (`held`)."""
            chunks, media_type, headers = answer(conn)
            held.callback(chunks.close)  # before the connection is closed
            head, whole = streaming.gather(chunks, state.stream_threshold)
            if whole:
                return http_cache.Cached(b"".join(head), media_type, headers)
            return streaming.DatabaseStream(
                head, chunks, held.pop_all(), media_type=media_type, headers=headers | validators
            )

        with contextlib.ExitStack() as held:
            conn = held.enter_context(state.connect())
            # A request with a problem is answered (refused) by `answer`, never from the cache.
            version = None if reader.problems else state.data_version(conn)
            if version is None:
                cached = read(conn, held, {})
                if isinstance(cached, streaming.DatabaseStream):
                    return cached
                return Response(cached.body, media_type=cached.media_type, headers=cached.headers)
            # The resolved parameters, not the raw query: `today` and `Accept` are in them.
            key = (spec.path, cluster, response_format, repr(fields), repr(wanted_clusters))
            tag = http_cache.etag(version, state.head_revision, key)
            validators = http_cache.validator_headers(tag)
            cached = state.response_cache.get(version, key)
            if http_cache.matches(request.headers.get("if-none-match"), tag):
                known = cached.headers if cached is not None else {}
                return Response(status_code=304, headers={**known, **validators})
            if cached is None:
                cached = read(conn, held, validators)
                if isinstance(cached, streaming.DatabaseStream):
                    return cached  # never cached: larger than the cache keeps
                state.response_cache.put(version, key, cached)
            elif (
                compression.wants_gzip(request.headers.get("accept-encoding"))
                and len(cached.body) >= compression.MINIMUM_BYTES
            ):
                # Asked again: answered compressed from the cache, compressed once.
                cached = http_cache.compressed(cached)
                state.response_cache.put(version, key, cached)
                headers = http_cache.gzip_headers(cached, validators)
                return Response(cached.gzipped, media_type=cached.media_type, headers=headers)
        return Response(
            cached.body, media_type=cached.media_type, headers={**cached.headers, **validators}
        )

    endpoint.__name__ = ("Cluster" if scoped else "") + spec.row_name
    return endpoint


def freshness(loaded_at: dt.datetime | None) -> dict[str, str]:
    if loaded_at is None:
        return {}
    return {FRESHNESS_HEADER: iso_utc(loaded_at)}


def iso_utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def index(request: Request) -> Response:
    if "text/html" in request.headers.get("accept", ""):
        # A browser is sent to the pages (docs/pages.md); API clients get this JSON index.
        root = request.scope.get("root_path", "").rstrip("/")
        return RedirectResponse(f"{root}/ui/", status_code=303, headers={"Vary": "Accept"})
    state = request.app.state.hubcost
    body = {
        "message": "hubcost: what each JupyterHub hub, component, group and user cost",
        # The demo source must never pass for a real cluster's numbers.
        "data_source": "demo (synthetic data)"
        if state.settings.demo
        else "cost explorer/prometheus",
        "openapi": "/openapi.json",
        "health": "/health/ready",
        "metrics": "/metrics",
        "endpoints": [spec.path for spec in ROUTED_ENDPOINTS],
    }
    headers: dict[str, str] = {}
    clusters: list[str] = []
    try:
        with state.connect() as conn:
            headers = freshness(queries.data_loaded_at(conn))
            clusters = state.known_clusters(conn)
    except sqlalchemy.exc.SQLAlchemyError:
        pass  # the index answers without the database; /health/ready says what is wrong
    if len(clusters) > 1:
        body["clusters"] = clusters
        body["cluster_endpoints"] = [spec.cluster_path for spec in LIST_ENDPOINTS]
    return JSONResponse(body, headers=headers)


def ready(request: Request) -> Response:
    """200 when the database answers and its schema is the migrations' head; else 503."""
    state = request.app.state.hubcost
    try:
        with state.connect() as conn:
            statuses = queries.etl_status(conn)
    except sqlalchemy.exc.SQLAlchemyError as exc:
        if is_unavailable(exc):
            raise DatabaseUnavailable() from exc
        # No status view, or a role that may not read it: not migrated, or misconfigured.
        log.warning("not ready: %s", type(exc).__name__, exc_info=exc)
        raise DatabaseUnavailable(
            "database not ready: schema not migrated or API_DB_ROLE cannot read it"
        ) from exc
    versions = {row.schema_version for row in statuses}
    if versions != {state.head_revision}:
        found = ", ".join(sorted(str(v) for v in versions)) or "none"
        raise DatabaseUnavailable(
            f"schema at revision {found}, expected {state.head_revision}: run hubcost migrate"
        )
    successes = [row.last_success_at for row in statuses if row.last_success_at is not None]
    loaded_at = max(successes, default=None)
    # With several clusters, each source's status is per cluster: `<cluster>/<source>`.
    several = len({row.cluster for row in statuses}) > 1
    sources = {}
    for row in statuses:
        status = {
            "last_success_at": iso_utc(row.last_success_at) if row.last_success_at else None,
            "last_day_loaded": row.last_day_loaded.isoformat() if row.last_day_loaded else None,
            "failed_chunks_24h": row.failed_chunks_24h,
            "running_chunks": row.running_chunks,
        }
        if several:
            status["cluster"] = row.cluster
            sources[f"{row.cluster}/{row.source}"] = status
        else:
            sources[row.source] = status
    return JSONResponse(
        {
            "status": "ready",
            "schema_version": state.head_revision,
            "data_loaded_at": iso_utc(loaded_at) if loaded_at else None,
            "sources": sources,
        },
        headers=freshness(loaded_at),
    )
