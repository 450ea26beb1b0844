"""What a source is to the runner: one small protocol, and the registry of sources.

A source loads one kind of data (its run-log name, e.g. "costs") as chunks of days. The
runner asks it for its window and chunks, lets it read what it needs before the network call
(`before_fetch`, on a short connection), calls `fetch` (network only, no connection held) and
then `save` inside the transaction that also marks the chunk succeeded. Adding a source is one
module: a class with these methods and a factory registered with `register`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.engine import Connection

from etl.windows import Chunk


class RequestCounter:
    """Requests a fetch made that returned (pages included): what a billed API charges."""

    def __init__(self) -> None:
        self.count = 0


class Source(Protocol):
    name: str  # the run log's `source`
    cluster: str  # whose data it loads; chunks, run-log rows and facts carry it

    def window(
        self,
        today: dt.date,
        *,
        last_loaded: dt.date | None,
        lookback_days: int,
        initial_days: int,
    ) -> tuple[dt.date, dt.date]:
        """The days a `hubcost etl` run loads, from the last day the run log says is loaded."""

    def chunks(self, first: dt.date, last: dt.date, today: dt.date) -> list[Chunk]: ...

    def before_fetch(self, conn: Connection, chunk: Chunk) -> Any:
        """What `fetch` needs from the warehouse (read on a connection closed before fetching)."""

    def fetch(self, chunk: Chunk, context: Any, *, now: dt.datetime, requests: RequestCounter):
        """The chunk's rows from the network; raises one of `errors` when it cannot."""

    def save(self, conn: Connection, chunk: Chunk, batch: Any, *, said: set[str]) -> int:
        """Replace the chunk's days with `batch`; `said` keeps a run's warnings to once each."""


@dataclass(frozen=True)
class Sources:
    """The sources a run loads, in order, and whether they are the demo's."""

    active: tuple[Source, ...] = ()
    demo: bool = False

    @property
    def clusters(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(source.cluster for source in self.active))

    def of_cluster(self, cluster: str) -> Sources:
        """Only the sources of one cluster (`--cluster`)."""
        return Sources(tuple(s for s in self.active if s.cluster == cluster), self.demo)

    def loading(self, chunk: Chunk) -> Source:
        """The source that loads `chunk` (its cluster and source name)."""
        return next(s for s in self.active if (s.cluster, s.name) == (chunk.cluster, chunk.source))


SourceFactory = Callable[[Any], "Source | None"]
_FACTORIES: dict[str, SourceFactory] = {}


def register(name: str) -> Callable[[SourceFactory], SourceFactory]:
    """Register `factory(cluster, clusters) -> Source | None`: the source of one
    `core.clusters.ClusterConfig` (None: that cluster does not configure it), knowing every
    configured cluster (clusters sharing an account share its account-wide slice)."""

    def decorate(factory: SourceFactory) -> SourceFactory:
        _FACTORIES[name] = factory
        return factory

    return decorate


def registered() -> dict[str, SourceFactory]:
    return dict(_FACTORIES)
