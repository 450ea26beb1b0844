"""Smoke test of the bench's figure 9 on a 2-day warehouse of 2 clusters: every part runs and
prints, "before" being this checkout served as another commit's would be. No time is asserted."""

import datetime as dt

import pytest
import sqlalchemy as sa

from bench import generate, speed_figures, warehouse

LAST = dt.date(2026, 10, 31)
SCALE = dict(hubs=2, users_per_hub=5, active_per_day=3)
TINY = dict(
    cold_servers=1,
    rounds=1,
    bulk_repeat=1,
    clusters=2,
    cluster_days=2,
    cluster_rounds={"one": 1, "all": 1},
)


def plain_url(database_url: str) -> str:
    return sa.engine.make_url(database_url).set(drivername="postgresql").render_as_string(False)


def test_generator_writes_clusters_and_the_marker_tells_scales_apart(database_url, engine):
    url = plain_url(database_url)
    single = generate.generate(url, days=1, end=LAST, **SCALE)
    with engine.connect() as conn:
        single_rows = conn.execute(sa.text("SELECT * FROM usage ORDER BY 1, 2, 3, 4, 5")).all()

    first = warehouse.ensure_warehouse(url, days=1, last_day=LAST, clusters=2, **SCALE)
    again = warehouse.ensure_warehouse(url, days=1, last_day=LAST, clusters=2, **SCALE)
    other = warehouse.ensure_warehouse(url, days=1, last_day=LAST, clusters=3, **SCALE)

    assert (first["reused"], again["reused"], other["reused"]) == (False, True, False)
    assert other["usage"] == 3 * single["usage"]
    with engine.connect() as conn:
        clusters = conn.execute(sa.text("SELECT name FROM cluster ORDER BY 1")).scalars().all()
        first_cluster = conn.execute(
            sa.text("SELECT * FROM usage WHERE cluster = 'cluster-00' ORDER BY 1, 2, 3, 4, 5")
        ).all()
    assert clusters == ["cluster-00", "cluster-01", "cluster-02"]
    # The first cluster's rows are the single cluster's, under its own name.
    strip = [tuple(v for k, v in r._mapping.items() if k != "cluster") for r in single_rows]
    assert [tuple(v for k, v in r._mapping.items() if k != "cluster") for r in first_cluster] == (
        strip
    )


@pytest.mark.slow
def test_speed_figures_on_a_small_warehouse(database_url, tmp_path):
    url = plain_url(database_url)
    generate.generate(url, days=2, end=LAST, clusters=2)

    figures = speed_figures.figures(
        url, url, url, LAST, size=TINY, before=speed_figures.ROOT, log_path=tmp_path / "serve.log"
    )

    for name in ("before", "after"):
        dashboard = figures[name]["dashboard"]
        assert list(dashboard["cold"]["by_request"]) == [
            label for label, _ in speed_figures.dashboard_load(LAST)
        ]
        assert dashboard["revalidated"]["statuses"] == [304]  # this checkout answers ETags
        assert {g["gzip"]["encoding"] for g in figures[name]["bulk"]["gzip"]} == {"gzip"}
        assert figures[name]["bulk"]["peak_mib"] > 0
        assert set(figures[name]["clusters"]) == {"one_30d", "all_30d", "one_2d", "all_2d"}
    assert figures["load_average"]["n"] >= 1
    text = "\n".join(speed_figures.report(figures))
    assert "9a. one dashboard load" in text and "9b. bulk" in text and "9c. 2 clusters" in text
