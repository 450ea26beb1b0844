"""Smoke test of figure 8: a two-day, two-hub warehouse of revision 0005 upgraded under the
sampler and the reader. No time is asserted."""

from bench import upgrade_figures
from core import migrate


def test_the_upgrade_figure_on_a_small_previous_release(empty_database_url):
    figures = upgrade_figures.figures(empty_database_url, days=2, hubs=2)

    assert figures["revision"] == migrate.head_revision()
    assert figures["rows"]["usage"] == 2 * (24 + 200)
    assert "upgrade 0005 -> 0006" in figures["revisions_s"]
    assert figures["relations_locked"] > 20  # every table and view, from the first statement
    assert figures["reads_before_ms"] is not None and figures["reads_after_ms"] is not None
    text = "\n".join(upgrade_figures.report(figures))
    assert "8. the upgrade from 0005" in text and "AccessExclusiveLock" in text
