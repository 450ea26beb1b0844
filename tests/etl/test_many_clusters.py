"""Several clusters in one warehouse, through `hubcost backfill` with a HUBCOST_CLUSTERS file.

One payer credential reads three clusters: `a` and `b` share account 111111111111 (both with
strict cluster tags), `c` is in 222222222222. The local Cost Explorer answers by the linked
account each request filters on; `a` and `c` each have a real Prometheus of their own
(promtool-written history), and `c`'s is down, then back.
"""

from __future__ import annotations

import datetime as dt

import pytest

from etl.sources import cost_explorer
from hubcost import cli
from tests.etl.prometheus_history import free_port
from tests.etl.sources.aws_endpoint import FakeCostExplorer, answer
from tests.rows import select_all

H = "2i2c:hub-name"
DAYS = ["2025-03-01", "2025-03-02", "2025-03-03"]
ACCOUNT_TOTAL = {"111111111111": "30", "222222222222": "50"}
WINDOW = ["--from", DAYS[0], "--to", DAYS[-1]]


@pytest.fixture(autouse=True)
def cost_explorer_serves_march_2025(monkeypatch):
    """The recorded history is of March 2025: older than Cost Explorer keeps today, so the
    local one is taken to serve it (the cut itself: tests/etl/test_cost_explorer_reach.py)."""
    monkeypatch.setattr(cost_explorer, "oldest_day", lambda today: dt.date(2025, 3, 1))


def linked_account(request) -> str:
    parts = request["Filter"]["And"] if "And" in request["Filter"] else [request["Filter"]]
    [account] = [
        p["Dimensions"]["Values"][0]
        for p in parts
        if p.get("Dimensions", {}).get("Key") == "LINKED_ACCOUNT"
    ]
    return account


def costs_by_account(request):
    account = linked_account(request)
    if len(request["GroupBy"]) == 1:  # the account slice
        groups = [(["EC2 - Other"], ACCOUNT_TOTAL[account])]
    else:
        groups = [([f"{H}$staging", "Amazon Elastic Compute Cloud - Compute"], "6")]
    return 200, answer([(d, groups) for d in DAYS])


def clusters_file(tmp_path, prometheus_a: str, prometheus_c: str):
    path = tmp_path / "clusters.toml"
    path.write_text(
        f"""
[[cluster]]
name = "a"
aws_account_id = "111111111111"
strict_cluster_tags = true
prometheus_url = "{prometheus_a}"

[[cluster]]
name = "b"
aws_account_id = "111111111111"
strict_cluster_tags = true

[[cluster]]
name = "c"
aws_account_id = "222222222222"
prometheus_url = "{prometheus_c}"
prometheus_timeout_s = 1
"""
    )
    return path


@pytest.fixture(scope="module")
def prometheus_of_c(tmp_path_factory, prometheus_url):
    """A Prometheus server of c's own (same promtool-written history as the session's)."""
    from tests.etl import prometheus_history

    workdir = tmp_path_factory.mktemp("prometheus-c")
    tsdb = workdir / "tsdb"
    tsdb.mkdir()
    prometheus_history.write_history(tsdb, workdir)
    process, url = prometheus_history.start_server(tsdb, workdir)
    yield url
    process.terminate()
    process.wait(timeout=20)


