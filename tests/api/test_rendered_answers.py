"""The unfiltered bulk answers read from their rendered days (docs/api.md §3.4).

`/costs-per-user` and `/total-usage` asked for whole (no filter but dates and clusters, no
`limit`, one cluster's form) are the days' texts of `json_rows_daily`; every other form reads
rows as before. Either way the bytes are the row path's (also tests/api/
test_answers_unchanged.py, over every endpoint and form); a schema without the rendered days
(before 0013) is answered from rows.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from api import queries
from api.params import DateRange, Listing
from tests.api.dataset import load_dataset

RANGE = "from=2026-01-03&to=2026-01-06"
DAYS = DateRange(dt.date(2026, 1, 3), dt.date(2026, 1, 6))
IDENTITY = {"Accept-Encoding": "identity"}
BUILD = {"/costs-per-user": queries.costs_per_user, "/total-usage": queries.total_usage}
# The row path itself, not the spy the fixture puts in its place.
STREAM_ROWS = queries.stream_json


@pytest.fixture
def paths(engine, monkeypatch):
    """Which reader answered each request: "rendered" or "rows"."""
    with engine.begin() as conn:
        load_dataset(conn)
        load_dataset(conn, cluster="second")
    read = []
    for name, reader in (("rendered", "stream_rendered_json"), ("rows", "stream_json")):
        monkeypatch.setattr(queries, reader, _spy(read, name, getattr(queries, reader)))
    monkeypatch.setattr(queries, "DAYS_PER_CHUNK", 1)
    return read


def _spy(read: list, name: str, reader):
    def spied(conn, select):
        read.append(name)
        return reader(conn, select)

    return spied


def row_answer(engine, path: str, **listing) -> bytes:
    with engine.connect() as conn:
        select = BUILD[path](Listing(days=DAYS, **listing))
        return b"".join(STREAM_ROWS(conn, select))


@pytest.mark.parametrize("path", BUILD)
def test_whole_answers_of_one_cluster_are_the_rendered_days(engine, make_client, paths, path):
    client = make_client()
    client.app.state.hubcost.stream_threshold = 0  # streamed: one day a chunk
    # One cluster's contract; then a root path with several clusters, whose rows carry
    # `cluster`, which the rendered days do not hold.
    for url, listing in (
        (f"/clusters/second{path}?{RANGE}", {"clusters": ["second"]}),
        (f"{path}?{RANGE}&cluster=default", {"clusters": ["default"], "by_cluster": True}),
    ):
        response = client.get(url, headers=IDENTITY)
        assert response.status_code == 200, response.text
        assert response.content == row_answer(engine, path, **listing)
    assert paths == ["rendered", "rows"]
    empty = client.get(f"/clusters/second{path}?from=2025-01-01&to=2025-01-31")
    assert (empty.status_code, empty.content) == (200, b"[]")
    assert paths[-1] == "rendered"


@pytest.mark.parametrize(
    ("path", "form"),
    [
        *(("/costs-per-user", f) for f in ("hub=prod", "user=alice", "usergroup=g1", "limit=1")),
        *(("/total-usage", f) for f in ("hub=prod", "user=alice", "component=compute")),
    ],
)
def test_filtered_answers_read_rows(engine, make_client, paths, path, form):
    client = make_client()
    response = client.get(f"/clusters/second{path}?{RANGE}&{form}", headers=IDENTITY)
    assert response.status_code == 200, response.text
    assert response.content != b"[]"
    assert paths == ["rows"]


def test_one_cluster_at_the_root_reads_the_rendered_days(engine, make_client, paths):
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM usage WHERE cluster = 'second'"))
        conn.execute(sa.text("DELETE FROM cost WHERE cluster = 'second'"))
        conn.execute(sa.text("DELETE FROM cluster WHERE name = 'second'"))
    client = make_client()
    for path in BUILD:
        response = client.get(f"{path}?{RANGE}", headers=IDENTITY)
        assert response.content == row_answer(engine, path)
        csv = client.get(f"{path}?{RANGE}&format=csv")
        assert csv.headers["content-type"].startswith("text/csv")
    assert paths == ["rendered", "rendered"]


def test_a_schema_without_rendered_days_reads_rows(engine, make_client, paths):
    with engine.begin() as conn:
        conn.execute(sa.text("DROP VIEW json_rows_daily"))
    client = make_client()
    response = client.get(f"/clusters/second/costs-per-user?{RANGE}", headers=IDENTITY)
    assert response.content == row_answer(engine, "/costs-per-user", clusters=["second"])
    assert paths == ["rows"]
