"""`/metrics`: request counts and latencies per endpoint, and per source the ETL figures.

Each app has its own registry (so tests start from zero). The ETL figures come from the status
view at scrape time, through the API's read-only role like everything else it serves.
"""

from __future__ import annotations

import datetime as dt
import time

import sqlalchemy.exc
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from starlette.requests import Request
from starlette.responses import Response

from api import queries

UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "hubcost_api_requests",
            "HTTP requests served, by route (not raw URL), method and status.",
            ["endpoint", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "hubcost_api_request_duration_seconds",
            "Time to answer a request, by route.",
            ["endpoint"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.database_up = Gauge(
            "hubcost_api_database_up",
            "1 when the last scrape could read the status view, else 0.",
            registry=r,
        )
        self.last_success = Gauge(
            "hubcost_etl_last_success_timestamp_seconds",
            "Unix time of the source's last successful chunk (absent before the first load).",
            ["source"],
            registry=r,
        )
        self.last_day_loaded = Gauge(
            "hubcost_etl_last_day_loaded_timestamp_seconds",
            "Unix time of the start of the last day the source loaded.",
            ["source"],
            registry=r,
        )
        self.rows_loaded = Gauge(
            "hubcost_etl_rows_loaded_24h",
            "Rows loaded by the source's successful chunks over the last 24 hours.",
            ["source"],
            registry=r,
        )
        self.source_requests = Gauge(
            "hubcost_etl_requests_24h",
            "Requests made to the source (Cost Explorer pages are billed) over the last 24 hours.",
            ["source"],
            registry=r,
        )
        self.failed_chunks = Gauge(
            "hubcost_etl_failed_chunks_24h",
            "The source's chunks that failed over the last 24 hours.",
            ["source"],
            registry=r,
        )
        self.running_chunks = Gauge(
            "hubcost_etl_running_chunks",
            "The source's chunks marked running (in flight, or left by a killed process).",
            ["source"],
            registry=r,
        )

        self.unmapped_service_cost = Gauge(
            "hubcost_etl_unmapped_service_cost_usd",
            "Attributable cost of a Cost Explorer service the component map does not know "
            "(counted as 'other'); extend service_component to map it.",
            ["service"],
            registry=r,
        )

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, method, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def set_status(self, rows) -> None:
        self.database_up.set(1)
        for row in rows:
            source = row.source
            self._set_optional(self.last_success, source, row.last_success_at)
            day = row.last_day_loaded
            self._set_optional(
                self.last_day_loaded,
                source,
                None if day is None else dt.datetime.combine(day, dt.time(), dt.UTC),
            )
            self.rows_loaded.labels(source).set(row.rows_loaded_24h)
            self.source_requests.labels(source).set(row.requests_24h)
            self.failed_chunks.labels(source).set(row.failed_chunks_24h)
            self.running_chunks.labels(source).set(row.running_chunks)

    def set_unmapped_services(self, rows) -> None:
        self.unmapped_service_cost.clear()
        for row in rows:
            self.unmapped_service_cost.labels(row.service).set(float(row.cost))

    @staticmethod
    def _set_optional(gauge: Gauge, source: str, value) -> None:
        if value is None:
            try:
                gauge.remove(source)
            except KeyError:
                pass
            return
        gauge.labels(source).set(value.timestamp())

    def render(self) -> bytes:
        return generate_latest(self.registry)


def metrics_endpoint(request: Request) -> Response:
    state = request.app.state.hubcost
    metrics: ApiMetrics = state.metrics
    try:
        with state.connect() as conn:
            metrics.set_status(queries.etl_status(conn))
            metrics.set_unmapped_services(queries.unmapped_services(conn))
    except sqlalchemy.exc.SQLAlchemyError:
        # The scrape still answers: the request figures matter most when the database is down.
        metrics.database_up.set(0)
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)


class RequestMetrics:
    """ASGI middleware counting every request by its route's path, with its latency."""

    def __init__(self, app, metrics: ApiMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_tracking(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or UNMATCHED
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.observe(endpoint, method, status, time.perf_counter() - started)
