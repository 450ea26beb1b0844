"""The pages in a real browser, from a real `hubcost serve` on a database the demo loader filled.

The demo's 30 days go through the real ETL (`hubcost etl` with DEMO=1); a second cluster,
with a hostile name, holds a hub, users and a group with hostile names. Each page must load
with no console error (a CSP violation, a failed asset, a script error all are errors), show
its charts as SVG, and show the numbers the JSON endpoints give for the same parameters (with
two clusters, those of `/clusters/{cluster}/...`); no hostile name may run script.
Screenshots of the overview, a hub and a user page are written under the test's tmp_path.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import urllib.parse
import urllib.request
import uuid
from collections import defaultdict
from decimal import Decimal

import pytest
import sqlalchemy as sa

from api.ui.charts import money
from core import schema
from core.database import create_engine
from core.schema import DEMO_CLUSTER
from tests.api.ui.browser import chromium, console_errors, installed, screenshot
from tests.conftest import READER_ROLE
from tests.etl.prometheus_history import free_port
from tests.reliability.processes import child_env, hubcost, run_hubcost, wait_until
from tests.rows import add_costs, add_groups, add_usage

pytestmark = pytest.mark.slow

SCRIPT_USER = "<script>window.__pwned=1</script>"
ATTRIBUTE_USER = '"><img src=x onerror="window.__pwned=2">'
HOSTILE_USERS = (SCRIPT_USER, ATTRIBUTE_USER, "Zoë 李小龍", "o'brien", "a/b?c#d&e")
HOSTILE_HUB = "<i>hub</i>\"'&"
HOSTILE_GROUP = "<b>g</b>'\""
# After demo-cluster by name: the pages' default cluster stays the demo's. No `/`: the API's
# /clusters/{cluster}/... paths cannot hold one, and cluster names are configured names.
HOSTILE_CLUSTER = 'lab "<i>2"\''
DEMO = f"/clusters/{DEMO_CLUSTER}"


def _day() -> dt.date:
    """A day the demo loaded: the API's default range ends today, the demo yesterday."""
    return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2)


def _add_hostile_names(url: str) -> None:
    day = _day().isoformat()
    engine = create_engine(url, pool_size=1)
    try:
        with engine.begin() as conn:
            add_costs(
                conn,
                [
                    (day, "attributable", HOSTILE_HUB, "EC2 - Other", "12.345"),
                    (day, "attributable", HOSTILE_HUB, "Amazon Elastic File System", "3"),
                ],
                cluster=HOSTILE_CLUSTER,
            )
            add_usage(
                conn,
                [(day, HOSTILE_HUB, "compute", user, i + 1) for i, user in enumerate(HOSTILE_USERS)]
                + [(day, HOSTILE_HUB, "home storage", user, 1) for user in HOSTILE_USERS],
                cluster=HOSTILE_CLUSTER,
            )
            add_groups(
                conn,
                [(day, HOSTILE_HUB, user, HOSTILE_GROUP) for user in HOSTILE_USERS],
                cluster=HOSTILE_CLUSTER,
            )
    finally:
        engine.dispose()


