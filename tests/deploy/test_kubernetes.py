"""deploy/kubernetes against the code: it renders, every object is valid Kubernetes 1.30, every
variable it sets is a setting that parses, every command parses, the probes are real routes, and
the operator guide's overlay, Secrets and CronJob agree with it.

Nothing here applies anything to a cluster; docs/operations.md says what that leaves untested.
"""

from __future__ import annotations

import re
import tomllib

import kubernetes_validate
import pytest
import yaml

from api.app import create_app
from api.auth import OPEN_PATHS
from core.settings import Settings, SettingsError
from hubcost.cli import build_parser
from tests.conftest import ROOT
from tests.deploy import manifests as m

# What EKS's pod identity webhook adds to the pods of a ServiceAccount with the IRSA annotation.
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"
IRSA_ENV = {
    "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/hubcost-etl",
    "AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
    "AWS_STS_REGIONAL_ENDPOINTS": "regional",
}
ROLE_ARN = re.compile(r"arn:aws:iam::\d{12}:role/[\w+=,.@/-]+")
PLACEHOLDER_ARN = "arn:aws:iam::000000000000:role/REPLACE-WITH-HUBCOST-ETL-ROLE"
# Placeholder values for each key the Secrets hold.
SECRET_VALUES = {
    "hubcost-db-owner": {"DATABASE_URL": "postgresql://hubcost:owner-pw@db.example:5432/hubcost"},
    "hubcost-db-reader": {
        "DATABASE_URL": "postgresql://hubcost_reader:reader-pw@db.example:5432/hubcost"
    },
    "hubcost-api-token": {"API_TOKEN": "t" * 64},
    "hubcost-prometheus": {"PROMETHEUS_TOKEN": "p" * 40},
}
SECRET_SETTINGS = {"DATABASE_URL", "API_TOKEN", "PROMETHEUS_PASSWORD", "PROMETHEUS_TOKEN"}
COMMAND_OF = {"hubcost-api": "serve", "hubcost-etl": "etl", "hubcost-migrate": "migrate"}
ROLE_OF = {"hubcost-api": "reader", "hubcost-etl": "owner", "hubcost-migrate": "owner"}


@pytest.fixture(scope="module")
def base() -> list[dict]:
    return m.render(m.BASE)


@pytest.fixture(scope="module")
def overlay(tmp_path_factory) -> list[dict]:
    """The guide's overlay, with its NetworkPolicy patches, rendered against this base."""
    overlay = m.guide_overlay()
    overlay["patches"] = overlay.get("patches", []) + m.guide_network_patches()
    return m.render(m.write_overlay(tmp_path_factory.mktemp("overlay"), overlay))


@pytest.fixture(params=["base", "overlay"])
def rendered(request) -> list[dict]:
    return request.getfixturevalue(request.param)


def pyproject_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


# --- what is shipped ---------------------------------------------------------------------


def test_the_base_has_what_an_operator_needs(base):
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in base)
    assert [(k, n) for k, n in kinds if k != "ConfigMap"] == [
        ("CronJob", "hubcost-etl"),
        ("Deployment", "hubcost-api"),
        ("Job", "hubcost-migrate"),
        ("NetworkPolicy", "hubcost-api"),
        ("Service", "hubcost-api"),
        ("ServiceAccount", "hubcost"),
        ("ServiceAccount", "hubcost-etl"),
    ]
    assert m.one(base, "ConfigMap")["metadata"]["name"].startswith("hubcost-")
    # The base leaves the namespace to the overlay.
    assert all("namespace" not in o["metadata"] for o in base)
    assert all(o["metadata"]["labels"]["app.kubernetes.io/part-of"] == "hubcost" for o in base)


