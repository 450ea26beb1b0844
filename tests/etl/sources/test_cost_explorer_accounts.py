"""Per-cluster Cost Explorer access: linked accounts, strict cluster tags, profiles, AssumeRole.

The requests are checked exactly (botocore's Stubber, which also validates them against the
Cost Explorer model); AssumeRole runs against a local STS endpoint that asserts the request,
and the Cost Explorer request that follows is checked to be signed with the assumed key.
"""

from __future__ import annotations

import datetime as dt
import inspect
import re
import threading
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs

import pytest
from botocore.stub import Stubber

from core.clusters import ClusterConfig, cluster_from_env
from core.settings import Settings
from etl.sources import cost_explorer
from etl.sources.cost_explorer import (
    CostQuery,
    CredentialsError,
    RequestCounter,
    fetch_costs,
    make_client,
    slice_requests,
)
from tests.etl.sources.aws_endpoint import answer
from tests.etl.sources.test_cost_explorer import (
    ATTRIBUTABLE,
    BY_HUB_SERVICE,
    BY_SERVICE,
    CORE,
    EXPECTED_REQUESTS,
    USAGE,
    V,
    request,
)
from tests.local_http import LocalHTTPServer

FIRST, LAST = dt.date(2025, 9, 1), dt.date(2025, 9, 2)
ACCOUNT = "123456789012"
LINKED = {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": [ACCOUNT]}}
HOME_NFS = {"Tags": {"Key": V, "Values": ["home-nfs"], "MatchOptions": ["EQUALS"]}}
STRICT_ATTRIBUTABLE = {"Or": ATTRIBUTABLE["Or"][:3]}
ROLE = "arn:aws:iam::123456789012:role/hubcost-ce"
AMBIENT_KEY = "AKIDAMBIENT"
ASSUMED_KEY = "ASIAASSUMEDKEY"
ASSUMED_SECRET = "assumed-secret-s3cret"
ASSUMED_TOKEN = "assumed-session-token"


def expected(attributable, *base):
    """The four requests of docs/attribution.md §2.2 with `base` instead of the usage filter."""
    account = {"And": list(base)} if len(base) > 1 else base[0]
    return {
        "account": request(account, BY_SERVICE),
        "attributable": request({"And": [*base, attributable]}, BY_HUB_SERVICE),
        "home": request({"And": [*base, attributable, HOME_NFS]}, BY_HUB_SERVICE),
        "core": request({"And": [*base, attributable, CORE]}, BY_HUB_SERVICE),
    }


@pytest.fixture
def dummy_aws(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AMBIENT_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "ambient-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_STS",
        "AWS_ENDPOINT_URL_COST_EXPLORER",
    ):
        monkeypatch.delenv(name, raising=False)


def stubbed_requests(query: CostQuery, expected_requests: dict, slices=None) -> int:
    """Fetch through a Stubber that expects exactly `expected_requests`, in slice order."""
    client = make_client()
    stubber = Stubber(client)
    for params in expected_requests.values():
        stubber.add_response("get_cost_and_usage", answer([]), params)
    counter = RequestCounter()
    with stubber:
        list(fetch_costs(client, query, first=FIRST, last=LAST, counter=counter, slices=slices))
    stubber.assert_no_pending_responses()
    return counter.count


def assert_valid_expression(expression: dict) -> None:
    """What Cost Explorer asks of an Expression beyond its shape: one operator each, And/Or of
    two or more, Not of one (botocore checks the shape, not these)."""
    operators = [k for k in expression if k in ("And", "Or", "Not", "Dimensions", "Tags")]
    assert len(operators) == 1 == len(expression), expression
    (operator,) = operators
    if operator in ("And", "Or"):
        assert len(expression[operator]) >= 2, expression
        for item in expression[operator]:
            assert_valid_expression(item)
    elif operator == "Not":
        assert_valid_expression(expression["Not"])
    else:
        assert expression[operator]["Key"]


# --- the requests ----------------------------------------------------------------------------


def test_a_linked_account_is_in_every_slice_s_filter(dummy_aws):
    query = CostQuery.from_cluster(ClusterConfig(name="c1", aws_account_id=ACCOUNT))
    assert query.linked_account == ACCOUNT and not query.strict_cluster_tags
    requests = expected(ATTRIBUTABLE, USAGE, LINKED)
    assert requests["account"]["Filter"] == {"And": [USAGE, LINKED]}
    assert stubbed_requests(query, requests) == 4


def test_strict_cluster_tags_keep_the_three_cluster_tag_alternatives(dummy_aws):
    query = CostQuery.from_cluster(ClusterConfig(name="c1", strict_cluster_tags=True))
    assert [next(iter(alt["Tags"].values())) for alt in STRICT_ATTRIBUTABLE["Or"]] == [
        "alpha.eksctl.io/cluster-name",
        "kubernetes.io/cluster/c1",
        "2i2c.org/cluster-name",
    ]
    requests = expected(STRICT_ATTRIBUTABLE, USAGE)
    assert requests["account"] == EXPECTED_REQUESTS["account"]
    assert stubbed_requests(query, requests) == 4


def test_a_strict_cluster_of_a_linked_account(dummy_aws):
    query = CostQuery.from_cluster(
        ClusterConfig(name="c1", aws_account_id=ACCOUNT, strict_cluster_tags=True)
    )
    assert stubbed_requests(query, expected(STRICT_ATTRIBUTABLE, USAGE, LINKED)) == 4


def test_without_an_account_or_strict_tags_the_requests_are_today_s(dummy_aws):
    cluster = ClusterConfig(name="c1", aws_role_arn=ROLE)  # a role's own account: no filter
    assert CostQuery.from_cluster(cluster) == CostQuery(cluster_name="c1")
    assert stubbed_requests(CostQuery.from_cluster(cluster), EXPECTED_REQUESTS) == 4


@pytest.mark.parametrize(
    "query",
    [
        CostQuery(cluster_name="c1"),
        CostQuery(cluster_name="c1", linked_account=ACCOUNT),
        CostQuery(cluster_name="c1", strict_cluster_tags=True),
        CostQuery(cluster_name="c1", linked_account=ACCOUNT, strict_cluster_tags=True),
    ],
)
def test_every_filter_is_a_valid_cost_explorer_expression(query):
    for filter_, _ in slice_requests(query).values():
        assert_valid_expression(filter_)


def test_a_fetch_can_leave_out_the_account_slice(dummy_aws):
    query = CostQuery(cluster_name="c1", linked_account=ACCOUNT, strict_cluster_tags=True)
    requests = expected(STRICT_ATTRIBUTABLE, USAGE, LINKED)
    del requests["account"]
    assert stubbed_requests(query, requests, slices=("attributable", "home", "core")) == 3


def test_the_query_of_the_environment_s_cluster_is_the_settings_one():
    environ = {
        "CLUSTER_NAME": "c2",
        "HUB_TAG_KEY": "hub",
        "COST_METRIC": "AmortizedCost",
        "COST_RECORD_TYPES": "Usage,Credit",
    }
    assert CostQuery.from_cluster(cluster_from_env(environ)) == CostQuery.from_settings(
        Settings.from_env(environ)
    )


# --- the client ------------------------------------------------------------------------------


class AwsEndpoint(LocalHTTPServer):
    """A local AWS endpoint: `respond(headers, body) -> (status, content type, bytes)`."""

    def __init__(self, respond):
        self.requests: list[tuple[dict, bytes]] = []
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with endpoint._lock:
                    endpoint.requests.append((headers, body))
                status, content_type, payload = respond(headers, body)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        super().__init__(Handler)


def signing_key_id(headers: dict) -> str:
    """The access key id in a SigV4 Authorization header (Credential=<key id>/<scope>)."""
    match = re.search(r"Credential=([^/]+)/", headers.get("authorization", ""))
    assert match, headers
    return match[1]


def assume_role_answer(expires_in: dt.timedelta) -> bytes:
    expiration = (dt.datetime.now(dt.UTC) + expires_in).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"""<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>{ASSUMED_KEY}</AccessKeyId>
      <SecretAccessKey>{ASSUMED_SECRET}</SecretAccessKey>
      <SessionToken>{ASSUMED_TOKEN}</SessionToken>
      <Expiration>{expiration}</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <AssumedRoleId>AROAEXAMPLE:hubcost</AssumedRoleId>
      <Arn>arn:aws:sts::123456789012:assumed-role/hubcost-ce/hubcost</Arn>
    </AssumedRoleUser>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata>
</AssumeRoleResponse>""".encode()


def fake_sts(*, expires_in=dt.timedelta(hours=1), refuse: str | None = None) -> AwsEndpoint:
    def respond(headers, body):
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        # Only AssumeRole is ever asked, for the configured role, as "hubcost", signed with
        # the ambient credentials.
        assert form == {
            "Action": "AssumeRole",
            "Version": "2011-06-15",
            "RoleArn": ROLE,
            "RoleSessionName": "hubcost",
        }, form
        assert signing_key_id(headers) == AMBIENT_KEY
        assert "/us-east-1/sts/aws4_request" in headers["authorization"]
        if refuse:
            error = (
                '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
                f"<Type>Sender</Type><Code>{refuse}</Code><Message>not authorized</Message>"
                "</Error><RequestId>r-2</RequestId></ErrorResponse>"
            )
            return 403, "text/xml", error.encode()
        return 200, "text/xml", assume_role_answer(expires_in)

    return AwsEndpoint(respond)


def fake_ce() -> AwsEndpoint:
    import json

    return AwsEndpoint(
        lambda headers, body: (200, "application/x-amz-json-1.1", json.dumps(answer([])).encode())
    )


def test_assume_role_credentials_sign_the_cost_explorer_requests(dummy_aws):
    cluster = ClusterConfig(name="c1", aws_role_arn=ROLE)
    with fake_sts() as sts, fake_ce() as ce:
        client = make_client(cluster, endpoint_url=ce.url, sts_endpoint_url=sts.url)
        assert sts.requests == []  # nothing is asked before the first request
        counter = RequestCounter()
        list(
            fetch_costs(
                client,
                CostQuery.from_cluster(cluster),
                first=FIRST,
                last=LAST,
                counter=counter,
            )
        )
    assert counter.count == 4
    assert len(sts.requests) == 1  # one AssumeRole, its credentials kept until near expiry
    for headers, _ in ce.requests:
        assert headers["x-amz-target"] == "AWSInsightsIndexService.GetCostAndUsage"
        assert signing_key_id(headers) == ASSUMED_KEY
        assert headers["x-amz-security-token"] == ASSUMED_TOKEN
    assert len(ce.requests) == 4


def test_assumed_credentials_are_asked_again_before_they_expire(dummy_aws):
    cluster = ClusterConfig(name="c1", aws_role_arn=ROLE)
    with fake_sts(expires_in=dt.timedelta(minutes=5)) as sts, fake_ce() as ce:
        client = make_client(cluster, endpoint_url=ce.url, sts_endpoint_url=sts.url)
        query = CostQuery.from_cluster(cluster)
        list(fetch_costs(client, query, first=FIRST, last=LAST, counter=RequestCounter()))
    # Within botocore's 10-minute mandatory window: fresh credentials before each request.
    assert len(sts.requests) == len(ce.requests) == 4
    assert {signing_key_id(headers) for headers, _ in ce.requests} == {ASSUMED_KEY}


def test_a_refused_assume_role_stops_with_a_credentials_error(dummy_aws):
    cluster = ClusterConfig(name="c1", aws_role_arn=ROLE)
    with fake_sts(refuse="AccessDenied") as sts, fake_ce() as ce:
        client = make_client(cluster, endpoint_url=ce.url, sts_endpoint_url=sts.url)
        with pytest.raises(CredentialsError) as info:
            list(
                fetch_costs(
                    client,
                    CostQuery.from_cluster(cluster),
                    first=FIRST,
                    last=LAST,
                    counter=RequestCounter(),
                )
            )
    assert str(info.value) == (
        f"AWS STS refused AssumeRole of {ROLE} (AccessDenied): check the role's trust policy "
        "and the caller's sts:AssumeRole permission"
    )
    assert len(sts.requests) == 1 and ce.requests == []


def test_assume_role_without_ambient_credentials_names_the_problem(dummy_aws, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    cluster = ClusterConfig(name="c1", aws_role_arn=ROLE)
    with fake_sts() as sts, fake_ce() as ce:
        client = make_client(cluster, endpoint_url=ce.url, sts_endpoint_url=sts.url)
        with pytest.raises(CredentialsError, match=f"to assume {re.escape(ROLE)} are missing"):
            list(
                fetch_costs(
                    client,
                    CostQuery(cluster_name="c1"),
                    first=FIRST,
                    last=LAST,
                    counter=RequestCounter(),
                )
            )
    assert sts.requests == [] and ce.requests == []


def test_boto3_s_own_endpoint_variables_reach_both_clients(dummy_aws, monkeypatch):
    cluster = ClusterConfig(name="c1", aws_role_arn=ROLE)
    with fake_sts() as sts, fake_ce() as ce:
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", sts.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_COST_EXPLORER", ce.url)
        client = make_client(cluster)
        list(
            fetch_costs(
                client,
                CostQuery(cluster_name="c1"),
                first=FIRST,
                last=FIRST,
                counter=RequestCounter(),
            )
        )
    assert len(sts.requests) == 1
    assert [signing_key_id(headers) for headers, _ in ce.requests] == [ASSUMED_KEY] * 4


def test_a_profile_and_a_region_are_honoured(dummy_aws, monkeypatch, tmp_path):
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[payer]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = profile-secret\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    cluster = ClusterConfig(name="c1", aws_profile="payer", aws_region="eu-west-1")
    with fake_ce() as ce:
        client = make_client(cluster, endpoint_url=ce.url)
        assert client.meta.region_name == "eu-west-1"
        list(
            fetch_costs(
                client,
                CostQuery(cluster_name="c1"),
                first=FIRST,
                last=FIRST,
                counter=RequestCounter(),
            )
        )
    assert [signing_key_id(headers) for headers, _ in ce.requests] == ["AKIDPROFILE"] * 4
    assert all("/eu-west-1/ce/aws4_request" in h["authorization"] for h, _ in ce.requests)


def test_a_profile_the_files_lack_is_a_credentials_error(dummy_aws):
    with pytest.raises(CredentialsError, match="the AWS profile 'nowhere' is not in"):
        make_client(ClusterConfig(name="c1", aws_profile="nowhere"))


def test_make_client_takes_its_region_from_its_arguments_not_the_environment(
    dummy_aws, monkeypatch
):
    # Cost Explorer answers from one endpoint per partition: the region picks the partition.
    monkeypatch.setenv("AWS_REGION", "cn-north-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "cn-north-1")
    assert make_client().meta.endpoint_url == "https://ce.us-east-1.amazonaws.com"
    china = make_client(ClusterConfig(name="c", aws_region="cn-north-1"))
    assert china.meta.endpoint_url.endswith(".amazonaws.com.cn")
    # The environment's region reaches the client through the settings' cluster instead.
    assert cluster_from_env({"AWS_REGION": "cn-north-1"}).aws_region == "cn-north-1"
    assert "os.environ" not in inspect.getsource(cost_explorer)


def test_the_sts_client_has_the_cost_explorer_client_s_timeouts_and_retries(dummy_aws, monkeypatch):
    seen = []
    real_session = cost_explorer._assumed_role_session

    def spy(sts, role_arn, *, profile):
        seen.append(sts)
        return real_session(sts, role_arn, profile=profile)

    monkeypatch.setattr(cost_explorer, "_assumed_role_session", spy)
    client = make_client(ClusterConfig(name="c", aws_role_arn=ROLE))
    (sts,) = seen
    assert sts.meta.service_model.service_name == "sts"
    for made in (sts, client):
        assert made.meta.config.connect_timeout == cost_explorer.CONNECT_TIMEOUT_S == 10
        assert made.meta.config.read_timeout == cost_explorer.READ_TIMEOUT_S == 60
        assert made.meta.config.retries["mode"] == "standard"
        # botocore counts the first attempt too: 7 retries after it.
        assert made.meta.config.retries["total_max_attempts"] == cost_explorer.RETRIES + 1 == 8
    assert sts.meta.region_name == "us-east-1"
    regional = []
    monkeypatch.setattr(
        cost_explorer,
        "_assumed_role_session",
        lambda sts, role_arn, *, profile: (
            regional.append(sts) or real_session(sts, role_arn, profile=profile)
        ),
    )
    make_client(ClusterConfig(name="c", aws_role_arn=ROLE, aws_region="eu-west-1"))
    assert regional[0].meta.region_name == "eu-west-1"
