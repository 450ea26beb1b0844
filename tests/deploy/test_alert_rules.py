"""deploy/prometheus: the alert rules pass `promtool check rules` and their unit tests
(`promtool test rules`), and they and their tests' series read only what /metrics exports,
with the labels it gives them, so the rules cannot drift from api/metrics.py. The folder's
kustomization renders them as a ConfigMap."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from api import budget_metrics
from api.metrics import ApiMetrics
from tests.conftest import ROOT
from tests.deploy import manifests

FOLDER = ROOT / "deploy" / "prometheus"
RULES = FOLDER / "hubcost-alerts.yml"
RULE_TESTS = FOLDER / "hubcost-alerts.test.yml"
SERIES_NAME = re.compile(r"\bhubcost_[a-z0-9_]+")
SERIES = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?$")
LABEL = re.compile(r'(?P<name>\w+)="(?:[^"\\]|\\.)*"')
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}


def promtool() -> str:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.skip("promtool is not installed (Debian's prometheus package has it)")
    return binary


def run(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [promtool(), *arguments], cwd=FOLDER, capture_output=True, text=True, timeout=120
    )


def rules() -> list[dict]:
    document = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def input_series() -> list[str]:
    document = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))
    return [s["series"] for test in document["tests"] for s in test["input_series"]]


def exported() -> set[str]:
    """Every series name /metrics can export: its families (as `# TYPE` lines name them,
    with or without samples) and the sample names of counters and histograms."""
    names = set()
    for line in ApiMetrics().render().decode().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.add(name)
            names |= {name.removesuffix("_total") + s for s in SUFFIXES.get(kind, ())}
    return names


@pytest.mark.prometheus
def test_the_rules_pass_promtool_check():
    done = run("check", "rules", RULES.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules())} rules found" in done.stdout


@pytest.mark.prometheus
def test_the_rules_pass_their_unit_tests():
    done = run("test", "rules", RULE_TESTS.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_rule_is_unit_tested():
    tested = {
        case["alertname"]
        for test in yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]
        for case in test["alert_rule_test"]
        if case.get("exp_alerts")
    }
    assert tested == {rule["alert"] for rule in rules()}, "a rule never seen firing"


def test_the_rules_and_their_tests_read_only_series_the_api_exports():
    used = {name for rule in rules() for name in SERIES_NAME.findall(rule["expr"])}
    assert used
    assert used - exported() == set(), "series the rules read that /metrics does not export"
    fed = {SERIES.match(series)["name"] for series in input_series()}
    assert fed - exported() == set(), "series the unit tests feed that /metrics lacks"
    assert used <= fed, "series the rules read that no unit test feeds"


def test_the_tests_series_carry_the_labels_metrics_gives_them():
    labels_of = {name: budget_metrics.BUDGET_LABELS for name in budget_metrics.BUDGET_GAUGES}
    labels_of[budget_metrics.OPEN_ANOMALIES] = budget_metrics.ANOMALY_LABELS
    for family in (budget_metrics.PENDING, budget_metrics.DELIVERED, budget_metrics.FAILURES):
        labels_of[family] = labels_of[f"{family}_total"] = budget_metrics.RECEIVER_LABELS
    for series in input_series():
        match = SERIES.match(series)
        assert match, series
        given = {m["name"] for m in LABEL.finditer(match["labels"] or "")}
        assert given <= set(labels_of[match["name"]]), f"{series}: labels /metrics never gives"


def test_the_kustomization_ships_the_rules_file_as_a_configmap():
    (config_map,) = manifests.render(FOLDER)
    assert config_map["kind"] == "ConfigMap"
    assert config_map["metadata"]["name"] == "hubcost-alerts", "mounted by a fixed name"
    assert config_map["data"] == {RULES.name: RULES.read_text(encoding="utf-8")}
