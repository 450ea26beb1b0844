"""The Cost Explorer source: exact requests, pages, retries, credentials, stored rows."""

import datetime as dt
import json
import time
from decimal import Decimal

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from etl.load import save_costs
from etl.sources.cost_explorer import (
    CostExplorerError,
    CostQuery,
    CredentialsError,
    RequestCounter,
    fetch_costs,
    make_client,
)
from tests.etl.sources.aws_endpoint import FakeCostExplorer, answer
from tests.rows import CLUSTER, select_all

H = "2i2c:hub-name"
N = "2i2c:node-purpose"
V = "2i2c:volume-purpose"
QUERY = CostQuery(cluster_name="c1")
FIRST, LAST = dt.date(2025, 9, 1), dt.date(2025, 9, 2)

USAGE = {"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Usage"]}}
ATTRIBUTABLE = {
    "Or": [
        {
            "Tags": {
                "Key": "alpha.eksctl.io/cluster-name",
                "Values": ["c1"],
                "MatchOptions": ["EQUALS"],
            }
        },
        {
            "Tags": {
                "Key": "kubernetes.io/cluster/c1",
                "Values": ["owned"],
                "MatchOptions": ["EQUALS"],
            }
        },
        {"Tags": {"Key": "2i2c.org/cluster-name", "Values": ["c1"], "MatchOptions": ["EQUALS"]}},
        {"Not": {"Tags": {"Key": H, "MatchOptions": ["ABSENT"]}}},
        {"Not": {"Tags": {"Key": N, "MatchOptions": ["ABSENT"]}}},
    ]
}
EC2_OTHER = {"Dimensions": {"Key": "SERVICE", "Values": ["EC2 - Other"]}}
NODE_CORE = {"Tags": {"Key": N, "Values": ["core"], "MatchOptions": ["EQUALS"]}}
CORE = {
    "Or": [
        {"And": [EC2_OTHER, NODE_CORE]},
        {
            "And": [
                {
                    "Dimensions": {
                        "Key": "SERVICE",
                        "Values": ["Amazon Elastic Compute Cloud - Compute"],
                    }
                },
                NODE_CORE,
            ]
        },
        {
            "And": [
                EC2_OTHER,
                {
                    "Dimensions": {
                        "Key": "USAGE_TYPE_GROUP",
                        "Values": [
                            "EC2: NAT Gateway - Running Hours",
                            "EC2: NAT Gateway - Data Processed",
                        ],
                    }
                },
            ]
        },
        {
            "And": [
                EC2_OTHER,
                {
                    "Tags": {
                        "Key": "kubernetes.io/created-for/pvc/name",
                        "Values": ["hub-db-dir"],
                        "MatchOptions": ["EQUALS"],
                    }
                },
            ]
        },
        {
            "And": [
                EC2_OTHER,
                {
                    "Tags": {
                        "Key": "kubernetes.io/created-for/pvc/namespace",
                        "Values": ["support"],
                        "MatchOptions": ["EQUALS"],
                    }
                },
            ]
        },
    ]
}
BY_SERVICE = [{"Type": "DIMENSION", "Key": "SERVICE"}]
BY_HUB_SERVICE = [{"Type": "TAG", "Key": H}, {"Type": "DIMENSION", "Key": "SERVICE"}]
PERIOD = {"Start": "2025-09-01", "End": "2025-09-03"}  # End is exclusive


def request(filter_, group_by, token=None):
    r = {
        "TimePeriod": PERIOD,
        "Granularity": "DAILY",
        "Metrics": ["UnblendedCost"],
        "Filter": filter_,
        "GroupBy": group_by,
    }
    if token:
        r["NextPageToken"] = token
    return r


EXPECTED_REQUESTS = {
    "account": request(USAGE, BY_SERVICE),
    "attributable": request({"And": [USAGE, ATTRIBUTABLE]}, BY_HUB_SERVICE),
    "home": request(
        {
            "And": [
                USAGE,
                ATTRIBUTABLE,
                {"Tags": {"Key": V, "Values": ["home-nfs"], "MatchOptions": ["EQUALS"]}},
            ]
        },
        BY_HUB_SERVICE,
    ),
    "core": request({"And": [USAGE, ATTRIBUTABLE, CORE]}, BY_HUB_SERVICE),
}


@pytest.fixture
def dummy_aws(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
    ):
        monkeypatch.delenv(name, raising=False)


