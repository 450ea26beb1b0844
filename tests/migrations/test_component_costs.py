"""component_costs and component_cost_moves: docs/attribution.md §3."""

from decimal import Decimal

from tests.migrations.upstream_costs import METRIC, cost_explorer_answer
from tests.rows import add_costs, select_all

SLICES = ("attributable", "home", "core")


def _fixture_rows():
    for slice_ in SLICES:
        answer = cost_explorer_answer(slice_)
        for result in answer["ResultsByTime"]:
            for group in result["Groups"]:
                amount = group["Metrics"][METRIC]["Amount"]
                yield (result["TimePeriod"]["Start"], slice_, "prod", group["Keys"][0], amount)


def test_upstream_fixture_gives_the_known_components(conn):
    add_costs(conn, list(_fixture_rows()))
    got = {
        (str(d), comp): round(cost, 2)
        for d, comp, cost in select_all(
            conn, "SELECT date, component, cost FROM component_costs WHERE hub = 'prod'"
        )
    }
    expected = {
        "2025-09-01": (8.85, 7.22, 0.17, 0.91, 11.13),
        "2025-09-02": (13.81, 7.20, 0.17, 1.00, 11.14),
        "2025-09-03": (11.81, 7.31, 0.17, 0.97, 11.16),
    }
    names = ("compute", "home storage", "object storage", "networking", "core")
    want = {
        (d, name): Decimal(str(v))
        for d, values in expected.items()
        for name, v in zip(names, values, strict=True)
    }
    assert got == want

    sums = select_all(
        conn,
        """SELECT c.date::text, sum(c.cost), h.cost
           FROM component_costs c JOIN hub_costs h USING (date, hub)
           GROUP BY c.date, h.cost ORDER BY 1""",
    )
    assert [(d, round(total, 4)) for d, total, _ in sums] == [
        ("2025-09-01", Decimal("28.2821")),
        ("2025-09-02", Decimal("33.3325")),
        ("2025-09-03", Decimal("31.4210")),
    ]
    assert all(total == attributable for _, total, attributable in sums)


def test_moves_are_capped_by_what_compute_has_left(conn):
    # compute 10, home 7, core 8: compute 0, home storage +7, core +3, shortfall 5.
    add_costs(
        conn,
        [
            ("2026-01-01", "attributable", "h", "EC2 - Other", 10),
            ("2026-01-01", "home", "h", "EC2 - Other", 7),
            ("2026-01-01", "core", "h", "Amazon Elastic Compute Cloud - Compute", 8),
        ],
    )
    assert select_all(conn, "SELECT component, cost FROM component_costs ORDER BY component") == [
        ("compute", 0),
        ("core", 3),
        ("home storage", 7),
    ]
    assert select_all(
        conn,
        "SELECT compute_before, home_moved, core_moved, shortfall FROM component_cost_moves",
    ) == [(10, 7, 3, 5)]


def test_home_moves_before_core(conn):
    # compute 10, home 4, core 8: home takes 4 first, core gets the 6 left, shortfall 2.
    add_costs(
        conn,
        [
            ("2026-01-01", "attributable", "h", "EC2 - Other", 10),
            ("2026-01-01", "home", "h", "EC2 - Other", 4),
            ("2026-01-01", "home", "h", "Amazon Elastic File System", 99),
            ("2026-01-01", "core", "h", "EC2 - Other", 8),
        ],
    )
    assert select_all(
        conn, "SELECT home_requested, home_moved, core_moved, shortfall FROM component_cost_moves"
    ) == [(4, 4, 6, 2)]


def test_unmapped_service_is_other_and_account_has_no_hub(conn):
    add_costs(
        conn,
        [
            ("2026-01-01", "attributable", "support", "Amazon Route 53", "1.5"),
            ("2026-01-01", "attributable", "support", "AWS Backup", "2"),
            ("2026-01-01", "account", None, "Amazon Route 53", "9"),
            ("2026-01-01", "account", None, "AWS Backup", "2"),
        ],
    )
    assert select_all(conn, "SELECT hub, component, cost FROM component_costs ORDER BY 2") == [
        ("support", "backup", 2),
        ("support", "other", Decimal("1.5")),
    ]
    assert select_all(conn, "SELECT name, cost FROM total_costs ORDER BY name") == [
        ("account", 11),
        ("attributable", Decimal("3.5")),
    ]


def test_components_view_lists_the_canonical_seven(conn):
    assert select_all(conn, "SELECT component FROM components ORDER BY position") == [
        ("compute",),
        ("home storage",),
        ("object storage",),
        ("networking",),
        ("core",),
        ("backup",),
        ("other",),
    ]
