"""JupyterHub-service mode: the pages sign users in with their hub account, by OAuth.

A page asked for without a session sends the browser to the hub's authorize URL (a signed,
10-minute state cookie holds the state, the PKCE verifier and the page to return to). The hub
sends it back to JUPYTERHUB_OAUTH_CALLBACK_URL with a code; `jupyterhub.services.auth.HubOAuth`
trades the code for a token and the token for the user's model (name, admin, groups), and a
signed session cookie records who they are. JupyterHub admins and members of UI_ADMIN_GROUPS
see every page; anyone else their own user page on UI_HUB (api.ui.access.refusal).
Imported only in this mode: it is the one place the optional `jupyterhub` package is used.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import logging
import secrets
from urllib.parse import urlencode, urlparse

from jupyterhub.httpclient import JupyterHubHTTPClient
from jupyterhub.services.auth import HubOAuth
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from tornado.web import HTTPError

from api.ui.access import Viewer
from api.ui.guard import SessionGate, asked_for, safe_next, small_page
from api.ui.session import Signer
from core.settings import Settings

log = logging.getLogger("hubcost.api")

STATE_COOKIE = "hubcost-oauth-state"
STATE_MAX_AGE_S = 600
# Each call to the hub (code → token, token → user) must answer within this.
HUB_TIMEOUT_S = 10.0
MODE = "jupyterhub"


class HubGate(SessionGate):
    def __init__(self, app, *, settings: Settings):
        hub = settings.jupyterhub
        super().__init__(
            app, settings=settings, https_only=(hub.public_url or "").startswith("https://")
        )
        self.auth = HubOAuth(
            api_url=hub.api_url,
            api_token=hub.api_token.reveal(),
            oauth_client_id=hub.client_id,
            oauth_redirect_uri=hub.oauth_callback_url,
            base_url=hub.service_prefix,
            hub_prefix=hub.base_url + "hub/",
            hub_host=hub.host,
        )
        self.state_signer = Signer(self.key, purpose="oauth state")
        self.callback_path = urlparse(hub.oauth_callback_url).path
        self.hub_logout = hub.host + hub.base_url + "hub/logout"
        self.hub = settings.ui_hub
        self.admin_groups = frozenset(settings.ui_admin_groups)

    async def close(self) -> None:
        # HubOAuth's calls share one HTTP client session per event loop; this loop's ends here.
        await JupyterHubHTTPClient.loop_instance().close()

    async def answer(self, request: Request, path: str) -> Response | None:
        if request.url.path == self.callback_path:
            return await self.callback(request)
        if path == "/ui/logout":
            # Off to the hub's logout too: else the next page would sign in again at once.
            return self.end_session(request, RedirectResponse(self.hub_logout, status_code=303))
        return None

    async def sign_in(self, request: Request) -> Response:
        state = secrets.token_urlsafe(16)
        verifier, challenge, method = self.auth.generate_pkce_code_challenge()
        query = urlencode(
            {"state": state, "code_challenge": challenge, "code_challenge_method": method}
        )
        response = RedirectResponse(f"{self.auth.login_url}&{query}", status_code=302)
        response.set_cookie(
            STATE_COOKIE,
            self.state_signer.sign(
                {"state": state, "verifier": verifier, "next": asked_for(request)},
                max_age_s=STATE_MAX_AGE_S,
            ),
            max_age=STATE_MAX_AGE_S,
            path=self.callback_path,
            secure=self.secure(request),
            httponly=True,
            # Lax: the hub's redirect back must carry it, wherever the sign-in began.
            samesite="lax",
        )
        return response

    def viewer_from(self, data: dict) -> Viewer | None:
        if data.get("mode") != MODE or not isinstance(data.get("user"), str):
            return None
        sees_everything = data.get("all") is True
        return Viewer(
            username=data["user"],
            sees_everything=sees_everything,
            hub=None if sees_everything else self.hub,
        )

    async def callback(self, request: Request) -> Response:
        code = request.query_params.get("code")
        given_state = request.query_params.get("state", "")
        pending = self.state_signer.verify(request.cookies.get(STATE_COOKIE))
        if (
            not code
            or pending is None
            or not hmac.compare_digest(given_state.encode(), str(pending.get("state")).encode())
        ):
            return self.sign_in_failed(request, 403, "The sign-in expired or was not started here.")
        try:
            async with asyncio.timeout(HUB_TIMEOUT_S):
                token = await self.auth.token_for_code(
                    code, code_verifier=pending.get("verifier"), sync=False
                )
                user = await self.auth.user_for_token(token, use_cache=False, sync=False)
        except TimeoutError:
            log.warning("JupyterHub did not answer the OAuth exchange in %.0f s", HUB_TIMEOUT_S)
            return self.sign_in_failed(request, 504, "JupyterHub did not answer in time.")
        except HTTPError as exc:
            # HubOAuth's own errors: 500 "Failed to connect ..." when the hub is unreachable,
            # 502 when it failed, 500 "Failed to check authorization" when it said no.
            log.warning("OAuth exchange with JupyterHub failed: %s", exc.log_message)
            if exc.status_code >= 502 or (exc.log_message or "").startswith("Failed to connect"):
                return self.sign_in_failed(request, 502, "JupyterHub could not be reached.")
            return self.sign_in_failed(request, 403, "JupyterHub refused the sign-in.")
        if not user or not isinstance(user.get("name"), str):
            return self.sign_in_failed(request, 403, "JupyterHub did not say who you are.")
        groups = set(user.get("groups") or ())
        sees_everything = user.get("admin") is True or bool(groups & self.admin_groups)
        log.info("pages signed in %r (sees everything: %s)", user["name"], sees_everything)
        target = safe_next(request, pending.get("next"))
        # A page, not a redirect: if the sign-in began on another site, a redirect would still
        # be that navigation, which carries no SameSite=Strict cookie; this page's own
        # navigation does.
        link = f'<a href="{_attr(target)}">Continue</a>'
        response = small_page(
            "hubcost",
            f"<p>Signed in. {link}</p>",
            head=f'<meta http-equiv="refresh" content="0;url={_attr(target)}">',
        )
        response.delete_cookie(STATE_COOKIE, path=self.callback_path, httponly=True, samesite="lax")
        return self.start_session(
            request, response, {"mode": MODE, "user": user["name"], "all": sees_everything}
        )

    def sign_in_failed(self, request: Request, status_code: int, why: str) -> Response:
        retry = _attr(safe_next(request, None))
        response = small_page(
            "hubcost: sign-in failed",
            f'<h1>Sign-in failed</h1><p>{html.escape(why)}</p><p><a href="{retry}">Try again</a></p>',
            status_code=status_code,
        )
        response.delete_cookie(STATE_COOKIE, path=self.callback_path, httponly=True, samesite="lax")
        return response


def _attr(value: str) -> str:
    return html.escape(value, quote=True)
