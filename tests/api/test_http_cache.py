"""HTTP caching tied to the data (docs/api.md §3.1): ETags from the data version, 304s, the
response cache, gzip; cached and compressed answers byte for byte the uncached ones."""

from __future__ import annotations

import datetime as dt
import gzip

import pytest
import sqlalchemy as sa

from api import compression, http_cache
from api.endpoints import LIST_ENDPOINTS, ROUTED_ENDPOINTS
from core import schema
from tests.api.dataset import load_dataset
from tests.rows import CLUSTER, add_costs

RANGE = "from=2026-01-04&to=2026-01-05"
NOW = dt.datetime(2026, 1, 10, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def api(engine, client):
    with engine.begin() as conn:
        load_dataset(conn)
    return client


def uncached(client):
    """The client's app answering every request from the database."""
    client.app.state.hubcost.response_cache = http_cache.ResponseCache(max_entry_bytes=-1)
    return client


def tag_of(api, url="/total-costs?" + RANGE) -> str:
    response = api.get(url)
    assert response.status_code == 200, response.text
    return response.headers["etag"]


def commit_chunk(engine, *, status="succeeded") -> None:
    """A chunk's run-log row as etl/runs.py writes it: `running`, then its final status."""
    with engine.begin() as conn:
        run_id = conn.execute(
            sa.insert(schema.run_log)
            .values(
                cluster=CLUSTER,
                source="costs",
                first_day=dt.date(2026, 1, 6),
                last_day=dt.date(2026, 1, 6),
                started_at=NOW,
                status="running",
            )
            .returning(schema.run_log.c.id)
        ).scalar_one()
    with engine.begin() as conn:
        if status == "succeeded":
            add_costs(conn, [("2026-01-06", "attributable", "prod", "EC2 - Other", "7")])
        conn.execute(
            sa.update(schema.run_log)
            .where(schema.run_log.c.id == run_id)
            .values(status=status, finished_at=NOW)
        )


def test_a_repeated_request_with_its_etag_gets_an_empty_304(api, engine):
    commit_chunk(engine)  # a freshness time to carry
    first = api.get("/total-costs?" + RANGE)
    assert first.headers["cache-control"] == http_cache.CACHE_CONTROL
    assert "Accept" in first.headers["vary"]
    tag = first.headers["etag"]
    assert tag.startswith('W/"')
    again = api.get("/total-costs?" + RANGE, headers={"If-None-Match": tag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == tag
    assert again.headers["x-data-loaded-at"] == first.headers["x-data-loaded-at"]
    other = api.get("/total-costs?" + RANGE, headers={"If-None-Match": 'W/"1-other"'})
    assert other.status_code == 200
    assert other.content == first.content


def test_the_etag_is_of_the_resolved_request(api, make_client):
    tag = tag_of(api)
    # The same days, written otherwise: the same answer, the same tag.
    assert tag_of(api, "/total-costs?from=2026-01-04T00:00:00.000Z&to=2026-01-05") == tag
    assert tag_of(api, "/total-costs?from=2026-01-04&to=2026-01-06") != tag
    assert tag_of(api, "/total-costs?format=csv&" + RANGE) != tag
    assert tag_of(api, "/clusters/" + CLUSTER + "/total-costs?" + RANGE) != tag
    # No `to`: today's date is part of the request (a day later, another answer).
    default = tag_of(api, "/total-costs")
    tomorrow = make_client(clock=lambda: NOW + dt.timedelta(days=1))
    assert tag_of(tomorrow, "/total-costs") != default
    # Another replica, the same data: the same tag.
    assert tag_of(make_client()) == tag


def test_the_etag_changes_when_a_chunk_commits_and_only_then(api, engine):
    tag = tag_of(api)
    commit_chunk(engine, status="failed")
    assert tag_of(api) == tag  # a chunk starting or failing changes no answer
    with engine.connect() as conn:
        conn.execute(sa.select(schema.cost).limit(1)).all()
    assert tag_of(api) == tag
    before = api.get("/total-costs?from=2026-01-04&to=2026-01-06").content
    commit_chunk(engine)
    assert tag_of(api) != tag
    after = api.get("/total-costs?from=2026-01-04&to=2026-01-06").content
    assert after != before  # the cache did not keep the answer of the older version
    assert after == uncached(api).get("/total-costs?from=2026-01-04&to=2026-01-06").content


def test_a_rolled_back_write_keeps_the_etag(api, engine):
    tag = tag_of(api)
    with engine.connect() as conn:
        add_costs(conn, [("2026-01-06", "attributable", "prod", "EC2 - Other", "7")])
        conn.rollback()
    assert tag_of(api) == tag


def test_a_budget_written_changes_the_budgets_answer_and_its_etag(api, engine):
    first = api.get("/budgets")
    assert first.json() == []
    with engine.begin() as conn:
        conn.execute(
            sa.insert(schema.budget).values(
                name="all-month", amount="100", period="month", alert_at=[50, 80, 100]
            )
        )
    second = api.get("/budgets", headers={"If-None-Match": first.headers["etag"]})
    assert second.status_code == 200
    assert [b["name"] for b in second.json()] == ["all-month"]
    with engine.begin() as conn:
        conn.execute(sa.update(schema.budget).values(amount="200"))
    third = api.get("/budgets", headers={"If-None-Match": second.headers["etag"]})
    assert third.status_code == 200
    assert third.json()[0]["amount"] == 200


def test_a_refused_request_is_never_cached(api):
    for _ in range(2):
        response = api.get("/total-costs-per-component?component=nope&" + RANGE)
        assert response.status_code == 422
        assert "etag" not in response.headers


def every_url() -> list[str]:
    urls = []
    for spec in ROUTED_ENDPOINTS:
        query = "as_of=2026-01-05" if spec.as_of else RANGE if spec.dates else ""
        urls.append(f"{spec.path}?{query}")
    for spec in LIST_ENDPOINTS:
        urls.append(f"{spec.cluster_path.replace('{cluster}', CLUSTER)}?{RANGE}")
    urls.append(f"/costs-per-user?{RANGE}&hub=prod&limit=1")
    return urls


def test_cached_and_compressed_answers_are_the_uncached_bytes(api, make_client):
    plain = uncached(make_client())
    for url in every_url():
        for fmt in ("json", "csv"):
            target = f"{url}&format={fmt}"
            expected = plain.get(target, headers={"Accept-Encoding": "identity"})
            assert expected.status_code == 200, (target, expected.text)
            for _ in range(2):  # the second from the cache
                answer = api.get(target, headers={"Accept-Encoding": "identity"})
                assert answer.content == expected.content, target
                assert answer.headers["content-type"] == expected.headers["content-type"]
            assert api.app.state.hubcost.response_cache.size > 0
            zipped = api.get(target, headers={"Accept-Encoding": "gzip"})
            if len(expected.content) >= 1024:
                assert zipped.headers["content-encoding"] == "gzip", target
            # httpx decodes: what the client reads is the same bytes.
            assert zipped.content == expected.content, target


def test_gzip_only_when_asked_and_the_304_is_empty_either_way(api, engine):
    hubs = [
        (f"2026-01-0{d}", "attributable", f"hub-{h:02d}", "EC2 - Other", "1")
        for d in (4, 5)
        for h in range(60)
    ]
    with engine.begin() as conn:
        add_costs(conn, hubs)
    url = "/total-costs-per-hub?" + RANGE
    raw = api.get(url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers
    assert len(raw.content) > 1024
    with api.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as zipped:
        body = b"".join(zipped.iter_raw())
        assert zipped.headers["content-encoding"] == "gzip"
        assert "Accept-Encoding" in zipped.headers["vary"]
    assert gzip.decompress(body) == raw.content
    assert len(body) < len(raw.content) / 3
    tag = raw.headers["etag"]
    not_modified = api.get(url, headers={"Accept-Encoding": "gzip", "If-None-Match": tag})
    assert not_modified.status_code == 304
    assert not_modified.content == b""


def test_a_cached_answer_asked_gzipped_is_compressed_once(api, engine, monkeypatch):
    with engine.begin() as conn:
        add_costs(
            conn,
            [("2026-01-04", "attributable", f"h{h:03d}", "EC2 - Other", "1") for h in range(80)],
        )
    url = "/total-costs-per-hub?" + RANGE
    zipped = {"Accept-Encoding": "gzip, deflate"}
    calls = []
    compress = compression.compress
    monkeypatch.setattr(compression, "compress", lambda body: calls.append(1) or compress(body))
    by_middleware = api.get(url, headers=zipped)  # read from the database, then compressed
    answers = [api.get(url, headers=zipped) for _ in range(3)]  # from the cache
    assert len(calls) == 1
    for answer in answers:
        assert answer.headers["content-encoding"] == "gzip"
        assert answer.content == by_middleware.content  # decoded by the client
        for header in ("content-type", "etag", "cache-control", "vary", "x-data-loaded-at"):
            assert answer.headers.get(header) == by_middleware.headers.get(header), header
    assert api.get(url, headers={"Accept-Encoding": "identity"}).content == by_middleware.content
