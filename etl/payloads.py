"""What a webhook receives for an event: the Slack-compatible body or the generic JSON one.

Both are built from the event's row alone (its details were recorded with it), so a retry
sends the same body. Amounts are strings with two decimals, ratios with four, dates ISO.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
RATIO = Decimal("0.0001")
AMOUNTS = ("amount", "spent", "daily_rate", "forecast", "cost", "baseline", "mad", "score")
RATIOS = ("spent_ratio", "forecast_ratio")
PERIOD_WORDS = {"month": "monthly", "quarter": "quarterly", "year": "yearly", "total": "total"}


@dataclass(frozen=True)
class Event:
    id: int
    key: str
    kind: str  # budget_threshold, budget_forecast or cost_anomaly
    cluster: str | None
    budget: str | None
    day: dt.date  # the last loaded day of a budget's status; the anomaly's day
    details: Mapping[str, Any]  # as recorded: exact numbers as text


def body(event: Event, fmt: str) -> bytes:
    payload = slack_payload(event) if fmt == "slack" else json_payload(event)
    return json.dumps(payload).encode()


def json_payload(event: Event) -> dict[str, Any]:
    return {
        "event": event.kind,
        "key": event.key,
        "id": event.id,
        "cluster": event.cluster,
        "budget": event.budget,
        "day": event.day.isoformat(),
        "details": _formatted(event.details),
    }


def slack_payload(event: Event) -> dict[str, Any]:
    text, fields = _anomaly(event) if event.kind == "cost_anomaly" else _budget(event)
    return {
        "text": _escaped(text),
        "attachments": [
            {
                "fields": [
                    {"title": title, "value": _escaped(value), "short": True}
                    for title, value in fields
                    if value is not None
                ]
            }
        ],
    }


def _formatted(details: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in details.items():
        if value is not None and name in AMOUNTS:
            value = str(_decimal(value).quantize(CENT, ROUND_HALF_UP))
        elif value is not None and name in RATIOS:
            value = str(_decimal(value).quantize(RATIO, ROUND_HALF_UP))
        out[name] = value
    return out


def _budget(event: Event) -> tuple[str, list[tuple[str, str | None]]]:
    d = event.details
    word = PERIOD_WORDS.get(d["period"], d["period"])
    amount, spent = _usd(d["amount"]), _usd(d["spent"])
    if event.kind == "budget_threshold":
        percent = int(_decimal(d["spent_ratio"]).scaleb(2).to_integral_value(ROUND_FLOOR))
        text = (
            f"Budget {event.budget}: {percent}% of its {word} amount spent ({spent} of "
            f"{amount} through {d['last_day']}), past its {d['threshold_percent']}% alert"
        )
    else:
        text = (
            f"Budget {event.budget}: forecast {_usd(d['forecast'])} by {d['period_end']}, "
            f"over its {word} amount of {amount} ({spent} spent through {d['last_day']})"
        )
    period = f"{d['period']} from {d['period_start']}"
    if d.get("period_end"):
        period += f" to {d['period_end']}"
    fields = [
        ("Budget", event.budget),
        ("Scope", _scope(d.get("scope") or {})),
        ("Period", period),
        ("Amount", amount),
        ("Spent", spent),
        ("Forecast", _usd(d["forecast"]) if d.get("forecast") is not None else None),
        ("Alert at", f"{d['threshold_percent']}%" if "threshold_percent" in d else None),
        ("Last day loaded", d["last_day"]),
    ]
    return text, fields


def _anomaly(event: Event) -> tuple[str, list[tuple[str, str | None]]]:
    d = event.details
    who = f"user {d['user']} on hub {d['hub']}" if d["scope"] == "user" else f"hub {d['hub']}"
    score = str(_decimal(d["score"]).quantize(CENT, ROUND_HALF_UP))
    text = (
        f"Cost anomaly: {who} ({event.cluster}) cost {_usd(d['cost'])} on {event.day}, "
        f"against a usual {_usd(d['baseline'])} (score {score})"
    )
    fields = [
        ("Cluster", event.cluster),
        ("Hub", d["hub"]),
        ("User", d.get("user")),
        ("Day", event.day.isoformat()),
        ("Cost", _usd(d["cost"])),
        ("Baseline", _usd(d["baseline"])),
        ("Score", score),
        ("History days", str(d["history_days"])),
    ]
    return text, fields


def _scope(scope: Mapping[str, str | None]) -> str:
    parts = [f"{name} {value}" for name, value in scope.items() if value is not None]
    return ", ".join(parts) or "everything"


def _usd(value: str) -> str:
    return f"${_decimal(value).quantize(CENT, ROUND_HALF_UP):,.2f}"


def _decimal(value: str) -> Decimal:
    # Recorded as numeric text, never through a float.
    return Decimal(value)


def _escaped(text: str) -> str:
    """Slack reads &, < and > as markup: a hub or user name must not become a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
