"""Who is looking at the pages, and what they may see (docs/pages.md, "Who may see what").

The access middleware decides, per request, who the viewer is (or answers itself: a login
form, a redirect to the hub's login, a refusal) and leaves a `Viewer` in the request's scope;
the pages only ask `viewer_of(request)`.

A viewer who does not see everything (a JupyterHub user, neither admin nor in UI_ADMIN_GROUPS)
is let through to their own user page and the assets only, and only with no `hub` but theirs
in the query; `/ui/` sends them to their page. The page itself shows `viewer.hub`'s costs.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from starlette.datastructures import QueryParams
from starlette.middleware import Middleware
from starlette.requests import Request

from core.settings import Settings

SCOPE_KEY = "hubcost.viewer"

# Under /ui/, what holds no numbers: any signed-in viewer may fetch it.
ASSETS = "/ui/static/"
USER_PAGES = "/ui/users/"


@dataclass(frozen=True)
class Viewer:
    # The JupyterHub user looking (JupyterHub-service mode), else None.
    username: str | None
    # Open and token modes, JupyterHub admins and UI_ADMIN_GROUPS members: every page.
    sees_everything: bool
    # A viewer who does not see everything sees this hub's costs (UI_HUB) and no other.
    hub: str | None = None


OPEN = Viewer(username=None, sees_everything=True)


def viewer_of(request: Request) -> Viewer:
    return request.scope.get(SCOPE_KEY, OPEN)


def is_page_path(path: str) -> bool:
    return path == "/ui" or path.startswith("/ui/")


def own_page(viewer: Viewer) -> str:
    """The viewer's user page, as a URL path below the app's root."""
    return USER_PAGES + quote(viewer.username or "", safe="")


def refusal(viewer: Viewer, path: str, query: QueryParams) -> str | None:
    """Why `viewer` may not see `path` (a decoded route path) with `query`, or None."""
    if viewer.sees_everything or path.startswith(ASSETS) or path == "/ui/logout":
        return None
    if path != USER_PAGES + (viewer.username or ""):
        return "You may see your own costs only."
    if set(query.getlist("hub")) - {viewer.hub}:
        return f"You may see your costs on {viewer.hub} only."
    return None


def access_middleware(settings: Settings) -> list[Middleware]:
    """The middleware of the pages' mode: none when open, else the gate (and the prefix)."""
    mode = settings.ui_access
    if mode == "open":
        return []
    if mode == "token":
        from api.ui.login import TokenGate

        return [Middleware(TokenGate, settings=settings)]
    from api.ui.hub_oauth import HubGate
    from api.ui.prefix import ServicePrefix

    return [
        Middleware(ServicePrefix, prefix=settings.jupyterhub.service_prefix),
        Middleware(HubGate, settings=settings),
    ]
