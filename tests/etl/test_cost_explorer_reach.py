"""A costs backfill reaching past Cost Explorer's 13 months (docs/attribution.md §7.3).

`hubcost backfill` against a local Cost Explorer and the real PostgreSQL: the days older than
Cost Explorer keeps are named in one warning, never asked, and keep their stored rows; the
window's other days load as usual.
"""

from __future__ import annotations

import datetime as dt

import pytest

from etl.sources.cost_explorer import oldest_day
from hubcost import cli
from tests.etl.sources.aws_endpoint import FakeCostExplorer, answer
from tests.rows import add_costs, select_all

CLUSTER = "c1"
H = "2i2c:hub-name"
ONE_DAY = dt.timedelta(days=1)
REACH_LINE = "Cost Explorer keeps 13 months"


@pytest.mark.parametrize(
    ("today", "oldest"),
    [
        ("2026-12-03", "2025-11-01"),
        ("2026-12-31", "2025-11-01"),
        ("2026-01-01", "2024-12-01"),
        ("2026-02-28", "2025-01-01"),
        ("2027-01-15", "2025-12-01"),
    ],
)
def test_the_oldest_day_is_the_first_of_the_month_13_months_back(today, oldest):
    assert oldest_day(dt.date.fromisoformat(today)) == dt.date.fromisoformat(oldest)


def answer_every_day(request):
    """Each requested day: one attributable (or account) group of 2 USD."""
    period = request["TimePeriod"]
    first, end = (dt.date.fromisoformat(period[k]) for k in ("Start", "End"))
    if len(request["GroupBy"]) == 1:
        groups = [(["Amazon Elastic Compute Cloud - Compute"], "2")]
    else:
        groups = [([f"{H}$prod", "Amazon Elastic Compute Cloud - Compute"], "2")]
    days = [(first + ONE_DAY * i).isoformat() for i in range((end - first).days)]
    return 200, answer([(d, groups) for d in days])


@pytest.fixture
def costs_env(cli_env):
    cli_env.setenv("CLUSTER_NAME", CLUSTER)
    cli_env.setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
    cli_env.setenv("AWS_SECRET_ACCESS_KEY", "not-a-secret")
    return cli_env


def backfill(env, first: dt.date, last: dt.date) -> tuple[int, list[dict]]:
    """Exit status of `hubcost backfill --source costs`, and the requests Cost Explorer got."""
    with FakeCostExplorer(answer_every_day) as fake:
        env.setenv("AWS_ENDPOINT_URL", fake.url)
        status = cli.main(
            ["backfill", "--from", str(first), "--to", str(last), "--source", "costs"]
        )
    return status, [r["body"] for r in fake.requests]


def store_old_costs(engine, days: list[dt.date]) -> list[tuple]:
    """Rows a backfill of a year ago stored; returns them as the warehouse holds them."""
    with engine.begin() as conn:
        add_costs(
            conn,
            [(d, "attributable", "prod", "Amazon EC2", "7.25") for d in days],
            cluster=CLUSTER,
        )
    return stored_costs(engine, days[0], days[-1])


def stored_costs(engine, first: dt.date, last: dt.date) -> list[tuple]:
    with engine.connect() as conn:
        return select_all(
            conn,
            "SELECT date, slice, hub, service, amount::text FROM cost "
            "WHERE cluster = :c AND date BETWEEN :f AND :l ORDER BY 1, 2, 3, 4",
            c=CLUSTER,
            f=first,
            l=last,
        )


def reach_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if REACH_LINE in line]


def test_days_older_than_cost_explorer_keeps_are_not_asked_and_keep_their_rows(
    costs_env, engine, capfd
):
    oldest = oldest_day(dt.datetime.now(dt.UTC).date())
    first = (oldest - dt.timedelta(days=40)).replace(day=17)  # mid-month, two months back
    last = oldest + ONE_DAY
    old_days = [first, first + ONE_DAY, oldest - ONE_DAY]
    before = store_old_costs(engine, old_days)
    capfd.readouterr()

    status, requests = backfill(costs_env, first, last)

    assert status == 0
    [line] = reach_lines(capfd.readouterr().err)
    assert line.endswith(
        f"{CLUSTER} costs: Cost Explorer keeps 13 months; {first}..{oldest - ONE_DAY} not asked "
        f"(older than {oldest}); their stored days are kept"
    )
    # One request per slice, each for the days within reach only.
    periods = [r["TimePeriod"] for r in requests]
    assert periods == [{"Start": str(oldest), "End": str(last + ONE_DAY)}] * 4
    assert stored_costs(engine, first, oldest - ONE_DAY) == before
    ec2 = "Amazon Elastic Compute Cloud - Compute"
    assert stored_costs(engine, oldest, last) == [
        (day, slice_, None if slice_ == "account" else "prod", ec2, "2")
        for day in (oldest, last)
        for slice_ in ("account", "attributable", "core", "home")
    ]
    with engine.connect() as conn:
        assert select_all(conn, "SELECT first_day, last_day, status FROM run_log") == [
            (oldest, last, "succeeded")
        ]


def test_a_window_wholly_older_sends_no_request_and_changes_nothing(costs_env, engine, capfd):
    oldest = oldest_day(dt.datetime.now(dt.UTC).date())
    first, last = oldest - dt.timedelta(days=3), oldest - ONE_DAY
    before = store_old_costs(engine, [first, last])
    capfd.readouterr()

    status, requests = backfill(costs_env, first, last)

    assert (status, requests) == (0, [])
    [line] = reach_lines(capfd.readouterr().err)
    assert f"; {first}..{last} not asked (older than {oldest});" in line
    assert stored_costs(engine, first, last) == before
    with engine.connect() as conn:
        assert select_all(conn, "SELECT count(*) FROM run_log") == [(0,)]


def test_a_window_within_reach_says_nothing_of_it(costs_env, engine, capfd):
    oldest = oldest_day(dt.datetime.now(dt.UTC).date())

    status, requests = backfill(costs_env, oldest, oldest)

    assert status == 0
    assert [r["TimePeriod"] for r in requests] == [
        {"Start": str(oldest), "End": str(oldest + ONE_DAY)}
    ] * 4
    assert reach_lines(capfd.readouterr().err) == []
