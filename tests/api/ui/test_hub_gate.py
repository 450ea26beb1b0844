"""The JupyterHub-service gate against the app itself: the start of the OAuth sign-in, the
callbacks it refuses before asking the hub anything, an unreachable hub, the prefix, and the
JSON API closed without API_TOKEN. The whole sign-in with a real hub and browser is
test_jupyterhub_service.py's.
"""

from __future__ import annotations

import subprocess
import sys
import time
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from api.ui.session import SESSION_COOKIE, Signer, signing_key
from tests.api.conftest import api_settings
from tests.conftest import ROOT
from tests.etl.prometheus_history import free_port

PREFIX = "/services/hubcost"
HOSTILE_USER = "a/b?c#d&e"


@pytest.fixture(scope="module")
def closed_port() -> int:
    """A port nothing listens on: the hub's API there is unreachable."""
    return free_port()


@pytest.fixture
def service_env(closed_port) -> dict[str, str]:
    return {
        "JUPYTERHUB_API_URL": f"http://127.0.0.1:{closed_port}/hub/api",
        "JUPYTERHUB_API_TOKEN": "service-token",
        "JUPYTERHUB_SERVICE_PREFIX": f"{PREFIX}/",
        "JUPYTERHUB_CLIENT_ID": "service-hubcost",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": f"{PREFIX}/oauth_callback",
        "UI_HUB": "prod",
    }


@pytest.fixture
def client(make_client, service_env):
    return make_client(**service_env)


def signers(service_env) -> tuple[Signer, Signer]:
    key = signing_key(api_settings(**service_env))
    return Signer(key, purpose="session"), Signer(key, purpose="oauth state")


def cookies_of(response) -> SimpleCookie:
    jar = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        jar.load(header)
    return jar


def test_a_page_without_a_session_starts_the_hubs_oauth(client, service_env):
    answer = client.get(f"{PREFIX}/ui/users/alice?from=2026-01-01", follow_redirects=False)
    assert answer.status_code == 302
    target = urlsplit(answer.headers["location"])
    assert target.path == "/hub/api/oauth2/authorize"
    query = {name: values for name, values in parse_qs(target.query).items()}
    assert query["client_id"] == ["service-hubcost"]
    assert query["redirect_uri"] == [f"{PREFIX}/oauth_callback"]
    assert query["response_type"] == ["code"]
    assert query["code_challenge_method"] == ["S256"]

    state = cookies_of(answer)["hubcost-oauth-state"]
    assert state["httponly"] is True and state["samesite"].lower() == "lax"
    assert state["path"] == f"{PREFIX}/oauth_callback" and state["max-age"] == "600"
    pending = signers(service_env)[1].verify(state.value)
    assert pending["state"] == query["state"][0]
    assert pending["next"] == f"{PREFIX}/ui/users/alice?from=2026-01-01"


@pytest.mark.parametrize("path", ["/ui/", "/ui/static/style.css", "/ui/hubs/prod"])
def test_every_page_and_asset_needs_the_session(client, path):
    answer = client.get(PREFIX + path, follow_redirects=False)
    assert answer.status_code == 302
    assert answer.headers["location"].startswith("/hub/api/oauth2/authorize?")


def callback(client, *, state_cookie: str | None, **params):
    client.cookies.clear()
    if state_cookie is not None:
        client.cookies.set("hubcost-oauth-state", state_cookie, path=f"{PREFIX}/oauth_callback")
    return client.get(f"{PREFIX}/oauth_callback", params=params, follow_redirects=False)