def test_exact_requests_every_page_and_the_stored_rows(dummy_aws, conn):
    client = make_client()
    stubber = Stubber(client)
    stubber.add_response(
        "get_cost_and_usage",
        answer([("2025-09-01", [(["Amazon Elastic File System"], "3.5")]), ("2025-09-02", [])]),
        EXPECTED_REQUESTS["account"],
    )
    stubber.add_response(
        "get_cost_and_usage",
        answer(
            [
                (
                    "2025-09-01",
                    [
                        ([f"{H}$prod", "EC2 - Other"], "10.9546080266"),
                        ([f"{H}$", "Amazon Mystery"], "0.5"),
                    ],
                )
            ],
            token="page-2",
        ),
        EXPECTED_REQUESTS["attributable"],
    )
    stubber.add_response(
        "get_cost_and_usage",
        answer([("2025-09-02", [([f"{H}$prod", "EC2 - Other"], "1")])], estimated=True),
        dict(EXPECTED_REQUESTS["attributable"], NextPageToken="page-2"),
    )
    stubber.add_response(
        "get_cost_and_usage",
        answer([("2025-09-01", [([f"{H}$prod", "EC2 - Other"], "7.2")])]),
        EXPECTED_REQUESTS["home"],
    )
    stubber.add_response(
        "get_cost_and_usage",
        answer([("2025-09-01", [([f"{H}$prod", "Amazon Elastic Compute Cloud - Compute"], "2")])]),
        EXPECTED_REQUESTS["core"],
    )
    counter = RequestCounter()
    with stubber:
        rows = list(fetch_costs(client, QUERY, first=FIRST, last=LAST, counter=counter))
    stubber.assert_no_pending_responses()
    assert counter.count == 5
    save_costs(conn, rows, cluster=CLUSTER, first=FIRST, last=LAST)
    assert select_all(
        conn,
        "SELECT date::text, slice, hub, service, amount, unit, metric, estimated FROM cost "
        "ORDER BY date, slice, hub, service",
    ) == [
        (
            "2025-09-01",
            "account",
            None,
            "Amazon Elastic File System",
            Decimal("3.5"),
            "USD",
            "UnblendedCost",
            False,
        ),
        (
            "2025-09-01",
            "attributable",
            "prod",
            "EC2 - Other",
            Decimal("10.9546080266"),
            "USD",
            "UnblendedCost",
            False,
        ),
        (
            "2025-09-01",
            "attributable",
            "support",
            "Amazon Mystery",
            Decimal("0.5"),
            "USD",
            "UnblendedCost",
            False,
        ),
        (
            "2025-09-01",
            "core",
            "prod",
            "Amazon Elastic Compute Cloud - Compute",
            Decimal(2),
            "USD",
            "UnblendedCost",
            False,
        ),
        (
            "2025-09-01",
            "home",
            "prod",
            "EC2 - Other",
            Decimal("7.2"),
            "USD",
            "UnblendedCost",
            False,
        ),
        (
            "2025-09-02",
            "attributable",
            "prod",
            "EC2 - Other",
            Decimal(1),
            "USD",
            "UnblendedCost",
            True,
        ),
    ]


def test_configured_metric_record_types_and_tag_keys_reach_the_request(dummy_aws):
    query = CostQuery(
        cluster_name="c2",
        hub_tag_key="hub",
        node_purpose_tag_key="np",
        volume_purpose_tag_key="vp",
        metric="AmortizedCost",
        record_types=("Usage", "Credit"),
    )
    client = make_client()
    stubber = Stubber(client)
    seen = []
    client.meta.events.register(
        "provide-client-params.ce.GetCostAndUsage", lambda params, **kw: seen.append(params)
    )
    for _ in range(4):
        stubber.add_response("get_cost_and_usage", answer([], metric="AmortizedCost"))
    with stubber:
        list(fetch_costs(client, query, first=FIRST, last=FIRST, counter=RequestCounter()))
    assert [r["Metrics"] for r in seen] == [["AmortizedCost"]] * 4
    assert seen[0]["Filter"] == {
        "Dimensions": {"Key": "RECORD_TYPE", "Values": ["Usage", "Credit"]}
    }
    assert seen[0]["TimePeriod"] == {"Start": "2025-09-01", "End": "2025-09-02"}
    assert seen[1]["GroupBy"][0] == {"Type": "TAG", "Key": "hub"}
    home_filter = json.dumps(seen[2]["Filter"])
    assert (
        '"vp"' in home_filter
        and '"np"' in home_filter
        and "kubernetes.io/cluster/c2" in home_filter
    )


