"""Token mode (API_TOKEN set): the pages and their assets only with the session the login form
starts; the cookie's flags; a wrong token told "invalid token" and nothing more; logout; forged
and expired sessions refused. Against the app itself (TestClient), on a migrated database.
"""

from __future__ import annotations

import re
import time
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

import pytest

from api.ui.session import SESSION_COOKIE, Signer, signing_key
from tests.api.conftest import api_settings

TOKEN = "correct horse battery staple"
# One of each: the pages, and an asset of theirs.
GUARDED = (
    "/ui/",
    "/ui",
    "/ui/hubs/prod",
    "/ui/groups/finance",
    "/ui/users/alice?from=2026-01-01&to=2026-01-09",
    "/ui/static/style.css",
    "/ui/static/no-such-file",
    "/ui/anything-else",
)


@pytest.fixture
def client(make_client):
    return make_client(API_TOKEN=TOKEN)


def log_in(client, token=TOKEN, next_url="/ui/"):
    return client.post("/ui/login", data={"token": token, "next": next_url}, follow_redirects=False)


def session_cookie(response) -> SimpleCookie:
    cookie = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        cookie.load(header)
    return cookie


@pytest.mark.parametrize("path", GUARDED)
def test_no_page_or_asset_without_the_session(client, path):
    answer = client.get(path, follow_redirects=False)
    assert answer.status_code == 303
    target = urlsplit(answer.headers["location"])
    assert target.path == "/ui/login"
    assert parse_qs(target.query)["next"] == [path]
    assert answer.content == b""
    # The bearer token of the JSON API does not open the pages either.
    answer = client.get(path, headers={"Authorization": f"Bearer {TOKEN}"}, follow_redirects=False)
    assert answer.status_code == 303


def test_the_login_form_then_the_pages(client):
    form = client.get("/ui/login?next=/ui/users/alice")
    assert form.status_code == 200
    assert "type=password" in form.text and 'value="/ui/users/alice"' in form.text
    assert "set-cookie" not in form.headers

    answer = log_in(client, next_url="/ui/users/alice")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/users/alice"

    overview = client.get("/ui/")
    assert overview.status_code == 200
    assert overview.headers["content-type"].startswith("text/html")
    assert "<h1>Costs" in overview.text
    assert client.get("/ui/users/alice").status_code == 200
    style = client.get("/ui/static/style.css")
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")


def test_the_session_cookie_is_httponly_strict_and_expires(client):
    [header] = log_in(client).headers.get_list("set-cookie")
    attributes = {part.strip().split("=")[0].lower(): part for part in header.split(";")[1:]}
    assert header.startswith(f"{SESSION_COOKIE}=")
    assert "httponly" in attributes
    assert attributes["samesite"].strip().lower() == "samesite=strict"
    assert attributes["path"].strip() == "Path=/ui/"
    assert attributes["max-age"].strip() == "Max-Age=43200"  # UI_SESSION_HOURS' 12 by default
    assert "secure" not in attributes  # served over http here


def test_the_cookie_is_secure_over_https(make_client):
    client = make_client(API_TOKEN=TOKEN)
    client.base_url = client.base_url.copy_with(scheme="https")
    cookie = session_cookie(log_in(client))
    assert cookie[SESSION_COOKIE]["secure"] is True
    assert cookie[SESSION_COOKIE]["samesite"].lower() == "strict"


@pytest.mark.parametrize(
    "token",
    ["wrong", "", TOKEN[:-1], TOKEN + " ", TOKEN.upper(), "x" * 5000],
    ids=["wrong", "empty", "prefix", "longer", "case", "huge"],
)
def test_a_wrong_token_is_told_invalid_token_only(client, token):
    answer = log_in(client, token=token)
    assert answer.status_code == 401
    assert "set-cookie" not in answer.headers
    messages = re.findall(r"<p class=error[^>]*>(.*?)</p>", answer.text)
    assert messages == ["invalid token"]
    # Nothing of the token, nor of why: the page is the form again, with that one line.
    assert (
        answer.text.replace(" class=error role=alert id=error", "").replace(
            "<p>invalid token</p>", ""
        )
        == client.get("/ui/login?next=/ui/").text
    )
    assert client.get("/ui/", follow_redirects=False).status_code == 303


def test_a_form_without_a_token_is_refused(client):
    answer = client.post("/ui/login", data={"next": "/ui/"}, follow_redirects=False)
    assert answer.status_code == 401
    assert re.findall(r"<p class=error[^>]*>(.*?)</p>", answer.text) == ["invalid token"]


