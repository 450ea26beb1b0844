"""`GET /cost-anomalies` (docs/api.md §6.13): the anomalies of a range, worked out by hand.

Most tests read anomalies written straight into attribution.cost_anomaly (what the ETL's
detect_anomalies writes), so that every key, rounding and order is pinned; one test lets
detect_anomalies find a spike in hand-made costs and reads it back through the endpoint.
"""

from __future__ import annotations

import datetime as dt

import jsonschema
import pytest
import sqlalchemy as sa

from tests.api.databases import loaded_database
from tests.api.test_budgets_endpoint import app_client, get_document, get_index
from tests.rows import CLUSTER, add_costs, add_usage

KEYS = [
    "date",
    "cluster",
    "scope",
    "hub",
    "user",
    "cost",
    "baseline",
    "mad",
    "score",
    "history_days",
]
# (cluster, date, scope, hub, username, cost, baseline, mad, score, history_days)
ANOMALIES = [
    (CLUSTER, "2026-01-05", "hub", "prod", "", "30.005", "10", "0.1", "134.9", 28),
    (CLUSTER, "2026-01-05", "user", "prod", "alice", "20.004", "5", "0.05", "202.3459", 28),
    (CLUSTER, "2026-01-04", "user", "staging", "dave", "7", "1.5", "0.5", "7.4177", 9),
    ("B", "2026-01-05", "hub", "prod", "", "12", "4", "1", "5.396", 12),
    (CLUSTER, "2025-11-01", "hub", "prod", "", "50", "10", "1.005", "26.98", 20),
]


def load(conn) -> None:
    conn.execute(sa.text("INSERT INTO cluster (name) VALUES (:name)"), {"name": "B"})
    add_costs(conn, [("2026-01-05", "attributable", "prod", "EC2 - Other", "1")])
    insert = sa.text(
        """INSERT INTO attribution.cost_anomaly
               (cluster, date, scope, hub, username, cost, baseline, mad, score, history_days)
           VALUES (:cluster, CAST(:date AS date), :scope, :hub, :username, CAST(:cost AS numeric),
                   CAST(:baseline AS numeric), CAST(:mad AS numeric), CAST(:score AS numeric),
                   :history_days)"""
    )
    columns = ("cluster", "date", "scope", "hub", "username", "cost", "baseline", "mad")
    columns += ("score", "history_days")
    conn.execute(insert, [dict(zip(columns, row, strict=True)) for row in ANOMALIES])


@pytest.fixture(scope="module")
def warehouse(admin_engine, admin_url, template_database):
    with loaded_database(admin_engine, admin_url, template_database, load) as url:
        yield url


@pytest.fixture(scope="module")
def api(warehouse):
    with app_client(warehouse) as client:
        yield client


def get(api, url):
    response = api.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert all(list(row) == KEYS for row in body), body
    return body


def row(*values) -> dict:
    return dict(zip(KEYS, values, strict=True))


# Latest day first, the strongest first within a day; money to cents, the score to 2 decimals.
ALICE = row("2026-01-05", CLUSTER, "user", "prod", "alice", 20.0, 5, 0.05, 202.35, 28)
PROD = row("2026-01-05", CLUSTER, "hub", "prod", None, 30.01, 10, 0.1, 134.9, 28)  # 30.005
PROD_B = row("2026-01-05", "B", "hub", "prod", None, 12, 4, 1, 5.4, 12)
DAVE = row("2026-01-04", CLUSTER, "user", "staging", "dave", 7, 1.5, 0.5, 7.42, 9)
NOVEMBER = row("2025-11-01", CLUSTER, "hub", "prod", None, 50, 10, 1.01, 26.98, 20)  # 1.005


def test_the_default_range_is_the_31_days_to_today(api):
    # 2025-12-10 to 2026-01-10: November's anomaly is out.
    assert get(api, "/cost-anomalies") == [ALICE, PROD, PROD_B, DAVE]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("from=2025-11-01&to=2026-01-10", [ALICE, PROD, PROD_B, DAVE, NOVEMBER]),
        ("from=2026-01-05&to=2026-01-05", [ALICE, PROD, PROD_B]),
        ("from=2026-01-04T00:00:00Z&to=2026-01-04T23:59:59.999Z", [DAVE]),
        ("from=1767484800000&to=1767484800000", [DAVE]),  # epoch milliseconds: 2026-01-04
        ("to=2026-01-03", []),
        ("hub=staging", [DAVE]),
        ("hub={prod,staging}&cluster=B", [PROD_B]),
        ("cluster=B&cluster=default", [ALICE, PROD, PROD_B, DAVE]),
        ("cluster=all&hub=All&user=", [ALICE, PROD, PROD_B, DAVE]),
        # A user filter keeps users' rows: a hub's anomaly has no user.
        ("user=alice", [ALICE]),
        ("user={alice,dave}", [ALICE, DAVE]),
        ("user=alice&user=dave&hub=staging", [DAVE]),
        ("user=nobody", []),
        ("hub=nowhere", []),
    ],
)
def test_range_and_filters(api, query, expected):
    assert get(api, f"/cost-anomalies?{query}") == expected


