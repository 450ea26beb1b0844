"""Every list endpoint asked in every parameter form the contract tests use, JSON and CSV.

The forms are made from each endpoint's declaration (`api.endpoints`): its date range, its
filters (one value, `{a,b}`, a repeated parameter, `all`, empty, an unknown name), `limit`,
and the 422s of a bad range, a bad limit and an unknown component. The values name both parts
of the release warehouses (tests/migrations/releases.py): the generated month (December
2025, `hub-03`, `user-03-017`, `group-07`) and the API tests' hand-made days (January 2026,
`prod`, `alice`, `g1`). An answer is its status, content type, freshness header and body
bytes: an upgrade, a downgrade or a restore must give every one of them back unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.testclient import TestClient

from api.app import create_app
from api.endpoints import FRESHNESS_HEADER, LIST_ENDPOINTS, ROOT_ENDPOINTS, ListEndpoint
from tests.api.conftest import api_settings, fixed_clock

MONTH = "from=2025-12-01&to=2025-12-31"
CONTRACT_RANGE = "from=2026-01-04&to=2026-01-05"
# Both parts of the warehouse, so that every filter value has rows.
BOTH_PARTS = "from=2025-12-29&to=2026-01-09"
DATE_FORMS = (
    "",  # the default range: the 31 days to the tests' today (2026-01-10)
    MONTH,
    CONTRACT_RANGE,
    "from=2025-12-10T00:00:00.000Z&to=2025-12-20T23:59:59.999Z",  # Grafana's ${__from:date}
    "from=2025-12-28",
    "to=2025-12-05",
    "from=2026-01-06&to=2026-01-09",  # days with no facts
    "from=2026-01-06&to=2026-01-05",  # 422: date_order
    "from=2020-01-01&to=2026-01-05",  # 422: range_too_long
    "from=bad",  # 422: date_parsing
)
VALUES = {  # the generated month's, the contract days' and the demo source's names
    "hubs": ("hub-03", "prod", "workshop"),
    "components": ("compute", "home storage", "object storage"),
    "users": ("user-03-017", "alice", "grace.hopper"),
    "usergroups": ("group-07", "g1", "research"),
}
AS_OF_FORMS = ("", "as_of=2026-01-05", "as_of=2025-12-15", "as_of=2027-01-01", "as_of=bad")
UNKNOWN = {"components": "gpu"}  # a 422 naming the known ones; other unknown names match nothing
EXTRA_FORMS = {
    "/costs-per-user": (
        f"{BOTH_PARTS}&limit=10",
        f"{BOTH_PARTS}&limit=all",
        f"{BOTH_PARTS}&limit=",
        f"{MONTH}&usergroup=group-07&limit=3",
        f"{CONTRACT_RANGE}&usergroup={{g1,g2}}&limit=1",
        f"{CONTRACT_RANGE}&usergroup=none&limit=1",
        f"{MONTH}&hub=hub-03&component=compute&limit=10",
        f"{CONTRACT_RANGE}&hub=all&component=ALL&user=&usergroup=All",
        f"{CONTRACT_RANGE}&component=home%20storage&usergroup=none",
        f"{CONTRACT_RANGE}&limit=0",  # 422
    ),
    "/total-costs-per-component": (
        f"{CONTRACT_RANGE}&hub=support",
        f"{CONTRACT_RANGE}&hub=staging&component=object%20storage",
        f"{CONTRACT_RANGE}&component={{compute,backup}}",
        f"{CONTRACT_RANGE}&component=backup&component=compute",
        f"{MONTH}&hub={{hub-01,hub-02}}&component=home%20storage",
    ),
    "/total-usage": (
        f"{CONTRACT_RANGE}&hub=prod&component=home%20storage",
        f"{MONTH}&hub=hub-05&user=user-05-001",
    ),
    "/user-groups": ("from=2026-01-07&to=2026-01-09&username=alice",),
    "/users-with-multiple-groups": ("user_name={alice,bob}&hub_name=all",),
    "/users-with-no-groups": ("hub_name=prod&user_name=frank",),
}


def filter_forms(spec: ListEndpoint) -> Iterable[str]:
    base = BOTH_PARTS if spec.dates else ""
    for param, field in spec.filters.items():
        a, b, c = VALUES[field][:3]
        for value in (a, f"{{{a},{b}}}", f"{b}&{param}={c}", "all", "", "nowhere"):
            if value == "nowhere":
                value = UNKNOWN.get(field, value)
            yield "&".join(part for part in (base, f"{param}={value}") if part)


def forms(spec: ListEndpoint, clusters: tuple[str, ...] = ()) -> list[str]:
    """The query strings of one endpoint, each also with `format=csv`; with `clusters`, the
    `cluster` filter of the root paths too (a known name, several, an unknown one)."""
    queries = [*(DATE_FORMS if spec.dates else AS_OF_FORMS if spec.as_of else ("",))]
    queries += [*filter_forms(spec), *EXTRA_FORMS.get(spec.path, ())]
    if spec.limit:
        queries.append(f"{MONTH}&limit=5")
    if clusters and spec.takes_cluster:
        base = BOTH_PARTS if spec.dates else ""
        for value in (clusters[0], f"{{{','.join(clusters)}}}", "all", "nowhere"):
            queries.append("&".join(p for p in (base, f"cluster={value}") if p))
    return [
        q for query in queries for q in (query, "&".join(p for p in (query, "format=csv") if p))
    ]


def requests(
    prefix: str = "", endpoints=LIST_ENDPOINTS, clusters: tuple[str, ...] = ()
) -> list[str]:
    """Every URL: each endpoint's path (under `prefix`, e.g. /clusters/x) and forms."""
    return [
        f"{prefix}{spec.path}" + (f"?{query}" if query else "")
        for spec in endpoints
        for query in forms(spec, clusters)
    ]


