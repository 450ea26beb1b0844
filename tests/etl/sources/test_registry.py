"""A new source is one class and one registration: the runner, the run log, the backfill's
--source choices and the status view take it without any other change (no migration)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from etl import jobs
from etl.sources import base
from etl.sources.configured import source_names
from etl.windows import usage_chunks, usage_window
from hubcost.cli import build_parser
from tests.rows import select_all

DAY = dt.date(2026, 3, 2)


@dataclass(frozen=True)
class BillingExport:
    cluster: str
    name: str = "gcp-billing"

    def window(self, today, *, last_loaded, lookback_days, initial_days):
        return usage_window(today, last_loaded=last_loaded, initial_days=initial_days)

    def chunks(self, first, last, today):
        return usage_chunks(first, last, today)

    def before_fetch(self, conn, chunk):
        return None

    def fetch(self, chunk, context, *, now, requests):
        requests.count += 1
        return ["a row"]

    def save(self, conn, chunk, batch, *, said):
        return len(batch)


def test_a_registered_source_is_loaded_logged_and_reported(engine):
    base.register("gcp-billing")(lambda cluster, clusters: BillingExport(cluster.name))
    try:
        assert "gcp-billing" in source_names()
        backfill = build_parser().parse_args(
            ["backfill", "--from", "2026-03-02", "--to", "2026-03-02", "--source", "gcp-billing"]
        )
        assert backfill.source == "gcp-billing"
    finally:
        base._FACTORIES.pop("gcp-billing")

    sources = base.Sources((BillingExport("east"),))
    result = jobs.run_backfill(
        engine,
        sources,
        first=DAY,
        last=DAY,
        source="gcp-billing",
        resume=False,
        clock=lambda: dt.datetime(2026, 3, 10, tzinfo=dt.UTC),
    )
    assert (result.succeeded, result.failed) == (1, 0)
    with engine.connect() as conn:
        assert select_all(conn, "SELECT cluster, source, status, rows, requests FROM run_log") == [
            ("east", "gcp-billing", "succeeded", 1, 1)
        ]
        assert select_all(conn, "SELECT cluster, source FROM etl_status ORDER BY source") == [
            ("east", "costs"),
            ("east", "gcp-billing"),
            ("east", "usage"),
        ]
