"""Smoke test of the bench's figure 7: the pages of a 2-day warehouse opened in headless
chromium give their weight and paint times. No time is asserted."""

import datetime as dt

import pytest
import sqlalchemy as sa

from bench import generate, page_figures
from tests.api.ui.browser import installed

LAST = dt.date(2026, 10, 31)


@pytest.mark.slow
def test_page_figures_on_a_small_warehouse(database_url, tmp_path):
    installed()
    generate.generate(database_url, days=2, end=LAST)
    url = sa.engine.make_url(database_url).set(drivername="postgresql").render_as_string(False)

    figures = page_figures.figures(url, LAST, rounds=1, log_path=tmp_path / "serve.log")

    assert set(figures) == set(page_figures.pages("", LAST, "u"))
    for label, figure in figures.items():
        assert 0 < figure["html_bytes"] < 1_000_000, label
        assert figure["svg_elements"] >= 1, label
        assert figure["first_paint"]["p50"] > 0, label
    assert page_figures.report(figures)[0].startswith("\n7. pages")
