"""The pages against the app itself (TestClient), on the API tests' hand-made warehouse.

What the browser tests do not show by their nature: hand-worked numbers, every 422 reason, the
headers, the links' encoding, the cluster picker's scoped CSV, a viewer limited to their own
page, the database down, and the root's answer per Accept header.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import tomllib
from decimal import Decimal
from fnmatch import fnmatch
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from markupsafe import escape
from starlette.testclient import TestClient

from api.app import create_app
from api.ui.access import SCOPE_KEY, Viewer
from api.ui.charts import money
from api.ui.render import CONTENT_SECURITY_POLICY
from core import schema
from tests.api.conftest import api_settings, fixed_clock
from tests.api.dataset import EC2, load_dataset
from tests.conftest import ROOT
from tests.rows import CLUSTER, add_costs, add_groups, add_usage

RANGE = "from=2026-01-04&to=2026-01-05"
PAGES = (
    f"/ui/?{RANGE}",
    f"/ui/hubs/prod?{RANGE}",
    f"/ui/groups/g1?{RANGE}",
    f"/ui/users/alice?{RANGE}",
)


@pytest.fixture
def loaded(load, client):
    load_dataset(load)
    load.commit()
    return client


def cells(body: str, table_id: str) -> list[list[str]]:
    """The text of a table's rows (header included), tags stripped and entities decoded."""
    match = re.search(rf'<table class="data" id="{table_id}">(.*?)</table>', body, re.S)
    assert match, f"no table {table_id}"
    rows = re.findall(r"<tr>(.*?)</tr>", match.group(1), re.S)
    return [
        [
            html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        ]
        for row in rows
    ]


def test_every_page_is_html_with_the_policy_and_no_script(loaded):
    for path in PAGES:
        answer = loaded.get(path)
        assert answer.status_code == 200, (path, answer.text[:300])
        assert answer.headers["content-type"].startswith("text/html")
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert "<script" not in answer.text and " style=" not in answer.text
        assert "<svg" in answer.text
        assert len(answer.content) < 1_000_000
    for asset in ("/ui/static/style.css", "/ui/static/icon.svg"):
        assert loaded.get(asset).status_code == 200


def test_the_pages_show_the_hand_worked_numbers(loaded):
    overview = loaded.get(f"/ui/?{RANGE}").text
    assert cells(overview, "totals-table") == [
        ["date", "attributable", "account"],
        ["2026-01-04", "$16.51", "$20.00"],
        ["2026-01-05", "$11.01", "$30.00"],
    ]
    assert cells(overview, "hubs-table")[1:] == [
        ["prod", "$21.01", ""],
        ["staging", "$4.00", ""],
        ["support", "$2.50", ""],
    ]
    user = loaded.get(f"/ui/users/alice?{RANGE}").text
    assert cells(user, "daily-table") == [
        ["date", "prod · compute", "prod · home storage", "total"],
        ["2026-01-04", "$3.00", "$1.00", "$4.00"],
        ["2026-01-05", "$2.00", "", "$2.00"],
    ]
    assert 'id="user-total">$6.00<' in user
    assert cells(user, "groups-table")[1:] == [["prod", "g1"]]
    hub = loaded.get(f"/ui/hubs/staging?{RANGE}").text
    assert cells(hub, "users-table")[1:] == [["erin", "$2.67", "$2.67"], ["dave", "$1.33", "$1.33"]]
    group = loaded.get(f"/ui/groups/g1?{RANGE}").text
    assert cells(group, "members-table")[1:] == [
        ["bob", "$8.00", "$1.00", "$9.00"],
        ["alice", "$5.00", "$1.00", "$6.00"],
    ]


def _add_budgets_and_anomalies(load) -> None:
    budget = {"cluster": None, "usergroup": None, "username": None, "start_date": None}
    load.execute(
        sa.insert(schema.budget),
        [
            {**budget, "name": "prod-month", "hub": "prod", "amount": 40, "period": "month"},
            {
                **budget,
                "name": "all-total",
                "hub": None,
                "amount": 20,
                "period": "total",
                "start_date": dt.date(2026, 1, 1),
            },
        ],
    )
    load.execute(
        sa.text(
            """INSERT INTO attribution.cost_anomaly
                   (cluster, date, scope, hub, username, cost, baseline, mad, score, history_days)
               VALUES (:cluster, '2026-01-05', 'user', 'prod', 'alice', 2, 0.5, 0.1, 10.12, 28),
                      (:cluster, '2026-01-04', 'hub', 'prod', '', 14.005, 5, 1, 6.07, 20),
                      (:cluster, '2025-12-01', 'hub', 'prod', '', 50, 10, 1, 26.98, 20)"""
        ),
        {"cluster": CLUSTER},
    )