@pytest.mark.prometheus
def test_three_clusters_one_credential_a_shared_account_and_a_failing_cluster(
    cli_env, engine, database_url, prometheus_url, prometheus_of_c, tmp_path
):
    down = f"http://127.0.0.1:{free_port()}"
    cli_env.setenv("AWS_ACCESS_KEY_ID", "AKIDPAYER")
    cli_env.setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret")
    cli_env.setenv("HUBCOST_CLUSTERS", str(clusters_file(tmp_path, prometheus_url, down)))
    with FakeCostExplorer(costs_by_account) as fake:
        cli_env.setenv("AWS_ENDPOINT_URL", fake.url)
        assert cli.main(["backfill", *WINDOW]) == 1  # c's usage failed
        accounts = [linked_account(r["body"]) for r in fake.requests]

    # 4 requests for the account of a and b plus 3 for b (its account slice is a's), 4 for c.
    assert sorted(accounts) == ["111111111111"] * 7 + ["222222222222"] * 4
    with engine.connect() as conn:
        assert select_all(
            conn,
            "SELECT cluster, source, status, requests FROM run_log "
            "WHERE source = 'costs' ORDER BY cluster",
        ) == [
            ("a", "costs", "succeeded", 4),
            ("b", "costs", "succeeded", 3),
            ("c", "costs", "succeeded", 4),
        ]
        # The shared account's total is stored once, under its first cluster.
        assert select_all(
            conn,
            "SELECT cluster, name, sum(cost)::text FROM total_costs GROUP BY 1, 2 ORDER BY 1, 2",
        ) == [
            ("a", "account", "90"),
            ("a", "attributable", "18"),
            ("b", "attributable", "18"),
            ("c", "account", "150"),
            ("c", "attributable", "18"),
        ]
        # Same-named hubs of two clusters stay apart.
        assert select_all(conn, "SELECT DISTINCT cluster, hub FROM hub_costs ORDER BY 1, 2") == [
            ("a", "staging"),
            ("b", "staging"),
            ("c", "staging"),
        ]
        usage = select_all(
            conn,
            "SELECT cluster, status, count(*) FROM run_log WHERE source = 'usage' "
            "GROUP BY 1, 2 ORDER BY 1, 2",
        )
        # a's days loaded; c's first day failed and the rest of c's usage waited.
        assert usage == [("a", "succeeded", 3), ("c", "failed", 1)]
        assert select_all(conn, "SELECT DISTINCT cluster FROM usage") == [("a",)]
    metrics = _get(database_url, "/metrics")
    assert 'hubcost_etl_failed_chunks_24h{cluster="c",source="usage"} 1.0' in metrics
    assert 'hubcost_etl_failed_chunks_24h{cluster="a",source="usage"} 0.0' in metrics

    # c's Prometheus is back: a resumed backfill loads only what is missing.
    cli_env.setenv(
        "HUBCOST_CLUSTERS", str(clusters_file(tmp_path, prometheus_url, prometheus_of_c))
    )
    with FakeCostExplorer(costs_by_account) as fake:
        cli_env.setenv("AWS_ENDPOINT_URL", fake.url)
        assert cli.main(["backfill", *WINDOW, "--resume", "--cluster", "c"]) == 0
        assert fake.requests == []  # c's costs had succeeded
    with engine.connect() as conn:
        [(a_rows,), (c_rows,)] = select_all(
            conn, "SELECT count(*) FROM usage GROUP BY cluster ORDER BY cluster"
        )
        assert a_rows == c_rows > 0  # the same history, from c's own Prometheus
        assert select_all(
            conn,
            "SELECT status, count(*) FROM run_log WHERE cluster = 'c' AND source = 'usage' "
            "GROUP BY 1 ORDER BY 1",
        ) == [("failed", 1), ("succeeded", 3)]


def _get(database_url: str, path: str) -> str:
    from starlette.testclient import TestClient

    from api.app import create_app
    from tests.api.conftest import api_settings

    with TestClient(create_app(api_settings(), database_url=database_url)) as client:
        answer = client.get(path)
    assert answer.status_code == 200
    return answer.text


FORMS = ("", "?hub=staging", "?limit=1", "?component=compute&format=csv")


def _answers(database_url: str, prefix: str) -> dict[str, tuple[int, str]]:
    from starlette.testclient import TestClient

    from api.app import create_app
    from api.endpoints import LIST_ENDPOINTS
    from tests.api.conftest import api_settings

    window = f"from={DAYS[0]}&to={DAYS[-1]}"
    with TestClient(create_app(api_settings(), database_url=database_url)) as client:
        answers = {}
        for spec in LIST_ENDPOINTS:
            for form in FORMS:
                query = f"{form}&{window}" if form else f"?{window}"
                answer = client.get(f"{prefix}{spec.path}{query}")
                answers[spec.path + form] = (answer.status_code, answer.text)
        return answers


