"""An environment free of the machine's hubcost and AWS settings, for runs of hubcost in tests.

Without it a developer's real CLUSTER_NAME, credentials or ETL_CRON would leak into a test.
"""

from __future__ import annotations

from pathlib import Path

MACHINE_SETTINGS = (
    "DATABASE_URL",
    "CLUSTER_NAME",
    "PROMETHEUS_URL",
    "PROMETHEUS_USERNAME",
    "PROMETHEUS_PASSWORD",
    "PROMETHEUS_TOKEN",
    "DEMO",
    "API_TOKEN",
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_COST_EXPLORER",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "LOG_FORMAT",
    "ETL_CRON",
    "LOOKBACK_DAYS",
    "INITIAL_DAYS",
    "HUBCOST_DATA_DIR",
    "HUBCOST_CLUSTERS",
    "NOTIFY_WEBHOOK_URLS",
    "NOTIFY_TIMEOUT_S",
    "NOTIFY_MAX_SECONDS",
    "ANOMALY_FACTOR",
    "ANOMALY_MIN_USD",
)


def isolation(tmp_path: Path) -> dict[str, str]:
    """Settings that keep boto3 from finding any AWS configuration of the machine."""
    return {
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "LOG_LEVEL": "INFO",
        # Never the developer's own data directory (nor its embedded database).
        "HUBCOST_DATA_DIR": str(tmp_path / "hubcost-data"),
    }
