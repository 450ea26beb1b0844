"""`/metrics`: request counts and latencies per endpoint, per source the ETL figures, and the
budgets, anomalies and webhook delivery figures (api/budget_metrics.py).

Each app has its own registry (so tests start from zero). The ETL figures come from the status
view at scrape time, through the API's read-only role like everything else it serves; each
series of a source carries its `cluster` (empty before any cluster is known).
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
from api.budget_metrics import BudgetFigures

UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
SOURCE_LABELS = ("source", "cluster")


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._status_labels: set[tuple[str, ...]] = set()
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
            SOURCE_LABELS,
            registry=r,
        )
        self.last_day_loaded = Gauge(
            "hubcost_etl_last_day_loaded_timestamp_seconds",
            "Unix time of the start of the last day the source loaded.",
            SOURCE_LABELS,
            registry=r,
        )
        self.rows_loaded = Gauge(
            "hubcost_etl_rows_loaded_24h",
            "Rows loaded by the source's successful chunks over the last 24 hours.",
            SOURCE_LABELS,
            registry=r,
        )
        self.source_requests = Gauge(
            "hubcost_etl_requests_24h",
            "Requests made to the source (Cost Explorer pages are billed) over the last 24 hours.",
            SOURCE_LABELS,
            registry=r,
        )
        self.failed_chunks = Gauge(
            "hubcost_etl_failed_chunks_24h",
            "The source's chunks that failed over the last 24 hours.",
            SOURCE_LABELS,
            registry=r,
        )
        self.running_chunks = Gauge(
            "hubcost_etl_running_chunks",
            "The source's chunks marked running (in flight, or left by a killed process).",
            SOURCE_LABELS,
            registry=r,
        )

        self.unmapped_service_cost = Gauge(
            "hubcost_etl_unmapped_service_cost_usd",
            "Attributable cost of a Cost Explorer service the component map does not know "
            "(counted as 'other'); extend service_component to map it.",
            ["service", "cluster"],
            registry=r,
        )
        self.budgets = BudgetFigures()
        r.register(self.budgets)

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, method, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def set_status(self, rows) -> None:
        self.database_up.set(1)
        seen = set()
        for row in rows:
            labels = (row.source, row.cluster or "")
            seen.add(labels)
            self._set_time(self.last_success, labels, row.last_success_at)
            day = row.last_day_loaded
            self._set_time(
                self.last_day_loaded,
                labels,
                None if day is None else dt.datetime.combine(day, dt.time(), dt.UTC),
            )
            self.rows_loaded.labels(*labels).set(row.rows_loaded_24h)
            self.source_requests.labels(*labels).set(row.requests_24h)
            self.failed_chunks.labels(*labels).set(row.failed_chunks_24h)
            self.running_chunks.labels(*labels).set(row.running_chunks)
        # A (source, cluster) the status view no longer has (the cluster-less rows once a
        # cluster is known) loses its series.
        for labels in self._status_labels - seen:
            for gauge in self._status_gauges():
                self._remove(gauge, labels)
        self._status_labels = seen

    def _status_gauges(self) -> tuple[Gauge, ...]:
        return (
            self.last_success,
            self.last_day_loaded,
            self.rows_loaded,
            self.source_requests,
            self.failed_chunks,
            self.running_chunks,
        )

    @classmethod
    def _set_time(cls, gauge: Gauge, labels: tuple[str, ...], moment) -> None:
        if moment is None:
            cls._remove(gauge, labels)
        else:
            gauge.labels(*labels).set(moment.timestamp())

    @staticmethod
    def _remove(gauge: Gauge, labels: tuple[str, ...]) -> None:
        try:
            gauge.remove(*labels)
        except KeyError:
            pass

    def set_unmapped_services(self, rows) -> None:
        self.unmapped_service_cost.clear()
        for row in rows:
            self.unmapped_service_cost.labels(row.service, row.cluster).set(float(row.cost))

    def render(self) -> bytes:
        return generate_latest(self.registry)


def metrics_endpoint(request: Request) -> Response:
    state = request.app.state.hubcost
    metrics: ApiMetrics = state.metrics
    try:
        with state.connect() as conn:
            metrics.set_status(queries.etl_status(conn))
            metrics.set_unmapped_services(queries.unmapped_services(conn))
            metrics.budgets.read(conn, state.today())
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