@pytest.mark.prometheus
def test_cluster_a_loaded_alone_and_beside_b_and_c_gives_the_same_answers(
    cli_env, database_url, empty_database_url, prometheus_url, prometheus_of_c, tmp_path
):
    from core import migrate
    from core.database import create_engine
    from tests.conftest import READER_ROLE

    engine = create_engine(empty_database_url, pool_size=1)
    try:
        migrate.upgrade(engine, api_db_role=READER_ROLE)
    finally:
        engine.dispose()
    cli_env.setenv("AWS_ACCESS_KEY_ID", "AKIDPAYER")
    cli_env.setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret")
    alone = tmp_path / "alone.toml"
    alone.write_text(
        f'[[cluster]]\nname = "a"\naws_account_id = "111111111111"\n'
        f'strict_cluster_tags = true\nprometheus_url = "{prometheus_url}"\n'
    )
    with FakeCostExplorer(costs_by_account) as fake:
        cli_env.setenv("AWS_ENDPOINT_URL", fake.url)
        cli_env.setenv("HUBCOST_CLUSTERS", str(alone))
        assert cli.main(["backfill", *WINDOW]) == 0
        cli_env.setenv("DATABASE_URL", empty_database_url)
        cli_env.setenv(
            "HUBCOST_CLUSTERS", str(clusters_file(tmp_path, prometheus_url, prometheus_of_c))
        )
        assert cli.main(["backfill", *WINDOW]) == 0

    single = _answers(database_url, "")
    assert sum(status == 200 and body not in ("[]", "") for status, body in single.values()) > 10
    assert _answers(empty_database_url, "/clusters/a") == single


def test_a_cluster_reached_through_its_role_beside_one_read_with_the_payer_s_credentials(
    cli_env, engine, tmp_path
):
    import json

    from tests.etl.sources.test_cost_explorer_accounts import (
        AMBIENT_KEY,
        ASSUMED_KEY,
        ROLE,
        AwsEndpoint,
        fake_sts,
        signing_key_id,
    )

    def ce_answer(headers, body):
        return 200, "application/x-amz-json-1.1", json.dumps(costs_by_role(body)).encode()

    def costs_by_role(body):
        request = json.loads(body)
        if "LINKED_ACCOUNT" not in json.dumps(request["Filter"]):
            request["Filter"] = {
                "And": [
                    request["Filter"],
                    {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": ["222222222222"]}},
                ]
            }
        return costs_by_account(request)[1]

    path = tmp_path / "clusters.toml"
    path.write_text(
        '[[cluster]]\nname = "payer-read"\naws_account_id = "111111111111"\n\n'
        f'[[cluster]]\nname = "own-role"\naws_role_arn = "{ROLE}"\n'
    )
    cli_env.setenv("AWS_ACCESS_KEY_ID", AMBIENT_KEY)
    cli_env.setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret")
    cli_env.setenv("HUBCOST_CLUSTERS", str(path))
    with fake_sts() as sts, AwsEndpoint(ce_answer) as ce:
        cli_env.setenv("AWS_ENDPOINT_URL_STS", sts.url)
        cli_env.setenv("AWS_ENDPOINT_URL_COST_EXPLORER", ce.url)
        assert cli.main(["backfill", *WINDOW]) == 0
    assert len(sts.requests) == 1  # fake_sts asserts AssumeRole of ROLE as session "hubcost"
    signed = [
        (signing_key_id(headers), "LINKED_ACCOUNT" in body.decode())
        for headers, body in ce.requests
    ]
    # The payer's credentials for the linked account, the role's for its own account.
    assert sorted(signed) == [(AMBIENT_KEY, True)] * 4 + [(ASSUMED_KEY, False)] * 4
    with engine.connect() as conn:
        assert select_all(
            conn,
            "SELECT cluster, name, sum(cost)::text FROM total_costs GROUP BY 1, 2 ORDER BY 1, 2",
        ) == [
            ("own-role", "account", "150"),
            ("own-role", "attributable", "18"),
            ("payer-read", "account", "90"),
            ("payer-read", "attributable", "18"),
        ]
