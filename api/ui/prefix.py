"""Serving the app under JupyterHub's service prefix.

JupyterHub's proxy forwards `/services/hubcost/...` to the service with the whole path kept.
`ServicePrefix` records that prefix as the request's ASGI `root_path`, as a server started
with one would: routes match the rest of the path and every URL the app builds
(`request.url_for`, redirects made with `root_path`) carries the prefix. A request without the
prefix (from inside the cluster, straight to the service's port) is served at the root.
"""

from __future__ import annotations


class ServicePrefix:
    def __init__(self, app, *, prefix: str):
        self.app = app
        self.prefix = prefix.rstrip("/")

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and self.prefix and _under(scope["path"], self.prefix):
            scope = {**scope, "root_path": self.prefix}
        await self.app(scope, receive, send)


def route_path(scope) -> str:
    """The request's path below its root_path: what routes match ("/" for the root itself)."""
    path, root = scope["path"], scope.get("root_path", "")
    if root and _under(path, root):
        return path[len(root) :] or "/"
    return path


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")
