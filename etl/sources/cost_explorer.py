"""AWS Cost Explorer: the four cost slices of docs/attribution.md §2, as CostRow.

`fetch_costs` takes a boto3 `ce` client made at the edge (`make_client`) and sends, per slice,
one `GetCostAndUsage` (DAILY, `TimePeriod.End` exclusive) and one more per `NextPageToken`.
`RequestCounter` counts the calls that returned an answer: what AWS bills ($0.01 each, pages
included). botocore's own retries of a throttled or failed call are extra HTTP requests that
are not counted: AWS does not bill a throttled call.

Cost Explorer serves daily costs from the first day of the month 13 months before the current
(UTC) month onwards (`oldest_day`, docs/attribution.md §7.3): older days are never asked.

Each cluster reaches its costs one of three ways (docs/clusters.md): the ambient credentials;
its `aws_role_arn`, assumed through STS; or a payer account's credentials with its
`aws_account_id`, which every request then filters on (LINKED_ACCOUNT).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from core.schema import SUPPORT_HUB
from etl.load import CostRow
from etl.sources.base import RequestCounter  # counts GetCostAndUsage calls that returned

CONNECT_TIMEOUT_S = 10
READ_TIMEOUT_S = 60
# botocore "standard" retries (throttling, LimitExceededException included, and 5xx) after the
# first attempt, with exponential backoff and jitter.
RETRIES = 7
DEFAULT_REGION = "us-east-1"
# Months of history before the current one that GetCostAndUsage serves at DAILY granularity.
HISTORY_MONTHS = 13
ROLE_SESSION_NAME = "hubcost"

# botocore error codes meaning the credentials are missing, wrong or expired.
CREDENTIAL_ERROR_CODES = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "AccessDeniedException",
    "AuthFailure",
}


class CostExplorerError(RuntimeError):
    """A Cost Explorer answer that cannot be used; the chunk fails."""


class CredentialsError(CostExplorerError):
    """Missing or invalid AWS credentials: the run stops with this one line."""


@dataclass(frozen=True)
class CostQuery:
    """What the requests depend on (settings: docs/attribution.md §2.1, docs/clusters.md).

    `linked_account` (a cluster's aws_account_id) adds a LINKED_ACCOUNT dimension to every
    slice's filter, so a payer account's credentials read that account's costs only;
    `strict_cluster_tags` keeps only the three cluster-tag alternatives of the attributable
    filter, so clusters sharing an account never count each other's tagged resources.
    """

    cluster_name: str
    hub_tag_key: str = "2i2c:hub-name"
    node_purpose_tag_key: str = "2i2c:node-purpose"
    volume_purpose_tag_key: str = "2i2c:volume-purpose"
    metric: str = "UnblendedCost"
    record_types: tuple[str, ...] = ("Usage",)
    linked_account: str | None = None
    strict_cluster_tags: bool = False

    @classmethod
    def from_settings(cls, settings) -> CostQuery:
        """The single-cluster deployment's query (CLUSTER_NAME and its settings)."""
        return cls(
            cluster_name=settings.cluster_name,
            hub_tag_key=settings.hub_tag_key,
            node_purpose_tag_key=settings.node_purpose_tag_key,
            volume_purpose_tag_key=settings.volume_purpose_tag_key,
            metric=settings.cost_metric,
            record_types=settings.cost_record_types,
        )

    @classmethod
    def from_cluster(cls, cluster) -> CostQuery:
        """The query of one `core.clusters.ClusterConfig`."""
        return cls(
            cluster_name=cluster.name,
            hub_tag_key=cluster.hub_tag_key,
            node_purpose_tag_key=cluster.node_purpose_tag_key,
            volume_purpose_tag_key=cluster.volume_purpose_tag_key,
            metric=cluster.cost_metric,
            record_types=cluster.cost_record_types,
            linked_account=cluster.aws_account_id,
            strict_cluster_tags=cluster.strict_cluster_tags,
        )


def oldest_day(today: dt.date) -> dt.date:
    """The oldest day Cost Explorer still serves: the 1st of the month HISTORY_MONTHS before."""
    months = today.year * 12 + today.month - 1 - HISTORY_MONTHS
    return dt.date(months // 12, months % 12 + 1, 1)


def client_config():
    """Timeouts and retries of every AWS client hubcost makes (Cost Explorer and STS)."""
    from botocore.config import Config

    return Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        retries={"mode": "standard", "max_attempts": RETRIES},
    )


def make_client(
    cluster=None, *, endpoint_url: str | None = None, sts_endpoint_url: str | None = None
):
    """The boto3 `ce` client of a cluster, with explicit timeouts and retries (made at the edge).

    `cluster` (a `core.clusters.ClusterConfig`, or None) picks the credentials: boto3's
    ambient chain, from `aws_profile` when set; with `aws_role_arn`, credentials that STS
    AssumeRole (RoleSessionName "hubcost") returns for that role, asked for on the first
    request and again before they expire. `aws_region` (default us-east-1) is the region of
    both clients. Nothing here reads the process environment (boto3's chain does, as always).
    """
    import boto3
    from botocore.exceptions import ProfileNotFound

    region = getattr(cluster, "aws_region", None) or DEFAULT_REGION
    profile = getattr(cluster, "aws_profile", None)
    role_arn = getattr(cluster, "aws_role_arn", None)
    config = client_config()
    try:
        # A session of its own: boto3's default session caches credentials and is not
        # thread-safe. Its service models come from the one loader all sessions share.
        session = boto3.session.Session(botocore_session=_botocore_session(profile))
        if role_arn is not None:
            sts = session.client(
                "sts", region_name=region, config=config, endpoint_url=sts_endpoint_url
            )
            session = _assumed_role_session(sts, role_arn, profile=profile)
        return session.client("ce", region_name=region, config=config, endpoint_url=endpoint_url)
    except ProfileNotFound:
        raise CredentialsError(
            f"the AWS profile {profile!r} is not in the AWS config or credentials files"
        ) from None


@functools.cache
def _models():
    """botocore's loader of service models and endpoints, made once: each session made its
    own and read the same JSON files again (20 clusters: 20 times)."""
    import botocore.loaders

    return botocore.loaders.create_loader()


def _botocore_session(profile: str | None):
    """A botocore session of `profile` (None: the ambient chain's) on the shared loader."""
    import botocore.session

    session = botocore.session.Session(profile=profile)
    session.register_component("data_loader", _models())
    return session


def _assumed_role_session(sts, role_arn: str, *, profile: str | None):
    """A boto3 session whose credentials are `role_arn`'s, refreshed through `sts`."""
    import boto3
    from botocore.credentials import (
        CredentialProvider,
        CredentialResolver,
        DeferredRefreshableCredentials,
    )

    def assume_role() -> dict:
        from botocore.exceptions import (
            ClientError,
            NoCredentialsError,
            PartialCredentialsError,
            TokenRetrievalError,
        )

        try:
            answer = sts.assume_role(RoleArn=role_arn, RoleSessionName=ROLE_SESSION_NAME)
        except (NoCredentialsError, PartialCredentialsError, TokenRetrievalError) as exc:
            raise CredentialsError(
                f"AWS credentials to assume {role_arn} are missing ({type(exc).__name__}): "
                "configure AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a web identity"
            ) from None
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise CredentialsError(
                f"AWS STS refused AssumeRole of {role_arn} ({code}): check the role's trust "
                "policy and the caller's sts:AssumeRole permission"
            ) from None
        credentials = answer["Credentials"]
        expiration = credentials["Expiration"]
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": expiration.isoformat()
            if isinstance(expiration, dt.datetime)
            else str(expiration),
        }

    class AssumedRole(CredentialProvider):
        METHOD = CANONICAL_NAME = "hubcost-assume-role"

        def load(self):
            return DeferredRefreshableCredentials(refresh_using=assume_role, method=self.METHOD)

    core = _botocore_session(profile)
    core.register_component("credential_provider", CredentialResolver([AssumedRole()]))
    return boto3.session.Session(botocore_session=core)