def _add_budgets_and_anomalies(url: str) -> None:
    """Budgets of the demo cluster, of every cluster and of the other one (not on the demo's
    overview); an anomaly of a hostile name on the demo cluster."""
    unscoped = {"hub": None, "usergroup": None, "username": None, "start_date": None}
    budgets = [
        {**unscoped, "name": "all-month", "cluster": None, "amount": 100, "period": "month"},
        {
            **unscoped,
            "name": "demo-prod",
            "cluster": DEMO_CLUSTER,
            "hub": "prod",
            "amount": 5,
            "period": "quarter",
        },
        {
            **unscoped,
            "name": "lab-month",
            "cluster": HOSTILE_CLUSTER,
            "amount": 1,
            "period": "month",
        },
    ]
    engine = create_engine(url, pool_size=1)
    try:
        with engine.begin() as conn:
            conn.execute(sa.insert(schema.budget), budgets)
            conn.execute(
                sa.text(
                    """INSERT INTO attribution.cost_anomaly (cluster, date, scope, hub, username,
                           cost, baseline, mad, score, history_days)
                       VALUES (:cluster, :day, 'user', 'prod', :user, 9.5, 1, 0.2, 28.67, 28)
                       ON CONFLICT DO NOTHING"""
                ),
                {"cluster": DEMO_CLUSTER, "day": _day(), "user": SCRIPT_USER},
            )
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def served(admin_engine, admin_url, template_database, tmp_path_factory):
    """`hubcost serve` (DEMO=1) on a fresh database the demo ETL loaded: its base URL."""
    installed()
    work = tmp_path_factory.mktemp("served")
    name = f"hubcost_test_ui_{uuid.uuid4().hex[:8]}"
    with admin_engine.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"'))
    url = sa.engine.make_url(admin_url).set(database=name).render_as_string(False)
    env = child_env(work, DATABASE_URL=url, API_DB_ROLE=READER_ROLE, DEMO="1")
    status, err = run_hubcost(["etl"], env, work, "etl", timeout=300)
    assert status == 0, err
    _add_hostile_names(url)
    _add_budgets_and_anomalies(url)
    port = free_port()
    server = hubcost(["serve", "--port", str(port)], env, work, "serve")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(base), timeout=60, what="hubcost serve")
        yield base
    finally:
        server.signal(signal.SIGTERM)
        try:
            server.wait(30)
        finally:
            server.stop()
        with admin_engine.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    assert "Traceback" not in server.stderr(), server.stderr()


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/health/ready", timeout=5) as answer:
            return answer.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def browser(served):
    with chromium() as driver:
        yield driver


def api(base: str, path: str, **params):
    """A JSON endpoint's rows, numbers as Decimal (the digits the JSON holds)."""
    query = urllib.parse.urlencode(params)
    with urllib.request.urlopen(f"{base}{path}?{query}", timeout=30) as answer:
        return json.loads(answer.read(), parse_float=Decimal, parse_int=Decimal)


def page_url(base: str, kind: str | None = None, name: str | None = None, **params) -> str:
    path = "/ui/" if kind is None else f"/ui/{kind}/{urllib.parse.quote(name, safe='')}"
    return f"{base}{path}?{urllib.parse.urlencode(params)}"


def open_page(driver, url: str) -> None:
    """Load a page and require that it logged no console error and drew its charts."""
    driver.get(url)
    assert driver.execute_script("return document.readyState") == "complete"
    errors = console_errors(driver)
    assert not errors, (url, errors)


def table(driver, id: str) -> tuple[list[str], list[list[str]]]:
    """A table's header and rows as text (textContent: a closed <details> hides nothing)."""
    rows = driver.execute_script(
        "return Array.from(document.getElementById(arguments[0]).rows,"
        " r => Array.from(r.cells, c => c.textContent.trim()))",
        id,
    )
    return rows[0], rows[1:]


def by_day(header: list[str], rows: list[list[str]]) -> dict[tuple[str, str], str]:
    """{(date, column): cell} of a day table, empty cells left out."""
    return {
        (row[0], column): cell
        for row in rows
        for column, cell in zip(header[1:], row[1:], strict=True)
        if cell
    }


def svg_count(driver) -> int:
    return driver.execute_script("return document.querySelectorAll('svg').length")


def pwned(driver):
    return driver.execute_script("return window.__pwned")


def window() -> dict[str, str]:
    today = dt.datetime.now(dt.UTC).date()
    return {"from": (today - dt.timedelta(days=30)).isoformat(), "to": today.isoformat()}


