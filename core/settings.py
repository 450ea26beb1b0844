"""Every setting of the service, read once from the environment.

`Settings.from_env()` parses and validates all variables up front; a value that does not
parse raises `SettingsError` naming the variable, and the commands turn that into one line
on stderr and a non-zero exit. The clusters to load are the one the single-cluster variables
describe, or those of the TOML file HUBCOST_CLUSTERS names (`core.clusters`, read and
validated here too, with the same rule per key). Secrets are wrapped in `Secret` so that no
repr, log line or error message can show them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from core.clusters import ClusterConfig
    from core.webhooks import Webhook

AWS_CONFIGURED_BY = (
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)
COST_METRICS = (
    "UnblendedCost",
    "AmortizedCost",
    "BlendedCost",
    "NetUnblendedCost",
    "NetAmortizedCost",
)
RECORD_TYPES = (
    "Usage",
    "Credit",
    "Refund",
    "Tax",
    "DiscountedUsage",
    "SavingsPlanCoveredUsage",
    "SavingsPlanNegation",
    "SavingsPlanRecurringFee",
    "SavingsPlanUpfrontFee",
    "RIFee",
    "Fee",
    "Support",
    "BundledDiscount",
    "EdpDiscount",
    "PrivateRateDiscount",
    "DistributorDiscount",
)


class SettingsError(ValueError):
    """A setting is missing or does not parse; the message names the variable."""


class Secret:
    """A string that never shows itself in repr/str."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    database_url: Secret | None  # None: the embedded server under data_dir
    cluster_name: str | None
    prometheus_url: str | None
    demo: bool
    prometheus_username: str | None
    prometheus_password: Secret | None
    prometheus_token: Secret | None
    prometheus_verify_tls: bool
    prometheus_timeout_s: float
    cost_metric: str
    cost_record_types: tuple[str, ...]
    hub_tag_key: str
    node_purpose_tag_key: str
    volume_purpose_tag_key: str
    lookback_days: int
    initial_days: int
    etl_cron: str
    # After each run (docs/budgets.md §3, §5): the anomaly rule and where events are posted.
    anomaly_factor: Decimal
    anomaly_min_usd: Decimal
    notify_webhooks: tuple[Webhook, ...]
    notify_timeout_s: float
    notify_max_seconds: float
    api_token: Secret | None
    max_range_days: int
    db_pool_size: int
    statement_timeout_ms: int
    # The API's in-process cache of recent answers (api/http_cache.py); 0: none.
    response_cache_mb: int
    api_db_role: str
    log_level: str
    log_format: str
    data_dir: Path
    # Every cluster to load: the file's (HUBCOST_CLUSTERS), else the one the variables above
    # describe (named CLUSTER_NAME, `default`, or `demo-cluster` for the demo). With the file,
    # cluster_name and prometheus_* are unset and the other per-cluster fields are the
    # environment's defaults of its clusters.
    clusters: tuple[ClusterConfig, ...]
    clusters_file: Path | None
    # Who may see the pages (docs/pages.md, "Who may see what").
    ui_session_secret: Secret | None
    ui_session_hours: int
    ui_admin_groups: tuple[str, ...]
    ui_hub: str | None
    jupyterhub: JupyterHubService | None  # set when hubcost runs as a JupyterHub service

    @property
    def ui_access(self) -> str:
        """How the pages are guarded: `jupyterhub` (OAuth), `token` (API_TOKEN), or `open`."""
        if self.jupyterhub is not None:
            return "jupyterhub"
        return "token" if self.api_token is not None else "open"

    @property
    def embedded_data_dir(self) -> Path:
        """Where the embedded PostgreSQL keeps its cluster when DATABASE_URL is not set."""
        return self.data_dir / "pgdata"

    @property
    def costs_enabled(self) -> bool:
        return self.cluster_name is not None

    @property
    def usage_enabled(self) -> bool:
        return self.prometheus_url is not None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        from core.clusters import cluster_from_env, clusters_from_file, inherited_environment
        from core.webhooks import parse_webhooks

        environ = os.environ if environ is None else environ
        env = _Env(environ)
        clusters_file = _clusters_file(env)
        if clusters_file is None:
            cluster_name = env.text("CLUSTER_NAME")
            prometheus_url = env.text("PROMETHEUS_URL")
            if cluster_name is None and any(env.text(name) for name in AWS_CONFIGURED_BY):
                raise SettingsError(
                    "CLUSTER_NAME is not set but AWS is configured "
                    f"({', '.join(n for n in AWS_CONFIGURED_BY if env.text(n))}): set "
                    "CLUSTER_NAME to the EKS cluster whose costs to load"
                )
            real_source = cluster_name is not None or prometheus_url is not None
            demo = env.boolean("DEMO", default=not real_source)
            if demo and real_source:
                raise SettingsError(
                    "DEMO=1 cannot be combined with a real source (CLUSTER_NAME or PROMETHEUS_URL)"
                )
            single = cluster_from_env(environ, demo=demo)
            clusters = (single,)
        else:
            # The file names every cluster; the environment still gives what is not per
            # cluster, and the defaults of INHERITED_FROM_ENV (the top-level fields below).
            demo = False
            single = cluster_from_env(inherited_environment(environ))
            clusters = clusters_from_file(clusters_file, environ)

        settings = cls(
            database_url=_database_url(env.text("DATABASE_URL")),
            cluster_name=single.name if single.cost_explorer else None,
            prometheus_url=single.prometheus_url,
            demo=demo,
            prometheus_username=single.prometheus_username,
            prometheus_password=single.prometheus_password,
            prometheus_token=single.prometheus_token,
            prometheus_verify_tls=single.prometheus_verify_tls,
            prometheus_timeout_s=single.prometheus_timeout_s,
            cost_metric=single.cost_metric,
            cost_record_types=single.cost_record_types,
            hub_tag_key=single.hub_tag_key,
            node_purpose_tag_key=single.node_purpose_tag_key,
            volume_purpose_tag_key=single.volume_purpose_tag_key,
            lookback_days=single.lookback_days,
            initial_days=single.initial_days,
            etl_cron=_cron(env.text("ETL_CRON") or "0 */6 * * *"),
            anomaly_factor=_decimal(env, "ANOMALY_FACTOR", default="5", above_zero=True),
            anomaly_min_usd=_decimal(env, "ANOMALY_MIN_USD", default="5", above_zero=False),
            notify_webhooks=parse_webhooks(env.text("NOTIFY_WEBHOOK_URLS")),
            notify_timeout_s=env.number("NOTIFY_TIMEOUT_S", default=5.0, minimum=0.1),
            notify_max_seconds=env.number("NOTIFY_MAX_SECONDS", default=30.0, minimum=1.0),
            api_token=env.secret("API_TOKEN"),
            max_range_days=env.integer("MAX_RANGE_DAYS", default=1100, minimum=1, maximum=36600),
            db_pool_size=env.integer("DB_POOL_SIZE", default=5, minimum=1, maximum=100),
            response_cache_mb=env.integer("RESPONSE_CACHE_MB", default=32, minimum=0, maximum=4096),
            statement_timeout_ms=env.integer(
                "STATEMENT_TIMEOUT_MS", default=10000, minimum=100, maximum=3_600_000
            ),
            api_db_role=_identifier("API_DB_ROLE", env.text("API_DB_ROLE") or "hubcost_reader"),
            log_level=env.choice(
                "LOG_LEVEL",
                ("DEBUG", "INFO", "WARNING", "ERROR"),
                default="INFO",
                normalise=str.upper,
            ),
            log_format=env.choice("LOG_FORMAT", ("text", "json"), default="text"),
            data_dir=_data_dir(env.text("HUBCOST_DATA_DIR")),
            clusters=clusters,
            clusters_file=clusters_file,
            ui_session_secret=env.secret("UI_SESSION_SECRET"),
            ui_session_hours=env.integer("UI_SESSION_HOURS", default=12, minimum=1, maximum=720),
            ui_admin_groups=_names(env.text("UI_ADMIN_GROUPS")),
            ui_hub=env.text("UI_HUB"),
            jupyterhub=_jupyterhub_service(env),
        )
        if settings.jupyterhub is not None and settings.ui_hub is None:
            raise SettingsError(
                "UI_HUB is not set but hubcost runs as a JupyterHub service (JUPYTERHUB_* "
                "variables set): set UI_HUB to this hub's name in the warehouse, whose costs "
                "its users see"
            )
        return settings


