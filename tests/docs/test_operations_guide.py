"""docs/operations.md against the code: its alert rules pass promtool, the series it names are
the API's, its commands parse, its settings exist, and its manifests are valid."""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
import shutil
import subprocess

import pytest
import yaml
from starlette.testclient import TestClient

from api.app import create_app
from core.settings import Settings
from hubcost.cli import build_parser
from tests.conftest import READER_ROLE, ROOT
from tests.dashboards.sample_data import load_sample

GUIDE = ROOT / "docs" / "operations.md"
FENCE = re.compile(r"^```(?P<lang>\w*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
SERIES = re.compile(r"\bhubcost_(?:api|etl|budget|cost_anomalies|notifications?)_[a-z0-9_]+")
SETTING = re.compile(r"`([A-Z][A-Z0-9_]{2,})`")
# Variables that are not hubcost's settings: boto3's, Grafana's and the provisioning file's.
FOREIGN_PREFIXES = ("AWS_", "GF_", "HUBCOST_")


def guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


def blocks(lang: str) -> list[str]:
    return [m["body"] for m in FENCE.finditer(guide()) if m["lang"] == lang]


def alert_rules() -> str:
    (rules,) = [body for body in blocks("yaml") if body.startswith("groups:")]
    return rules


@pytest.mark.prometheus
def test_alert_rules_pass_promtool(tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed")
    rules = tmp_path / "hubcost.rules.yaml"
    rules.write_text(alert_rules())
    checked = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 8 rules found" in checked.stdout


def test_every_series_named_is_exported_by_the_api(conn, database_url):
    load_sample(conn, now=dt.datetime.now(dt.UTC))
    settings = Settings.from_env({"API_DB_ROLE": READER_ROLE})
    with TestClient(create_app(settings, database_url=database_url)) as client:
        assert client.get("/").status_code == 200  # so the request counter has a sample
        exposition = client.get("/metrics").text
    exported = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            exported.add(line.split()[2])
        elif line and not line.startswith("#"):
            exported.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    named = set(SERIES.findall(guide()))
    assert named, "the guide names no series"
    assert named - exported == set(), "series in docs/operations.md that /metrics lacks"
    families = {name for name in exported if name.startswith("hubcost_")}
    documented = {n.removesuffix("_total") for n in named}
    missing = {f for f in families if f.removesuffix("_total") not in documented}
    missing = {f for f in missing if not f.endswith(("_bucket", "_sum", "_count", "_created"))}
    assert missing == set(), "series /metrics exports that the guide does not explain"


def test_every_command_shown_parses():
    parser = build_parser()
    lines = [
        line.strip()
        for body in blocks("sh")
        for line in body.splitlines()
        if line.strip().startswith("hubcost ")
    ]
    assert any(line.startswith("hubcost backfill") for line in lines)
    for line in lines:
        parser.parse_args(shlex.split(line)[1:])  # exits 2 on a bad command or option
    subcommands = set(re.findall(r"`hubcost ([a-z]+)", guide()))
    assert subcommands <= {"migrate", "serve", "run", "etl", "backfill"}


def test_every_setting_named_is_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    named = {n for n in SETTING.findall(guide()) if not n.startswith(FOREIGN_PREFIXES)}
    assert "DATABASE_URL" in named
    missing = {n for n in named if f"`{n}`" not in readme}
    assert missing == set(), "settings the guide names that the README's table lacks"


def test_manifests_and_policies_are_valid():
    for body in blocks("yaml"):
        assert list(yaml.safe_load_all(body))
    (policy,) = blocks("json")
    statement = json.loads(policy)["Statement"]
    assert [s["Action"] for s in statement] == [["ce:GetCostAndUsage"]]
    (cronjob,) = [
        doc for body in blocks("yaml") for doc in yaml.safe_load_all(body) if "kind" in doc
    ]
    assert cronjob["kind"] == "CronJob"
    container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert "command" not in container  # the image's ENTRYPOINT is `hubcost`
    assert container["args"] == ["etl"]
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert cronjob["spec"]["schedule"] == Settings.from_env({}).etl_cron