def test_the_overview_shows_the_budgets_and_anomalies_the_api_gives(load, client):
    load_dataset(load)
    _add_budgets_and_anomalies(load)
    load.commit()
    overview = client.get(f"/ui/?{RANGE}").text
    # On the range's last day; the spend and forecast as /budgets gives them for that day.
    assert "Budgets on 2026-01-05" in overview
    budgets = client.get("/budgets?as_of=2026-01-05").json()
    assert cells(overview, "budgets-table")[1:] == [
        [
            b["name"],
            scope,
            b["period"],
            money(Decimal(str(b["amount"]))),
            money(Decimal(str(b["spent"]))),
            "" if b["forecast"] is None else money(Decimal(str(b["forecast"]))),
            "",
        ]
        for b, scope in zip(budgets, ["everything", "hub prod"], strict=True)
    ]
    # prod's attributable cost on 01-04 and 01-05 (14.005 + 7.004); everything: 27.509.
    assert [row[4] for row in cells(overview, "budgets-table")[1:]] == ["$27.51", "$21.01"]
    assert overview.count('<svg class="budget"') == 2
    assert 'href="/budgets?as_of=2026-01-05&amp;format=csv"' in overview

    anomalies = client.get(f"/cost-anomalies?{RANGE}").json()
    assert cells(overview, "anomalies-table")[1:] == [
        [
            a["date"],
            a["hub"],
            a["user"] or "",
            money(Decimal(str(a["cost"]))),
            money(Decimal(str(a["baseline"]))),
            str(a["score"]),
        ]
        for a in anomalies
    ]
    assert [row[:3] for row in cells(overview, "anomalies-table")[1:]] == [
        ["2026-01-05", "prod", "alice"],
        ["2026-01-04", "prod", ""],
    ]
    csv = client.get(f"/cost-anomalies?{RANGE}&format=csv")
    assert 'href="/cost-anomalies?from=2026-01-04&amp;to=2026-01-05&amp;format=csv"' in overview
    assert len(csv.text.splitlines()) == 3


def test_without_budgets_or_anomalies_the_overview_says_so(loaded):
    overview = loaded.get(f"/ui/?{RANGE}").text
    assert "No budget is set" in overview and "No anomaly in this range." in overview


def test_an_empty_range_says_so(loaded):
    answer = loaded.get("/ui/users/nobody?from=2025-01-01&to=2025-01-31")
    assert answer.status_code == 200
    assert "No cost in this range." in answer.text
    assert 'id="user-total">$0.00<' in answer.text


@pytest.mark.parametrize(
    ("path", "reasons"),
    [
        ("/ui/?from=yesterday", ["from: not a date"]),
        ("/ui/?from=2026-01-05&to=2026-01-04", ["from: must not be after to (2026-01-04)"]),
        ("/ui/?from=2020-01-01&to=2026-01-01", ["longer than the maximum of 1100"]),
        ("/ui/hubs/prod?to=1e9x&cluster=mars", ["to: not a date", "unknown cluster(s): mars"]),
        ("/ui/users/a%00b", ["user: must not contain NUL characters"]),
        ("/ui/groups/", ["group: must not be empty"]),
    ],
)
def test_bad_parameters_are_a_422_page_with_every_reason(loaded, path, reasons):
    answer = loaded.get(path)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("text/html")
    text = html.unescape(re.sub(r"<[^>]+>", "", answer.text))
    for reason in reasons:
        assert reason in text, (path, text)


def test_names_are_escaped_and_percent_encoded_in_links(load, client):
    name = "<script>x</script> & 'o\"brien' Zoë/李"
    add_usage(load, [("2026-01-04", "prod", "compute", name, 1)])
    add_groups(load, [("2026-01-04", "prod", name, "<g&>")])
    add_costs(load, [("2026-01-04", "attributable", "prod", EC2, "3")])
    load.commit()
    hub = client.get(f"/ui/hubs/prod?{RANGE}").text
    assert "<script>x" not in hub and escape(name) in hub
    assert f'href="/ui/users/{quote(name, safe="")}?from=2026-01-04&amp;to=2026-01-05"' in hub
    user = client.get(f"/ui/users/{quote(name, safe='')}?{RANGE}")
    assert user.status_code == 200
    assert f"<h1>User {escape(name)}</h1>" in user.text
    assert f'href="/ui/groups/{quote("<g&>", safe="")}?' in user.text
    assert "user=" + quote(name, safe="").replace("%20", "+") in html.unescape(user.text)


@pytest.fixture
def two_clusters(load, client):
    load_dataset(load, cluster="a")
    add_costs(load, [("2026-01-04", "attributable", "prod", EC2, "7.777")], cluster="b")
    add_usage(load, [("2026-01-04", "prod", "compute", "zed", 1)], cluster="b")
    load.commit()
    return client


