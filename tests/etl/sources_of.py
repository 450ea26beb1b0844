"""Sources made of plain fetch functions, as the runner's tests give them."""

from __future__ import annotations

from etl.sources.base import Sources
from etl.sources.costs import CostsSource
from etl.sources.usage import UsageSource


def sources_of(*, costs=None, usage=None) -> Sources:
    made = (CostsSource(costs) if costs else None, UsageSource(usage) if usage else None)
    return Sources(tuple(source for source in made if source is not None))
