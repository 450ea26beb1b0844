"""The Starlette application (minimal until the API lands)."""

from __future__ import annotations

import contextlib

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from etl.settings import Settings


def create_app(settings: Settings, *, database_url: str) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app):
        from etl.database import create_engine

        app.state.engine = create_engine(
            database_url,
            pool_size=settings.db_pool_size,
            statement_timeout_ms=settings.statement_timeout_ms,
            role=settings.api_db_role,
            application_name="hubcost-api",
        )
        yield
        app.state.engine.dispose()

    async def index(request):
        return JSONResponse({"message": "hubcost: JupyterHub cost attribution"})

    def ready(request):
        with request.app.state.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return JSONResponse({"status": "ready"})

    return Starlette(routes=[Route("/", index), Route("/health/ready", ready)], lifespan=lifespan)
