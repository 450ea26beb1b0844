"""A process stopping in the middle of a load: SIGTERM (a pod stop) or Ctrl-C.

`hubcost etl` and `hubcost backfill` of one cluster load in the main thread, where SIGTERM
raises `Terminated` (hubcost/cli.py): the chunk's transaction rolls back and its run-log row is
marked `interrupted` on the way out. Elsewhere the loads run in threads no signal reaches: the
lanes of several clusters (`etl.jobs`, whose main thread waits for them) and `hubcost run`'s
scheduler. There the thread the signal reaches records the chunks in flight `interrupted`
itself (`etl.runs.interrupt_in_flight`) and the process exits without waiting for them, which
closes their connections with their transactions still open, so nothing of them commits.
"""

from __future__ import annotations


class Terminated(BaseException):
    """SIGTERM (a pod stop) arrived: the chunk in flight rolls back and the run stops.

    A BaseException, like KeyboardInterrupt, so that no `except Exception` swallows it.
    """


def interruption(exc: BaseException | None) -> str | None:
    """The run-log error of a chunk stopped by `exc`; None if `exc` does not stop the process."""
    if isinstance(exc, Terminated):
        return "interrupted by SIGTERM: the chunk was rolled back"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted by SIGINT: the chunk was rolled back"
    return None
