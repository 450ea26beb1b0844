"""Answers streamed from the database (api/streaming.py, docs/api.md §3.3): the bytes of the
whole answer, the same headers and validators, the connection held while the body is sent and
released after it, after a client leaves, and after a database error, which drops the
transfer rather than end it; an error before the first byte is the usual answer.

Starlette's TestClient hands the body over chunk by chunk, the app waiting on each: what is
checked between two chunks is what a server sees while the answer is sent.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

import pytest
import sqlalchemy as sa

from api import queries, streaming
from api.endpoints import ROUTED_ENDPOINTS
from api.params import DateRange, Listing
from tests.api.dataset import load_dataset
from tests.rows import CLUSTER

RANGE = "from=2026-01-04&to=2026-01-05"
LOADED = dt.datetime(2026, 1, 9, 6, 0, tzinfo=dt.UTC)
# Gzip would gather these small answers' chunks into one.
IDENTITY = {"Accept-Encoding": "identity"}
HEADERS = ("content-type", "x-data-loaded-at", "etag", "cache-control")


@pytest.fixture
def api(engine, make_client, monkeypatch):
    """A client streaming every answer one row, rendered day (or 64 bytes) a chunk; the
    data loaded."""
    with engine.begin() as conn:
        load_dataset(conn)
        conn.execute(
            sa.text(
                """INSERT INTO run_log (cluster, source, first_day, last_day, started_at,
                                        finished_at, status, rows, requests)
                   VALUES (:cluster, 'costs', '2026-01-04', '2026-01-05', :at, :at,
                           'succeeded', 13, 2)"""
            ),
            {"cluster": CLUSTER, "at": LOADED},
        )
    monkeypatch.setattr(queries, "ROWS_PER_CHUNK", 1)
    monkeypatch.setattr(queries, "CHUNK_BYTES", 64)
    monkeypatch.setattr(queries, "DAYS_PER_CHUNK", 1)
    client = make_client(DB_POOL_SIZE="1")
    client.app.state.hubcost.stream_threshold = 0
    return client


def checked_out(client) -> int:
    return client.app.state.hubcost.engine.pool.checkedout()


def listings(spec) -> list[Listing]:
    days = DateRange(dt.date(2026, 1, 4), dt.date(2026, 1, 5))
    listing = Listing(
        days=days if spec.dates else None, as_of=dt.date(2026, 1, 5) if spec.as_of else None
    )
    forms = [listing, dataclasses.replace(listing, hubs=["prod"])]
    if spec.clustered:
        forms.append(dataclasses.replace(listing, by_cluster=True))
    return forms


@pytest.mark.parametrize("rows_per_chunk", [1, 3, queries.ROWS_PER_CHUNK])
def test_every_endpoints_rows_stream_as_the_json_agg_bytes(engine, monkeypatch, rows_per_chunk):
    with engine.begin() as conn:
        load_dataset(conn)
    monkeypatch.setattr(queries, "ROWS_PER_CHUNK", rows_per_chunk)
    with engine.connect() as conn:
        for spec in ROUTED_ENDPOINTS:
            for listing in listings(spec):
                select = spec.build(listing)
                whole, _, _ = queries.run_json(conn, select)
                streamed = list(queries.stream_json(conn, select))
                assert b"".join(streamed) == whole.encode(), (spec.path, listing)


def test_a_streamed_answer_has_the_whole_answers_headers_and_bytes(api, make_client):
    whole = make_client()
    for url in (f"/costs-per-user?{RANGE}", f"/total-costs?{RANGE}&format=csv"):
        expected = whole.get(url, headers=IDENTITY)
        assert expected.headers["content-length"]
        with api.stream("GET", url, headers=IDENTITY) as response:
            chunks = list(response.iter_raw())
        assert response.status_code == 200
        assert "content-length" not in response.headers
        assert len(chunks) > 1, url
        assert b"".join(chunks) == expected.content
        for name in HEADERS:
            assert response.headers[name] == expected.headers[name], (url, name)
        # Gzip applies to a streamed answer whatever its size, so caches are told.
        assert response.headers["vary"] == "Accept, Accept-Encoding"


def test_the_connection_is_held_while_streaming_and_released_after(api):
    for url in (f"/total-usage?{RANGE}", f"/total-usage?{RANGE}&format=csv"):
        with api.stream("GET", url, headers=IDENTITY) as response:
            chunks = response.iter_raw()
            next(chunks)
            assert checked_out(api) == 1
            rest = list(chunks)
        assert rest
        assert checked_out(api) == 0
        # The pool's one connection is free: the next answer gets it.
        assert api.get(url).status_code == 200


def test_a_client_leaving_mid_stream_releases_the_connection(api):
    for url in (f"/costs-per-user?{RANGE}", f"/costs-per-user?{RANGE}&format=csv"):
        with api.stream("GET", url, headers=IDENTITY) as response:
            chunks = response.iter_raw()
            next(chunks)
            assert checked_out(api) == 1, url
        assert checked_out(api) == 0, url
        assert api.get(url).status_code == 200


def test_a_streamed_answer_is_revalidated_with_a_304(api):
    url = f"/costs-per-user?{RANGE}"
    first = api.get(url)
    assert "content-length" not in first.headers
    again = api.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    assert checked_out(api) == 0


def test_a_streamed_answer_is_never_cached(api):
    api.get(f"/costs-per-user?{RANGE}")
    api.get(f"/costs-per-user?{RANGE}")
    assert api.app.state.hubcost.response_cache.size == 0


def test_an_error_before_the_first_byte_is_the_usual_answer(api):
    assert api.get("/costs-per-user?limit=0").status_code == 422
    bad = api.get(f"/total-usage?{RANGE}&component=gpu")
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["query", "component"]


def test_a_timeout_before_the_first_byte_is_a_503(engine, make_client):
    client = make_client(STATEMENT_TIMEOUT_MS="1000")
    client.app.state.hubcost.stream_threshold = 0
    with engine.begin() as conn:
        conn.execute(sa.text("LOCK TABLE user_group_snapshot IN ACCESS EXCLUSIVE MODE"))
        for query in ("format=csv", "format=json"):
            response = client.get(f"/user-groups?{query}")
            assert response.status_code == 503, query
            assert response.json() == {"detail": "database unavailable"}
    assert checked_out(client) == 0
    assert client.get("/user-groups").status_code == 200


def terminate_the_apis_connection(engine) -> None:
    with engine.connect() as conn:
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'hubcost-api' AND datname = current_database()"
            )
        )


def test_a_database_error_mid_stream_drops_the_transfer_and_is_logged(api, engine, caplog):
    url = f"/costs-per-user?{RANGE}"
    with caplog.at_level(logging.ERROR, logger="hubcost.api"):
        with pytest.raises(streaming.StreamInterrupted):
            with api.stream("GET", url, headers=IDENTITY) as response:
                chunks = response.iter_raw()
                assert next(chunks).startswith(b"[{")
                assert response.status_code == 200
                terminate_the_apis_connection(engine)
                list(chunks)
    (record,) = [r for r in caplog.records if r.name == "hubcost.api" and "dropped" in r.message]
    assert "AdminShutdown" in record.message
    assert checked_out(api) == 0
    assert api.get(url).status_code == 200


def test_a_connection_lost_after_the_last_row_leaves_the_answer_whole(api, engine, caplog):
    # The COPY's whole output (1 kB) is in the client's socket before the first chunk is sent.
    url = f"/costs-per-user?{RANGE}&format=csv"
    expected = api.get(url).content
    with caplog.at_level(logging.WARNING, logger="hubcost.api"):
        with api.stream("GET", url, headers=IDENTITY) as response:
            chunks = response.iter_raw()
            first = next(chunks)
            terminate_the_apis_connection(engine)
            body = first + b"".join(chunks)
    assert body == expected
    assert any("closing" in r.message for r in caplog.records)
    assert checked_out(api) == 0
    assert api.get(url).content == expected