def test_logout_ends_the_session(client):
    log_in(client)
    assert client.get("/ui/").status_code == 200
    answer = client.get("/ui/logout", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/login"
    cleared = session_cookie(answer)[SESSION_COOKIE]
    assert cleared.value == "" and cleared["max-age"] == "0" and cleared["path"] == "/ui/"
    assert SESSION_COOKIE not in client.cookies
    assert client.get("/ui/", follow_redirects=False).status_code == 303


def refused(client, value: str) -> bool:
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, value, path="/ui/")
    answer = client.get("/ui/", follow_redirects=False)
    return answer.status_code == 303 and answer.headers["location"].startswith("/ui/login")


def test_forged_and_expired_sessions_are_refused(client):
    settings = api_settings(API_TOKEN=TOKEN)
    genuine = Signer(signing_key(settings), purpose="session")
    assert not refused(client, genuine.sign({"mode": "token"}, max_age_s=60))

    payload, signature = genuine.sign({"mode": "token"}, max_age_s=60).split(".")
    other_key = Signer(b"not the key", purpose="session")
    other_token = Signer(signing_key(api_settings(API_TOKEN="another")), purpose="session")
    forged = {
        "random": "hello",
        "unsigned": payload,
        "empty signature": payload + ".",
        "another key": other_key.sign({"mode": "token"}, max_age_s=60),
        "another token's key": other_token.sign({"mode": "token"}, max_age_s=60),
        "another purpose": Signer(signing_key(settings), purpose="oauth state").sign(
            {"mode": "token"}, max_age_s=60
        ),
        "longer life": genuine.sign({"mode": "token"}, max_age_s=10**6).split(".")[0]
        + "."
        + signature,
        "another mode": genuine.sign(
            {"mode": "jupyterhub", "user": "x", "all": True}, max_age_s=60
        ),
        "expired": genuine.sign(
            {"mode": "token"}, max_age_s=12 * 3600, now=time.time() - 13 * 3600
        ),
    }
    for name, value in forged.items():
        assert refused(client, value), name


def test_a_changed_token_ends_every_session(make_client):
    first = make_client(API_TOKEN=TOKEN)
    log_in(first)
    value = first.cookies[SESSION_COOKIE]
    assert refused(make_client(API_TOKEN=TOKEN), value) is False
    assert refused(make_client(API_TOKEN="rotated"), value)


def test_ui_session_secret_signs_sessions_across_tokens(make_client):
    first = make_client(API_TOKEN=TOKEN, UI_SESSION_SECRET="s" * 32)
    log_in(first)
    value = first.cookies[SESSION_COOKIE]
    assert not refused(make_client(API_TOKEN="rotated", UI_SESSION_SECRET="s" * 32), value)
    assert refused(make_client(API_TOKEN=TOKEN, UI_SESSION_SECRET="t" * 32), value)


def test_ui_session_hours_sets_the_life(make_client):
    client = make_client(API_TOKEN=TOKEN, UI_SESSION_HOURS="1")
    assert session_cookie(log_in(client))[SESSION_COOKIE]["max-age"] == "3600"


@pytest.mark.parametrize(
    "next_url",
    ["https://elsewhere.example/", "//elsewhere.example/ui/", "/costs-per-user", "/ui\\x", ""],
)
def test_after_login_only_our_pages(client, next_url):
    answer = log_in(client, next_url=next_url)
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/"


def test_the_json_api_keeps_its_bearer_token(client):
    log_in(client)
    assert client.get("/hub-names").status_code == 401  # the session is not a bearer token
    answer = client.get("/hub-names", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    assert client.get("/health/ready").status_code == 200


def test_a_browser_asking_the_root_is_sent_to_the_pages(client):
    answer = client.get("/", headers={"Accept": "text/html"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/"
    assert client.get("/", headers={"Accept": "application/json"}).status_code == 401


def test_a_cross_site_arrival_reloads_itself_to_carry_the_strict_cookie(client):
    # The browser sends no SameSite=Strict cookie on a navigation from another site.
    answer = client.get(
        "/ui/hubs/prod?from=2026-01-01",
        headers={"Sec-Fetch-Site": "cross-site"},
        follow_redirects=False,
    )
    assert answer.status_code == 200
    assert (
        '<meta http-equiv="refresh" content="0;url=/ui/hubs/prod?from=2026-01-01">' in answer.text
    )
    assert "set-cookie" not in answer.headers