def slice_requests(query: CostQuery) -> dict[str, tuple[dict, list[dict]]]:
    """slice → (Filter, GroupBy), exactly as docs/attribution.md §2.2 lists them."""
    cluster, hub_key = query.cluster_name, query.hub_tag_key
    node_key, volume_key = query.node_purpose_tag_key, query.volume_purpose_tag_key
    usage = {"Dimensions": {"Key": "RECORD_TYPE", "Values": list(query.record_types)}}
    cluster_tags = [
        _tag_equals("alpha.eksctl.io/cluster-name", cluster),
        _tag_equals(f"kubernetes.io/cluster/{cluster}", "owned"),
        _tag_equals("2i2c.org/cluster-name", cluster),
    ]
    # Any hub- or node-purpose-tagged resource counts too, unless the account holds other
    # clusters (strict_cluster_tags): their resources carry those tags as well.
    hub_or_node_tagged = [
        {"Not": {"Tags": {"Key": hub_key, "MatchOptions": ["ABSENT"]}}},
        {"Not": {"Tags": {"Key": node_key, "MatchOptions": ["ABSENT"]}}},
    ]
    attributable = {
        "Or": cluster_tags if query.strict_cluster_tags else [*cluster_tags, *hub_or_node_tagged]
    }
    ec2_other = {"Dimensions": {"Key": "SERVICE", "Values": ["EC2 - Other"]}}
    core = {
        "Or": [
            {"And": [ec2_other, _tag_equals(node_key, "core")]},
            {
                "And": [
                    {
                        "Dimensions": {
                            "Key": "SERVICE",
                            "Values": ["Amazon Elastic Compute Cloud - Compute"],
                        }
                    },
                    _tag_equals(node_key, "core"),
                ]
            },
            {
                "And": [
                    ec2_other,
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
            {"And": [ec2_other, _tag_equals("kubernetes.io/created-for/pvc/name", "hub-db-dir")]},
            {
                "And": [
                    ec2_other,
                    _tag_equals("kubernetes.io/created-for/pvc/namespace", "support"),
                ]
            },
        ]
    }
    by_service = [{"Type": "DIMENSION", "Key": "SERVICE"}]
    by_hub_service = [{"Type": "TAG", "Key": hub_key}, {"Type": "DIMENSION", "Key": "SERVICE"}]
    # What every slice keeps to: the record types, and the cluster's linked account if set.
    base = [usage]
    if query.linked_account is not None:
        base.append({"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": [query.linked_account]}})
    return {
        "account": ({"And": base} if len(base) > 1 else usage, by_service),
        "attributable": ({"And": [*base, attributable]}, by_hub_service),
        "home": (
            {"And": [*base, attributable, _tag_equals(volume_key, "home-nfs")]},
            by_hub_service,
        ),
        "core": ({"And": [*base, attributable, core]}, by_hub_service),
    }


def fetch_costs(
    client,
    query: CostQuery,
    *,
    first: dt.date,
    last: dt.date,
    counter: RequestCounter,
    slices: Collection[str] | None = None,
) -> Iterator[CostRow]:
    """Every slice's daily costs for first..last (inclusive), every page followed.

    `slices` limits the requests to those slices (all four when None): a cluster that shares
    its account with one already fetched can leave out the `account` slice, the same for both.
    """
    for slice_, (filter_, group_by) in slice_requests(query).items():
        if slices is not None and slice_ not in slices:
            continue
        for result in _pages(client, query, first, last, filter_, group_by, counter):
            day = dt.date.fromisoformat(result["TimePeriod"]["Start"])
            estimated = bool(result.get("Estimated", False))
            for group in result.get("Groups", []):
                yield _cost_row(day, slice_, group, query, estimated)


def _pages(client, query, first, last, filter_, group_by, counter) -> Iterator[dict]:
    request = {
        "TimePeriod": {
            "Start": first.isoformat(),
            "End": (last + dt.timedelta(days=1)).isoformat(),
        },
        "Granularity": "DAILY",
        "Metrics": [query.metric],
        "Filter": filter_,
        "GroupBy": group_by,
    }
    token = None
    seen_tokens = set()
    while True:
        page_request = dict(request, NextPageToken=token) if token else request
        answer = _call(client, page_request)
        counter.count += 1
        # A page may be empty and still name a next one: follow it all the same.
        yield from answer.get("ResultsByTime", [])
        token = answer.get("NextPageToken")
        if not token:
            return
        if token in seen_tokens:
            # Following it again would loop for ever, each page billed.
            raise CostExplorerError(
                f"Cost Explorer sent an earlier page's NextPageToken again after {counter.count} "
                "page(s); stopped rather than loop"
            )
        seen_tokens.add(token)


def _call(client, request: dict) -> dict:
    from botocore.exceptions import (
        ClientError,
        NoCredentialsError,
        PartialCredentialsError,
        TokenRetrievalError,
    )

    try:
        return client.get_cost_and_usage(**request)
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise CredentialsError(
            f"AWS credentials are missing or incomplete ({type(exc).__name__}): configure "
            "AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a web identity"
        ) from None
    except TokenRetrievalError:
        raise CredentialsError("AWS credentials could not be refreshed (SSO/token)") from None
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in CREDENTIAL_ERROR_CODES:
            raise CredentialsError(
                f"AWS rejected the credentials for Cost Explorer ({code}): check the access key, "
                "its secret, the session token and the ce:GetCostAndUsage permission"
            ) from None
        raise CostExplorerError(f"Cost Explorer GetCostAndUsage failed ({code})") from exc


def _cost_row(day, slice_, group, query: CostQuery, estimated: bool) -> CostRow:
    keys = group["Keys"]
    if slice_ == "account":
        hub, service = None, keys[0]
    else:
        hub, service = _hub(keys[0], query.hub_tag_key), keys[1]
    metric = group["Metrics"][query.metric]
    try:
        amount = Decimal(str(metric["Amount"]))
    except InvalidOperation:
        raise CostExplorerError(
            f"Cost Explorer returned a non-numeric amount for {service} on {day}"
        ) from None
    if not amount.is_finite():
        raise CostExplorerError(f"Cost Explorer returned {amount} for {service} on {day}")
    return CostRow(
        date=day,
        slice=slice_,
        hub=hub,
        service=service,
        amount=amount,
        unit=metric["Unit"],
        metric=query.metric,
        estimated=estimated,
    )


def _hub(group_key: str, hub_tag_key: str) -> str:
    """`H$prod` → `prod`; `H$` (untagged) → the `support` hub."""
    prefix = f"{hub_tag_key}$"
    value = group_key[len(prefix) :] if group_key.startswith(prefix) else group_key
    return value or SUPPORT_HUB


def _tag_equals(key: str, value: str) -> dict:
    return {"Tags": {"Key": key, "Values": [value], "MatchOptions": ["EQUALS"]}}
