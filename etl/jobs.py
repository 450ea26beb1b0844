"""ETL runs (placeholder until the ETL lands)."""

import sys


def etl_command(settings) -> int:
    print("hubcost etl: not yet implemented", file=sys.stderr)
    return 1


def backfill_command(settings, *, first, last, source, resume) -> int:
    print("hubcost backfill: not yet implemented", file=sys.stderr)
    return 1