def head_requests(clusters: tuple[str, ...]) -> list[str]:
    """What a warehouse at head answers besides the list endpoints at their paths: the same
    under each cluster's prefix, the root endpoints, the index and the readiness probe."""
    urls = ["/", "/health/ready"]
    urls += requests(endpoints=(*LIST_ENDPOINTS, *ROOT_ENDPOINTS), clusters=clusters)
    for cluster in clusters:
        urls += requests(prefix=f"/clusters/{cluster}")
    return urls


Answer = tuple[int, str, str | None, bytes]


def ask(client: TestClient, urls: Iterable[str]) -> dict[str, Answer]:
    answers = {}
    for url in urls:
        response = client.get(url)
        answers[url] = (
            response.status_code,
            response.headers.get("content-type", ""),
            response.headers.get(FRESHNESS_HEADER),
            response.content,
        )
    return answers


def every_answer(
    database_url: str, *, prefix: str = "", urls: list[str] | None = None
) -> dict[str, Answer]:
    """Every request of `urls` (by default `requests(prefix)`) to a fresh app on the
    database, by URL without the prefix."""
    app = create_app(api_settings(), database_url=database_url, clock=fixed_clock)
    with TestClient(app) as client:
        answers = ask(client, requests(prefix) if urls is None else urls)
    return {url.removeprefix(prefix): answer for url, answer in answers.items()}


def differences(before: dict[str, Answer], after: dict[str, Answer]) -> list[str]:
    """The URLs whose answers differ, each with where and how (for the assertion message)."""
    changed = []
    for url in sorted(before.keys() | after.keys()):
        old, new = before.get(url), after.get(url)
        if old is None or new is None:
            changed.append(f"{url}: asked only {'after' if old is None else 'before'}")
        elif old != new:
            changed.append(f"{url}: {_difference(old, new)}")
    return changed


def _difference(old: Answer, new: Answer) -> str:
    if old[:3] != new[:3]:
        return f"status, type, loaded-at {old[:3]} -> {new[:3]}"
    a, b = old[3], new[3]
    at = next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )
    return f"{len(a)} -> {len(b)} bytes, from byte {at}: {a[at : at + 80]!r} -> {b[at : at + 80]!r}"
