"""The in-process scheduler (placeholder until the ETL lands)."""

import logging

from apscheduler.schedulers.background import BackgroundScheduler


def start_scheduler(settings) -> BackgroundScheduler:
    logging.getLogger(__name__).warning("the ETL scheduler is not implemented yet")
    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.start()
    return scheduler