def test_the_overview_shows_the_apis_numbers(served, browser, tmp_path):
    open_page(browser, served + "/ui/")
    assert svg_count(browser) >= 3
    assert pwned(browser) is None
    text = browser.find_element("tag name", "body").text
    assert "Demo data" in text
    assert "costs loaded through" in text and "usage loaded through" in text
    # Two clusters: a picker, and the first by name is the page's.
    assert browser.find_element("tag name", "h1").text == f"Costs on {DEMO_CLUSTER}"
    picker = browser.find_element("css selector", "nav.clusters")
    assert [a.text for a in picker.find_elements("tag name", "a")] == [
        DEMO_CLUSTER,
        HOSTILE_CLUSTER,
    ]

    # The default page is the API's default range, of the page's cluster.
    totals = api(served, DEMO + "/total-costs")
    header, rows = table(browser, "totals-table")
    assert by_day(header, rows) == {(r["date"], r["name"]): money(r["cost"]) for r in totals}

    header, rows = table(browser, "components-table")
    shown = {k: v for k, v in by_day(header, rows).items() if k[1] != "total"}
    components = api(served, DEMO + "/total-costs-per-component")
    assert shown == {(r["date"], r["component"]): money(r["cost"]) for r in components}

    per_hub: dict[str, Decimal] = defaultdict(Decimal)
    for r in api(served, DEMO + "/total-costs-per-hub"):
        per_hub[r["name"]] += r["cost"]
    _, rows = table(browser, "hubs-table")
    assert {row[0]: row[1] for row in rows} == {h: money(c) for h, c in per_hub.items()}
    assert len(rows) == len(per_hub) == 4

    # The budgets counting the demo cluster, as /budgets gives them on the range's last day.
    budgets = [b for b in api(served, "/budgets") if b["cluster"] in (None, DEMO_CLUSTER)]
    _, rows = table(browser, "budgets-table")
    assert [[row[0], row[3], row[4]] for row in rows] == [
        [b["name"], money(b["amount"]), money(b["spent"])] for b in budgets
    ]
    assert [row[0] for row in rows] == ["all-month", "demo-prod"]
    assert len(browser.find_elements("css selector", "#budgets svg.budget")) == 2

    anomalies = api(served, "/cost-anomalies", cluster=DEMO_CLUSTER)[:10]
    _, rows = table(browser, "anomalies-table")
    assert [[row[0], row[1], row[2], row[3]] for row in rows] == [
        [a["date"], a["hub"], a["user"] or "", money(a["cost"])] for a in anomalies
    ]
    assert SCRIPT_USER in [row[2] for row in rows]

    screenshot(browser, tmp_path / "overview.png")


def test_the_picker_shows_the_other_clusters_overview(served, browser):
    open_page(browser, served + "/ui/")
    browser.find_element("link text", HOSTILE_CLUSTER).click()
    assert console_errors(browser) == []
    assert pwned(browser) is None
    assert browser.find_element("tag name", "h1").text == f"Costs on {HOSTILE_CLUSTER}"
    _, rows = table(browser, "hubs-table")
    assert [row[:2] for row in rows] == [[HOSTILE_HUB, "$15.35"]]
    # Its CSV link is the scoped endpoint's, the cluster's name percent-encoded.
    link = browser.find_element("css selector", "#hubs a.csv").get_attribute("href")
    assert urllib.parse.quote(HOSTILE_CLUSTER, safe="") in link
    with urllib.request.urlopen(link, timeout=30) as answer:
        lines = answer.read().decode().splitlines()
    assert lines[0] == "date,cost,name" and lines[1].endswith(",15.35," + _csv(HOSTILE_HUB))


