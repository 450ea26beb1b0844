"""The settings of who may see the pages: the mode they choose and the errors naming each."""

from __future__ import annotations

import pytest

from core.settings import Settings, SettingsError

SERVICE = {
    "JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api",
    "JUPYTERHUB_API_TOKEN": "service-token",
    "JUPYTERHUB_SERVICE_PREFIX": "/services/hubcost/",
    "JUPYTERHUB_CLIENT_ID": "service-hubcost",
    "UI_HUB": "prod",
}


def test_open_by_default():
    settings = Settings.from_env({})
    assert settings.ui_access == "open"
    assert settings.jupyterhub is None
    assert (settings.ui_session_hours, settings.ui_admin_groups, settings.ui_hub) == (12, (), None)


def test_api_token_chooses_the_token_mode():
    assert Settings.from_env({"API_TOKEN": "t"}).ui_access == "token"


def test_jupyterhubs_variables_choose_the_service_mode_whatever_the_token():
    for extra in ({}, {"API_TOKEN": "t"}):
        settings = Settings.from_env({**SERVICE, **extra})
        assert settings.ui_access == "jupyterhub"
    hub = settings.jupyterhub
    assert hub.service_prefix == "/services/hubcost/"
    assert hub.oauth_callback_url == "/services/hubcost/oauth_callback"  # JupyterHub's default
    assert (hub.base_url, hub.host, hub.public_url) == ("/", "", None)
    assert "service-token" not in repr(settings)


def test_the_service_variables_are_read_as_jupyterhub_sets_them():
    settings = Settings.from_env(
        {
            **SERVICE,
            "JUPYTERHUB_SERVICE_PREFIX": "services/costs",
            "JUPYTERHUB_OAUTH_CALLBACK_URL": "/services/costs/ui/oauth_callback",
            "JUPYTERHUB_BASE_URL": "/jhub",
            "JUPYTERHUB_PUBLIC_URL": "https://hub.example.org/",
        }
    )
    hub = settings.jupyterhub
    assert hub.service_prefix == "/services/costs/"
    assert hub.oauth_callback_url == "/services/costs/ui/oauth_callback"
    assert hub.base_url == "/jhub/"
    assert hub.public_url == "https://hub.example.org/"


@pytest.mark.parametrize("missing", [k for k in SERVICE if k.startswith("JUPYTERHUB_")])
def test_a_partial_service_environment_names_what_is_missing(missing):
    env = {k: v for k, v in SERVICE.items() if k != missing}
    with pytest.raises(SettingsError, match=rf"^{missing} is not set"):
        Settings.from_env(env)


def test_the_service_mode_needs_ui_hub():
    env = {k: v for k, v in SERVICE.items() if k != "UI_HUB"}
    with pytest.raises(SettingsError, match=r"^UI_HUB is not set"):
        Settings.from_env(env)


def test_a_bad_hub_api_url_is_named():
    with pytest.raises(SettingsError, match=r"^JUPYTERHUB_API_URL must be an http\(s\) URL"):
        Settings.from_env({**SERVICE, "JUPYTERHUB_API_URL": "127.0.0.1:8081/hub/api"})


def test_admin_groups_are_a_comma_list():
    settings = Settings.from_env({"UI_ADMIN_GROUPS": " finance, auditors,,finance "})
    assert settings.ui_admin_groups == ("finance", "auditors")


@pytest.mark.parametrize("value", ["0", "721", "twelve"])
def test_session_hours_out_of_range_are_named(value):
    with pytest.raises(SettingsError, match=r"^UI_SESSION_HOURS must be"):
        Settings.from_env({"UI_SESSION_HOURS": value})


def test_the_session_secret_is_secret():
    settings = Settings.from_env({"UI_SESSION_SECRET": "do-not-show", "API_TOKEN": "t"})
    assert settings.ui_session_secret.reveal() == "do-not-show"
    assert "do-not-show" not in repr(settings)