def test_callbacks_not_begun_here_are_refused_without_asking_the_hub(client, service_env):
    state_signer = signers(service_env)[1]
    pending = {"state": "s1", "verifier": "v", "next": f"{PREFIX}/ui/"}
    good = state_signer.sign(pending, max_age_s=600)
    refused = {
        "no state cookie": callback(client, state_cookie=None, code="c", state="s1"),
        "another state": callback(client, state_cookie=good, code="c", state="s2"),
        "no code": callback(client, state_cookie=good, state="s1"),
        "expired state": callback(
            client,
            state_cookie=state_signer.sign(pending, max_age_s=600, now=time.time() - 601),
            code="c",
            state="s1",
        ),
        "forged state": callback(
            client,
            state_cookie=Signer(b"guess", purpose="oauth state").sign(pending, max_age_s=600),
            code="c",
            state="s1",
        ),
        "a session for a state": callback(
            client,
            state_cookie=signers(service_env)[0].sign(pending, max_age_s=600),
            code="c",
            state="s1",
        ),
    }
    for name, answer in refused.items():
        # 403, not 502: the hub (unreachable here) was never asked.
        assert answer.status_code == 403, name
        assert "The sign-in expired or was not started here." in answer.text, name
        assert SESSION_COOKIE not in cookies_of(answer), name


def test_an_unreachable_hub_is_a_502_with_no_session(client, service_env):
    state = signers(service_env)[1].sign(
        {"state": "s1", "verifier": "v", "next": f"{PREFIX}/ui/"}, max_age_s=600
    )
    answer = callback(client, state_cookie=state, code="c", state="s1")
    assert answer.status_code == 502
    assert "JupyterHub could not be reached." in answer.text
    assert SESSION_COOKIE not in cookies_of(answer)


def session(service_env, user: str, sees_everything: bool = False) -> str:
    return signers(service_env)[0].sign(
        {"mode": "jupyterhub", "user": user, "all": sees_everything}, max_age_s=600
    )


def get_as(client, value: str, path: str):
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, value, path=f"{PREFIX}/ui/")
    return client.get(PREFIX + path, follow_redirects=False)


def test_a_hostile_name_reaches_its_own_page_only(client, service_env):
    mine = session(service_env, HOSTILE_USER)
    assert get_as(client, mine, f"/ui/users/{quote(HOSTILE_USER, safe='')}").status_code == 200
    for other in ("/ui/users/a", "/ui/users/a%2Fb", "/ui/hubs/prod", "/ui/groups/x"):
        answer = get_as(client, mine, other)
        assert answer.status_code == 403, other
        assert f'href="{PREFIX}/ui/users/a%2Fb%3Fc%23d%26e"' in answer.text
    overview = get_as(client, mine, "/ui/")
    assert overview.status_code == 303
    assert overview.headers["location"] == f"{PREFIX}/ui/users/a%2Fb%3Fc%23d%26e"


def test_a_viewer_who_sees_everything_is_let_through(client, service_env):
    value = session(service_env, "admin", sees_everything=True)
    for path in ("/ui/", "/ui/users/bob", "/ui/hubs/staging", "/ui/static/style.css"):
        assert get_as(client, value, path).status_code == 200, path


def test_without_api_token_the_json_api_is_closed(client):
    for path in ("/hub-names", f"{PREFIX}/hub-names", f"{PREFIX}/", "/metrics"):
        assert client.get(path).status_code == 401, path
    assert client.get(f"{PREFIX}/health/ready").status_code == 200
    assert client.get("/health/ready").status_code == 200


def test_with_api_token_the_json_api_answers_it(make_client, service_env):
    client = make_client(**service_env, API_TOKEN="api-token")
    bearer = {"Authorization": "Bearer api-token"}
    assert client.get(f"{PREFIX}/hub-names", headers=bearer).status_code == 200
    assert client.get("/hub-names", headers=bearer).status_code == 200
    assert client.get(f"{PREFIX}/hub-names").status_code == 401


def test_a_browser_at_the_services_root_is_sent_to_the_pages(client):
    answer = client.get(f"{PREFIX}/", headers={"Accept": "text/html"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == f"{PREFIX}/ui/"


def test_jupyterhub_is_imported_only_as_a_service():
    program = (
        "import sys\n"
        "from api.app import create_app\n"
        "from core.settings import Settings\n"
        "for env in ({}, {'API_TOKEN': 't'}):\n"
        "    create_app(Settings.from_env(env), database_url='postgresql://u@127.0.0.1/db')\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('jupyterhub', 'tornado')]\n"
    )
    subprocess.run([sys.executable, "-c", program], cwd=ROOT, check=True, timeout=120)