def _csv(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text


def test_a_hub_page_shows_the_apis_numbers(served, browser, tmp_path):
    params = window()
    open_page(browser, page_url(served, "hubs", "prod", **params))
    assert svg_count(browser) >= 1
    header, rows = table(browser, "components-table")
    shown = {k: v for k, v in by_day(header, rows).items() if k[1] != "total"}
    components = api(served, DEMO + "/total-costs-per-component", hub="prod", **params)
    assert shown == {(r["date"], r["component"]): money(r["cost"]) for r in components}

    per_user: dict[str, Decimal] = defaultdict(Decimal)
    seen = set()
    for r in api(served, DEMO + "/costs-per-user", hub="prod", **params):
        key = (r["date"], r["component"], r["user"])
        if key not in seen:  # one row per group of the user: the cost once
            seen.add(key)
            per_user[r["user"]] += r["value"]
    _, rows = table(browser, "users-table")
    assert rows and {row[0]: row[-1] for row in rows} == {
        user: money(total) for user, total in per_user.items()
    }
    screenshot(browser, tmp_path / "hub.png")


def test_a_group_page_shows_the_apis_numbers(served, browser):
    params = window()
    open_page(browser, page_url(served, "groups", "research", **params))
    assert svg_count(browser) >= 1
    header, rows = table(browser, "daily-table")
    groups = api(served, DEMO + "/total-costs-per-group", **params)
    expected = {
        (r["date"], "research"): money(r["cost"]) for r in groups if r["usergroup"] == "research"
    }
    assert expected and by_day(header, rows) == expected


def test_a_user_page_shows_the_apis_numbers(served, browser, tmp_path):
    params = window()
    open_page(browser, page_url(served, "users", "ada", **params))
    assert svg_count(browser) >= 1
    costs = {}
    for r in api(served, DEMO + "/costs-per-user", user="ada", **params):
        costs[(r["date"], f"{r['hub']} · {r['component']}")] = r["value"]
    header, rows = table(browser, "daily-table")
    shown = by_day(header, rows)
    assert {k: v for k, v in shown.items() if k[1] != "total"} == {
        k: money(v) for k, v in costs.items()
    }
    total = browser.find_element("id", "user-total").text
    assert total == money(sum(costs.values(), Decimal(0)))
    _, groups = table(browser, "groups-table")
    assert groups and {hub for hub, _ in groups} == {"prod"}
    screenshot(browser, tmp_path / "user.png")


@pytest.mark.parametrize("user", HOSTILE_USERS)
def test_a_hostile_name_is_text_and_runs_nothing(served, browser, user):
    open_page(browser, page_url(served, "users", user, cluster=HOSTILE_CLUSTER, **window()))
    assert pwned(browser) is None
    assert browser.find_element("tag name", "h1").text == f"User {user} on {HOSTILE_CLUSTER}"
    _, groups = table(browser, "groups-table")
    assert groups == [[HOSTILE_HUB, HOSTILE_GROUP]]
    browser.find_element("link text", HOSTILE_GROUP).click()
    assert console_errors(browser) == []
    assert (
        browser.find_element("tag name", "h1").text == f"Group {HOSTILE_GROUP} on {HOSTILE_CLUSTER}"
    )
    assert pwned(browser) is None


def test_the_hostile_hub_page_lists_its_users_as_text(served, browser):
    url = page_url(served, "hubs", HOSTILE_HUB, cluster=HOSTILE_CLUSTER, **window())
    open_page(browser, url)
    assert pwned(browser) is None
    assert browser.find_element("tag name", "h1").text == f"Hub {HOSTILE_HUB} on {HOSTILE_CLUSTER}"
    _, rows = table(browser, "users-table")
    assert sorted(row[0] for row in rows) == sorted(HOSTILE_USERS)
    browser.find_element("link text", SCRIPT_USER).click()
    assert console_errors(browser) == []
    assert browser.find_element("tag name", "h1").text == f"User {SCRIPT_USER} on {HOSTILE_CLUSTER}"
    assert pwned(browser) is None


def test_bad_parameters_are_a_422_page_with_the_reason(served, browser):
    browser.get(served + "/ui/?from=yesterday&to=2026-13-01&cluster=nowhere")
    text = browser.find_element("tag name", "main").text
    assert "from: not a date" in text and "to: not a date" in text
    assert "unknown cluster(s): nowhere" in text
    # The browser logs the 422 itself as a failed load; nothing else.
    errors = console_errors(browser)
    assert all("422" in e["message"] for e in errors), errors


def test_a_browser_asking_the_root_is_sent_to_the_pages(served, browser):
    open_page(browser, served + "/")
    assert urllib.parse.urlsplit(browser.current_url).path == "/ui/"
    assert api(served, "/")["openapi"] == "/openapi.json"  # what API clients still get
