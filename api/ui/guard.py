"""The gate in front of the pages, shared by the two signed-in modes (token and JupyterHub).

Every request under /ui/ passes it: with a valid session cookie it goes on to the pages with
its `Viewer` in the scope (or is refused, for a viewer who may not see that page); without one
it is sent to sign in, the mode's way. The mode's own paths (the login form, the OAuth
callback, logout) are answered here and never reach the app. A browser asking `/` for HTML is
sent to the pages; every other path is the JSON API's, which keeps its bearer-token rule.
Answers are Response objects and none of them reads the database.
"""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from api.ui.access import SCOPE_KEY, Viewer, is_page_path, own_page, refusal
from api.ui.prefix import route_path
from api.ui.session import SESSION_COOKIE, Signer, signing_key
from core.settings import Settings

# Small pages of our own need no script, no asset and no other origin.
SMALL_PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
)


class SessionGate:
    """ASGI middleware; a mode subclasses it with `answer`, `sign_in` and `viewer_from`."""

    def __init__(self, app, *, settings: Settings, https_only: bool = False):
        self.app = app
        # Taken from the settings here, not passed in: a middleware's repr shows its arguments.
        self.key = signing_key(settings)
        self.signer = Signer(self.key, purpose="session")
        self.max_age_s = settings.ui_session_hours * 3600
        self.https_only = https_only

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._closing_on_shutdown(send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        response, viewer = await self.gate(request, route_path(scope))
        if response is not None:
            await response(scope, receive, send)
            return
        if viewer is not None:
            scope[SCOPE_KEY] = viewer
        await self.app(scope, receive, send)

    async def gate(self, request: Request, path: str) -> tuple[Response | None, Viewer | None]:
        own = await self.answer(request, path)
        if own is not None:
            return own, None
        if path == "/" and request.method in ("GET", "HEAD") and wants_html(request):
            return RedirectResponse(ui_url(request, "/ui/"), status_code=303), None
        if not is_page_path(path):
            return None, None
        viewer = self.session_viewer(request)
        if viewer is None:
            return self.bounce(request) or await self.sign_in(request), None
        if path in ("/ui", "/ui/") and not viewer.sees_everything:
            return RedirectResponse(ui_url(request, own_page(viewer)), status_code=303), None
        reason = refusal(viewer, path, request.query_params)
        if reason is not None:
            return refused_page(request, viewer, reason), None
        return None, viewer

    def _closing_on_shutdown(self, send):
        async def send_after_closing(message):
            if message["type"] == "lifespan.shutdown.complete":
                await self.close()
            await send(message)

        return send_after_closing

    # What a mode adds.

    async def close(self) -> None:
        """At the app's shutdown: release what the mode holds open."""

    async def answer(self, request: Request, path: str) -> Response | None:
        """The mode's own paths (login, callback, logout), else None."""
        raise NotImplementedError

    async def sign_in(self, request: Request) -> Response:
        """Where a request without a session goes."""
        raise NotImplementedError

    def viewer_from(self, data: dict) -> Viewer | None:
        """The viewer a verified session's data names, None if it is not this mode's."""
        raise NotImplementedError

    # Shared.

    def session_viewer(self, request: Request) -> Viewer | None:
        data = self.signer.verify(request.cookies.get(SESSION_COOKIE))
        return None if data is None else self.viewer_from(data)

    def start_session(self, request: Request, response: Response, data: dict) -> Response:
        response.set_cookie(
            SESSION_COOKIE,
            self.signer.sign(data, max_age_s=self.max_age_s),
            max_age=self.max_age_s,
            path=cookie_path(request),
            secure=self.secure(request),
            httponly=True,
            samesite="strict",
        )
        return response

    def end_session(self, request: Request, response: Response) -> Response:
        response.delete_cookie(
            SESSION_COOKIE,
            path=cookie_path(request),
            secure=self.secure(request),
            httponly=True,
            samesite="strict",
        )
        return response

    def secure(self, request: Request) -> bool:
        """Secure cookies when the browser speaks https to us (X-Forwarded-Proto from a trusted
        proxy counts: uvicorn's FORWARDED_ALLOW_IPS)."""
        return self.https_only or request.url.scheme == "https"

    def bounce(self, request: Request) -> Response | None:
        """A cross-site navigation carries no SameSite=Strict cookie, even a valid one: answer
        it with a page that reloads itself, a same-site navigation that does carry it."""
        if request.method != "GET" or request.headers.get("sec-fetch-site") != "cross-site":
            return None
        target = html.escape(asked_for(request), quote=True)
        return small_page(
            "hubcost",
            f'<p><a href="{target}">Continue</a></p>',
            head=f'<meta http-equiv="refresh" content="0;url={target}">',
        )


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def ui_url(request: Request, path: str) -> str:
    """`path` (from /ui/) as the browser must ask for it: under the service prefix, if any."""
    return request.scope.get("root_path", "") + path


def cookie_path(request: Request) -> str:
    return ui_url(request, "/ui/")


def asked_for(request: Request) -> str:
    """The path and query the browser asked for, to come back to once signed in."""
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def safe_next(request: Request, value: str | None) -> str:
    """A page of ours to go to after signing in: only a path under /ui, never another site."""
    pages = ui_url(request, "/ui")
    if (
        value
        and (value == pages or value.startswith((pages + "/", pages + "?")))
        and "\\" not in value
        and value.isprintable()
    ):
        return value
    return pages + "/"


def small_page(
    title: str, body: str, *, status_code: int = 200, head: str = "", headers=None
) -> HTMLResponse:
    """A page of our own (form, refusal, error); `body` and `head` are already escaped HTML."""
    document = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>{head}"
        "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:4rem auto;"
        "padding:0 1rem}input,button{font:inherit;padding:.4rem}input{width:100%;"
        "box-sizing:border-box}.error{color:#a00}</style></head>"
        f"<body>{body}</body></html>"
    )
    return HTMLResponse(
        document,
        status_code=status_code,
        headers={
            "Content-Security-Policy": SMALL_PAGE_POLICY,
            "Cache-Control": "no-store",
            **(headers or {}),
        },
    )


def refused_page(request: Request, viewer: Viewer, reason: str) -> HTMLResponse:
    link = html.escape(ui_url(request, own_page(viewer)), quote=True)
    return small_page(
        "Not yours to see",
        f"<h1>Not yours to see</h1><p>{html.escape(reason)}</p>"
        f'<p><a href="{link}">Your costs</a></p>',
        status_code=403,
    )
