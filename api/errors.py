"""Exceptions that carry their HTTP status, and the handlers that give every error one shape.

422: `{"detail": [{"loc": ["query", name], "msg": ..., "type": ...}, ...]}`, one item per
problem. Every other status: `{"detail": "message"}`. A 500 never shows SQL, a traceback or a
source's text; the traceback goes to the log instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg
import sqlalchemy.exc
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

log = logging.getLogger("hubcost.api")

UNEXPECTED_ERROR_BODY = b'{"detail":"internal server error"}'
UNAUTHORIZED_BODY = b'{"detail":"missing or wrong bearer token"}'


@dataclass(frozen=True)
class Problem:
    """One bad query parameter: where, what is wrong, and a stable machine-readable type."""

    name: str
    msg: str
    type: str

    def as_json(self) -> dict:
        return {"loc": ["query", self.name], "msg": self.msg, "type": self.type}


class ApiError(Exception):
    status_code = 500

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.headers = headers


class InvalidParameters(ApiError):
    """Every problem found in a request's parameters, reported together."""

    status_code = 422

    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(f"{p.name}: {p.msg}" for p in problems))
        self.problems = problems


class DatabaseUnavailable(ApiError):
    status_code = 503

    def __init__(self, detail: str = "database unavailable"):
        super().__init__(detail)


def error_response(status_code: int, detail, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"detail": detail}, status_code=status_code, headers=headers)


def api_error(request: Request, exc: ApiError) -> Response:
    if isinstance(exc, InvalidParameters):
        # A 422 is a JSON answer from an endpoint: it tells how fresh the data is too.
        state = getattr(request.app.state, "hubcost", None)
        cluster = request.path_params.get("cluster")
        headers = state.freshness_headers(cluster) if state is not None else None
        return error_response(422, [p.as_json() for p in exc.problems], headers)
    return error_response(exc.status_code, exc.detail, exc.headers)


def http_error(request: Request, exc: HTTPException) -> Response:
    # Starlette's own 404/405 (and anything raising HTTPException): same shape as ours.
    return error_response(exc.status_code, exc.detail, exc.headers)


def database_error(request: Request, exc: Exception) -> Response:
    """Unreachable server, pool exhausted, statement timeout: the database, not the request."""
    if is_unavailable(exc):
        log.warning("database unavailable for %s: %s", request.url.path, type(exc).__name__)
        return error_response(503, "database unavailable")
    log.error("database error serving %s", request.url.path, exc_info=exc)
    return Response(UNEXPECTED_ERROR_BODY, status_code=500, media_type="application/json")


def is_unavailable(exc: Exception) -> bool:
    # psycopg's own errors reach here from COPY (CSV answers), which runs on the driver's cursor.
    if isinstance(
        exc,
        sqlalchemy.exc.TimeoutError | sqlalchemy.exc.OperationalError | psycopg.OperationalError,
    ):
        return True
    return isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated


EXCEPTION_HANDLERS = {
    ApiError: api_error,
    HTTPException: http_error,
    sqlalchemy.exc.SQLAlchemyError: database_error,
    psycopg.Error: database_error,
}


class UnexpectedErrors:
    """ASGI middleware: any exception nobody handled becomes a generic 500, logged once.

    Starlette's own ServerErrorMiddleware re-raises after answering (so servers log it); this
    one answers and logs with the traceback, so the body never carries the error's text.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception:
            log.exception("unexpected error serving %s %s", scope["method"], scope["path"])
            if started:
                raise
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(UNEXPECTED_ERROR_BODY)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": UNEXPECTED_ERROR_BODY})
