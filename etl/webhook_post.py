"""One POST of a body to a webhook: the network half of notifications (etl.notify has the SQL).

A webhook's URL is a secret, and urllib3 puts it in places: its exceptions' text, and its DEBUG
log lines (the request's path, where Slack keeps a hook's token). So `post` turns every
outcome into a fixed text made of a status code, a timeout or an exception's type, never its
message; and `urls_hidden_from_logs` rewrites any urllib3 log record that would show a URL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, ProtocolError, SSLError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from core.settings import Secret

HEADERS = {"Content-Type": "application/json", "User-Agent": "hubcost"}
URLLIB3_LOGGERS = (
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.poolmanager",
    "urllib3.response",
    "urllib3.util.retry",
)
HIDDEN = "***"


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    error: str | None = None  # never the URL nor an exception's message
    receiver_down: bool = False  # a 5xx, 429, timeout or connection failure: back off


def make_pool() -> urllib3.PoolManager:
    """The client of one delivery step: no retries or redirects of its own (notify retries)."""
    return urllib3.PoolManager(retries=False)


def post(pool: urllib3.PoolManager, url: Secret, body: bytes, *, timeout_s: float) -> Outcome:
    """POST `body` as JSON; `timeout_s` bounds connecting and waiting for the answer."""
    try:
        response = pool.request(
            "POST",
            url.reveal(),
            body=body,
            headers=HEADERS,
            timeout=urllib3.Timeout(total=timeout_s),
            retries=False,
            redirect=False,
            preload_content=False,
        )
    # NewConnectionError is a subclass of urllib3's TimeoutError: it comes first.
    except NewConnectionError:
        return Outcome(False, "could not connect", receiver_down=True)
    except Urllib3Timeout:
        return Outcome(False, f"timed out after {timeout_s:g} s", receiver_down=True)
    except SSLError:
        return Outcome(False, "TLS error", receiver_down=True)
    except ProtocolError:
        return Outcome(False, "connection broken", receiver_down=True)
    except (HTTPError, OSError) as exc:
        return Outcome(False, f"request failed ({type(exc).__name__})", receiver_down=True)
    status = response.status
    response.close()  # the answer's body is not read: whatever a receiver says, unlogged
    if 200 <= status < 300:
        return Outcome(True)
    return Outcome(False, f"HTTP {status}", receiver_down=status == 429 or status >= 500)


def secret_parts(url: str) -> list[str]:
    """The texts of a URL a log line could show: the whole, its request target, its userinfo."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    found = [url]
    if parts.path not in ("", "/"):
        found += [target, parts.path]
    elif parts.query:
        found.append(target)
    if parts.password:
        found.append(parts.password)
    return found


class _HideSecrets(logging.Filter):
    def __init__(self, secrets: Iterable[str]):
        super().__init__()
        self.secrets = sorted(set(secrets), key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, HIDDEN)
            record.msg, record.args = message, None
        return True


@contextmanager
def urls_hidden_from_logs(urls: Iterable[Secret]) -> Iterator[None]:
    """While the block runs, urllib3's log records show `***` where a URL's secrets were."""
    hide = _HideSecrets(part for url in urls for part in secret_parts(url.reveal()))
    loggers = [logging.getLogger(name) for name in URLLIB3_LOGGERS]
    for logger in loggers:
        logger.addFilter(hide)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(hide)
