"""Delivering the recorded events to their webhooks, each once (docs/budgets.md §5).

A delivery is claimed with FOR UPDATE SKIP LOCKED (two runs at once never take the same row),
posted while the row is held, and marked in the same transaction, committed right after the
answer: a 2xx marks it delivered, anything else counts a failed attempt. A receiver that is
down (5xx, 429, a timeout, no connection) is tried again after a short backoff, at most
MAX_TRIES_PER_RUN times in a row; a 4xx skips that delivery for this run. What is left waits
for the next run. The whole step ends within `max_seconds`, and nothing it meets raises: the
ETL's result never depends on a receiver. Logs name receivers, never their URLs.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
import urllib3
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from core.schema import notification_delivery as delivery
from core.schema import notification_event as event
from core.webhooks import Webhook
from etl.payloads import Event, body
from etl.webhook_post import Outcome, make_pool, post, urls_hidden_from_logs

log = logging.getLogger("hubcost.etl.notify")

MAX_TRIES_PER_RUN = 3  # failures in a row before a receiver waits for the next run
BACKOFF_S = (0.5, 1.0, 2.0)  # the waits after the 1st, 2nd, ... failure in a row
MIN_ATTEMPT_S = 0.05  # less time than this left: no new attempt


@dataclass
class Report:
    delivered: int = 0
    failed_attempts: int = 0
    left: int = 0  # deliveries of the configured receivers pending at the end (the next run's)


@dataclass
class _Receiver:
    hook: Webhook
    failures: int = 0  # in a row, this run
    not_before: float = 0.0  # monotonic time of its next attempt
    done: bool = False  # nothing more for it this run
    skipped: set[int] = field(default_factory=set)  # events refused (4xx) this run


def deliver_pending(
    engine: Engine,
    receivers: tuple[Webhook, ...],
    *,
    timeout_s: float,
    max_seconds: float,
    clock: Callable[[], dt.datetime],
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Report:
    """Post every pending delivery of the configured receivers, within max_seconds."""
    report = Report()
    if not receivers:
        return report
    step = _Step(engine, report, monotonic() + max_seconds, timeout_s, clock, monotonic, sleep)
    try:
        with urls_hidden_from_logs(hook.url for hook in receivers):
            step.run([_Receiver(hook) for hook in receivers])
        report.left = _pending(engine, receivers)
    except SQLAlchemyError as exc:
        log.error(
            "notification delivery stopped by a database error (%s); what is pending is "
            "retried by the next run",
            type(exc).__name__,
        )
    finally:
        step.pool.clear()
    _log_report(report)
    return report


@dataclass
class _Step:
    """One run's delivery step: its deadline, its HTTP client, what it did."""

    engine: Engine
    report: Report
    deadline: float  # monotonic
    timeout_s: float
    clock: Callable[[], dt.datetime]
    monotonic: Callable[[], float]
    sleep: Callable[[float], None]
    pool: urllib3.PoolManager = field(default_factory=make_pool)

    def run(self, receivers: list[_Receiver]) -> None:
        while True:
            now = self.monotonic()
            active = [r for r in receivers if not r.done]
            if not active or now >= self.deadline - MIN_ATTEMPT_S:
                return
            ready = [r for r in active if r.not_before <= now]
            if not ready:
                self.sleep(min(min(r.not_before for r in active), self.deadline) - now)
                continue
            for receiver in ready:  # one delivery per receiver a round: a slow one delays none
                left = self.deadline - self.monotonic()
                if left < MIN_ATTEMPT_S:
                    return
                self.deliver_next(receiver, min(self.timeout_s, left))

    def deliver_next(self, receiver: _Receiver, timeout_s: float) -> None:
        """Claim, post and mark the receiver's oldest pending delivery; done when none is left."""
        hook = receiver.hook
        with self.engine.connect() as conn, conn.begin():
            row = conn.execute(_claim(hook.name, receiver.skipped)).first()
            if row is None:
                receiver.done = True
                return
            pending = Event(
                id=row.id,
                key=row.key,
                kind=row.kind,
                cluster=row.cluster,
                budget=row.budget,
                day=row.about_day,
                details=row.details,
            )
            outcome = post(self.pool, hook.url, body(pending, hook.format), timeout_s=timeout_s)
            conn.execute(_mark(pending.id, hook.name, outcome, self.clock()))
        if outcome.delivered:
            self.report.delivered += 1
            receiver.failures = 0
            log.info("notified %s of %s", hook.name, pending.key)
        else:
            self.report.failed_attempts += 1
            log.warning("could not notify %s of %s: %s", hook.name, pending.key, outcome.error)
            self._after_failure(receiver, pending.id, outcome)

    def _after_failure(self, receiver: _Receiver, event_id: int, outcome: Outcome) -> None:
        if not outcome.receiver_down:  # it refused this one: the next may pass
            receiver.skipped.add(event_id)
            return
        receiver.failures += 1
        if receiver.failures >= MAX_TRIES_PER_RUN:
            receiver.done = True
            log.warning(
                "%s failed %d times in a row: left for the next run",
                receiver.hook.name,
                receiver.failures,
            )
        else:
            wait = BACKOFF_S[min(receiver.failures, len(BACKOFF_S)) - 1]
            receiver.not_before = self.monotonic() + wait


def _claim(receiver: str, skipped: set[int]) -> sa.Select:
    return (
        sa.select(
            event.c.id,
            event.c.key,
            event.c.kind,
            event.c.cluster,
            event.c.budget,
            event.c.about_day,
            event.c.details,
        )
        .join(delivery, delivery.c.event_id == event.c.id)
        .where(
            delivery.c.receiver == receiver,
            delivery.c.delivered_at.is_(None),
            delivery.c.event_id.not_in(sorted(skipped)),
        )
        .order_by(delivery.c.event_id)
        .limit(1)
        .with_for_update(of=delivery, skip_locked=True)
    )


def _mark(event_id: int, receiver: str, outcome: Outcome, now: dt.datetime) -> sa.Update:
    values = {"attempts": delivery.c.attempts + 1, "last_attempt_at": now}
    if outcome.delivered:
        values["delivered_at"] = now
    else:
        values["last_error"] = outcome.error
    return (
        sa.update(delivery)
        .where(delivery.c.event_id == event_id, delivery.c.receiver == receiver)
        .values(values)
    )


def _pending(engine: Engine, receivers: tuple[Webhook, ...]) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).where(
                delivery.c.delivered_at.is_(None),
                delivery.c.receiver.in_([hook.name for hook in receivers]),
            )
        ).scalar_one()


def _log_report(report: Report) -> None:
    if report.delivered or report.failed_attempts or report.left:
        log.info(
            "notifications: %d delivered, %d failed attempt(s), %d pending",
            report.delivered,
            report.failed_attempts,
            report.left,
        )
