"""What the runner does after a run's loads: evaluate (under the run lock), then deliver.

`etl.jobs` calls `evaluate` while it still holds the run lock, after a run that loaded
something, and `deliver` once it has let the lock go, after every run that took it (what an
earlier run could not deliver is retried then). Neither raises on a database or receiver
failure: evaluation says whether it failed, delivery only logs.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from core.webhooks import Webhook
from etl import evaluate as evaluation
from etl import notify
from etl.windows import Chunk

log = logging.getLogger("hubcost.etl.alerts")


@dataclass(frozen=True)
class Alerts:
    rule: evaluation.AnomalyRule
    receivers: tuple[Webhook, ...]
    timeout_s: float
    max_seconds: float

    @classmethod
    def from_settings(cls, settings) -> Alerts:
        return cls(
            rule=evaluation.AnomalyRule(settings.anomaly_factor, settings.anomaly_min_usd),
            receivers=settings.notify_webhooks,
            timeout_s=settings.notify_timeout_s,
            max_seconds=settings.notify_max_seconds,
        )

    def evaluate(self, engine: Engine, loaded: Iterable[Chunk], *, today: dt.date) -> bool:
        """Judge the loaded days and record new events; False if the database refused."""
        loaded = list(loaded)
        if not loaded:
            return True
        try:
            done = evaluation.evaluate(
                engine, loaded=loaded, today=today, rule=self.rule, receivers=self.receivers
            )
        except SQLAlchemyError as exc:
            log.error(
                "budgets and anomalies were not evaluated (database error %s); the days this "
                "run loaded are judged again when a run loads them",
                type(exc).__name__,
            )
            return False
        log.info(
            "evaluated: %d anomal%s on the loaded days, %d new event(s), %d delivery(ies) to make",
            done.anomalies,
            "y" if done.anomalies == 1 else "ies",
            done.events,
            done.deliveries,
        )
        return True

    def deliver(self, engine: Engine, *, clock: Callable[[], dt.datetime]) -> notify.Report:
        return notify.deliver_pending(
            engine,
            self.receivers,
            timeout_s=self.timeout_s,
            max_seconds=self.max_seconds,
            clock=clock,
        )
