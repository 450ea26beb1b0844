"""Serving the API with uvicorn (the edge: the database URL is resolved here)."""

from __future__ import annotations

import logging

import uvicorn

from api.app import create_app
from core.bootstrap import database_url
from core.settings import Settings

log = logging.getLogger("hubcost.api")


def serve(settings: Settings, *, host: str, port: int) -> None:
    app = create_app(settings, database_url=database_url(settings))
    log.info("serving the API on http://%s:%d", host, port)
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)
