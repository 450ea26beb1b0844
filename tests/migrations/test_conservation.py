"""Conservation (docs/attribution.md §5) as a property: for any costs and usages, the views
neither create nor lose money."""

import datetime as dt
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.rows import add_costs, add_usage, select_all

DAYS = [dt.date(2026, 5, 1), dt.date(2026, 5, 2)]
HUBS = ["prod", "staging", "support"]
SERVICES = [
    "EC2 - Other",
    "Amazon Elastic Compute Cloud - Compute",
    "Amazon Elastic File System",
    "Amazon Simple Storage Service",
    "Amazon Elastic Container Service for Kubernetes",
    "Amazon Route 53",  # unmapped: component 'other'
]
TOLERANCE = Decimal("1e-9")

amounts = st.one_of(
    st.just(Decimal(0)),
    st.decimals(min_value=0, max_value=Decimal("1e-6"), places=12),
    st.decimals(min_value=0, max_value=Decimal("1e9"), places=10),
)
usages = st.one_of(
    st.just(Decimal(0)),
    st.decimals(min_value=0, max_value=Decimal("1e7"), places=6),
)


@st.composite
def warehouses(draw):
    costs, usage = [], []
    for day in DAYS:
        for hub in draw(st.lists(st.sampled_from(HUBS), unique=True, max_size=3)):
            for service in draw(st.lists(st.sampled_from(SERVICES), unique=True, max_size=4)):
                costs.append((day, "attributable", hub, service, draw(amounts)))
            # The home and core slices may exceed compute (the slices can overlap).
            if draw(st.booleans()):
                costs.append((day, "home", hub, "EC2 - Other", draw(amounts)))
            for service in draw(st.lists(st.sampled_from(SERVICES[:2]), unique=True, max_size=2)):
                costs.append((day, "core", hub, service, draw(amounts)))
            for component in ("compute", "home storage"):
                users = draw(st.sampled_from([0, 1, 2, 7, 2000]))
                if users > 100:
                    # Thousands of users: one drawn value, spread deterministically.
                    base = draw(usages)
                    values = [base * (i % 7) / 3 for i in range(users)]
                else:
                    values = draw(st.lists(usages, min_size=users, max_size=users))
                usage += [
                    (day, hub, component, f"user-{i}", value) for i, value in enumerate(values)
                ]
    return costs, usage


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(warehouses())
def test_views_conserve_cost(engine, warehouse):
    costs, usage = warehouse
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            if costs:
                add_costs(conn, costs)
            if usage:
                add_usage(conn, usage)
            _check(conn)
        finally:
            transaction.rollback()


def _check(conn):
    # Per-user costs of each (date, hub, component) with usage sum to the component cost.
    for date, hub, component, cost, attributed in select_all(
        conn,
        """SELECT c.date, c.hub, c.component, c.cost, sum(u.cost)
           FROM component_costs c JOIN user_costs u USING (date, hub, component)
           GROUP BY c.date, c.hub, c.component, c.cost""",
    ):
        assert abs(cost - attributed) <= TOLERANCE, (date, hub, component, cost, attributed)

    # Component costs with no usage are unattributed; with usage they are not.
    with_usage = {
        tuple(r) for r in select_all(conn, "SELECT DISTINCT date, hub, component FROM user_shares")
    }
    unattributed = {
        tuple(r) for r in select_all(conn, "SELECT date, hub, component FROM unattributed_costs")
    }
    for date, hub, component in select_all(
        conn,
        """SELECT date, hub, component FROM component_costs
           WHERE component IN ('compute', 'home storage')""",
    ):
        key = (date, hub, component)
        assert (key in unattributed) != (key in with_usage), key

    # The components of a hub-day add up to its attributable total, moves and shortfalls included.
    for date, hub, components, attributable in select_all(
        conn,
        """SELECT h.date, h.hub, (SELECT sum(c.cost) FROM component_costs c
                                  WHERE c.date = h.date AND c.hub = h.hub), h.cost
           FROM hub_costs h""",
    ):
        assert components == attributable, (date, hub)

    # Nothing counted twice outside the group view.
    assert select_all(
        conn,
        """SELECT count(*) = count(DISTINCT (date, hub, component, username)) FROM user_costs""",
    ) == [(True,)]
    user_total, unattributed_total, component_total = select_all(
        conn,
        """SELECT (SELECT coalesce(sum(cost), 0) FROM user_costs),
                  (SELECT coalesce(sum(cost), 0) FROM unattributed_costs),
                  (SELECT coalesce(sum(cost), 0) FROM component_costs
                   WHERE component IN ('compute', 'home storage'))""",
    )[0]
    assert abs(user_total + unattributed_total - component_total) <= TOLERANCE * 12
    assert select_all(conn, "SELECT bool_and(shortfall >= 0) FROM component_cost_moves") in (
        [(True,)],
        [(None,)],
    )
