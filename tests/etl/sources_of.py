"""Sources made of plain fetch functions, as the runner's tests give them."""

from __future__ import annotations

from core.schema import DEFAULT_CLUSTER
from etl.sources.base import Sources
from etl.sources.costs import CostsSource
from etl.sources.usage import UsageSource


def sources_of(*, costs=None, usage=None, cluster: str = DEFAULT_CLUSTER) -> Sources:
    made = (
        CostsSource(cluster, costs) if costs else None,
        UsageSource(cluster, usage) if usage else None,
    )
    return Sources(tuple(source for source in made if source is not None))
