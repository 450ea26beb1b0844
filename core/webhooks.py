"""The webhooks notifications are posted to: NOTIFY_WEBHOOK_URLS (docs/budgets.md §5).

The variable is a comma-separated list of entries `[NAME=][slack:|json:]URL`. A named entry
receives only the events of the budgets whose `notify` lists its name; an unnamed one receives
every event, under the stable name `webhook-<first 8 hex digits of sha256(URL)>`. The format
is `slack` for hooks.slack.com and `json` otherwise unless the entry says. URLs are secrets
(Slack's carry their token in the path): errors name an entry by its position and its name,
never by its URL.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from core.settings import Secret, SettingsError

VARIABLE = "NOTIFY_WEBHOOK_URLS"
FORMATS = ("slack", "json")
SLACK_HOST = "hooks.slack.com"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
UNNAMED_PREFIX = "webhook-"


@dataclass(frozen=True)
class Webhook:
    name: str  # how logs, tables and /metrics call it
    format: str  # "slack" or "json"
    url: Secret
    named: bool  # named in its entry: receives only the budgets that list it

    def receives(self, budget_notify: tuple[str, ...] | list[str] | None) -> bool:
        """Whether an event of a budget with this `notify` list (None: no budget) is for us."""
        return not self.named or self.name in (budget_notify or ())


def unnamed_name(url: str) -> str:
    return UNNAMED_PREFIX + hashlib.sha256(url.encode()).hexdigest()[:8]


def parse_webhooks(value: str | None) -> tuple[Webhook, ...]:
    """The webhooks of NOTIFY_WEBHOOK_URLS's value; blank entries are ignored."""
    if value is None:
        return ()
    hooks: list[Webhook] = []
    for position, entry in enumerate(value.split(","), 1):
        if entry.strip():
            hook = _webhook(entry.strip(), position)
            if any(h.name == hook.name for h in hooks):
                raise SettingsError(
                    f"{VARIABLE} entry {position}: the name {hook.name!r} is already taken by "
                    "an earlier entry (an unnamed URL given twice has the same name)"
                )
            hooks.append(hook)
    return tuple(hooks)


def _webhook(entry: str, position: int) -> Webhook:
    name = None
    head, equals, rest = entry.partition("=")
    if equals and NAME.fullmatch(head.strip()):
        name, entry = head.strip(), rest.strip()
    where = f"{VARIABLE} entry {position}" + (f" ({name})" if name else "")
    fmt = None
    for candidate in FORMATS:
        if entry.startswith(candidate + ":"):
            fmt, entry = candidate, entry[len(candidate) + 1 :].strip()
    host = _http_host(entry)
    if host is None:
        raise SettingsError(
            f"{where} is not [NAME=][slack:|json:]URL with an http:// or https:// URL "
            "(a NAME is letters, digits, '.', '_' and '-'; a comma inside a URL is written %2C)"
        )
    return Webhook(
        name=name or unnamed_name(entry),
        format=fmt or ("slack" if host == SLACK_HOST else "json"),
        url=Secret(entry),
        named=name is not None,
    )


def _http_host(url: str) -> str | None:
    """The URL's host name if it is an absolute http(s) URL, else None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in url:
        return None
    return parts.hostname.lower()