def test_throttling_is_retried_and_pages_followed_over_http(dummy_aws, monkeypatch):
    calls = {"n": 0}

    def respond(req):
        calls["n"] += 1
        if calls["n"] == 1:
            return 400, {"__type": "LimitExceededException", "message": "Rate exceeded"}
        if req["GroupBy"] == BY_SERVICE and "NextPageToken" not in req:
            return 200, answer([("2025-09-01", [(["AWS Backup"], "1.25")])], token="t2")
        if req.get("NextPageToken") == "t2":
            return 200, answer([("2025-09-02", [(["AWS Backup"], "2.5")])])
        return 200, answer([])

    with FakeCostExplorer(respond) as fake:
        monkeypatch.setenv("AWS_ENDPOINT_URL", fake.url)
        client = make_client()
        counter = RequestCounter()
        started = time.monotonic()
        rows = list(fetch_costs(client, QUERY, first=FIRST, last=LAST, counter=counter))
        assert time.monotonic() - started < 30
    assert [r["target"] for r in fake.requests] == ["AWSInsightsIndexService.GetCostAndUsage"] * 6
    # The throttled attempt and its retry were the same request; then the second page.
    assert fake.requests[0]["body"] == fake.requests[1]["body"] == EXPECTED_REQUESTS["account"]
    assert fake.requests[2]["body"] == dict(EXPECTED_REQUESTS["account"], NextPageToken="t2")
    # Billed calls: 5 answers (4 slices, one with two pages); the throttled attempt is not one.
    assert counter.count == 5
    assert [(r.date.isoformat(), r.slice, r.service, r.amount) for r in rows] == [
        ("2025-09-01", "account", "AWS Backup", Decimal("1.25")),
        ("2025-09-02", "account", "AWS Backup", Decimal("2.5")),
    ]


def test_throttling_that_never_ends_fails_after_the_configured_attempts(dummy_aws):
    with FakeCostExplorer(lambda req: (400, {"__type": "LimitExceededException"})) as fake:
        client = boto3.client(
            "ce",
            region_name="us-east-1",
            endpoint_url=fake.url,
            config=Config(retries={"mode": "standard", "max_attempts": 2}),
        )
        with pytest.raises(CostExplorerError, match="LimitExceededException"):
            list(fetch_costs(client, QUERY, first=FIRST, last=LAST, counter=RequestCounter()))
    assert len(fake.requests) == 3  # botocore's max_attempts counts retries after the first


def test_invalid_credentials_name_the_problem(dummy_aws, monkeypatch):
    def respond(req):
        return 400, {
            "__type": "UnrecognizedClientException",
            "message": "The security token included in the request is invalid.",
        }

    with FakeCostExplorer(respond) as fake:
        monkeypatch.setenv("AWS_ENDPOINT_URL", fake.url)
        with pytest.raises(CredentialsError, match="UnrecognizedClientException") as info:
            list(
                fetch_costs(make_client(), QUERY, first=FIRST, last=LAST, counter=RequestCounter())
            )
    assert "not-a-secret" not in str(info.value) and "AKIDTEST" not in str(info.value)
    assert len(fake.requests) == 1  # not retried


def test_missing_credentials_name_the_problem(dummy_aws, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    with pytest.raises(CredentialsError, match="missing"):
        list(fetch_costs(make_client(), QUERY, first=FIRST, last=LAST, counter=RequestCounter()))


def test_amounts_are_decimal_strings_and_other_units_fail_the_chunk(dummy_aws, conn):
    client = make_client()
    stubber = Stubber(client)
    stubber.add_response(
        "get_cost_and_usage", answer([("2025-09-01", [(["AWS Backup"], "0.1")])], unit="EUR")
    )
    for _ in range(3):
        stubber.add_response("get_cost_and_usage", answer([]))
    with stubber:
        rows = list(fetch_costs(client, QUERY, first=FIRST, last=LAST, counter=RequestCounter()))
    assert rows[0].amount == Decimal("0.1")
    with pytest.raises(ValueError, match="EUR"):
        save_costs(conn, rows, cluster=CLUSTER, first=FIRST, last=LAST)