def test_with_several_clusters_a_page_is_of_one_of_them(two_clusters):
    default = two_clusters.get(f"/ui/?{RANGE}").text
    assert "<h1>Costs <small>on a</small></h1>" in default
    assert 'aria-current="page">a</a>' in default
    assert f'href="/ui/?{RANGE.replace("&", "&amp;")}&amp;cluster=b">b</a>' in default
    assert f'href="/clusters/a/total-costs?{RANGE.replace("&", "&amp;")}&amp;format=csv"' in default

    b = two_clusters.get(f"/ui/?{RANGE}&cluster=b").text
    assert cells(b, "hubs-table")[1:] == [["prod", "$7.78", ""]]
    scoped = two_clusters.get(f"/clusters/b/total-costs-per-hub?{RANGE}").json()
    assert [(r["name"], r["cost"]) for r in scoped] == [("prod", 7.78)]
    user = two_clusters.get(f"/ui/users/zed?{RANGE}&cluster=b").text
    assert 'id="user-total">$7.78<' in user
    assert f'href="/clusters/b/costs-per-user?{RANGE.replace("&", "&amp;")}&amp;user=zed' in user
    # The picker keeps the page and its range, changing only the cluster.
    assert f'href="/ui/users/zed?{RANGE.replace("&", "&amp;")}&amp;cluster=a">a</a>' in user


def test_a_single_cluster_has_no_picker_and_root_csv_links(loaded):
    page = loaded.get(f"/ui/?{RANGE}").text
    assert 'class="clusters"' not in page
    assert f'href="/total-costs-per-hub?{RANGE.replace("&", "&amp;")}&amp;format=csv"' in page


class AsViewer:
    """Stands in for the access middleware: every request is `viewer`'s."""

    def __init__(self, app, viewer: Viewer):
        self.app, self.viewer = app, viewer

    async def __call__(self, scope, receive, send):
        await self.app({**scope, SCOPE_KEY: self.viewer}, receive, send)


def test_a_viewer_limited_to_their_page_sees_only_their_costs_on_their_hub(load, database_url):
    load_dataset(load)
    add_usage(load, [("2026-01-05", "staging", "compute", "alice", 1)])
    load.commit()
    app = create_app(api_settings(), database_url=database_url, clock=fixed_clock)
    viewer = Viewer(username="alice", sees_everything=False, hub="prod")
    with TestClient(AsViewer(app, viewer)) as client:
        for path in (f"/ui/?{RANGE}", f"/ui/hubs/prod?{RANGE}", f"/ui/users/bob?{RANGE}"):
            refused = client.get(path)
            assert refused.status_code == 403, path
            assert 'href="/ui/users/alice"' in refused.text
        own = client.get(f"/ui/users/alice?{RANGE}").text
    assert 'id="user-total">$6.00<' in own  # prod only: not her staging share of 01-05
    assert "staging" not in own
    assert 'class="csv"' not in own and "/ui/groups/" not in own and 'class="brand" href' not in own


def test_an_unreachable_database_is_a_503_page():
    app = create_app(
        api_settings(),
        database_url="postgresql+psycopg://nobody@127.0.0.1:9/nothing",
        clock=fixed_clock,
    )
    with TestClient(app) as client:
        answer = client.get("/ui/")
    assert answer.status_code == 503
    assert answer.headers["content-type"].startswith("text/html")
    assert "The database does not answer" in answer.text


def test_a_browser_asking_the_root_is_sent_to_the_pages(client):
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    answer = client.get("/", headers={"accept": browser}, follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (303, "/ui/")
    assert answer.headers["vary"] == "Accept"
    for accept in ("application/json", "*/*", ""):
        index = client.get("/", headers={"accept": accept})
        assert index.status_code == 200 and index.json()["openapi"] == "/openapi.json"


def test_links_start_at_the_apps_root_path(load, database_url):
    load_dataset(load)
    load.commit()
    app = create_app(api_settings(), database_url=database_url, clock=fixed_clock)
    with TestClient(app, root_path="/services/hubcost") as client:
        page = client.get(f"/services/hubcost/ui/?{RANGE}").text
        root = client.get(
            "/services/hubcost/", headers={"accept": "text/html"}, follow_redirects=False
        )
    assert 'href="/services/hubcost/ui/static/style.css"' in page
    assert 'href="/services/hubcost/ui/hubs/prod?' in page
    assert 'href="/services/hubcost/total-costs?' in page
    assert root.headers["location"] == "/services/hubcost/ui/"


def test_the_templates_and_assets_ship_as_package_data():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = declared["package-data"]["api.ui"]
    package = ROOT / "api" / "ui"
    shipped = [
        path.relative_to(package).as_posix()
        for folder in ("templates", "static")
        for path in (package / folder).rglob("*")
        if path.is_file()
    ]
    assert shipped
    for name in shipped:
        assert any(fnmatch(name, pattern) for pattern in patterns), name
    assert not list(Path(package).glob("**/*.js")), "the pages run no script"
