"""The settings of anomalies and notifications: defaults, NOTIFY_WEBHOOK_URLS's entries, and
refusals naming the variable (and for a webhook its entry's position, never its URL)."""

from decimal import Decimal
from hashlib import sha256

import pytest

from core.settings import Settings, SettingsError


def webhooks(value: str):
    return Settings.from_env({"NOTIFY_WEBHOOK_URLS": value}).notify_webhooks


def test_defaults():
    s = Settings.from_env({})
    assert (s.anomaly_factor, s.anomaly_min_usd) == (Decimal(5), Decimal(5))
    assert s.notify_webhooks == ()
    assert (s.notify_timeout_s, s.notify_max_seconds) == (5.0, 30.0)


def test_decimals_stay_decimal():
    s = Settings.from_env({"ANOMALY_FACTOR": "3.5", "ANOMALY_MIN_USD": "0.25"})
    assert (s.anomaly_factor, s.anomaly_min_usd) == (Decimal("3.5"), Decimal("0.25"))
    assert Settings.from_env({"ANOMALY_MIN_USD": "0"}).anomaly_min_usd == 0


def test_entries_names_and_formats():
    slack = "https://hooks.slack.com/services/T1/B1/abc"
    other = "https://alerts.example.org/hubcost?token=x%2Cy"
    hooks = webhooks(f" {slack} , ops=json:{slack},, finance=slack:{other}, {other}")
    assert [(h.name, h.format, h.named, h.url.reveal()) for h in hooks] == [
        (f"webhook-{sha256(slack.encode()).hexdigest()[:8]}", "slack", False, slack),
        ("ops", "json", True, slack),
        ("finance", "slack", True, other),
        (f"webhook-{sha256(other.encode()).hexdigest()[:8]}", "json", False, other),
    ]
    assert webhooks("HTTP://Hooks.Slack.com/services/x")[0].format == "slack"


def test_named_receivers_get_their_budgets_unnamed_everything():
    unnamed, ops = webhooks("https://a.example/1, ops=https://b.example/2")
    assert unnamed.receives(None) and unnamed.receives(["finance"])
    assert ops.receives(["ops", "finance"])
    assert not ops.receives(None) and not ops.receives([])


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ANOMALY_FACTOR": "0"}, "ANOMALY_FACTOR must be a decimal number more than 0"),
        ({"ANOMALY_FACTOR": "-2"}, "ANOMALY_FACTOR"),
        ({"ANOMALY_FACTOR": "Infinity"}, "ANOMALY_FACTOR"),
        ({"ANOMALY_MIN_USD": "-0.01"}, "ANOMALY_MIN_USD must be a decimal number at least 0"),
        ({"ANOMALY_MIN_USD": "five"}, "ANOMALY_MIN_USD"),
        ({"NOTIFY_TIMEOUT_S": "0"}, "NOTIFY_TIMEOUT_S"),
        ({"NOTIFY_TIMEOUT_S": "nan"}, "NOTIFY_TIMEOUT_S"),
        ({"NOTIFY_MAX_SECONDS": "0.5"}, "NOTIFY_MAX_SECONDS"),
        ({"NOTIFY_WEBHOOK_URLS": "https://a.example/x, hooks.slack.com/x"}, "entry 2 is not"),
        ({"NOTIFY_WEBHOOK_URLS": "ops=mailto:someone@example.org"}, r"entry 1 \(ops\) is not"),
        ({"NOTIFY_WEBHOOK_URLS": "teams:https://a.example/x"}, "entry 1 is not"),
        ({"NOTIFY_WEBHOOK_URLS": "ops=https://a/1, ops=https://b/2"}, "entry 2: the name 'ops'"),
        ({"NOTIFY_WEBHOOK_URLS": "https://a/1, https://a/1"}, "entry 2: the name 'webhook-"),
    ],
)
def test_a_bad_value_is_refused_naming_it(environ, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(environ)
