"""Prometheus: per-user usage and the group snapshot of a day (docs/attribution.md §4).

`fetch_usage_day` sends exactly four instant queries for a day whatever the number of users
(memory requests, CPU requests, home-directory sizes, group memberships), evaluated at the
day's 23:59:59 UTC, or for today at `now` over the part of today already past. The client is a
`PrometheusConnect` made at the edge (`make_client`) with a timeout and urllib3 retries with
backoff on connection errors, timeouts and 5xx; what still fails raises `PrometheusError`,
whose text never contains the URL's credentials or a token.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit, urlunsplit

import escapism

from etl.load import COMPUTE_UNIT, HOME_STORAGE_UNIT, GroupRow, UsageRow

log = logging.getLogger(__name__)

STEP_SECONDS = 300
GIB = Decimal(2**30)
HOURS_PER_STEP = Decimal(STEP_SECONDS) / Decimal(3600)
RETRIES = 3
BACKOFF_FACTOR_S = 1.0
RETRY_ON_STATUS = (429, 500, 502, 503, 504)

_REQUESTS_QUERY = """sum_over_time((
  label_replace(
    sum by (namespace, annotation_hub_jupyter_org_username) (
      kube_pod_container_resource_requests{{resource="{resource}"}}
      * on (namespace, pod) group_left (annotation_hub_jupyter_org_username)
        group by (namespace, pod, annotation_hub_jupyter_org_username) (
          kube_pod_annotations{{annotation_hub_jupyter_org_username!=""}})),
    "username", "$1", "annotation_hub_jupyter_org_username", "(.*)")
)[{range}:5m])"""
_HOME_QUERY = (
    "avg_over_time((sum by (namespace, directory) (dirsize_total_size_bytes))[{range}:5m])"
)
GROUPS_QUERY = (
    "group by (namespace, username, username_escaped, usergroup) (jupyterhub_user_group_info)"
)


class PrometheusError(RuntimeError):
    """Prometheus could not answer (after retries); the chunk fails."""


@dataclass
class UsageDay:
    """What one day's four queries gave, ready for save_usage and save_groups."""

    usage: list[UsageRow] = field(default_factory=list)
    groups: list[GroupRow] = field(default_factory=list)
    requests: int = 0


def make_client(settings, *, retries: int = RETRIES, backoff_factor: float = BACKOFF_FACTOR_S):
    """The PrometheusConnect of a cluster (its prometheus_* settings) with auth, TLS, timeout
    and retries."""
    from prometheus_api_client import PrometheusConnect
    from urllib3.util.retry import Retry

    headers = None
    auth = None
    if settings.prometheus_token is not None:
        headers = {"Authorization": f"Bearer {settings.prometheus_token.reveal()}"}
    elif settings.prometheus_username is not None:
        auth = (settings.prometheus_username, settings.prometheus_password.reveal())
    retry = Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        backoff_factor=backoff_factor,
        status_forcelist=RETRY_ON_STATUS,
        allowed_methods=("GET", "POST"),
    )
    return PrometheusConnect(
        url=settings.prometheus_url,
        headers=headers,
        auth=auth,
        disable_ssl=not settings.prometheus_verify_tls,
        retry=retry,
        timeout=settings.prometheus_timeout_s,
    )


def queries(day: dt.date, now: dt.datetime) -> tuple[dt.datetime, dict[str, str]]:
    """The evaluation time and the four queries for `day` (today: up to `now`)."""
    end_of_day = dt.datetime.combine(day, dt.time(23, 59, 59), dt.UTC)
    now = now.astimezone(dt.UTC).replace(microsecond=0)
    if now < end_of_day:
        # Today: the points from today's 00:00 up to now, none of yesterday's.
        at = now
        seconds = int((now - (end_of_day - dt.timedelta(days=1))).total_seconds())
        range_ = f"{seconds}s"
    else:
        at, range_ = end_of_day, "1d"
    return at, {
        "groups": GROUPS_QUERY,
        "memory": _REQUESTS_QUERY.format(resource="memory", range=range_),
        "cpu": _REQUESTS_QUERY.format(resource="cpu", range=range_),
        "home": _HOME_QUERY.format(range=range_),
    }


