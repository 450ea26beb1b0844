"""Cross-checks that hold for any data: on the unrounded views, and through the API.

- per-user costs (without group duplication) + unattributed cost = the compute and home
  storage component costs, per (date, hub, component);
- per-hub costs sum to the attributable total per day;
- through the API, the same within the rounding (n rows x 0.00005 for 4-decimal values,
  x 0.005 for 2-decimal ones).
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.rows import add_costs, add_groups, add_usage, select_all

DAYS = ("2026-01-04", "2026-01-05", "2026-01-06")
HUBS = ("prod", "staging", "support")
USERS = ("ann", "ben", "cy", "di")
SERVICES = (
    "EC2 - Other",
    "Amazon Elastic Compute Cloud - Compute",
    "Amazon Elastic File System",
    "Amazon Simple Storage Service",
    "Amazon Elastic Load Balancing",
    "AWS Backup",
    "Amazon Route 53",
)
GROUPS = ("g1", "g2", "none", "multiple")
RANGE = "from=2026-01-04&to=2026-01-06"

amounts = st.decimals(min_value=0, max_value=5000, places=4)
usage_values = st.one_of(st.just(Decimal(0)), st.decimals(min_value=0, max_value=300, places=3))

warehouses = st.fixed_dictionaries(
    {
        "costs": st.dictionaries(
            st.tuples(
                st.sampled_from(DAYS),
                st.sampled_from(("attributable", "attributable", "home", "core")),
                st.sampled_from(HUBS),
                st.sampled_from(SERVICES),
            ),
            amounts,
            max_size=25,
        ),
        "account": st.dictionaries(st.sampled_from(DAYS), amounts, max_size=3),
        "usage": st.dictionaries(
            st.tuples(
                st.sampled_from(DAYS),
                st.sampled_from(HUBS),
                st.sampled_from(("compute", "home storage")),
                st.sampled_from(USERS),
            ),
            usage_values,
            max_size=25,
        ),
        "groups": st.sets(
            st.tuples(
                st.sampled_from(DAYS),
                st.sampled_from(HUBS),
                st.sampled_from(USERS),
                st.sampled_from(GROUPS),
            ),
            max_size=12,
        ),
    }
)


def write(conn, warehouse):
    costs = [(d, s, h, svc, amount) for (d, s, h, svc), amount in warehouse["costs"].items()]
    costs += [(d, "account", None, "EC2 - Other", a) for d, a in warehouse["account"].items()]
    if costs:
        add_costs(conn, costs)
    if warehouse["usage"]:
        add_usage(conn, [(*key, value) for key, value in warehouse["usage"].items()])
    if warehouse["groups"]:
        add_groups(conn, sorted(warehouse["groups"]))


def clear(conn):
    conn.execute(sa.text("DELETE FROM cost; DELETE FROM usage; DELETE FROM user_group_snapshot"))


CHECK_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def assert_views_conserve(conn):
    rows = select_all(
        conn,
        """
        WITH attributed AS (
            SELECT date, hub, component, sum(cost) AS cost FROM user_costs GROUP BY 1, 2, 3
        ), unattributed AS (
            SELECT date, hub, component, sum(cost) AS cost FROM unattributed_costs
            GROUP BY 1, 2, 3
        ), components AS (
            SELECT date, hub, component, cost FROM component_costs
            WHERE component IN ('compute', 'home storage')
        )
        SELECT date, hub, component, coalesce(c.cost, 0),
               coalesce(a.cost, 0) + coalesce(u.cost, 0)
        FROM components c
        FULL JOIN attributed a USING (date, hub, component)
        FULL JOIN unattributed u USING (date, hub, component)
        """,
    )
    for date, hub, component, cost, parts in rows:
        assert abs(cost - parts) <= Decimal("1e-9"), (date, hub, component, cost, parts)
    # Group rows repeat a user's cost; de-duplicated they are user_costs exactly.
    assert (
        select_all(
            conn,
            """
        (SELECT DISTINCT date, hub, component, username, cost FROM user_costs_by_group
         EXCEPT SELECT date, hub, component, username, cost FROM user_costs)
        UNION ALL
        (SELECT date, hub, component, username, cost FROM user_costs
         EXCEPT SELECT date, hub, component, username, cost FROM user_costs_by_group)
        """,
        )
        == []
    )
    per_day = select_all(
        conn,
        """
        SELECT coalesce(h.date, t.date), h.cost, t.cost
        FROM (SELECT date, sum(cost) AS cost FROM hub_costs GROUP BY date) h
        FULL JOIN (SELECT date, cost FROM total_costs WHERE name = 'attributable') t
          ON t.date = h.date
        """,
    )
    for date, hubs, total in per_day:
        assert hubs == total, (date, hubs, total)


@given(warehouse=warehouses)
@CHECK_SETTINGS
def test_the_unrounded_views_conserve_cost(engine, warehouse):
    with engine.connect() as conn:
        try:
            write(conn, warehouse)
            assert_views_conserve(conn)
        finally:
            conn.rollback()


def test_conservation_holds_for_large_amounts_and_awkward_shares(engine):
    # $1e9 a day split 1 : 2 : 3 : 7 (thirteenths never end in decimal).
    with engine.connect() as conn:
        add_costs(conn, [("2026-01-04", "attributable", "prod", "EC2 - Other", "999999999.9999")])
        add_usage(
            conn,
            [
                ("2026-01-04", "prod", "compute", u, v)
                for u, v in zip(USERS, (1, 2, 3, 7), strict=True)
            ],
        )
        assert_views_conserve(conn)
        conn.rollback()


def api_sums(client, owner):
    users = client.get(f"/costs-per-user?{RANGE}").json()
    components = client.get(f"/total-costs-per-component?{RANGE}").json()
    per_hub = client.get(f"/total-costs-per-hub?{RANGE}").json()
    totals = client.get(f"/total-costs?{RANGE}").json()
    unattributed = select_all(
        owner,
        "SELECT date::text, component, sum(cost) FROM unattributed_costs GROUP BY 1, 2",
    )
    return users, components, per_hub, totals, unattributed


def assert_api_within_rounding(users, components, per_hub, totals, unattributed):
    # Per-user values, one per (date, hub, component, user) however many groups repeat it.
    once = {(r["date"], r["hub"], r["component"], r["user"]): r["value"] for r in users}
    parts = defaultdict(float)
    counts = defaultdict(int)
    for (date, _hub, component, _user), value in once.items():
        parts[date, component] += value
        counts[date, component] += 1
    for date, component, cost in unattributed:
        parts[date, component] += float(cost)
    component_cost = {
        (r["date"], r["component"]): r["cost"]
        for r in components
        if r["component"] in ("compute", "home storage")
    }
    for key in set(parts) | set(component_cost):
        tolerance = counts[key] * 0.00005 + 0.005 + 1e-6
        assert abs(parts[key] - component_cost.get(key, 0)) <= tolerance, key
    hubs = defaultdict(float)
    hub_counts = defaultdict(int)
    for row in per_hub:
        hubs[row["date"]] += row["cost"]
        hub_counts[row["date"]] += 1
    attributable = {r["date"]: r["cost"] for r in totals if r["name"] == "attributable"}
    for date in set(hubs) | set(attributable):
        tolerance = hub_counts[date] * 0.005 + 0.005 + 1e-6
        assert abs(hubs[date] - attributable.get(date, 0)) <= tolerance, date


@given(warehouse=warehouses)
@settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_api_conserves_cost_within_rounding(engine, client, warehouse):
    with engine.begin() as owner:
        clear(owner)
        write(owner, warehouse)
    with engine.connect() as owner:
        assert_api_within_rounding(*api_sums(client, owner))


def test_the_api_conserves_cost_on_the_hand_made_warehouse(engine, client):
    from tests.api.dataset import load_dataset

    with engine.begin() as owner:
        load_dataset(owner)
    with engine.connect() as owner:
        users, components, per_hub, totals, unattributed = api_sums(client, owner)
        assert len(users) == 16 and unattributed  # the check below has something to check
        assert_api_within_rounding(users, components, per_hub, totals, unattributed)
