"""End to end: sources → `hubcost etl|backfill` → tables → views → API numbers.

Two runs of the whole path: the demo source through `hubcost etl`, and recorded sources (a
local Cost Explorer endpoint answering canned costs, the real Prometheus with the history of
prometheus_history) through `hubcost backfill`, whose per-user costs are worked out by hand.
"""

import datetime as dt
from contextlib import ExitStack
from decimal import Decimal

import pytest
from starlette.testclient import TestClient

from api.app import create_app
from core.settings import Settings
from etl.sources import cost_explorer
from etl.sources.cost_explorer import CostQuery, RequestCounter, fetch_costs
from etl.sources.demo import DEMO_CLUSTER, DemoCostExplorer
from hubcost import cli
from tests.conftest import READER_ROLE
from tests.etl.sources.aws_endpoint import FakeCostExplorer, answer
from tests.rows import select_all

H = "2i2c:hub-name"


@pytest.fixture(autouse=True)
def cost_explorer_serves_march_2025(monkeypatch):
    """The recorded history is of March 2025: older than Cost Explorer keeps today, so the
    local one is taken to serve it (the cut itself: tests/etl/test_cost_explorer_reach.py)."""
    monkeypatch.setattr(cost_explorer, "oldest_day", lambda today: dt.date(2025, 3, 1))


def api_client(database_url, stack):
    settings = Settings.from_env({"API_DB_ROLE": READER_ROLE})
    client = TestClient(create_app(settings, database_url=database_url))
    stack.enter_context(client)
    return client


def test_demo_through_hubcost_etl_to_the_views_and_the_api(cli_env, engine, database_url):
    assert cli.main(["etl"]) == 0
    today = dt.datetime.now(dt.UTC).date()
    first = today - dt.timedelta(days=6)

    # The views hold what the demo Cost Explorer answered, to the last digit.
    expected = {}
    query = CostQuery(cluster_name=DEMO_CLUSTER)
    for row in fetch_costs(
        DemoCostExplorer(), query, first=first, last=today, counter=RequestCounter()
    ):
        if row.slice in ("account", "attributable"):
            key = (row.date, row.slice)
            expected[key] = expected.get(key, Decimal(0)) + row.amount
    with engine.connect() as conn:
        got = {
            (d, name): cost
            for d, name, cost in select_all(
                conn, "SELECT date, name, cost FROM total_costs WHERE date >= :f", f=first
            )
        }
        assert got == expected
        # Conservation: per-user costs add up to each attributed component cost.
        gaps = select_all(
            conn,
            """SELECT u.date, u.hub, u.component, abs(sum(u.cost) - c.cost)
               FROM user_costs u JOIN component_costs c USING (date, hub, component)
               GROUP BY u.date, u.hub, u.component, c.cost
               HAVING abs(sum(u.cost) - c.cost) > 1e-9""",
        )
        assert gaps == []
        per_user = select_all(
            conn,
            "SELECT username, round(sum(cost), 4) FROM user_costs WHERE date = :d "
            "AND hub = 'prod' AND component = 'compute' GROUP BY username ORDER BY username",
            d=first,
        )
    assert per_user

    with ExitStack() as stack:
        client = api_client(database_url, stack)
        params = {"from": first.isoformat(), "to": today.isoformat()}
        response = client.get("/total-costs", params=params)
        assert response.status_code == 200
        assert {(r["date"], r["name"]): Decimal(str(r["cost"])) for r in response.json()} == {
            (d.isoformat(), name): round(cost, 2) for (d, name), cost in expected.items()
        }
        day = {"from": first.isoformat(), "to": first.isoformat()}
        rows = client.get(
            "/costs-per-user", params={**day, "hub": "prod", "component": "compute"}
        ).json()
        api_users = {}
        for r in rows:
            api_users[r["user"]] = Decimal(str(r["value"]))  # one value per user, any group
        assert sorted(api_users.items()) == [(u, Decimal(v)) for u, v in per_user]


