"""One contract test per endpoint: keys, key order, types, rounding, filters, order, limit.

The data is tests/api/dataset.py; every expected answer below is worked out by hand from it.
"""

from __future__ import annotations

import pytest

from tests.api.dataset import load_dataset

RANGE = "from=2026-01-04&to=2026-01-05"


@pytest.fixture
def api(engine, client):
    with engine.begin() as conn:
        load_dataset(conn)
    return client


def get(api, url):
    response = api.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def rows(api, url):
    """The rows as lists of (key, value) pairs, so key order is part of the comparison."""
    return [list(row.items()) for row in get(api, url)]


def records(*tuples, keys):
    return [list(zip(keys, values, strict=True)) for values in tuples]


def test_index_links_every_endpoint_and_the_document(api):
    body = get(api, "/")
    assert body["message"]
    assert body["openapi"] == "/openapi.json"
    assert "/costs-per-user" in body["endpoints"] and "/user-groups" in body["endpoints"]


def test_hub_names_are_hubs_with_cost_or_usage_in_the_range_by_name(api):
    assert get(api, f"/hub-names?{RANGE}") == ["binder", "prod", "staging", "support"]
    assert get(api, "/hub-names?from=2026-01-04&to=2026-01-04") == ["prod", "support"]
    assert get(api, "/hub-names?from=2026-01-06&to=2026-01-09") == []
    # Defaults: the 30 days before today (2026-01-10) include both days.
    assert get(api, "/hub-names") == ["binder", "prod", "staging", "support"]


def test_component_names_are_the_user_components_in_canonical_order(api):
    assert get(api, "/component-names") == ["compute", "home storage"]
    # Grafana sends its time range here too; it changes nothing.
    assert get(api, f"/component-names?{RANGE}") == ["compute", "home storage"]


def test_total_costs_rounds_half_up_per_row(api):
    assert rows(api, f"/total-costs?{RANGE}") == records(
        ("2026-01-04", 20.0, "account"),
        ("2026-01-04", 16.51, "attributable"),  # 16.505
        ("2026-01-05", 30.0, "account"),
        ("2026-01-05", 11.01, "attributable"),  # 11.008
        keys=("date", "cost", "name"),
    )
    assert get(api, "/total-costs?from=2026-01-05&to=2026-01-05") == [
        {"date": "2026-01-05", "cost": 30, "name": "account"},
        {"date": "2026-01-05", "cost": 11.01, "name": "attributable"},
    ]


def test_total_costs_per_hub(api):
    assert rows(api, f"/total-costs-per-hub?{RANGE}") == records(
        ("2026-01-04", 14.01, "prod"),  # 14.005, half up
        ("2026-01-04", 2.5, "support"),
        ("2026-01-05", 7.0, "prod"),  # 7.004
        ("2026-01-05", 4.0, "staging"),  # 4.004
        keys=("date", "cost", "name"),
    )


def test_total_costs_per_component_sums_hubs_then_rounds_in_canonical_order(api):
    keys = ("date", "cost", "component")
    assert rows(api, f"/total-costs-per-component?{RANGE}") == records(
        ("2026-01-04", 9.0, "compute"),
        ("2026-01-04", 4.0, "home storage"),
        ("2026-01-04", 1.01, "object storage"),  # 1.005
        ("2026-01-04", 2.0, "backup"),
        ("2026-01-04", 0.5, "other"),
        ("2026-01-05", 10.0, "compute"),
        ("2026-01-05", 1.0, "home storage"),
        ("2026-01-05", 0.01, "object storage"),  # 0.004 + 0.004, rounded after summing
        keys=keys,
    )
    assert rows(api, f"/total-costs-per-component?{RANGE}&hub=support") == records(
        ("2026-01-04", 2.0, "backup"), ("2026-01-04", 0.5, "other"), keys=keys
    )
    assert rows(
        api, f"/total-costs-per-component?{RANGE}&hub=staging&component=object%20storage"
    ) == records(("2026-01-05", 0.0, "object storage"), keys=keys)
    # Grafana's multi-value form and repeated parameters mean "any of".
    expected = records(
        ("2026-01-04", 9.0, "compute"),
        ("2026-01-04", 2.0, "backup"),
        ("2026-01-05", 10.0, "compute"),
        keys=keys,
    )
    assert rows(api, f"/total-costs-per-component?{RANGE}&component={{compute,backup}}") == expected
    assert rows(api, f"/total-costs-per-component?{RANGE}&component=backup&component=compute") == (
        expected
    )
    # A known component with no cost is not an error.
    assert get(api, f"/total-costs-per-component?{RANGE}&component=networking") == []
    assert get(api, f"/total-costs-per-component?{RANGE}&hub=nowhere") == []


