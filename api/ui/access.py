"""Who is looking at the pages, and what they may see (docs/pages.md, "Who may see what").

The access middleware decides, per request, who the viewer is (or answers itself: a login
form, a redirect to the hub's login, a refusal) and leaves a `Viewer` in the request's scope;
the pages only ask `viewer_of(request)`.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

SCOPE_KEY = "hubcost.viewer"


@dataclass(frozen=True)
class Viewer:
    # The JupyterHub user looking (JupyterHub-service mode), else None.
    username: str | None
    # Open and token modes, JupyterHub admins and UI_ADMIN_GROUPS members: every page.
    sees_everything: bool


OPEN = Viewer(username=None, sees_everything=True)


def viewer_of(request: Request) -> Viewer:
    return request.scope.get(SCOPE_KEY, OPEN)