def test_csv_has_the_same_rows_with_an_empty_user_for_a_hub(api):
    response = api.get("/cost-anomalies?format=csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.text.splitlines() == [
        ",".join(KEYS),
        "2026-01-05,default,user,prod,alice,20,5,0.05,202.35,28",
        "2026-01-05,default,hub,prod,,30.01,10,0.1,134.9,28",
        "2026-01-05,B,hub,prod,,12,4,1,5.4,12",
        "2026-01-04,default,user,staging,dave,7,1.5,0.5,7.42,9",
    ]
    csv = api.get("/cost-anomalies?cluster=B", headers={"Accept": "text/csv"})
    assert csv.text.splitlines()[1:] == ["2026-01-05,B,hub,prod,,12,4,1,5.4,12"]


def problem(name, msg, type_):
    return {"loc": ["query", name], "msg": msg, "type": type_}


DATE_PROBLEM = "not a date: use YYYY-MM-DD, an ISO 8601 date-time or epoch milliseconds"


@pytest.mark.parametrize(
    ("query", "problems"),
    [
        ("from=yesterday", [problem("from", DATE_PROBLEM, "date_parsing")]),
        (
            "from=2026-01-06&to=2026-01-05",
            [problem("from", "must not be after to (2026-01-05)", "date_order")],
        ),
        (
            "from=2020-01-01&to=2026-01-05",
            [
                problem(
                    "from",
                    "the range is 2197 days, longer than the maximum of 1100",
                    "range_too_long",
                )
            ],
        ),
        ("cluster=nope", [problem("cluster", "unknown cluster(s): nope", "unknown_cluster")]),
        ("user=a%00b", [problem("user", "must not contain NUL characters", "invalid_value")]),
        (
            "to=x&hub=a%00b&cluster=nope&format=xml",
            [
                problem("to", DATE_PROBLEM, "date_parsing"),
                problem("hub", "must not contain NUL characters", "invalid_value"),
                problem("format", "must be json or csv", "invalid_format"),
                problem("cluster", "unknown cluster(s): nope", "unknown_cluster"),
            ],
        ),
    ],
)
def test_bad_parameters_are_a_422_with_every_reason(api, query, problems):
    response = api.get(f"/cost-anomalies?{query}")
    assert response.status_code == 422
    assert response.json() == {"detail": problems}
    csv = api.get(f"/cost-anomalies?{query}&format=csv")
    assert csv.status_code == 422


def test_served_at_its_path_only_and_documented(api):
    assert api.get(f"/clusters/{CLUSTER}/cost-anomalies").status_code == 404
    assert "/cost-anomalies" in get_index(api)["endpoints"]
    document = get_document(api)
    assert "/clusters/{cluster}/cost-anomalies" not in document["paths"]
    operation = document["paths"]["/cost-anomalies"]["get"]
    assert [p["name"] for p in operation["parameters"]] == [
        "from",
        "to",
        "hub",
        "user",
        "cluster",
        "format",
    ]
    schema = document["components"]["schemas"]["CostAnomaly"]
    assert list(schema["properties"]) == KEYS and schema["required"] == KEYS
    rows = get(api, "/cost-anomalies?from=2025-11-01")
    jsonschema.validate(rows, {"type": "array", "items": schema})


# detect_anomalies on a hand-made series: prod's only cost is compute, all of it alice's, at
# 9.9 and 10.1 on alternate days for 16 days, then 40 on 2026-01-05. Baseline: the median,
# 10; MAD: 0.1; score 30 / (1.4826 x 0.1) = 202.347. Both the hub and its user are found.
SERIES_DAYS = [dt.date(2025, 12, 20) + dt.timedelta(days=n) for n in range(16)]
SERIES = [
    (d, "attributable", "prod", "EC2 - Other", "9.9" if n % 2 else "10.1")
    for n, d in enumerate(SERIES_DAYS)
]


def test_detected_anomalies_are_served(engine, client):
    with engine.begin() as conn:
        add_costs(conn, [*SERIES, ("2026-01-05", "attributable", "prod", "EC2 - Other", "40")])
        add_usage(conn, [(d, "prod", "compute", "alice", 1) for d in [*SERIES_DAYS, "2026-01-05"]])
        found = conn.execute(
            sa.text(
                "SELECT attribution.detect_anomalies("
                "ARRAY[:cluster], DATE '2025-12-20', DATE '2026-01-05', 5, 1)"
            ),
            {"cluster": CLUSTER},
        ).scalar_one()
    assert found == 2
    assert get(client, "/cost-anomalies") == [
        row("2026-01-05", CLUSTER, "hub", "prod", None, 40, 10, 0.1, 202.35, 16),
        row("2026-01-05", CLUSTER, "user", "prod", "alice", 40, 10, 0.1, 202.35, 16),
    ]