USER_KEYS = ("date", "hub", "component", "user", "value", "usergroup")
ALL_USER_COSTS = [
    ("2026-01-04", "prod", "compute", "bob", 6.0, "g1"),
    ("2026-01-04", "prod", "compute", "bob", 6.0, "g2"),
    ("2026-01-04", "prod", "compute", "bob", 6.0, "multiple"),
    ("2026-01-04", "prod", "compute", "alice", 3.0, "g1"),
    ("2026-01-04", "prod", "home storage", "carol", 2.0, "none"),
    ("2026-01-04", "prod", "home storage", "alice", 1.0, "g1"),
    ("2026-01-04", "prod", "home storage", "bob", 1.0, "g1"),
    ("2026-01-04", "prod", "home storage", "bob", 1.0, "g2"),
    ("2026-01-04", "prod", "home storage", "bob", 1.0, "multiple"),
    ("2026-01-05", "prod", "compute", "alice", 2.0, "g1"),
    ("2026-01-05", "prod", "compute", "bob", 2.0, "g1"),
    ("2026-01-05", "prod", "compute", "bob", 2.0, "g2"),
    ("2026-01-05", "prod", "compute", "bob", 2.0, "multiple"),
    ("2026-01-05", "prod", "compute", "carol", 2.0, "none"),
    ("2026-01-05", "staging", "compute", "erin", 2.6667, "none"),  # 8/3
    ("2026-01-05", "staging", "compute", "dave", 1.3333, "none"),  # 4/3
]


def test_costs_per_user_one_row_per_group_ordered_by_value_descending(api):
    assert rows(api, f"/costs-per-user?{RANGE}") == records(*ALL_USER_COSTS, keys=USER_KEYS)


@pytest.mark.parametrize(
    ("query", "users"),
    [
        ("hub=staging", {"dave", "erin"}),
        ("user={alice,dave}", {"alice", "dave"}),
        ("user=alice&user=dave", {"alice", "dave"}),
        ("usergroup=g2", {"bob"}),
        ("component=home%20storage&usergroup=none", {"carol"}),
        ("hub=all&component=ALL&user=&usergroup=All", {"alice", "bob", "carol", "dave", "erin"}),
    ],
)
def test_costs_per_user_filters(api, query, users):
    got = get(api, f"/costs-per-user?{RANGE}&{query}")
    assert {row["user"] for row in got} == users
    expected = [dict(zip(USER_KEYS, r, strict=True)) for r in ALL_USER_COSTS]
    assert got == [row for row in expected if row in got]  # same rows, same order


def test_costs_per_user_limit_keeps_the_top_users_counting_each_day_once(api):
    # Totals without group duplication: bob 9, alice 6, carol 4, erin 2.6667, dave 1.3333.
    top2 = get(api, f"/costs-per-user?{RANGE}&limit=2")
    assert {row["user"] for row in top2} == {"bob", "alice"}
    assert len(top2) == 12  # bob's 9 rows (3 groups) and alice's 3
    assert {row["user"] for row in get(api, f"/costs-per-user?{RANGE}&limit=3")} == {
        "bob",
        "alice",
        "carol",
    }
    # After the group filter: among the `none` rows carol (4) beats erin (2.67) and dave.
    assert rows(api, f"/costs-per-user?{RANGE}&usergroup=none&limit=1") == records(
        ("2026-01-04", "prod", "home storage", "carol", 2.0, "none"),
        ("2026-01-05", "prod", "compute", "carol", 2.0, "none"),
        keys=USER_KEYS,
    )
    # With two of bob's groups kept, his days still count once (9, not 18): only his rows.
    both = get(api, f"/costs-per-user?{RANGE}&usergroup={{g1,g2}}&limit=1")
    assert {(row["user"], row["usergroup"]) for row in both} == {("bob", "g1"), ("bob", "g2")}
    assert len(both) == 6
    # Home storage on 01-04: carol 2 beats bob 1, whose row is repeated for his 3 groups.
    assert [
        (row["user"], row["value"])
        for row in get(
            api, "/costs-per-user?from=2026-01-04&to=2026-01-04&component=home%20storage&limit=1"
        )
    ] == [("carol", 2.0)]
    # Ties (alice, bob, carol: 2 each on 01-05 in prod) go to the smaller username.
    tie = get(api, "/costs-per-user?from=2026-01-05&to=2026-01-05&hub=prod&limit=1")
    assert [(row["user"], row["usergroup"]) for row in tie] == [("alice", "g1")]
    # Empty and `all` mean no limit (Grafana's empty text box).
    assert len(get(api, f"/costs-per-user?{RANGE}&limit=")) == 16
    assert len(get(api, f"/costs-per-user?{RANGE}&limit=all")) == 16


def test_costs_per_user_component_never_attributed_to_users_is_empty(api):
    assert get(api, f"/costs-per-user?{RANGE}&component=core") == []
    assert get(api, f"/costs-per-user?{RANGE}&user=nobody") == []


