"""Token mode (API_TOKEN set, not a JupyterHub service): the pages ask for the token once.

`/ui/login` shows a form; posting the right token starts a signed session (cookie
`hubcost-session`: HttpOnly, SameSite=Strict, Path /ui/, Secure over https, for
UI_SESSION_HOURS); any other token is refused with "invalid token" and nothing more.
`/ui/logout` ends the session. Every other path under /ui/, page or asset, needs the session.
"""

from __future__ import annotations

import hashlib
import hmac
import html
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from api.ui.access import OPEN, Viewer
from api.ui.guard import SessionGate, asked_for, safe_next, small_page, ui_url
from core.settings import Settings

# A login form is a token and a path; anything longer is not one.
MAX_FORM_BYTES = 8192
MODE = "token"


class TokenGate(SessionGate):
    def __init__(self, app, *, settings: Settings):
        super().__init__(app, settings=settings)
        self.expected = _digest(settings.api_token.reveal())

    async def answer(self, request: Request, path: str) -> Response | None:
        if path == "/ui/login":
            if request.method == "POST":
                return await self.log_in(request)
            if request.method in ("GET", "HEAD"):
                return login_form(request, request.query_params.get("next"))
            return Response(status_code=405, headers={"Allow": "GET, HEAD, POST"})
        if path == "/ui/logout":
            response = RedirectResponse(ui_url(request, "/ui/login"), status_code=303)
            return self.end_session(request, response)
        return None

    async def sign_in(self, request: Request) -> Response:
        target = ui_url(request, "/ui/login") + "?" + urlencode({"next": asked_for(request)})
        return RedirectResponse(target, status_code=303)

    def viewer_from(self, data: dict) -> Viewer | None:
        return OPEN if data.get("mode") == MODE else None

    async def log_in(self, request: Request) -> Response:
        form = await _form(request)
        next_url = safe_next(request, form.get("next"))
        if form.get("token") is None or not hmac.compare_digest(
            _digest(form["token"]), self.expected
        ):
            return login_form(request, next_url, status_code=401, error="invalid token")
        response = RedirectResponse(next_url, status_code=303)
        return self.start_session(request, response, {"mode": MODE})


def login_form(
    request: Request, next_url: str | None, *, status_code: int = 200, error: str | None = None
) -> Response:
    action = html.escape(ui_url(request, "/ui/login"), quote=True)
    target = html.escape(safe_next(request, next_url), quote=True)
    message = f"<p class=error role=alert id=error>{html.escape(error)}</p>" if error else ""
    return small_page(
        "hubcost: sign in",
        "<h1>hubcost</h1><p>These pages need the service's API token.</p>"
        f'{message}<form method=post action="{action}">'
        f'<input type=hidden name=next value="{target}">'
        "<p><label for=token>API token</label><br>"
        "<input id=token name=token type=password autocomplete=current-password required "
        "autofocus></p><p><button type=submit>Sign in</button></p></form>",
        status_code=status_code,
    )


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded form's first value of each field; an oversized body reads as empty."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    try:
        fields = parse_qs(body.decode(), max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {name: values[0] for name, values in fields.items()}


def _digest(token: str) -> bytes:
    # Compared as digests: equal lengths, so the comparison tells nothing of the token's.
    return hashlib.sha256(token.encode()).digest()
