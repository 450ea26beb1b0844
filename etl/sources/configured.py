"""The sources the settings configure: for each cluster, every registered source it turns on.

The built-in sources register when their modules are imported here; with DEMO on, the demo's
clients stand behind the same sources instead.
"""

from __future__ import annotations

import importlib

from etl.sources.base import Sources, registered

BUILT_IN = ("etl.sources.costs", "etl.sources.usage")


def source_names() -> tuple[str, ...]:
    """The run-log names of every registered source, in loading order."""
    _import_built_in()
    return tuple(registered())


def configured_sources(settings) -> Sources:
    """Every cluster's sources, cluster by cluster in the settings' order."""
    if settings.demo:
        from etl.sources import demo

        return demo.demo_sources()
    _import_built_in()
    made = (
        factory(cluster, settings.clusters)
        for cluster in settings.clusters
        for factory in registered().values()
    )
    return Sources(tuple(source for source in made if source is not None))


def _import_built_in() -> None:
    for module in BUILT_IN:
        importlib.import_module(module)
