"""dashboards/provisioning: the YAML Grafana reads parses, loads every dashboard file, and
every dashboard reads only datasources it declares."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

import yaml

from core.settings import Settings
from tests.dashboards import grafana

PROVISIONING = grafana.DASHBOARDS / "provisioning"
ENV_REFERENCE = re.compile(r"^\$\{[A-Z_]+\}$")


def datasources() -> dict[str, dict]:
    document = yaml.safe_load((PROVISIONING / "datasources.yaml").read_text())
    assert document["apiVersion"] == 1
    entries = document["datasources"]
    uids = [entry["uid"] for entry in entries]
    assert len(uids) == len(set(uids)), "datasource uids must be unique"
    return {entry["uid"]: entry for entry in entries}


def providers() -> list[dict]:
    document = yaml.safe_load((PROVISIONING / "dashboards.yaml").read_text())
    assert document["apiVersion"] == 1
    return document["providers"]


def provided_files():
    """The repository's dashboard files each provider loads (the path's last folder name)."""
    for provider in providers():
        assert provider["type"] == "file"
        folder = grafana.DASHBOARDS / PurePosixPath(provider["options"]["path"]).name
        assert folder.is_dir(), f"provider {provider['name']}: no folder {folder}"
        files = sorted(folder.glob("*.json"))
        assert files, f"provider {provider['name']}: {folder} has no dashboards"
        yield from files


def test_both_datasources_are_declared_without_secrets_in_the_file():
    declared = datasources()
    postgres = declared["hubcost-postgres"]
    assert postgres["type"] == "grafana-postgresql-datasource"
    assert postgres["user"] == Settings.from_env({}).api_db_role, "the read-only role"
    assert ENV_REFERENCE.match(postgres["secureJsonData"]["password"])
    api = declared["hubcost-api"]
    assert api["type"] == "yesoreyeram-infinity-datasource"
    assert ENV_REFERENCE.match(api["url"])
    assert ENV_REFERENCE.match(api["secureJsonData"]["bearerToken"])


def test_every_dashboard_file_is_provisioned_once():
    files = list(provided_files())
    assert len(files) == len(set(files))
    on_disk = sorted(grafana.DASHBOARDS.glob("*/*.json"))
    assert sorted(files) == on_disk
    uids = [grafana.load(path)["uid"] for path in files]
    assert len(uids) == len(set(uids)), "dashboard uids must be unique"


def _datasource_references(dashboard: dict):
    for name, variable in grafana.variables(dashboard).items():
        if "datasource" in variable:
            yield f"${name}", variable["datasource"]
    for panel in grafana.panels(dashboard):
        if "datasource" in panel:
            yield panel["title"], panel["datasource"]
        for target in panel.get("targets", []):
            yield panel["title"], target["datasource"]


def test_every_dashboard_uses_a_declared_datasource():
    declared = datasources()
    for path in provided_files():
        dashboard = grafana.load(path)
        variables = grafana.variables(dashboard)
        # Datasource variables: their default is a declared datasource of their plugin type.
        chosen = {}
        for name, variable in variables.items():
            if variable["type"] == "datasource":
                uid = variable["current"]["value"]
                assert uid in declared, f"{path.name}: ${name} defaults to undeclared {uid}"
                assert declared[uid]["type"] == variable["query"], f"{path.name}: ${name}"
                chosen[f"${{{name}}}"] = uid
        references = list(_datasource_references(dashboard))
        assert references, f"{path.name} reads no datasource"
        for where, reference in references:
            uid = chosen.get(reference["uid"], reference["uid"])
            assert uid in declared, f"{path.name} / {where}: undeclared datasource {uid}"
            assert declared[uid]["type"] == reference["type"], f"{path.name} / {where}"
