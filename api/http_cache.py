"""HTTP caching tied to the data (docs/api.md §3.1).

A list answer depends on the data and on the request's resolved parameters only (the days
after `today` and the defaults are applied, the format after `Accept`), so its ETag is made of
the data version (`data_version()`, which moves only when a write to the data commits) and
those parameters. A client repeating the request with `If-None-Match` gets a 304 with no body
while the data is unchanged; `Cache-Control` makes caches (Grafana's proxy, a browser)
revalidate every time rather than reuse an answer blindly.

`ResponseCache` keeps recent answers in the process, keyed by (data version, request): a
dashboard refreshing unchanged data is answered without running its statements. Entries of an
older version are dropped the first time a newer version is seen. It holds at most
`MAX_BYTES`, no single answer above `MAX_ENTRY_BYTES` (the bulk answers are streamed, not
held), least recently used first out.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from api import compression

CACHE_CONTROL = "private, max-age=0, must-revalidate"
MAX_BYTES = 32 * 2**20
MAX_ENTRY_BYTES = 8 * 2**20


@dataclass(frozen=True)
class Cached:
    body: bytes
    media_type: str
    headers: dict[str, str]
    # The body gzipped, made the first time a client asking for gzip is answered from the
    # cache: a refresh with `Accept-Encoding: gzip` (as Grafana sends) then compresses nothing.
    gzipped: bytes | None = None

    @property
    def size(self) -> int:
        return len(self.body) + len(self.gzipped or b"")


def compressed(cached: Cached) -> Cached:
    """`cached` with its gzipped body (made now if it has none)."""
    if cached.gzipped is not None:
        return cached
    return dataclasses.replace(cached, gzipped=compression.compress(cached.body))


def gzip_headers(cached: Cached, validators: dict[str, str]) -> dict[str, str]:
    """The headers GZipMiddleware gives a compressed answer (its Vary names Accept-Encoding)."""
    vary = validators.get("Vary")
    vary = "Accept-Encoding" if not vary else f"{vary}, Accept-Encoding"
    return {**cached.headers, **validators, "Content-Encoding": "gzip", "Vary": vary}


def etag(version: int, revision: str, request_key: Hashable) -> str:
    """A weak validator (the gzip-encoded answer has the same one) of version and request."""
    digest = hashlib.blake2b(repr((revision, request_key)).encode(), digest_size=12).hexdigest()
    return f'W/"{version}-{digest}"'


def matches(if_none_match: str | None, tag: str) -> bool:
    """Whether `If-None-Match` names `tag` (weak comparison, as RFC 9110 §13.1.2 asks)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    wanted = tag.removeprefix("W/")
    return any(
        candidate.strip().removeprefix("W/") == wanted for candidate in if_none_match.split(",")
    )


def validator_headers(tag: str) -> dict[str, str]:
    return {"ETag": tag, "Cache-Control": CACHE_CONTROL, "Vary": "Accept"}


class ResponseCache:
    """Answers by (data version, request key), bounded in bytes; thread-safe."""

    def __init__(self, max_bytes: int = MAX_BYTES, max_entry_bytes: int = MAX_ENTRY_BYTES):
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_entry_bytes
        self._version: int | None = None
        self._entries: OrderedDict[Hashable, Cached] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, version: int, key: Hashable) -> Cached | None:
        with self._lock:
            self._see(version)
            cached = self._entries.get(key)
            if cached is not None:
                self._entries.move_to_end(key)
            return cached

    def put(self, version: int, key: Hashable, cached: Cached) -> None:
        if len(cached.body) > min(self.max_entry_bytes, self.max_bytes):
            return
        with self._lock:
            self._see(version)
            if version != self._version:
                return  # read before a newer version was seen: never served again
            old = self._entries.pop(key, None)
            if old is not None:
                self._size -= old.size
            self._entries[key] = cached
            self._size += cached.size
            while self._size > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._size -= evicted.size

    @property
    def size(self) -> int:
        return self._size

    def _see(self, version: int) -> None:
        if self._version is None or version > self._version:
            self._version = version
            self._entries.clear()
            self._size = 0
