"""The clusters a warehouse loads: one from today's environment variables, or several from a file.

`cluster_from_env` reads the single-cluster environment variables (CLUSTER_NAME, PROMETHEUS_*,
the tag keys, COST_*, LOOKBACK_DAYS, INITIAL_DAYS) as one `ClusterConfig`.
`clusters_from_file` reads the TOML file HUBCOST_CLUSTERS names (docs/clusters.md): an optional
`[defaults]` table and one `[[cluster]]` table per cluster. Both ways run the same parser on a
mapping of upper-case names, so every key has one validation rule; the file's values are
turned into that mapping first (its keys are the lower-case names, its secrets are read from
the environment variable `<key>_env` or the file `<key>_file` names). Every error is one
`SettingsError` line: from the file it names the file, the cluster and the key.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from core.schema import DEFAULT_CLUSTER, DEMO_CLUSTER
from core.settings import COST_METRICS, RECORD_TYPES, Secret, SettingsError, _Env

# Each per-cluster key of the file → the name the shared parser reads. Keys with an environment
# variable of their own keep its name; the others (file only) are their key upper-cased and are
# never read from the process environment.
KEYS = {
    "name": "CLUSTER_NAME",
    "cost_explorer": "COST_EXPLORER",
    "prometheus_url": "PROMETHEUS_URL",
    "prometheus_username": "PROMETHEUS_USERNAME",
    "prometheus_password": "PROMETHEUS_PASSWORD",
    "prometheus_token": "PROMETHEUS_TOKEN",
    "prometheus_verify_tls": "PROMETHEUS_VERIFY_TLS",
    "prometheus_timeout_s": "PROMETHEUS_TIMEOUT_S",
    "cost_metric": "COST_METRIC",
    "cost_record_types": "COST_RECORD_TYPES",
    "hub_tag_key": "HUB_TAG_KEY",
    "node_purpose_tag_key": "NODE_PURPOSE_TAG_KEY",
    "volume_purpose_tag_key": "VOLUME_PURPOSE_TAG_KEY",
    "lookback_days": "LOOKBACK_DAYS",
    "initial_days": "INITIAL_DAYS",
    "aws_account_id": "AWS_ACCOUNT_ID",
    "aws_role_arn": "AWS_ROLE_ARN",
    "aws_profile": "AWS_PROFILE",
    "aws_region": "AWS_REGION",
    "strict_cluster_tags": "STRICT_CLUSTER_TAGS",
}
SECRET_KEYS = ("prometheus_password", "prometheus_token")
SECRET_SOURCES = ("_env", "_file")
LIST_KEYS = ("cost_record_types",)
# The single-cluster variables that, with HUBCOST_CLUSTERS, are every file cluster's defaults
# (under the file's own [defaults]). Not the secrets, the username or the URL: those belong to
# one Prometheus and are never sent to another.
INHERITED_FROM_ENV = (
    "PROMETHEUS_VERIFY_TLS",
    "PROMETHEUS_TIMEOUT_S",
    "COST_METRIC",
    "COST_RECORD_TYPES",
    "HUB_TAG_KEY",
    "NODE_PURPOSE_TAG_KEY",
    "VOLUME_PURPOSE_TAG_KEY",
    "LOOKBACK_DAYS",
    "INITIAL_DAYS",
)

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
ACCOUNT_ID = re.compile(r"[0-9]{12}")
ROLE_ARN = re.compile(
    r"arn:aws(?:-[a-z]+)*:iam::(?P<account>[0-9]{12}):role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}",
    re.ASCII,
)
REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}")


@dataclass(frozen=True)
class ClusterConfig:
    """Everything hubcost needs to load one cluster (docs/clusters.md lists each key)."""

    name: str
    cost_explorer: bool = True
    prometheus_url: str | None = None
    prometheus_username: str | None = None
    prometheus_password: Secret | None = None
    prometheus_token: Secret | None = None
    prometheus_verify_tls: bool = True
    prometheus_timeout_s: float = 30.0
    cost_metric: str = "UnblendedCost"
    cost_record_types: tuple[str, ...] = ("Usage",)
    hub_tag_key: str = "2i2c:hub-name"
    node_purpose_tag_key: str = "2i2c:node-purpose"
    volume_purpose_tag_key: str = "2i2c:volume-purpose"
    lookback_days: int = 3
    initial_days: int = 30
    aws_account_id: str | None = None  # its linked account, read with a payer's credentials
    aws_role_arn: str | None = None  # assumed (STS AssumeRole) for its Cost Explorer requests
    aws_profile: str | None = None
    aws_region: str | None = None
    strict_cluster_tags: bool = False

    @property
    def costs_enabled(self) -> bool:
        return self.cost_explorer

    @property
    def usage_enabled(self) -> bool:
        return self.prometheus_url is not None

    @property
    def cost_account(self) -> str | None:
        """The AWS account its costs are read from, when known: aws_account_id, else the
        account of aws_role_arn; None means the ambient credentials' account."""
        if self.aws_account_id is not None:
            return self.aws_account_id
        if self.aws_role_arn is not None:
            return ROLE_ARN.fullmatch(self.aws_role_arn)["account"]
        return None