def test_kustomization_lists_every_manifest_of_the_directory():
    kustomization = yaml.safe_load((m.BASE / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in m.BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk
    assert "secretGenerator" not in kustomization
    assert "commonLabels" not in kustomization  # it would rewrite the immutable selectors


def test_every_object_is_valid_kubernetes_1_30(rendered):
    for obj in rendered:
        try:
            kubernetes_validate.validate(obj, m.KUBERNETES_SCHEMA, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = "/".join(str(p) for p in exc.path)
            pytest.fail(f"{obj['kind']} {obj['metadata']['name']}: {path}: {exc.message}")


def test_no_secret_value_is_shipped(rendered):
    assert [o for o in rendered if o["kind"] == "Secret"] == []
    config = m.one(rendered, "ConfigMap")["data"]
    assert SECRET_SETTINGS.isdisjoint(config), "a secret setting in the ConfigMap"
    for _, container in m.containers(rendered):
        for variable in container.get("env", []):
            if variable["name"] in SECRET_SETTINGS:
                assert "value" not in variable, f"{variable['name']} has a literal value"
                assert "secretKeyRef" in variable["valueFrom"], variable["name"]


def test_images_are_the_one_the_dockerfile_builds(base, overlay):
    version = pyproject_version()
    assert {c["image"] for _, c in m.containers(base)} == {f"hubcost:{version}"}
    image = m.guide_overlay()["images"][0]
    assert {c["image"] for _, c in m.containers(overlay)} == {
        f"{image['newName']}:{image['newTag']}"
    }


# --- settings ------------------------------------------------------------------------------


def test_every_variable_set_is_a_setting(rendered):
    documented = m.readme_settings()
    names = set(m.one(rendered, "ConfigMap")["data"])
    for _, container in m.containers(rendered):
        names |= {v["name"] for v in container.get("env", [])}
    # The optional Prometheus Secret arrives by envFrom: its keys (the guide's) count too.
    names |= m.guide_secrets()["hubcost-prometheus"]
    assert names - documented == set(), "variables the README's Settings table lacks"


def environment(objects: list[dict], workload: dict, container: dict) -> dict[str, str]:
    """The container's environment as the kubelet would build it, with placeholder Secrets
    (optional ones present) and what IRSA injects when its ServiceAccount has the role."""
    environ: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            config = m.one(objects, "ConfigMap", source["configMapRef"]["name"])
            environ.update(config["data"])
        else:
            environ.update(SECRET_VALUES[source["secretRef"]["name"]])
    for variable in container.get("env", []):
        if "value" in variable:
            environ[variable["name"]] = variable["value"]
        else:
            ref = variable["valueFrom"]["secretKeyRef"]
            environ[variable["name"]] = SECRET_VALUES[ref["name"]][ref["key"]]
    account = m.one(objects, "ServiceAccount", m.pod_spec(workload)["serviceAccountName"])
    if IRSA_ANNOTATION in account["metadata"].get("annotations", {}):
        environ.update(IRSA_ENV)
    return environ


def test_the_overlay_settings_parse_for_every_container(overlay):
    (generator,) = m.guide_overlay()["configMapGenerator"]
    overrides = dict(item.split("=", 1) for item in generator["literals"])
    for workload, container in m.containers(overlay):
        settings = Settings.from_env(environment(overlay, workload, container))
        assert settings.database_url is not None, workload["metadata"]["name"]
        assert settings.demo is False
        assert settings.log_format == "json"
        assert settings.costs_enabled and settings.usage_enabled
        assert settings.cluster_name == overrides["CLUSTER_NAME"]
        assert settings.lookback_days == int(overrides["LOOKBACK_DAYS"])


def test_the_base_settings_parse_and_an_unset_cluster_stops_the_etl_loudly(base):
    for workload, container in m.containers(base):
        environ = environment(base, workload, container)
        if workload["metadata"]["name"] == "hubcost-etl":
            # IRSA counts as AWS configured: an overlay that forgot CLUSTER_NAME must not load
            # an empty bill quietly.
            with pytest.raises(SettingsError, match="CLUSTER_NAME"):
                Settings.from_env(environ)
            environ["CLUSTER_NAME"] = "my-cluster"
        settings = Settings.from_env(environ)
        assert settings.demo is False  # never synthetic data in a cluster
        assert settings.api_db_role == "hubcost_reader"


def test_each_workload_uses_its_database_role(rendered):
    for workload, container in m.containers(rendered):
        name = workload["metadata"]["name"]
        refs = {
            v["valueFrom"]["secretKeyRef"]["name"]
            for v in container.get("env", [])
            if v["name"] == "DATABASE_URL"
        }
        assert refs == {f"hubcost-db-{ROLE_OF[name]}"}, name
        everything = yaml.safe_dump(container)
        if ROLE_OF[name] == "reader":
            assert "hubcost-db-owner" not in everything, "the owner's URL reaches the API"


def test_the_secrets_referred_to_are_the_ones_the_guide_creates(base):
    created = m.guide_secrets()
    documented = m.readme_settings()
    referred: dict[str, set[str]] = {}
    for _, container in m.containers(base):
        for variable in container.get("env", []):
            ref = variable.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                referred.setdefault(ref["name"], set()).add(ref["key"])
                required = ref["name"] in ("hubcost-db-owner", "hubcost-db-reader")
                assert ref.get("optional", False) is not required, ref
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                assert source["secretRef"].get("optional") is True
                referred.setdefault(source["secretRef"]["name"], set())
    assert set(referred) == set(created)
    for name, keys in referred.items():
        assert keys <= created[name], f"Secret {name}: keys the guide does not create"
    assert set().union(*created.values()) <= documented
    kustomization = (m.BASE / "kustomization.yaml").read_text()
    assert all(name in kustomization for name in created), "kustomization.yaml documents them"


# --- commands and probes -------------------------------------------------------------------


def argv(container: dict) -> list[str]:
    """The command line the container runs: the image's ENTRYPOINT (`hubcost`) unless the
    manifest replaces it; `env` in front is dropped."""
    entrypoint = m.dockerfile_stages()[-1].last("ENTRYPOINT").exec_form()
    line = list(container.get("command", entrypoint)) + list(container.get("args", []))
    if line[0] in ("env", "/usr/bin/env"):
        line = line[1:]
    return line


def test_every_container_command_parses(rendered):
    parser = build_parser()
    for workload, container in m.containers(rendered):
        line = argv(container)
        assert line[0] == "hubcost", line
        assert "command" not in container, "the base relies on the image's ENTRYPOINT"
        args = parser.parse_args(line[1:])  # exits 2 on a bad subcommand or option
        assert args.command == COMMAND_OF[workload["metadata"]["name"]]
        if args.command == "serve":
            (port,) = container["ports"]
            assert args.host == "0.0.0.0" and args.port == port["containerPort"]


def app_paths() -> set[str]:
    app = create_app(
        Settings.from_env({"DEMO": "0"}), database_url="postgresql+psycopg://x@127.0.0.1:1/x"
    )
    return {route.path for route in app.routes}


def probe_port(container: dict, port) -> int:
    if isinstance(port, int):
        return port
    (found,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return found


def test_probes_are_real_routes_that_need_no_token(base):
    paths = app_paths()
    deployment = m.one(base, "Deployment", "hubcost-api")
    (container,) = m.pod_spec(deployment)["containers"]
    ready = container["readinessProbe"]["httpGet"]
    assert ready["path"] == "/health/ready" and ready["path"] in paths
    assert ready["path"] in OPEN_PATHS, "the probe would get a 401 once API_TOKEN is set"
    assert probe_port(container, ready["port"]) == 8080
    live = container["livenessProbe"]
    if "httpGet" in live:
        assert live["httpGet"]["path"] in paths & OPEN_PATHS
        assert live["httpGet"]["path"] != "/health/ready", "liveness must not need the database"
    else:
        assert probe_port(container, live["tcpSocket"]["port"]) == 8080
    service = m.one(base, "Service", "hubcost-api")
    (port,) = service["spec"]["ports"]
    assert port["port"] == 80 and probe_port(container, port["targetPort"]) == 8080


# --- the API's Deployment, the CronJob, the Job ------------------------------------------------


def test_every_pod_runs_locked_down_as_the_image_user(rendered):
    uid = m.final_user_id()
    for workload, container in m.containers(rendered):
        name = workload["metadata"]["name"]
        pod = m.pod_spec(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == uid, name
        assert pod["automountServiceAccountToken"] is False, name
        security = container["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] == uid, name
        assert security["readOnlyRootFilesystem"] is True, name
        assert security["allowPrivilegeEscalation"] is False, name
        assert security["capabilities"]["drop"] == ["ALL"], name
        assert "add" not in security["capabilities"], name
        resources = container["resources"]
        for kind in ("requests", "limits"):
            assert set(resources[kind]) >= {"cpu", "memory"}, f"{name}: {kind}"
        mounts = {v["mountPath"]: v["name"] for v in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], name


def test_the_api_runs_two_replicas(rendered):
    deployment = m.one(rendered, "Deployment", "hubcost-api")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


def test_the_cronjob_runs_one_load_at_a_time_on_the_default_schedule(rendered):
    cronjob = m.one(rendered, "CronJob", "hubcost-etl")
    spec = cronjob["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["schedule"] == Settings.from_env({}).etl_cron
    assert spec["timeZone"] == "Etc/UTC"  # ETL_CRON's meaning
    assert spec["startingDeadlineSeconds"] > 0
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] >= 0 and job["activeDeadlineSeconds"] > 0
    assert m.pod_spec(cronjob)["restartPolicy"] == "Never"
    migrate = m.one(rendered, "Job", "hubcost-migrate")
    assert migrate["spec"]["backoffLimit"] >= 0
    assert migrate["spec"]["activeDeadlineSeconds"] > 0
    assert m.pod_spec(migrate)["restartPolicy"] == "Never"


def test_only_the_etl_gets_the_aws_role(base, overlay):
    for objects, arn in ((base, PLACEHOLDER_ARN), (overlay, None)):
        accounts = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ServiceAccount"}
        for workload in m.workloads(objects):
            name = m.pod_spec(workload)["serviceAccountName"]
            annotations = accounts[name]["metadata"].get("annotations", {})
            if workload["metadata"]["name"] == "hubcost-etl":
                assert ROLE_ARN.fullmatch(annotations[IRSA_ANNOTATION])
                if arn is not None:
                    assert annotations[IRSA_ANNOTATION] == arn
                else:
                    assert annotations[IRSA_ANNOTATION] != PLACEHOLDER_ARN, "overlay replaces it"
            else:
                assert IRSA_ANNOTATION not in annotations, workload["metadata"]["name"]


# --- the NetworkPolicy -------------------------------------------------------------------------


def test_the_network_policy_admits_only_grafana_to_the_api(base):
    policy = m.one(base, "NetworkPolicy", "hubcost-api")
    deployment = m.one(base, "Deployment", "hubcost-api")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "grafana"}}}]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8080}]


