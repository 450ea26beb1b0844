"""Answers too large to hold, sent as the database gives them (docs/api.md §3.3).

An answer is read in chunks (`queries.stream_json`, `queries.stream_csv`). Up to `THRESHOLD`
bytes are gathered first: an answer that ends within them is answered whole, with its length,
and may be cached, as any other. A larger one is sent as it is read, in the same bytes, its
connection held until the last chunk and released after, or as soon as the client goes away.

An error before the first byte is the usual error answer (422, 503). Once the 200 has
started nothing can replace it: a database error then is logged and the HTTP connection is
dropped without the body's end, so a client sees a broken transfer, never a short answer
that looks whole.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Generator, Iterator

import anyio
import anyio.to_thread
import psycopg
import sqlalchemy.exc
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from api import http_cache

# Answers the response cache could keep are held; only larger ones are streamed.
THRESHOLD = http_cache.MAX_ENTRY_BYTES
log = logging.getLogger("hubcost.api")


class StreamInterrupted(Exception):
    """The database failed after the answer started: the client's connection is dropped."""


def whole(body: bytes) -> Generator[bytes]:
    """An answer already held, as chunks."""
    yield body


def gather(chunks: Iterator[bytes], threshold: int) -> tuple[list[bytes], bool]:
    """The first chunks, until they hold more than `threshold` bytes; and whether that is all."""
    head, size = [], 0
    for chunk in chunks:
        head.append(chunk)
        size += len(chunk)
        if size > threshold:
            return head, False
    return head, True


class DatabaseStream(StreamingResponse):
    """`head`, then the rest of `chunks`, each read in a worker thread; `held` (the
    connection and its cursor) closed when the answer ends, however it ends."""

    def __init__(
        self,
        head: list[bytes],
        chunks: Generator[bytes],
        held: contextlib.ExitStack,
        *,
        media_type: str,
        headers: dict[str, str],
    ):
        self._chunks = chunks
        self._held = held
        self._sent = 0
        super().__init__(self._body(head), media_type=media_type, headers=headers)

    async def _body(self, head: list[bytes]):
        for chunk in head:
            self._sent += len(chunk)
            yield chunk
        while True:
            try:
                chunk = await anyio.to_thread.run_sync(next, self._chunks, None)
            except (sqlalchemy.exc.SQLAlchemyError, psycopg.Error) as exc:
                log.error(
                    "database error after %d bytes of a streamed answer (%s): connection dropped",
                    self._sent,
                    type(exc).__name__,
                )
                raise StreamInterrupted() from exc
            if chunk is None:
                return
            self._sent += len(chunk)
            yield chunk

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # A worker thread never reads `chunks` any more here: a cancelled run_sync waits
            # for its thread. Shielded, so that a disconnect's cancellation still closes.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._release)

    def _release(self) -> None:
        try:
            self._held.close()
        except (sqlalchemy.exc.SQLAlchemyError, psycopg.Error) as exc:
            # The answer is sent (or dropped already): the pool discards a lost connection.
            log.warning("closing a streamed answer's connection failed (%s)", type(exc).__name__)