@dataclass(frozen=True)
class JupyterHubService:
    """What JupyterHub tells a service it runs (its JUPYTERHUB_* variables)."""

    api_url: str  # the hub's REST API, e.g. http://127.0.0.1:8081/hub/api
    api_token: Secret  # the service's own token; its OAuth client secret too
    service_prefix: str  # where the proxy sends the service's requests, e.g. /services/hubcost/
    client_id: str  # the service's OAuth client, e.g. service-hubcost
    oauth_callback_url: str  # where the hub sends a user back with an OAuth code
    base_url: str  # the hub's own base URL (JUPYTERHUB_BASE_URL), usually /
    host: str  # the hub's public host when it uses subdomains (JUPYTERHUB_HOST), else ""
    public_url: str | None  # JUPYTERHUB_PUBLIC_URL: https there means Secure cookies


# Any of these set means hubcost runs as a JupyterHub service; then all are needed.
JUPYTERHUB_SERVICE_VARIABLES = (
    "JUPYTERHUB_API_URL",
    "JUPYTERHUB_API_TOKEN",
    "JUPYTERHUB_SERVICE_PREFIX",
    "JUPYTERHUB_CLIENT_ID",
)


def _jupyterhub_service(env: _Env) -> JupyterHubService | None:
    present = [name for name in JUPYTERHUB_SERVICE_VARIABLES if env.text(name)]
    if not present:
        return None
    for name in JUPYTERHUB_SERVICE_VARIABLES:
        if env.text(name) is None:
            raise SettingsError(
                f"{name} is not set but {', '.join(present)} is: as a JupyterHub service, "
                f"hubcost needs all of {', '.join(JUPYTERHUB_SERVICE_VARIABLES)}"
            )
    api_url = env.text("JUPYTERHUB_API_URL")
    if not api_url.startswith(("http://", "https://")):
        raise SettingsError(f"JUPYTERHUB_API_URL must be an http(s) URL, got {api_url!r}")
    prefix = _slashed(env.text("JUPYTERHUB_SERVICE_PREFIX"))
    callback = env.text("JUPYTERHUB_OAUTH_CALLBACK_URL") or prefix + "oauth_callback"
    public_url = env.text("JUPYTERHUB_PUBLIC_URL")
    return JupyterHubService(
        api_url=api_url,
        api_token=env.secret("JUPYTERHUB_API_TOKEN"),
        service_prefix=prefix,
        client_id=env.text("JUPYTERHUB_CLIENT_ID"),
        oauth_callback_url=callback,
        base_url=_slashed(env.text("JUPYTERHUB_BASE_URL") or "/"),
        host=env.text("JUPYTERHUB_HOST") or "",
        public_url=public_url,
    )


