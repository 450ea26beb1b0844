"""Optional bearer token (API_TOKEN): when set, every endpoint but /health/ready needs it.

The pages under /ui/ are not endpoints: their own gate (api/ui/access.py) guards them.
"""

from __future__ import annotations

import hmac

from api.errors import UNAUTHORIZED_BODY
from api.ui.access import is_page_path
from api.ui.prefix import route_path

OPEN_PATHS = frozenset({"/health/ready"})


class BearerToken:
    """ASGI middleware comparing `Authorization: Bearer <token>` in constant time."""

    def __init__(self, app, token: str | None):
        self.app = app
        # None: no token opens the API (a JupyterHub service without API_TOKEN).
        self.expected = token.encode() if token is not None else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or _not_guarded(route_path(scope)):
            await self.app(scope, receive, send)
            return
        given = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                given = value
                break
        scheme, _, credentials = given.partition(b" ")
        if (
            self.expected is not None
            and scheme.lower() == b"bearer"
            and hmac.compare_digest(credentials.strip(), self.expected)
        ):
            await self.app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(UNAUTHORIZED_BODY)).encode()),
                    (b"www-authenticate", b"Bearer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": UNAUTHORIZED_BODY})


def _not_guarded(path: str) -> bool:
    return path in OPEN_PATHS or is_page_path(path)
