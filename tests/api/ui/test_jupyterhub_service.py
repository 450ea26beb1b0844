"""hubcost as a real JupyterHub's managed service, its pages driven by a real browser.

A JupyterHub (DummyAuthenticator with a password, the npm registry's configurable-http-proxy)
starts `hubcost serve` as its service `hubcost`, as docs/pages.md tells an operator to; the
browser signs in on the hub's own login form and reaches the pages through the hub's proxy
under /services/hubcost/. alice sees her page (her costs on UI_HUB only) and is refused
anyone else's; an admin and a member of a UI_ADMIN_GROUPS group see the overview; a
logged-out visit ends on the hub's login; a forged or expired session cookie is refused.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from api.ui.session import SESSION_COOKIE, Signer, signing_key
from core.database import create_engine
from core.settings import Settings
from tests.api.ui.browser import chromium, console_errors, installed
from tests.conftest import READER_ROLE, ROOT
from tests.etl.prometheus_history import free_ports
from tests.isolated_env import isolation
from tests.reliability.processes import child_env, wait_until
from tests.rows import add_costs, add_groups, add_usage

pytestmark = pytest.mark.slow

PASSWORD = "hub-password"
API_TOKEN = "the-api-token"
SESSION_SECRET = "a session secret the test knows, to forge with the real key"
HUB = "prod"
OTHER_HUB = "staging"
DAYS = {"from": "2026-01-01", "to": "2026-01-10"}
PREFIX = "/services/hubcost"


def _load(url: str) -> None:
    """On 2026-01-05: prod's compute (100) shared 3:1 by alice and bob, its home storage (10)
    1:1; alice also on staging (40 of compute, hers alone)."""
    engine = create_engine(url, pool_size=1)
    try:
        with engine.begin() as conn:
            add_costs(
                conn,
                [
                    ("2026-01-05", "attributable", HUB, "EC2 - Other", "100"),
                    ("2026-01-05", "attributable", HUB, "Amazon Elastic File System", "10"),
                    ("2026-01-05", "attributable", OTHER_HUB, "EC2 - Other", "40"),
                ],
            )
            add_usage(
                conn,
                [
                    ("2026-01-05", HUB, "compute", "alice", 3),
                    ("2026-01-05", HUB, "compute", "bob", 1),
                    ("2026-01-05", HUB, "home storage", "alice", 1),
                    ("2026-01-05", HUB, "home storage", "bob", 1),
                    ("2026-01-05", OTHER_HUB, "compute", "alice", 1),
                ],
            )
            add_groups(
                conn,
                [
                    ("2026-01-05", HUB, "alice", "physics"),
                    ("2026-01-05", HUB, "bob", "finance"),
                    ("2026-01-05", OTHER_HUB, "alice", "physics"),
                ],
            )
    finally:
        engine.dispose()


def proxy_command() -> str:
    found = shutil.which("configurable-http-proxy")
    if found is None:
        pytest.skip("needs configurable-http-proxy (npm install -g configurable-http-proxy)")
    return found


def hub_config(work: Path, ports: dict[str, int], database_url: str) -> str:
    """A jupyterhub_config.py: what docs/pages.md asks of an operator, plus the test's ports."""
    service_environment = {
        **isolation(work),
        "DATABASE_URL": database_url,
        "API_DB_ROLE": READER_ROLE,
        "API_TOKEN": API_TOKEN,
        "UI_HUB": HUB,
        "UI_ADMIN_GROUPS": "finance, auditors",
        "UI_SESSION_SECRET": SESSION_SECRET,
        "PYTHONUNBUFFERED": "1",
    }
    service = {
        "name": "hubcost",
        "url": f"http://127.0.0.1:{ports['service']}",
        "command": [sys.executable, "-m", "hubcost.cli", "serve", "--port", str(ports["service"])],
        "cwd": str(ROOT),
        "environment": service_environment,
        "oauth_no_confirm": True,
    }
    settings = {
        "JupyterHub.bind_url": f"http://127.0.0.1:{ports['public']}",
        "JupyterHub.hub_bind_url": f"http://127.0.0.1:{ports['hub']}",
        "ConfigurableHTTPProxy.api_url": f"http://127.0.0.1:{ports['proxy_api']}",
        "ConfigurableHTTPProxy.command": [proxy_command()],
        "ConfigurableHTTPProxy.pid_file": str(work / "proxy.pid"),
        "JupyterHub.db_url": f"sqlite:///{work / 'jupyterhub.sqlite'}",
        "JupyterHub.cookie_secret_file": str(work / "cookie_secret"),
        "JupyterHub.pid_file": str(work / "jupyterhub.pid"),
        "JupyterHub.authenticator_class": "dummy",
        "DummyAuthenticator.password": PASSWORD,
        "Authenticator.allow_all": True,
        "Authenticator.admin_users": {"admin"},
        "JupyterHub.load_groups": {"finance": {"users": ["carol"]}},
        # Users may sign in to the service: the role docs/pages.md shows.
        "JupyterHub.load_roles": [
            {"name": "user", "scopes": ["self", "access:services!service=hubcost"]}
        ],
        "JupyterHub.services": [service],
    }
    lines = ["c = get_config()  # noqa"]
    for name, value in settings.items():
        section, trait = name.split(".")
        lines.append(f"c.{section}.{trait} = {value!r}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def hub(admin_engine, admin_url, template_database, tmp_path_factory):
    """A running JupyterHub with hubcost as its service: the hub's public URL."""
    installed()
    proxy_command()
    work = tmp_path_factory.mktemp("jupyterhub")
    name = f"hubcost_test_hub_{uuid.uuid4().hex[:8]}"
    with admin_engine.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"'))
    database_url = sa.engine.make_url(admin_url).set(database=name).render_as_string(False)
    _load(database_url)
    ports = dict(zip(("public", "hub", "proxy_api", "service"), free_ports(4), strict=True))
    config = work / "jupyterhub_config.py"
    config.write_text(hub_config(work, ports, database_url))
    log = work / "jupyterhub.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=work,
            env=child_env(work),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{ports['public']}"
    try:
        wait_until(
            lambda: process.poll() is not None or _ready(base),
            timeout=120,
            what="JupyterHub and its hubcost service",
            step=0.5,
        )
        assert process.poll() is None, log.read_text(errors="replace")
        yield base
    finally:
        _stop(process, work, log)
        with admin_engine.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text


def _ready(base: str) -> bool:
    try:
        answer = httpx.get(f"{base}{PREFIX}/health/ready", timeout=5)
    except httpx.HTTPError:
        return False
    return answer.status_code == 200


def _stop(process: subprocess.Popen, work: Path, log: Path) -> None:
    """SIGTERM: the hub stops its service and its proxy. Whatever of the three outlives that
    (each runs in a session of its own) is killed by the pid it wrote or logged."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
    pids = re.findall(r"Started server process \[(\d+)\]", log.read_text(errors="replace"))
    proxy_pid = work / "proxy.pid"
    if proxy_pid.exists() and proxy_pid.read_text().strip().isdigit():
        pids.append(proxy_pid.read_text().strip())
    for pid in {int(p) for p in pids}:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def driver(hub):
    with chromium() as browser:
        yield browser


@pytest.fixture
def browser(driver):
    """The module's browser with no cookie of the hub's or the service's left, and its console
    read. Every cookie, whatever its path: WebDriver's own delete spares those of other paths
    than the page's (the hub's /hub/ ones, seen from a service page)."""
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})
    console_errors(driver)
    yield driver
    driver.execute_cdp_cmd("Network.clearBrowserCookies", {})


def page(base: str, path: str, /, **params) -> str:
    return f"{base}{PREFIX}{path}?{urllib.parse.urlencode({**DAYS, **params})}"


def user_page(hub: str, user: str) -> str:
    return page(hub, f"/ui/users/{urllib.parse.quote(user, safe='')}")


def sign_in(driver, hub: str, user: str, start: str) -> None:
    """Visit `start` logged out, meet the hub's login form, sign in there, come back."""
    driver.get(start)
    assert urllib.parse.urlsplit(driver.current_url).path == "/hub/login"
    driver.find_element(By.ID, "username_input").send_keys(user)
    driver.find_element(By.ID, "password_input").send_keys(PASSWORD)
    driver.find_element(By.ID, "login_submit").click()
    WebDriverWait(driver, 30).until(
        lambda d: urllib.parse.urlsplit(d.current_url).path.startswith(f"{PREFIX}/ui/")
    )


