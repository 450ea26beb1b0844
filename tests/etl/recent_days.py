"""Past days that Cost Explorer still serves, relative to today (UTC), for tests' backfills.

Cost Explorer keeps 13 months (`cost_explorer.oldest_day`) and the costs source never asks
for older days, so a backfill that must reach Cost Explorer names days relative to today:
fixed ones would drift out of reach, and the test would stop sending the requests it tests.
"""

from __future__ import annotations

import datetime as dt


def first_of_last_month() -> dt.date:
    """The 1st of the month before the current UTC one: wholly past, well within reach."""
    first_of_this_month = dt.datetime.now(dt.UTC).date().replace(day=1)
    return (first_of_this_month - dt.timedelta(days=1)).replace(day=1)


def backfill(first: dt.date, last: dt.date) -> list[str]:
    """`hubcost backfill`'s arguments for first..last."""
    return ["backfill", "--from", first.isoformat(), "--to", last.isoformat()]