def _slashed(path: str) -> str:
    """A URL path with one leading and one trailing slash."""
    return "/" + path.strip("/") + "/" if path.strip("/") else "/"


def _names(value: str | None) -> tuple[str, ...]:
    """A comma-separated list of names, spaces around each and empty items dropped."""
    if value is None:
        return ()
    return tuple(dict.fromkeys(item.strip() for item in value.split(",") if item.strip()))


def _clusters_file(env: _Env) -> Path | None:
    """HUBCOST_CLUSTERS, refused beside the variables that configure a single cluster."""
    value = env.text("HUBCOST_CLUSTERS")
    if value is None:
        return None
    for name in ("CLUSTER_NAME", "PROMETHEUS_URL"):
        if env.text(name) is not None:
            # The cluster's name, never the URL (it may hold credentials).
            shown = f" ({env.text(name)!r})" if name == "CLUSTER_NAME" else ""
            raise SettingsError(
                f"HUBCOST_CLUSTERS ({value}) and {name}{shown} are both set: with "
                f"HUBCOST_CLUSTERS every cluster is a [[cluster]] of that file; unset {name}"
            )
    if env.boolean("DEMO", default=False):
        raise SettingsError(
            f"HUBCOST_CLUSTERS ({value}) and DEMO=1 are both set: the demo is never combined "
            "with real clusters; unset DEMO or HUBCOST_CLUSTERS"
        )
    return Path(value).expanduser()