def _recorded_costs(request):
    """Canned Cost Explorer answers for 2025-03-01..03, by slice."""
    group_by = request["GroupBy"]
    days = ["2025-03-01", "2025-03-02", "2025-03-03"]
    if len(group_by) == 1:
        groups = [(["EC2 - Other"], "30"), (["AWS Backup"], "1")]
    else:
        parts = request["Filter"]["And"]
        if len(parts) == 2:  # attributable
            groups = [
                ([f"{H}$prod", "Amazon Elastic Compute Cloud - Compute"], "12"),
                ([f"{H}$prod", "EC2 - Other"], "4"),
                ([f"{H}$prod", "Amazon Elastic File System"], "2"),
                ([f"{H}$staging", "Amazon Elastic Compute Cloud - Compute"], "6"),
                ([f"{H}$", "EC2 - Other"], "3"),
            ]
        elif "Or" in parts[2]:  # core
            groups = [([f"{H}$prod", "Amazon Elastic Compute Cloud - Compute"], "2")]
        else:  # home
            groups = [([f"{H}$prod", "EC2 - Other"], "1")]
    return 200, answer([(d, groups) for d in days])


@pytest.mark.prometheus
def test_recorded_sources_through_hubcost_backfill_give_the_hand_computed_costs(
    cli_env,
    engine,
    database_url,
    prometheus_url,
):
    with FakeCostExplorer(_recorded_costs) as fake:
        cli_env.setenv("CLUSTER_NAME", "c1")
        cli_env.setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
        cli_env.setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret")
        cli_env.setenv("AWS_ENDPOINT_URL", fake.url)
        cli_env.setenv("PROMETHEUS_URL", prometheus_url)
        assert cli.main(["backfill", "--from", "2025-03-01", "--to", "2025-03-03"]) == 0
    assert len(fake.requests) == 4
    with engine.connect() as conn:
        assert select_all(
            conn,
            "SELECT source, first_day::text, last_day::text, status, requests FROM run_log "
            "ORDER BY id",
        ) == [
            ("costs", "2025-03-01", "2025-03-03", "succeeded", 4),
            ("usage", "2025-03-01", "2025-03-01", "succeeded", 4),
            ("usage", "2025-03-02", "2025-03-02", "succeeded", 4),
            ("usage", "2025-03-03", "2025-03-03", "succeeded", 4),
        ]
        # prod: compute 12 + 4 = 16; home moves 1, core moves 2: compute 13, home storage
        # 2 + 1 = 3, core 2. staging: compute 6. support: 3 of compute, no usage.
        assert select_all(
            conn,
            "SELECT hub, component, cost FROM component_costs WHERE date = '2025-03-02' "
            "ORDER BY hub, component",
        ) == [
            ("prod", "compute", Decimal(13)),
            ("prod", "core", Decimal(2)),
            ("prod", "home storage", Decimal(3)),
            ("staging", "compute", Decimal(6)),
            ("support", "compute", Decimal(3)),
        ]
        assert select_all(
            conn, "SELECT hub, component, cost FROM unattributed_costs WHERE date = '2025-03-02'"
        ) == [("support", "compute", Decimal(3))]

    with ExitStack() as stack:
        client = api_client(database_url, stack)
        rows = client.get(
            "/costs-per-user",
            params={"from": "2025-03-02", "to": "2025-03-02", "component": "compute"},
        ).json()
        # prod compute 13 split by GiB-hours: alice 48, bob.smith 16 (of 64); staging 6 all
        # carol's. alice's row repeats once per group row of that day's snapshot.
        assert [(r["hub"], r["user"], r["value"], r["usergroup"]) for r in rows] == [
            ("prod", "alice", 9.75, "multiple"),
            ("prod", "alice", 9.75, "research"),
            ("prod", "alice", 9.75, "staff"),
            ("prod", "bob.smith", 3.25, "none"),
            ("staging", "carol", 6.0, "none"),
        ]
        rows = client.get(
            "/costs-per-user",
            params={
                "from": "2025-03-01",
                "to": "2025-03-01",
                "hub": "prod",
                "component": "home storage",
            },
        ).json()
        # prod home storage 3 by mean GiB: _shared 100, alice 10, dave@x 2 (of 112).
        assert [(r["user"], r["value"]) for r in rows] == [
            ("_shared", round(300 / 112, 4)),
            ("alice", round(30 / 112, 4)),
            ("dave@x", round(6 / 112, 4)),
        ]
        totals = client.get("/total-costs", params={"from": "2025-03-01", "to": "2025-03-01"})
        assert totals.json() == [
            {"date": "2025-03-01", "cost": 31.0, "name": "account"},
            {"date": "2025-03-01", "cost": 27.0, "name": "attributable"},
        ]
