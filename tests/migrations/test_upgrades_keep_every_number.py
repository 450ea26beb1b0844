"""Each previous release's warehouse, upgraded to head and downgraded back, answers as before.

A release's database (tests/migrations/releases.py: its own migrations, then a month written
in its own columns) is asked every list endpoint in every parameter form
(tests/migrations/answers.py), JSON and CSV, and from 0010 on /budgets and /cost-anomalies
too: status, content type, freshness header and body bytes. Upgraded to head the answers are
the same, also under `/clusters/<name>`, and no fact row has changed; downgraded back to the
release's revision they are the same once more.
"""

from __future__ import annotations

import pytest

from api.endpoints import LIST_ENDPOINTS, ROOT_ENDPOINTS
from core import migrate
from core.database import create_engine
from tests.conftest import READER_ROLE
from tests.migrations import releases
from tests.migrations.answers import differences, every_answer, requests

pytestmark = pytest.mark.slow

CLUSTER = "openscapes"


@pytest.mark.parametrize("release", releases.RELEASES, ids=lambda r: r.revision)
def test_an_upgrade_to_head_and_the_downgrade_back_change_no_answer(release, empty_database_url):
    releases.build(empty_database_url, release)
    engine = create_engine(empty_database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            facts = releases.fact_rows(conn, release)
        endpoints = (*LIST_ENDPOINTS, *ROOT_ENDPOINTS) if release.root_endpoints else None
        urls = None if endpoints is None else requests(endpoints=endpoints)
        before = every_answer(empty_database_url, urls=urls)
        statuses = [status for status, *_ in before.values()]
        assert statuses.count(200) > 300 and statuses.count(422) > 20
        assert sum(len(body) > 1000 for *_, body in before.values()) > 100  # real answers
        if release.root_endpoints:  # the release's budgets and anomalies are in the answers
            assert before["/budgets?as_of=2025-12-15"][3].count(b'"name":') == 5
            assert before["/cost-anomalies?from=2025-12-01&to=2025-12-31"][3].count(b'"date":') == 2

        assert migrate.upgrade(engine, api_db_role=READER_ROLE, cluster_name=CLUSTER) == (
            migrate.head_revision()
        )
        assert differences(before, every_answer(empty_database_url, urls=urls)) == []
        # The list endpoints of one cluster's contract: its facts' cluster, or the one the
        # upgrade named.
        prefix = f"/clusters/{release.cluster or CLUSTER}"
        scoped = every_answer(empty_database_url, prefix=prefix)
        assert differences(every_answer(empty_database_url), scoped) == []
        with engine.connect() as conn:
            assert releases.fact_rows(conn, release) == facts

        migrate.downgrade(engine, api_db_role=READER_ROLE, revision=release.revision)
        with engine.connect() as conn:
            assert migrate.current_revision(conn) == release.revision
            assert releases.fact_rows(conn, release) == facts
        assert differences(before, every_answer(empty_database_url, urls=urls)) == []
    finally:
        engine.dispose()
