"""The in-process scheduler of `hubcost run`: `hubcost etl` on ETL_CRON (UTC) and once at start.

Every run takes the advisory lock ETL_RUN_LOCK (inside `jobs.run_etl`), so several replicas, a
CronJob and a hand-run backfill never load at the same time; a run that finds the lock taken
does nothing. The engine and the source clients are made here, once, at start.

Each run has a daemon thread of its own: when the process stops (`stop_scheduler`), the chunk
in flight is recorded interrupted and the process exits without waiting for it.
"""

from __future__ import annotations

import logging
import sys
import threading

from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN
from apscheduler.executors.base import BaseExecutor, run_job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from etl import jobs, runs
from etl.alerts import Alerts
from etl.stopping import Terminated, interruption

log = logging.getLogger("hubcost.scheduler")


def scheduled_run(
    engine, sources, *, lookback_days: int, initial_days: int, alerts=None, clock=jobs.utc_now
):
    """One scheduled run and its alerts; its outcome is logged (the run log has the details)."""
    try:
        result = jobs.run_etl(
            engine,
            sources,
            clock=clock,
            lookback_days=lookback_days,
            initial_days=initial_days,
            alerts=alerts,
        )
    except Terminated:
        log.info("run given up: hubcost is stopping")
        return None
    if result.in_progress:
        log.info("skipped: another ETL run holds the lock")
    elif result.failed:
        log.error(
            "ETL run: %d chunk(s) failed, %d succeeded: %s",
            result.failed,
            result.succeeded,
            "; ".join(result.errors),
        )
    else:
        log.info("ETL run: %d chunk(s) succeeded", result.succeeded)
    return result


def start_scheduler(settings, *, engine=None, sources=None) -> BackgroundScheduler:
    """Start the background scheduler: one run now, then on ETL_CRON (UTC)."""
    from core import bootstrap

    own_engine = engine is None
    if own_engine:
        engine = bootstrap.writer_engine(settings)
    if sources is None:
        from etl.sources.configured import configured_sources

        sources = configured_sources(settings)
    if sources.demo:
        log.warning(
            "DEMO DATA: no source is configured (CLUSTER_NAME, PROMETHEUS_URL), so the scheduler "
            "loads deterministic synthetic costs and usage; set a source for real numbers"
        )
    kwargs = {
        "engine": engine,
        "sources": sources,
        "lookback_days": settings.lookback_days,
        "initial_days": jobs.DEMO_DAYS if sources.demo else settings.initial_days,
        "alerts": Alerts.from_settings(settings),
    }
    scheduler = BackgroundScheduler(timezone="UTC", executors={"default": DaemonThreadExecutor()})
    scheduler.add_job(
        scheduled_run,
        CronTrigger.from_crontab(settings.etl_cron, timezone="UTC"),
        kwargs=kwargs,
        id="etl",
        name="hubcost etl",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=3600,
    )
    # The run at start: no trigger means "once, now".
    scheduler.add_job(scheduled_run, kwargs=kwargs, id="etl-at-start", name="hubcost etl (start)")
    if own_engine:
        scheduler.add_listener(lambda event: engine.dispose(), EVENT_SCHEDULER_SHUTDOWN)
    scheduler.start()
    log.info("ETL scheduled on %r (UTC), and running once now", settings.etl_cron)
    return scheduler


def stop_scheduler(scheduler: BackgroundScheduler, settings, *, cause: BaseException | None):
    """Stop scheduling, and give up the run in flight: its chunk is recorded `interrupted`.

    `cause` is what stops the process (SIGTERM's `Terminated`, Ctrl-C's KeyboardInterrupt, or
    None when the server ended by itself). The run's thread is not waited for: its data
    transaction ends uncommitted when the process exits (`etl.runs.interrupt_in_flight`).
    """
    from core import bootstrap

    scheduler.shutdown(wait=False)
    why = interruption(cause) or "interrupted: hubcost run stopped; the chunk was rolled back"
    # A connection of its own: the run in flight may hold every one of its engine's.
    engine = bootstrap.writer_engine(settings, pool_size=1)
    try:
        interrupted = runs.interrupt_in_flight(engine, why=why, now=jobs.utc_now())
    finally:
        engine.dispose()
    if interrupted:
        log.warning("%d chunk(s) in flight recorded interrupted (%s)", interrupted, why)


class DaemonThreadExecutor(BaseExecutor):
    """Runs each job on a daemon thread of its own, which never holds up the process's exit
    (APScheduler's thread pool joins its threads at exit, so a blocked chunk would)."""

    def _do_submit_job(self, job, run_times):
        def run():
            try:
                events = run_job(job, job._jobstore_alias, run_times, self._logger.name)
            except BaseException:
                self._run_job_error(job.id, *sys.exc_info()[1:])
            else:
                self._run_job_success(job.id, events)

        threading.Thread(target=run, name=f"hubcost-{job.id}", daemon=True).start()