class _Env:
    """Typed reads of a mapping of upper-case names; errors call a name `label(name)`."""

    def __init__(self, environ: Mapping[str, str], *, label: Callable[[str], str] | None = None):
        self._environ = environ
        self._label = label

    def name(self, name: str) -> str:
        """How an error message calls `name` (its variable, or its key in a clusters file)."""
        return name if self._label is None else self._label(name)

    def text(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def secret(self, name: str) -> Secret | None:
        value = self.text(name)
        return Secret(value) if value is not None else None

    def boolean(self, name: str, *, default: bool) -> bool:
        value = self.text(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{self.name(name)} must be a boolean (1/0, true/false), got {value!r}")

    def integer(self, name: str, *, default: int, minimum: int, maximum: int) -> int:
        value = self.text(name)
        if value is None:
            return default
        try:
            parsed = int(value)
        except ValueError:
            raise SettingsError(f"{self.name(name)} must be an integer, got {value!r}") from None
        if not minimum <= parsed <= maximum:
            raise SettingsError(
                f"{self.name(name)} must be between {minimum} and {maximum}, got {parsed}"
            )
        return parsed

    def number(self, name: str, *, default: float, minimum: float) -> float:
        value = self.text(name)
        if value is None:
            return default
        try:
            parsed = float(value)
        except ValueError:
            raise SettingsError(f"{self.name(name)} must be a number, got {value!r}") from None
        if not parsed >= minimum or parsed == float("inf"):
            raise SettingsError(f"{self.name(name)} must be a finite number of at least {minimum}")
        return parsed

    def choice(self, name, allowed, *, default, normalise=lambda v: v):
        value = self.text(name)
        if value is None:
            return default
        value = normalise(value)
        if value not in allowed:
            raise SettingsError(
                f"{self.name(name)} must be one of {', '.join(allowed)}, got {value!r}"
            )
        return value

    def choices(self, name, allowed, *, default) -> tuple[str, ...]:
        value = self.text(name)
        if value is None:
            return default
        items = tuple(item.strip() for item in value.split(",") if item.strip())
        unknown = [item for item in items if item not in allowed]
        if not items or unknown:
            raise SettingsError(
                f"{self.name(name)} must be a comma-separated list of {', '.join(allowed)}, got {value!r}"
            )
        return items


def _database_url(value: str | None) -> Secret | None:
    if value is None:
        return None
    try:
        url = make_url(value)
    except Exception:
        raise SettingsError("DATABASE_URL is not a valid URL") from None
    if url.drivername not in ("postgresql", "postgresql+psycopg"):
        raise SettingsError(
            "DATABASE_URL must start with postgresql:// or postgresql+psycopg:// "
            f"(got scheme {url.drivername!r})"
        )
    return Secret(url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False))


def _data_dir(value: str | None) -> Path:
    """HUBCOST_DATA_DIR, else the per-user data directory (never inside the installed package)."""
    if value is None:
        import platformdirs

        return Path(platformdirs.user_data_dir("hubcost", appauthor=False))
    return Path(value).expanduser().resolve()


def _cron(value: str) -> str:
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(value, timezone="UTC")
    except ValueError as exc:
        raise SettingsError(
            f"ETL_CRON is not a valid crontab expression ({exc}): {value!r}"
        ) from None
    return value


def _identifier(name: str, value: str) -> str:
    if not (value.replace("_", "a").isalnum() and value.isascii() and not value[0].isdigit()):
        raise SettingsError(
            f"{name} must be a plain SQL identifier (letters, digits, _), got {value!r}"
        )
    return value.lower()


def _decimal(env: _Env, name: str, *, default: str, above_zero: bool) -> Decimal:
    """A finite decimal number, more than 0 (above_zero) or at least 0."""
    value = env.text(name) or default
    bound = "more than 0" if above_zero else "at least 0"
    try:
        parsed = Decimal(value)
    except InvalidOperation:
        raise SettingsError(f"{name} must be a decimal number {bound}, got {value!r}") from None
    if not parsed.is_finite() or parsed < 0 or (above_zero and parsed == 0):
        raise SettingsError(f"{name} must be a decimal number {bound}, got {value!r}")
    return parsed