def test_the_guide_patch_admits_grafana_of_another_namespace(overlay):
    policy = m.one(overlay, "NetworkPolicy", "hubcost-api")
    (rule,) = policy["spec"]["ingress"]
    for peer in rule["from"]:
        # Both selectors in one peer: the pod must match both, not either.
        assert set(peer) == {"namespaceSelector", "podSelector"}
    names = {peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for peer in rule["from"]}
    assert "grafana" in names


# --- the guide's overlay and CronJob -------------------------------------------------------------


def test_the_guide_overlay_sets_namespace_image_role_and_settings(overlay):
    namespace = m.guide_overlay()["namespace"]
    assert {o["metadata"].get("namespace") for o in overlay} == {namespace}
    config = m.one(overlay, "ConfigMap")["data"]
    base_config = dict(
        line.split("=", 1)
        for line in (m.BASE / "settings.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert set(config) >= set(base_config), "behavior: merge keeps the base's settings"
    assert config["CLUSTER_NAME"] and config["PROMETHEUS_URL"]


def test_the_guide_cronjob_runs_what_the_base_runs(base):
    shown = m.guide_cronjob()
    ours = m.one(base, "CronJob", "hubcost-etl")
    (shown_container,) = m.pod_spec(shown)["containers"]
    (our_container,) = m.pod_spec(ours)["containers"]
    assert argv(shown_container) == argv(our_container) == ["hubcost", "etl"]
    for key in ("schedule", "timeZone", "concurrencyPolicy", "startingDeadlineSeconds"):
        assert shown["spec"][key] == ours["spec"][key], key
    for key in ("backoffLimit", "activeDeadlineSeconds"):
        assert shown["spec"]["jobTemplate"]["spec"][key] == ours["spec"]["jobTemplate"]["spec"][key]
    assert m.pod_spec(shown)["serviceAccountName"] == m.pod_spec(ours)["serviceAccountName"]

    def database_secret(container):
        (ref,) = [v for v in container["env"] if v["name"] == "DATABASE_URL"]
        return ref["valueFrom"]["secretKeyRef"]

    assert database_secret(shown_container) == database_secret(our_container)
    kubernetes_validate.validate(shown, m.KUBERNETES_SCHEMA, strict=True)