def test_total_usage_is_the_unrounded_share_within_the_hub(api):
    assert rows(api, f"/total-usage?{RANGE}") == records(
        ("2026-01-04", "alice", "prod", "compute", 1 / 3),
        ("2026-01-04", "bob", "prod", "compute", 2 / 3),
        ("2026-01-04", "alice", "prod", "home storage", 0.25),
        ("2026-01-04", "bob", "prod", "home storage", 0.25),
        ("2026-01-04", "carol", "prod", "home storage", 0.5),
        ("2026-01-05", "alice", "prod", "compute", 1 / 3),
        ("2026-01-05", "bob", "prod", "compute", 1 / 3),
        ("2026-01-05", "carol", "prod", "compute", 1 / 3),
        ("2026-01-05", "dave", "staging", "compute", 1 / 3),
        ("2026-01-05", "erin", "staging", "compute", 2 / 3),
        ("2026-01-05", "gina", "binder", "home storage", 1.0),
        keys=("date", "user", "hub", "component", "value"),
    )
    # The share stays within the hub whatever the filter.
    assert get(api, f"/total-usage?{RANGE}&user=erin") == [
        {
            "date": "2026-01-05",
            "user": "erin",
            "hub": "staging",
            "component": "compute",
            "value": 2 / 3,
        }
    ]
    assert [
        r["user"] for r in get(api, f"/total-usage?{RANGE}&hub=prod&component=home%20storage")
    ] == [
        "alice",
        "bob",
        "carol",
    ]


def test_total_costs_per_group_rounds_the_sum_and_double_counts_members(api):
    assert rows(api, f"/total-costs-per-group?{RANGE}") == records(
        ("2026-01-04", "g1", 11.0),  # alice 3 + 1, bob 6 + 1
        ("2026-01-04", "g2", 7.0),
        ("2026-01-04", "multiple", 7.0),
        ("2026-01-04", "none", 2.0),
        ("2026-01-05", "g1", 4.0),
        ("2026-01-05", "g2", 2.0),
        ("2026-01-05", "multiple", 2.0),
        ("2026-01-05", "none", 6.0),  # carol 2 + dave 4/3 + erin 8/3
        keys=("date", "usergroup", "cost"),
    )


GROUP_KEYS = ("hub", "username", "username_escaped", "usergroup")


def test_user_groups_are_the_snapshot_rows_in_force_in_the_range(api):
    assert rows(api, f"/user-groups?{RANGE}") == records(
        ("prod", "alice", "alice", "g1"),
        ("prod", "bob", "bob", "g1"),
        ("prod", "bob", "bob", "g2"),
        ("prod", "bob", "bob", "multiple"),
        ("prod", "carol", "carol", "none"),
        keys=GROUP_KEYS,
    )
    # 01-06 is still under prod's 01-04 snapshot; 01-07 brings the new ones.
    later = "from=2026-01-06&to=2026-01-08"
    assert [tuple(r.values()) for r in get(api, f"/user-groups?{later}&username=alice")] == [
        ("prod", "alice", "alice", "g1"),
        ("prod", "alice", "alice", "g2"),
    ]
    assert [
        (r["hub"], r["username"]) for r in get(api, f"/user-groups?{later}&usergroup=none")
    ] == [("prod", "carol"), ("prod", "frank"), ("staging", "dave")]
    assert [
        (r["username"], r["usergroup"]) for r in get(api, f"/user-groups?{later}&hub=staging")
    ] == [("dave", "none"), ("erin", "g3"), ("erin", "g4"), ("erin", "multiple")]
    # Carried forward: a snapshot stays in force after its day with no newer one.
    assert len(get(api, "/user-groups?from=2026-01-09&to=2026-01-09")) == 10


def test_users_with_multiple_groups_in_the_latest_snapshot(api):
    assert rows(api, "/users-with-multiple-groups") == records(
        ("bob", "prod", "g1"),
        ("bob", "prod", "g2"),
        ("erin", "staging", "g3"),
        ("erin", "staging", "g4"),
        keys=("username", "hub", "usergroup"),
    )
    assert get(api, "/users-with-multiple-groups?hub_name=staging") == [
        {"username": "erin", "hub": "staging", "usergroup": "g3"},
        {"username": "erin", "hub": "staging", "usergroup": "g4"},
    ]
    assert get(api, "/users-with-multiple-groups?user_name={alice,bob}&hub_name=all") == [
        {"username": "bob", "hub": "prod", "usergroup": "g1"},
        {"username": "bob", "hub": "prod", "usergroup": "g2"},
    ]


def test_users_with_no_groups_in_the_latest_snapshot(api):
    assert rows(api, "/users-with-no-groups") == records(
        ("carol", "prod"), ("frank", "prod"), ("dave", "staging"), keys=("username", "hub")
    )
    assert get(api, "/users-with-no-groups?hub_name=prod&user_name=frank") == [
        {"username": "frank", "hub": "prod"}
    ]


def test_an_empty_database_answers_empty_lists(client):
    for path in ("/hub-names", "/total-costs", "/costs-per-user", "/users-with-no-groups"):
        assert get(client, path) == []
