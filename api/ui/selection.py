"""What a page is of: its days and cluster, read from the query string by the API's rules
(api/params.py), and the addresses (pages, the JSON endpoints' CSV) that keep them.

With several clusters a page is of one of them (`cluster=`, by default the first by name): the
API's root paths answer per cluster, so the numbers a page shows are those of
`/clusters/{cluster}/...`, where its CSV links point. With one cluster, of the root paths.
Names in paths are percent-encoded whole (`/` included); links start at the app's root path,
so the pages work behind a proxy prefix.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from starlette.requests import Request

from api.params import DateRange, Listing, Reader

PRESET_DAYS = (7, 30, 90)


@dataclass(frozen=True)
class Selection:
    days: DateRange
    today: dt.date
    # The page's cluster when the warehouse holds several, else None.
    cluster: str | None
    clusters: tuple[str, ...]
    root: str

    @property
    def day_list(self) -> list[dt.date]:
        count = (self.days.last - self.days.first).days + 1
        return [self.days.first + dt.timedelta(days=i) for i in range(count)]

    @property
    def several(self) -> bool:
        return self.cluster is not None

    def listing(self, **fields) -> Listing:
        clusters = None if self.cluster is None else [self.cluster]
        return Listing(days=self.days, clusters=clusters, **fields)

    def params(self, **changes: str) -> dict[str, str]:
        params = {"from": self.days.first.isoformat(), "to": self.days.last.isoformat()}
        if self.cluster is not None:
            params["cluster"] = self.cluster
        params.update(changes)
        return params

    def page(self, kind: str | None = None, name: str | None = None, **changes: str) -> str:
        """The address of a page (`kind` hubs, groups or users; None: the overview)."""
        path = f"{self.root}/ui/"
        if kind is not None:
            path += f"{kind}/{quote(name, safe='')}"
        return f"{path}?{urlencode(self.params(**changes))}"

    def csv(self, endpoint: str, **filters: str) -> str:
        """The JSON endpoint giving a chart's numbers, as CSV, for this page's range."""
        scope = "" if self.cluster is None else f"/clusters/{quote(self.cluster, safe='')}"
        params = {"from": self.days.first.isoformat(), "to": self.days.last.isoformat()}
        params.update(filters)
        params["format"] = "csv"
        return f"{self.root}{scope}{endpoint}?{urlencode(params)}"

    def root_csv(self, endpoint: str, **params: str) -> str:
        """An endpoint served at its root path only (/budgets, /cost-anomalies), as CSV; its
        rows carry their cluster, so the page's is a filter there, not a path."""
        return f"{self.root}{endpoint}?{urlencode({**params, 'format': 'csv'})}"

    def presets(self) -> list[tuple[str, dict[str, str]]]:
        """The 'last N days' ranges (label, parameters), each from N days before today as the
        API's default range is."""
        return [
            (
                f"last {days} days",
                {
                    "from": (self.today - dt.timedelta(days=days)).isoformat(),
                    "to": self.today.isoformat(),
                },
            )
            for days in PRESET_DAYS
        ]


def read_selection(request: Request, conn, names: Mapping[str, str]) -> Selection:
    """The page's selection; every problem (range, cluster, the path's `names`) raised at once
    as the API's InvalidParameters."""
    state = request.app.state.hubcost
    reader = Reader(request.query_params)
    days = reader.days(state.today(), state.settings.max_range_days)
    for param, value in names.items():
        if not value:
            reader.problem(param, "must not be empty", "missing")
        elif "\x00" in value:
            reader.problem(param, "must not contain NUL characters", "invalid_value")
    wanted = reader.single("cluster")
    known = state.known_clusters(conn)
    if wanted is not None:
        reader.check_clusters([wanted], known)
    reader.done()
    cluster = (wanted or known[0]) if len(known) > 1 else None
    return Selection(days, state.today(), cluster, tuple(known), app_root(request))


def app_root(request: Request) -> str:
    """The path the app is served under ('' at a server's root, a prefix behind a proxy)."""
    return request.scope.get("app_root_path", request.scope.get("root_path", "")).rstrip("/")