def fetch_usage_day(
    client,
    day: dt.date,
    *,
    now: dt.datetime,
    earlier_usernames: Mapping[str, Mapping[str, str]] | None = None,
) -> UsageDay:
    """Compute and home-storage usage and the group snapshot of `day`, in four queries.

    `earlier_usernames` (hub → username_escaped → username) is the latest earlier snapshot of
    each hub, used to name home directories of hubs with no snapshot that day.
    """
    at, texts = queries(day, now)
    result = UsageDay()
    answers = {}
    for name, text in texts.items():
        answers[name] = _query(client, text, at)
        result.requests += 1

    escaped_names: dict[str, dict[str, str]] = {}
    for series in answers["groups"]:
        labels = series["metric"]
        hub, username = labels.get("namespace"), labels.get("username")
        if not hub or not username:
            _warn_unlabelled("group", ("namespace", "username"), labels, day)
            continue
        escaped = labels.get("username_escaped") or escapism.escape(username, escape_char="-")
        result.groups.append(
            GroupRow(day, hub, username, labels.get("usergroup") or "none", escaped)
        )
        escaped_names.setdefault(hub, {})[escaped] = username

    cpu = {
        (s["metric"].get("namespace"), s["metric"].get("username")): value
        for s in answers["cpu"]
        if (value := _value(s, "cpu requests", day)) is not None
    }
    for series in answers["memory"]:
        labels = series["metric"]
        hub, username = labels.get("namespace"), labels.get("username")
        if not hub or not username:
            _warn_unlabelled("memory requests", ("namespace", "username"), labels, day)
            continue
        value = _value(series, "memory requests", day)
        if value is None:
            continue
        core_seconds = cpu.get((hub, username))
        result.usage.append(
            UsageRow(
                date=day,
                hub=hub,
                component="compute",
                username=username,
                value=value * HOURS_PER_STEP / GIB,
                unit=COMPUTE_UNIT,
                cpu_core_hours=None if core_seconds is None else core_seconds * HOURS_PER_STEP,
            )
        )

    home_gib: dict[tuple[str, str], Decimal] = {}
    for series in answers["home"]:
        labels = series["metric"]
        hub, directory = labels.get("namespace"), labels.get("directory")
        if not hub or not directory:
            _warn_unlabelled("home directory size", ("namespace", "directory"), labels, day)
            continue
        value = _value(series, "home directory size", day)
        if value is None:
            continue
        names = escaped_names.get(hub)
        if names is None:
            names = (earlier_usernames or {}).get(hub, {})
        key = (hub, directory_username(directory, names))
        # Two directories of one user (an old and a new escaping) add up.
        home_gib[key] = home_gib.get(key, Decimal(0)) + value / GIB
    result.usage += [
        UsageRow(day, hub, "home storage", username, value, HOME_STORAGE_UNIT)
        for (hub, username), value in home_gib.items()
    ]
    return result


def directory_username(directory: str, escaped_names: Mapping[str, str]) -> str:
    """A home directory's user: the snapshot's name, else unescaped (docs/attribution.md §4.3)."""
    if "shared" in directory:
        return directory
    if directory in escaped_names:
        return escaped_names[directory]
    return escapism.unescape(directory, escape_char="-")


def redacted_url(url: str) -> str:
    """The URL without user:password@, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _query(client, text: str, at: dt.datetime) -> list[dict]:
    import requests
    from prometheus_api_client import PrometheusApiClientException

    where = redacted_url(client.url)
    try:
        return client.custom_query(text, params={"time": f"{at.timestamp():.3f}"})
    except (requests.Timeout, requests.ConnectionError) as exc:
        problem = "timed out" if _timed_out(exc) else "is unreachable"
        raise PrometheusError(f"Prometheus at {where} {problem} (after retries)") from None
    except requests.RequestException as exc:
        raise PrometheusError(
            f"Prometheus at {where} failed ({type(exc).__name__}, after retries)"
        ) from None
    except PrometheusApiClientException as exc:
        answer = _without_credentials(str(exc), client)[:300]
        raise PrometheusError(f"Prometheus at {where} answered {answer}") from None


def _without_credentials(text: str, client) -> str:
    """The text with the client's password or token masked, should a server echo them."""
    secrets = []
    auth = getattr(client, "auth", None)
    if auth:
        username, password = auth
        secrets += [password, base64.b64encode(f"{username}:{password}".encode()).decode()]
    authorization = (getattr(client, "headers", None) or {}).get("Authorization", "")
    if authorization:
        secrets.append(authorization.partition(" ")[2])
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _timed_out(exc: Exception) -> bool:
    import requests
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError

    if isinstance(exc, requests.Timeout):
        return True
    # Retries exhausted on timeouts surface as ConnectionError(MaxRetryError(reason)); urllib3
    # makes a refused connection a kind of ConnectTimeoutError, which it is not.
    reason = getattr(exc.args[0] if exc.args else None, "reason", None)
    if isinstance(reason, NewConnectionError):
        return False
    return isinstance(reason, ReadTimeoutError | ConnectTimeoutError)


def _warn_unlabelled(what: str, needed: tuple[str, ...], labels: dict, day: dt.date) -> None:
    missing = [name for name in needed if not labels.get(name)]
    log.warning(
        "skipping a %s series without %s on %s: %s", what, " or ".join(missing), day, labels
    )


def _value(series: dict, what: str, day: dt.date) -> Decimal | None:
    raw = series["value"][1]
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        log.warning(
            "skipping a non-finite %s value (%s) on %s: %s", what, raw, day, series["metric"]
        )
        return None
    return value