def cluster_from_env(environ: Mapping[str, str], *, demo: bool = False) -> ClusterConfig:
    """Today's single-cluster variables as one cluster.

    Its name is CLUSTER_NAME; without it (Prometheus only, or nothing) `default`, and
    `demo-cluster` for the demo. Cost Explorer is on when CLUSTER_NAME is set. Credentials stay
    boto3's ambient chain (AWS_PROFILE, keys, IRSA's AWS_ROLE_ARN are boto3's, not an
    AssumeRole of hubcost's); only the region is taken along, as the `ce` client always did.
    """
    env = _Env(environ)
    configured = _parse(env, file_keys=False)
    name = configured.pop("name")
    region = env.text("AWS_REGION") or env.text("AWS_DEFAULT_REGION")
    return ClusterConfig(
        name=name or (DEMO_CLUSTER if demo else DEFAULT_CLUSTER),
        cost_explorer=name is not None and not demo,
        aws_region=region,
        **configured,
    )


def inherited_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The single-cluster variables that are defaults of every cluster of a file."""
    return {name: environ[name] for name in INHERITED_FROM_ENV if name in environ}


def clusters_from_file(path: str | Path, environ: Mapping[str, str]) -> tuple[ClusterConfig, ...]:
    """Every `[[cluster]]` of the TOML file at `path`, validated, in the file's order.

    A key's value comes from its `[[cluster]]`, else `[defaults]`, else the variables of
    `INHERITED_FROM_ENV` in `environ`, else the built-in default. `environ` is also where the
    `*_env` secrets are looked up; `*_file` paths are relative to the file's directory.
    """
    path = Path(path)
    where = str(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(
            f"{where}: cannot read the clusters file ({exc.strerror or exc})"
        ) from None
    except UnicodeDecodeError:
        raise SettingsError(f"{where}: the clusters file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{where}: not valid TOML ({exc})") from None

    for key in document:
        if key not in ("defaults", "cluster"):
            raise SettingsError(
                f"{where}: unknown top-level key {key!r} (a clusters file has a [defaults] "
                "table and [[cluster]] tables)"
            )
    defaults = document.get("defaults", {})
    if not isinstance(defaults, dict):
        raise SettingsError(f"{where}: defaults must be a table ([defaults])")
    tables = document.get("cluster", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise SettingsError(f"{where}: cluster must be [[cluster]] tables, one per cluster")
    if not tables:
        raise SettingsError(f"{where}: no [[cluster]] table: the file must name a cluster")

    default_entries = _entries(defaults, f"{where}: [defaults]")
    if "name" in default_entries:
        raise SettingsError(
            f"{where}: [defaults]: name cannot be a default: every [[cluster]] names itself"
        )
    base = inherited_environment(environ)
    clusters: list[ClusterConfig] = []
    first_of: dict[str, int] = {}
    for number, table in enumerate(tables, 1):
        who = _who(table, number)
        entries = _entries(table, f"{where}: {who}")
        if "name" not in entries:
            raise SettingsError(f"{where}: {who}: name is missing")
        layered = {key: (*entry, True) for key, entry in default_entries.items()}
        layered.update({key: (*entry, False) for key, entry in entries.items()})
        try:
            mapping, labels = _mapping(layered, base, environ, path.parent)
            env = _Env(mapping, label=lambda name, labels=labels: labels.get(name, name))
            cluster = ClusterConfig(**_parse(env, file_keys=True))
            if not cluster.cost_explorer and cluster.prometheus_url is None:
                raise SettingsError(
                    "no source: cost_explorer is false and prometheus_url is not set"
                )
        except SettingsError as exc:
            raise SettingsError(f"{where}: {who}: {exc}") from None
        if cluster.name in first_of:
            raise SettingsError(
                f"{where}: {who}: name {cluster.name!r} is already cluster "
                f"#{first_of[cluster.name]}'s: names must be unique"
            )
        first_of[cluster.name] = number
        clusters.append(cluster)
    _refuse_shared_accounts(where, clusters)
    return tuple(clusters)


def _who(table: dict, number: int) -> str:
    name = table.get("name")
    if isinstance(name, str) and NAME.fullmatch(name.strip()):
        return f'cluster "{name.strip()}"'
    return f"cluster #{number}"


def _entries(table: dict, where: str) -> dict[str, tuple[str, object]]:
    """key → (the key as written, its value); `<secret>_env`/`_file` are that secret's."""
    found: dict[str, tuple[str, object]] = {}
    for written, value in table.items():
        key = written
        for suffix in SECRET_SOURCES:
            if written.endswith(suffix) and written[: -len(suffix)] in SECRET_KEYS:
                key = written[: -len(suffix)]
        if key not in KEYS:
            close = difflib.get_close_matches(written, [*KEYS, *_secret_keys()], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SettingsError(f"{where}: unknown key {written!r}{hint}")
        if key in SECRET_KEYS and written == key:
            raise SettingsError(
                f"{where}: {key} is a secret and is never written in the file: name an "
                f"environment variable with {key}_env or a file with {key}_file"
            )
        if key in found:
            raise SettingsError(f"{where}: {found[key][0]} and {written} are both set: choose one")
        found[key] = (written, value)
    return found


def _secret_keys() -> list[str]:
    return [f"{key}{suffix}" for key in SECRET_KEYS for suffix in SECRET_SOURCES]


def _mapping(layered, base, environ, directory: Path) -> tuple[dict[str, str], dict[str, str]]:
    """The upper-case mapping the shared parser reads, and how each name is called in errors."""
    mapping = dict(base)
    # A name the file does not write is called by its key; one it inherits, by its variable.
    labels = {name: key for key, name in KEYS.items()}
    labels.update({name: f"{name} (in the environment)" for name in base})
    for key, (written, value, from_defaults) in layered.items():
        name = KEYS[key]
        labels[name] = f"{written} (in [defaults])" if from_defaults else written
        if key in SECRET_KEYS:
            mapping[name] = _secret_value(labels[name], written, value, environ, directory)
        else:
            mapping[name] = _text(labels[name], key, value)
    return mapping, labels


def _text(label: str, key: str, value: object) -> str:
    """A TOML value as the text the environment would hold (the same parser reads both)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, list) and key in LIST_KEYS:
        if not all(isinstance(item, str) for item in value):
            raise SettingsError(f"{label} must be a list of strings")
        return ",".join(value)
    raise SettingsError(f"{label} must be a string, a number or a boolean")


def _secret_value(label, written, value, environ, directory: Path) -> str:
    if not isinstance(value, str) or not value.strip():
        what = "an environment variable" if written.endswith("_env") else "a file"
        raise SettingsError(f"{label} must name {what} (a string)")
    value = value.strip()
    if written.endswith("_env"):
        secret = environ.get(value, "").strip()
        if not secret:
            raise SettingsError(
                f"{label} names the environment variable {value}, which is not set or empty"
            )
        return secret
    file = Path(value).expanduser()
    file = file if file.is_absolute() else directory / file
    try:
        secret = file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise SettingsError(f"{label} names {file}, which cannot be read ({reason})") from None
    if not secret:
        raise SettingsError(f"{label} names {file}, which is empty")
    return secret


def _parse(env: _Env, *, file_keys: bool) -> dict:
    """The per-cluster settings of `env`, one rule per key whichever way they were written."""
    name = env.text("CLUSTER_NAME")
    if name is None and file_keys:
        raise SettingsError(f"{env.name('CLUSTER_NAME')} is missing")
    if name is not None and not NAME.fullmatch(name):
        raise SettingsError(
            f"{env.name('CLUSTER_NAME')} must be letters, digits, '-', '_' and '.' (starting "
            f"with a letter or digit, at most 100 characters), got {name!r}"
        )
    prometheus_url = env.text("PROMETHEUS_URL")
    if prometheus_url is not None and not prometheus_url.startswith(("http://", "https://")):
        raise SettingsError(f"{env.name('PROMETHEUS_URL')} must start with http:// or https://")
    token, password = env.name("PROMETHEUS_TOKEN"), env.name("PROMETHEUS_PASSWORD")
    if env.text("PROMETHEUS_TOKEN") and env.text("PROMETHEUS_PASSWORD"):
        raise SettingsError(f"{token} and {password} are both set: choose one way to authenticate")
    if bool(env.text("PROMETHEUS_USERNAME")) != bool(env.text("PROMETHEUS_PASSWORD")):
        raise SettingsError(f"{env.name('PROMETHEUS_USERNAME')} and {password} go together")
    parsed = dict(
        name=name,
        prometheus_url=prometheus_url.rstrip("/") if prometheus_url else None,
        prometheus_username=env.text("PROMETHEUS_USERNAME"),
        prometheus_password=env.secret("PROMETHEUS_PASSWORD"),
        prometheus_token=env.secret("PROMETHEUS_TOKEN"),
        prometheus_verify_tls=env.boolean("PROMETHEUS_VERIFY_TLS", default=True),
        prometheus_timeout_s=env.number("PROMETHEUS_TIMEOUT_S", default=30.0, minimum=0.1),
        cost_metric=env.choice("COST_METRIC", COST_METRICS, default="UnblendedCost"),
        cost_record_types=env.choices("COST_RECORD_TYPES", RECORD_TYPES, default=("Usage",)),
        hub_tag_key=env.text("HUB_TAG_KEY") or "2i2c:hub-name",
        node_purpose_tag_key=env.text("NODE_PURPOSE_TAG_KEY") or "2i2c:node-purpose",
        volume_purpose_tag_key=env.text("VOLUME_PURPOSE_TAG_KEY") or "2i2c:volume-purpose",
        lookback_days=env.integer("LOOKBACK_DAYS", default=3, minimum=1, maximum=366),
        initial_days=env.integer("INITIAL_DAYS", default=30, minimum=1, maximum=3660),
    )
    if file_keys:
        parsed.update(
            cost_explorer=env.boolean("COST_EXPLORER", default=True),
            aws_account_id=_matching(env, "AWS_ACCOUNT_ID", ACCOUNT_ID, "12 digits (in quotes)"),
            aws_role_arn=_matching(
                env,
                "AWS_ROLE_ARN",
                ROLE_ARN,
                "an IAM role ARN (arn:aws:iam::<account>:role/<name>)",
            ),
            aws_profile=env.text("AWS_PROFILE"),
            aws_region=_matching(env, "AWS_REGION", REGION, "an AWS region such as us-east-1"),
            strict_cluster_tags=env.boolean("STRICT_CLUSTER_TAGS", default=False),
        )
    return parsed


def _matching(env: _Env, name: str, pattern: re.Pattern, what: str) -> str | None:
    value = env.text(name)
    if value is not None and not pattern.fullmatch(value):
        raise SettingsError(f"{env.name(name)} must be {what}, got {value!r}")
    return value


def _refuse_shared_accounts(where: str, clusters: list[ClusterConfig]) -> None:
    """Two clusters reading one account's costs must both keep to their own cluster tags."""
    first: dict[str | None, ClusterConfig] = {}
    for cluster in clusters:
        if not cluster.cost_explorer:
            continue
        account = cluster.cost_account
        other = first.setdefault(account, cluster)
        if other is cluster or (other.strict_cluster_tags and cluster.strict_cluster_tags):
            continue
        if account is None:
            shared = (
                f'aws_account_id and aws_role_arn are unset, as for cluster "{other.name}": both '
                "read the ambient credentials' account"
            )
        elif cluster.aws_account_id is not None:
            shared = f'aws_account_id {account} is also the account of cluster "{other.name}"'
        else:
            shared = (
                f'aws_role_arn is in account {account}, also the account of cluster "{other.name}"'
            )
        raise SettingsError(
            f'{where}: cluster "{cluster.name}": {shared}; the attributable filter admits '
            "any resource with a hub or node-purpose tag, so each would count the other's: set "
            "strict_cluster_tags = true in both (docs/clusters.md)"
        )
