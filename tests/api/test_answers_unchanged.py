"""The differential test of the answers' bytes (issue 14): however an answer is produced it is
the answer of the plain path, byte for byte.

The plain path is an app that builds every JSON answer whole in one statement (`json_agg`,
as before streaming), writes CSV with one COPY, caches nothing and streams nothing. Against
it, over every list endpoint (at its path and under /clusters/{cluster}) and the contract
tests' parameter forms (tests/api/test_clusters.py), JSON and CSV: the cached app (first and
repeated request), the app without a cache (RESPONSE_CACHE_MB=0), and an app streaming every
answer (threshold 0, in chunks of two rows or 64 bytes), each asked with and without
`Accept-Encoding: gzip` (the gzip body decompressed). Status, headers (but the length and
encoding) and body must be the plain path's. Both warehouses of the clusters' tests: one
cluster, and several (the rows then carry their cluster).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip

import pytest
from starlette.testclient import TestClient

from api import endpoints, queries
from api.app import create_app
from tests.api.conftest import api_settings, fixed_clock
from tests.api.databases import loaded_database
from tests.api.test_clusters import DIFFERENTIAL_FORMS, ROOT_FORMS, load_one, load_several

# name → (settings, stream threshold); None: the app's own threshold.
VARIANTS = {
    "cached": ({}, None),
    "uncached": ({"RESPONSE_CACHE_MB": "0"}, None),
    # Never cached (the cache keeps whole answers only): once is enough.
    "streamed": ({"RESPONSE_CACHE_MB": "0"}, 0),
}
UNCOMPARED_HEADERS = {"content-length", "content-encoding", "transfer-encoding", "vary"}


def plain_app(url: str):
    """Every JSON answer by `json_agg` whole (no endpoint read row by row), nothing cached."""
    unstreamed = tuple(
        dataclasses.replace(spec, streamed=False) for spec in endpoints.LIST_ENDPOINTS
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(endpoints, "LIST_ENDPOINTS", unstreamed)
        patch.setattr(endpoints, "ROUTED_ENDPOINTS", (*unstreamed, *endpoints.ROOT_ENDPOINTS))
        app = create_app(api_settings(RESPONSE_CACHE_MB="0"), database_url=url, clock=fixed_clock)
    app.state.hubcost.stream_threshold = 2**62
    return app


def variant_app(url: str, env: dict[str, str], threshold: int | None):
    app = create_app(api_settings(**env), database_url=url, clock=fixed_clock)
    if threshold is not None:
        app.state.hubcost.stream_threshold = threshold
    return app


@pytest.fixture(scope="module")
def warehouses(admin_engine, admin_url, template_database):
    """{"one": {"plain": client, variant: client...}, "several": {...}}, a database each."""
    with contextlib.ExitStack() as stack:
        clients = {}
        for label, load in (("one", load_one), ("several", load_several)):
            url = stack.enter_context(
                loaded_database(admin_engine, admin_url, template_database, load)
            )
            apps = {"plain": plain_app(url)}
            apps.update({v: variant_app(url, *made) for v, made in VARIANTS.items()})
            clients[label] = {
                variant: stack.enter_context(TestClient(app)) for variant, app in apps.items()
            }
        yield clients


@pytest.fixture
def small_chunks(monkeypatch):
    """Streamed answers in many pieces, so that joining them is tested."""
    monkeypatch.setattr(queries, "ROWS_PER_CHUNK", 2)
    monkeypatch.setattr(queries, "CHUNK_BYTES", 64)
    monkeypatch.setattr(queries, "DAYS_PER_CHUNK", 1)


def ask(client: TestClient, url: str, *, csv: bool, zipped: bool):
    """(status, headers compared, body), the body decompressed if it was gzipped; and
    whether it was streamed (sent without a length)."""
    headers = {"Accept-Encoding": "gzip" if zipped else "identity"}
    if csv:
        headers["Accept"] = "text/csv"
    with client.stream("GET", url, headers=headers) as response:
        raw = b"".join(response.iter_raw())
    encoding = response.headers.get("content-encoding")
    if zipped and encoding is not None:
        assert encoding == "gzip", url
        raw = gzip.decompress(raw)
    else:
        assert encoding is None, url
    compared = {k: v for k, v in response.headers.items() if k not in UNCOMPARED_HEADERS}
    return (response.status_code, compared, raw), "content-length" not in response.headers


def urls(cluster: str) -> list[str]:
    """Every list endpoint in every contract form, at its path and under its cluster."""
    paths = [spec.path for spec in endpoints.ROUTED_ENDPOINTS] + [
        spec.cluster_path.replace("{cluster}", cluster) for spec in endpoints.LIST_ENDPOINTS
    ]
    forms = dict.fromkeys(DIFFERENTIAL_FORMS + ROOT_FORMS)
    return [path + form for path in paths for form in forms]


def assert_unchanged(clients: dict[str, TestClient], cluster: str) -> int:
    """Every variant's answers are the plain path's; the number of non-empty 200s compared."""
    compared = 0
    for url in urls(cluster):
        for csv in (False, True):
            expected, streamed = ask(clients["plain"], url, csv=csv, zipped=False)
            assert not streamed, url
            compared += expected[0] == 200 and expected[2] not in (b"[]", b"")
            for variant, (env, threshold) in VARIANTS.items():
                # A cached variant twice: the first answer is read, the second may be cached.
                attempts = 1 if "RESPONSE_CACHE_MB" in env else 2
                for zipped in (False, True):
                    for attempt in range(attempts):
                        got, streamed = ask(clients[variant], url, csv=csv, zipped=zipped)
                        assert got == expected, (variant, url, csv, zipped, attempt)
                        # Every answer is larger than 0 bytes: with threshold 0, all stream.
                        assert streamed == (threshold == 0 and got[0] == 200), (variant, url)
    return compared


def test_every_answer_is_the_plain_paths_bytes_one_cluster(warehouses, small_chunks):
    assert assert_unchanged(warehouses["one"], "A") > 100


def test_every_answer_is_the_plain_paths_bytes_several_clusters(warehouses, small_chunks):
    assert assert_unchanged(warehouses["several"], "B") > 100
