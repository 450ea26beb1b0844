"""Group semantics of docs/attribution.md §6, through user_costs_by_group and group_costs."""

from decimal import Decimal

from tests.rows import add_costs, add_groups, add_usage, select_all


def _one_cost_per_day(conn, hub, days, amount="12"):
    add_costs(conn, [(d, "attributable", hub, "EC2 - Other", amount) for d in days])


def test_snapshot_is_carried_forward_per_hub_and_absent_users_are_none(conn):
    days = ["2026-03-01", "2026-03-02", "2026-03-03"]
    for hub in ("a", "b"):
        _one_cost_per_day(conn, hub, days)
    add_usage(
        conn,
        [
            (d, hub, "compute", user, 1)
            for d in days
            for hub in ("a", "b")
            for user in ("ann", "bob")
        ],
    )
    # Hub a: snapshot on the 1st only (carried to 2nd and 3rd); bob absent from it.
    # Hub b: snapshot on the 2nd only, so on the 1st there is none at all.
    add_groups(conn, [("2026-03-01", "a", "ann", "physics"), ("2026-03-02", "b", "bob", "chem")])
    rows = select_all(
        conn,
        """SELECT date::text, hub, username, usergroup, cost FROM user_costs_by_group
           ORDER BY date, hub, username, usergroup""",
    )
    six = Decimal(6)
    assert rows == [
        ("2026-03-01", "a", "ann", "physics", six),
        ("2026-03-01", "a", "bob", "none", six),
        ("2026-03-01", "b", "ann", "none", six),
        ("2026-03-01", "b", "bob", "none", six),
        ("2026-03-02", "a", "ann", "physics", six),
        ("2026-03-02", "a", "bob", "none", six),
        ("2026-03-02", "b", "ann", "none", six),
        ("2026-03-02", "b", "bob", "chem", six),
        ("2026-03-03", "a", "ann", "physics", six),
        ("2026-03-03", "a", "bob", "none", six),
        ("2026-03-03", "b", "ann", "none", six),
        ("2026-03-03", "b", "bob", "chem", six),
    ]


def test_several_groups_repeat_the_row_and_group_totals_double_count(conn):
    _one_cost_per_day(conn, "a", ["2026-03-01"], amount="10")
    add_usage(
        conn, [("2026-03-01", "a", "compute", "ann", 3), ("2026-03-01", "a", "compute", "bob", 1)]
    )
    add_groups(
        conn,
        [
            ("2026-03-01", "a", "ann", "multiple"),
            ("2026-03-01", "a", "ann", "physics"),
            ("2026-03-01", "a", "ann", "chem"),
            ("2026-03-01", "a", "bob", "none"),
        ],
    )
    assert select_all(conn, "SELECT usergroup, cost FROM group_costs ORDER BY usergroup") == [
        ("chem", Decimal("7.5")),
        ("multiple", Decimal("7.5")),
        ("none", Decimal("2.5")),
        ("physics", Decimal("7.5")),
    ]
    # The per-user view without groups does not double count.
    assert select_all(conn, "SELECT sum(cost) FROM user_costs") == [(Decimal(10),)]
    assert select_all(
        conn, "SELECT username, hub, usergroup FROM users_with_multiple_groups ORDER BY 3"
    ) == [("ann", "a", "chem"), ("ann", "a", "physics")]
    assert select_all(conn, "SELECT username, hub FROM users_with_no_groups") == [("bob", "a")]


def test_membership_change_mid_range(conn):
    days = ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"]
    _one_cost_per_day(conn, "a", days, amount="5")
    add_usage(conn, [(d, "a", "compute", "ann", 2) for d in days])
    add_groups(conn, [("2026-03-01", "a", "ann", "physics"), ("2026-03-03", "a", "ann", "chem")])
    assert select_all(
        conn, "SELECT date::text, usergroup FROM user_costs_by_group ORDER BY date"
    ) == [
        ("2026-03-01", "physics"),
        ("2026-03-02", "physics"),
        ("2026-03-03", "chem"),
        ("2026-03-04", "chem"),
    ]
    assert select_all(
        conn,
        """SELECT usergroup, valid_from::text, valid_to::text FROM user_group_memberships
           ORDER BY valid_from""",
    ) == [("physics", "2026-03-01", "2026-03-02"), ("chem", "2026-03-03", None)]
    assert select_all(conn, "SELECT username, usergroup FROM latest_user_groups") == [
        ("ann", "chem")
    ]
