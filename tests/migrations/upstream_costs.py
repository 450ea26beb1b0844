"""Recorded Cost Explorer amounts for one hub over three days (docs/attribution.md §3.3).

The figures are those of the `attributable`, `home` and `core` answers that the BSD 3-Clause
project jupyterhub-cost-monitoring (Copyright (c) 2025, 2i2c) keeps as test data; here they are
tables. Those answers are grouped by SERVICE only (no hub tag), all in USD, metric
UnblendedCost. `cost_explorer_answer` rebuilds a GetCostAndUsage answer of that shape, so a test
can read the amounts the way it would read a recorded answer.
"""

from __future__ import annotations

import datetime as dt

METRIC = "UnblendedCost"
DAYS = ("2025-09-01", "2025-09-02", "2025-09-03")

# The columns of the tables below.
SERVICES = (
    "EC2 - Other",
    "Amazon Elastic Compute Cloud - Compute",
    "Amazon Elastic Container Service for Kubernetes",
    "Amazon Elastic Load Balancing",
    "Amazon Simple Storage Service",
    "Amazon Virtual Private Cloud",
)

# slice -> one row per day of DAYS, one amount per service of SERVICES (None: no group).
AMOUNTS: dict[str, tuple[tuple[str | None, ...], ...]] = {
    "attributable": (
        ("10.9546080266", "13.843269972", "2.4", "0.6386448404", "0.1708161627", "0.27473056"),
        ("11.1292772771", "18.63063972", "2.4", "0.6316656019", "0.1708209627", "0.37006805"),
        ("11.183411528", "16.70171958", "2.4", "0.6330165883", "0.1708161627", "0.33205"),
    ),
    "home": (
        ("7.2199712605", None, None, None, None, None),
        ("7.2033867203", None, None, None, None, None),
        ("7.3132401002", None, None, None, None, None),
    ),
    "core": (
        ("2.6798380609", "6.048", None, None, None, None),
        ("2.6964656124", "6.048", None, None, None, None),
        ("2.7120784288", "6.048", None, None, None, None),
    ),
}


def cost_explorer_answer(slice_: str) -> dict:
    """The slice's amounts as a GetCostAndUsage answer (DAILY, grouped by SERVICE)."""
    results = []
    for day, amounts in zip(DAYS, AMOUNTS[slice_], strict=True):
        end = dt.date.fromisoformat(day) + dt.timedelta(days=1)
        groups = [
            {"Keys": [service], "Metrics": {METRIC: {"Amount": amount, "Unit": "USD"}}}
            for service, amount in zip(SERVICES, amounts, strict=True)
            if amount is not None
        ]
        results.append(
            {
                "TimePeriod": {"Start": day, "End": end.isoformat()},
                "Total": {},
                "Groups": groups,
                "Estimated": True,
            }
        )
    return {"GroupDefinitions": [{"Type": "DIMENSION", "Key": "SERVICE"}], "ResultsByTime": results}
