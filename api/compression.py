"""gzip, when the client asks for it (docs/api.md §3.2), made by zlib-ng.

Starlette's GZipMiddleware compresses with the standard library's zlib. zlib-ng writes the same
format three times as fast at level 1 on these answers (a 5.2 MB `/costs-per-user`: 21 ms with
zlib, 7 ms with zlib-ng, 0.51 MB instead of 0.42 MB), which is most of what a first dashboard
load with `Accept-Encoding: gzip` spent beyond the uncompressed one (BENCHMARKS.md 9a).
`GZip` is Starlette's middleware with that compressor; `compress` makes a cached answer's body.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.gzip import GZipMiddleware, GZipResponder
from starlette.types import Receive, Scope, Send
from zlib_ng import gzip_ng, zlib_ng

# Level 1: the bulk answers shrink 10x for a fraction of the default level's time.
LEVEL = 1
MINIMUM_BYTES = 1024


def wants_gzip(accept_encoding: str | None) -> bool:
    """As GZipMiddleware decides it, so that both paths answer the same requests compressed."""
    return "gzip" in (accept_encoding or "")


def compress(body: bytes) -> bytes:
    return gzip_ng.compress(body, compresslevel=LEVEL, mtime=0)


class _Responder(GZipResponder):
    @property
    def compressor(self):
        if self._compressor is None:
            self._compressor = zlib_ng.compressobj(
                self.compresslevel, zlib_ng.DEFLATED, 16 + zlib_ng.MAX_WBITS
            )
        return self._compressor


class GZip(GZipMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not wants_gzip(Headers(scope=scope).get("accept-encoding")):
            await super().__call__(scope, receive, send)
            return
        responder = _Responder(
            self.app,
            self.minimum_size,
            compresslevel=self.compresslevel,
            thread_minimum_size=self.thread_minimum_size,
            exclude_content_types=self.exclude_content_types,
        )
        await responder(scope, receive, send)
