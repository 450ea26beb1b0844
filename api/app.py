"""The Starlette application: routes, middleware, error handlers, and the engine's lifespan.

Nothing connects at import or at `create_app`: the engine (pool size and statement timeout
from the settings, every connection dropped to the read-only role) is made in the lifespan.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy.exc
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api import compression, endpoints, queries, streaming
from api.auth import BearerToken
from api.compression import GZip
from api.errors import EXCEPTION_HANDLERS, UnexpectedErrors
from api.http_cache import ResponseCache
from api.metrics import ApiMetrics, RequestMetrics, metrics_endpoint
from api.openapi import openapi_document
from api.ui.access import access_middleware
from api.ui.pages import ui_routes
from core import bootstrap, migrate
from core.settings import Settings

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class ApiState:
    """What the endpoints need, in one place on `app.state.hubcost`."""

    settings: Settings
    clock: Clock
    head_revision: str
    metrics: ApiMetrics
    engine: Engine | None = field(default=None)
    clusters_view: bool = field(default=False)
    # Whether the last list request found several clusters: the form the next one assumes.
    several: bool = field(default=False)
    response_cache: ResponseCache | None = field(default=None)
    versioned: bool = field(default=False)
    json_rows_daily: bool = field(default=False)
    # Answers larger than this are streamed, not held (api/streaming.py).
    stream_threshold: int = field(default=streaming.THRESHOLD)

    def today(self) -> dt.date:
        return self.clock().astimezone(dt.UTC).date()

    def connect(self):
        return self.engine.connect()

    def known_clusters(self, conn) -> list[str]:
        """The clusters of the `clusters` view; none on a schema older than the view (0007).

        The API serves only a schema at head (/health/ready), but an older one reads as the
        single cluster it holds, as before; once the view is seen it is not looked for again.
        """
        return queries.known_clusters(conn) if self.has_clusters_view(conn) else []

    def has_clusters_view(self, conn) -> bool:
        if not self.clusters_view:
            self.clusters_view = queries.has_view(conn, "clusters")
        return self.clusters_view

    def has_json_rows_daily(self, conn) -> bool:
        """Whether the bulk answers' days are rendered (0013); looked for until seen."""
        if not self.json_rows_daily:
            self.json_rows_daily = queries.has_view(conn, "json_rows_daily")
        return self.json_rows_daily

    def data_version(self, conn) -> int | None:
        """The data version answers are cached by; None on a schema before 0011."""
        if not self.versioned:
            self.versioned = queries.has_data_version(conn)
            if not self.versioned:
                return None
        return queries.data_version(conn)

    def freshness_headers(self, cluster: str | None = None) -> dict[str, str]:
        """The freshness header for answers that need the database for nothing else (a 422),
        of one cluster's sources under /clusters/{cluster}; absent when the database cannot
        tell (or the cluster is unknown)."""
        try:
            with self.connect() as conn:
                scope = None
                if cluster is not None:
                    if cluster not in self.known_clusters(conn):
                        return {}
                    scope = [cluster]
                return endpoints.freshness(queries.data_loaded_at(conn, scope))
        except sqlalchemy.exc.SQLAlchemyError:
            return {}


def create_app(
    settings: Settings,
    *,
    database_url: str,
    clock: Clock = utc_now,
    metrics: ApiMetrics | None = None,
) -> Starlette:
    state = ApiState(
        settings=settings,
        clock=clock,
        head_revision=migrate.head_revision(),
        metrics=metrics or ApiMetrics(),
        response_cache=ResponseCache(max_bytes=settings.response_cache_mb * 2**20),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app):
        state.engine = bootstrap.api_engine(settings, url=database_url)
        try:
            yield
        finally:
            state.engine.dispose()

    # Rendered once: the document is fixed for the app's life (29 operations, 81 kB).
    document = JSONResponse(openapi_document()).body

    def openapi(request: Request) -> Response:
        return Response(document, media_type="application/json")

    routes = [
        Route("/", endpoints.index, methods=["GET"]),
        Route("/health/ready", endpoints.ready, methods=["GET"]),
        *(
            Route(spec.path, endpoints.list_endpoint(spec), methods=["GET"])
            for spec in endpoints.ROUTED_ENDPOINTS
        ),
        *(
            Route(spec.cluster_path, endpoints.list_endpoint(spec, scoped=True), methods=["GET"])
            for spec in endpoints.LIST_ENDPOINTS
        ),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        *ui_routes(),
    ]
    middleware = [
        Middleware(RequestMetrics, metrics=state.metrics),
        Middleware(UnexpectedErrors),
        # Only when the client asks (Grafana does): BENCHMARKS.md, figure 9b.
        Middleware(GZip, minimum_size=compression.MINIMUM_BYTES, compresslevel=compression.LEVEL),
        *access_middleware(settings),
    ]
    if settings.api_token is not None or settings.jupyterhub is not None:
        # As a JupyterHub service without API_TOKEN the JSON API is closed: every hub user can
        # reach it through the hub's proxy, and it would show them everyone's costs.
        token = settings.api_token.reveal() if settings.api_token is not None else None
        middleware.append(Middleware(BearerToken, token=token))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.hubcost = state
    return app
