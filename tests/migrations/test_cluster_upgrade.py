"""Revision 0006 adds the cluster to a loaded single-cluster warehouse without changing an answer.

The warehouse is loaded at 0005 (no cluster column), every endpoint is asked in several
parameter forms, the database is upgraded with the configured cluster name, and every answer
(JSON and CSV, body and status) is the same; the downgrade gives them back once more.
"""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from api.endpoints import LIST_ENDPOINTS
from core import migrate
from core.database import create_engine
from tests.api.conftest import api_settings, fixed_clock
from tests.conftest import READER_ROLE
from tests.migrations.releases import load_contract_days_at_0005
from tests.rows import select_all

FORMS = (
    "",
    "?from=2026-01-01&to=2026-01-10",
    "?from=2026-01-04&to=2026-01-05&hub=prod",
    "?from=2026-01-04&to=2026-01-05&usergroup=g1",
    "?from=2026-01-04&to=2026-01-05&limit=1",
    "?from=2026-01-04&to=2026-01-05&hub=staging&component=compute&format=csv",
)


def _answers(database_url: str) -> dict[str, tuple[int, str]]:
    app = create_app(api_settings(), database_url=database_url, clock=fixed_clock)
    with TestClient(app) as client:
        return {
            path + form: (answer.status_code, answer.text)
            for spec in LIST_ENDPOINTS
            for path in (spec.path,)
            for form in FORMS
            for answer in (client.get(path + form),)
        }


@pytest.mark.slow
def test_a_loaded_warehouse_upgraded_to_clusters_answers_every_endpoint_as_before(
    empty_database_url,
):
    engine = create_engine(empty_database_url, pool_size=1)
    try:
        migrate.upgrade(engine, api_db_role=READER_ROLE, revision="0005")
        with engine.begin() as conn:
            load_contract_days_at_0005(conn)
        before = _answers(empty_database_url)
        assert sum(status == 200 and body not in ("[]", "") for status, body in before.values())

        migrate.upgrade(engine, api_db_role=READER_ROLE, cluster_name="openscapes")
        assert _answers(empty_database_url) == before
        with engine.connect() as conn:
            for table in ("cost", "usage", "user_group_snapshot", "run_log"):
                assert select_all(conn, f"SELECT DISTINCT cluster FROM {table}") == [
                    ("openscapes",)
                ]
            assert select_all(conn, "SELECT DISTINCT cluster FROM etl_status") == [("openscapes",)]
            assert select_all(conn, "SELECT name FROM cluster") == [("openscapes",)]

        migrate.downgrade(engine, api_db_role=READER_ROLE, revision="0005")
        assert _answers(empty_database_url) == before
    finally:
        engine.dispose()


def test_without_a_configured_name_the_rows_go_to_the_default_cluster(empty_database_url):
    engine = create_engine(empty_database_url, pool_size=1)
    try:
        migrate.upgrade(engine, api_db_role=READER_ROLE, revision="0005")
        with engine.begin() as conn:
            load_contract_days_at_0005(conn)
        migrate.upgrade(engine, api_db_role=READER_ROLE)
        with engine.connect() as conn:
            assert select_all(conn, "SELECT DISTINCT cluster FROM cost") == [("default",)]
    finally:
        engine.dispose()


def test_the_downgrade_refuses_to_mix_two_clusters(empty_database_url):
    from tests.rows import add_costs

    engine = create_engine(empty_database_url, pool_size=1)
    try:
        migrate.upgrade(engine, api_db_role=READER_ROLE)
        with engine.begin() as conn:
            add_costs(conn, [("2026-01-04", "account", None, "EC2 - Other", "1")], cluster="a")
            add_costs(conn, [("2026-01-04", "account", None, "EC2 - Other", "2")], cluster="b")
        with pytest.raises(RuntimeError, match="several clusters"):
            migrate.downgrade(engine, api_db_role=READER_ROLE, revision="0005")
        with engine.connect() as conn:
            assert select_all(conn, "SELECT count(*) FROM cost") == [(2,)]
    finally:
        engine.dispose()