def heading(driver) -> str:
    return driver.find_element(By.TAG_NAME, "h1").text


def body(driver) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


def api(base: str, path: str, /, **params) -> list:
    """The JSON API through the hub's proxy, with its bearer token."""
    answer = httpx.get(
        f"{base}{PREFIX}{path}",
        params={**DAYS, **params},
        headers={"Authorization": f"Bearer {API_TOKEN}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return json.loads(answer.text, parse_float=Decimal)


def test_a_logged_out_visit_goes_to_the_hubs_login(hub, browser):
    for path in ("/ui/", "/ui/users/alice", "/ui/static/style.css"):
        browser.get(page(hub, path))
        address = urllib.parse.urlsplit(browser.current_url)
        assert address.path == "/hub/login", path
        # Once signed in there, the hub goes on with the OAuth sign-in of the service.
        [next_url] = urllib.parse.parse_qs(address.query)["next"]
        assert next_url.startswith("/hub/api/oauth2/authorize?client_id=service-hubcost")
        assert browser.find_element(By.ID, "username_input").is_displayed()


def test_alice_sees_her_page_and_is_refused_another_users(hub, browser):
    mine = user_page(hub, "alice")
    sign_in(browser, hub, "alice", mine)
    assert browser.current_url == mine
    assert heading(browser) == "User alice"
    assert not console_errors(browser)
    text = body(browser)
    # Her costs on prod only (75 of compute, 5 of home storage), not staging's 40.
    expected = sum(r["value"] for r in api(hub, "/costs-per-user", hub=HUB, user="alice"))
    assert expected == Decimal("80.00")
    assert "80.00" in text
    assert OTHER_HUB not in text

    for other in (
        user_page(hub, "bob"),
        page(hub, "/ui/hubs/prod"),
        page(hub, "/ui/groups/physics"),
        page(hub, "/ui/users/alice", hub=OTHER_HUB),
    ):
        browser.get(other)
        assert heading(browser) == "Not yours to see", other
        assert "bob" not in body(browser)
        assert _status(browser.get_cookie(SESSION_COOKIE)["value"], other) == 403

    # The overview sends her to her own page.
    browser.get(page(hub, "/ui/"))
    assert urllib.parse.urlsplit(browser.current_url).path == f"{PREFIX}/ui/users/alice"


def test_an_admin_sees_the_overview(hub, browser):
    overview = page(hub, "/ui/")
    sign_in(browser, hub, "admin", overview)
    assert heading(browser).startswith("Costs")
    assert not console_errors(browser)
    browser.get(user_page(hub, "bob"))
    assert heading(browser) == "User bob"
    browser.get(page(hub, "/ui/hubs/prod"))
    assert heading(browser).startswith("Hub prod")


def test_a_member_of_an_admin_group_sees_everything(hub, browser):
    sign_in(browser, hub, "carol", page(hub, "/ui/hubs/staging"))
    assert heading(browser).startswith("Hub staging")
    browser.get(page(hub, "/ui/"))
    assert heading(browser).startswith("Costs")


def service_signer() -> Signer:
    """The service's own session signer: its key comes from UI_SESSION_SECRET."""
    settings = Settings.from_env({"UI_SESSION_SECRET": SESSION_SECRET, "API_TOKEN": "x"})
    return Signer(signing_key(settings), purpose="session")


def _status(cookie_value: str | None, url: str) -> int:
    """The status the service answers `url` with, for a session cookie of that value."""
    cookies = {} if cookie_value is None else {SESSION_COOKIE: cookie_value}
    return httpx.get(url, cookies=cookies, follow_redirects=False, timeout=30).status_code


@pytest.mark.parametrize("kind", ["forged", "expired", "another key"])
def test_a_forged_or_expired_session_is_refused(hub, browser, kind):
    genuine = {"mode": "jupyterhub", "user": "admin", "all": True}
    value = {
        "forged": "eyJtb2RlIjogImp1cHl0ZXJodWIiLCAidXNlciI6ICJhZG1pbiJ9.bm90LWEtc2lnbmF0dXJl",
        "expired": service_signer().sign(genuine, max_age_s=3600, now=time.time() - 7200),
        "another key": Signer(b"guessed", purpose="session").sign(genuine, max_age_s=3600),
    }[kind]
    overview = page(hub, "/ui/")
    # The cookie as a browser would send it: to the service's pages, from the hub's origin.
    browser.add_cookie({"name": SESSION_COOKIE, "value": value, "path": f"{PREFIX}/ui/"})
    browser.get(overview)
    assert urllib.parse.urlsplit(browser.current_url).path == "/hub/login"
    assert _status(value, overview) == 302  # off to the hub's OAuth, no page

    # The same with the real key and a life left is let in: the key is what is checked.
    valid = service_signer().sign(genuine, max_age_s=3600)
    assert _status(valid, overview) == 200


def test_logout_signs_out_of_the_pages_and_the_hub(hub, browser):
    mine = user_page(hub, "alice")
    sign_in(browser, hub, "alice", mine)
    browser.get(f"{hub}{PREFIX}/ui/logout")
    assert browser.get_cookie(SESSION_COOKIE) is None
    browser.get(mine)
    assert urllib.parse.urlsplit(browser.current_url).path == "/hub/login"


def test_the_json_api_keeps_its_bearer_token(hub):
    answer = httpx.get(f"{hub}{PREFIX}/costs-per-user", params=DAYS, timeout=30)
    assert answer.status_code == 401
    assert sorted(api(hub, "/hub-names")) == sorted([HUB, OTHER_HUB])
