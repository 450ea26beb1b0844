"""core.settings: defaults, parsing, fail-fast messages naming the variable, hidden secrets."""

import pytest

from core.settings import Settings, SettingsError
from hubcost.cli import main


def test_defaults_are_the_documented_ones():
    s = Settings.from_env({})
    assert s.database_url is None
    assert s.demo is True
    assert (s.cost_metric, s.cost_record_types) == ("UnblendedCost", ("Usage",))
    assert (s.hub_tag_key, s.node_purpose_tag_key, s.volume_purpose_tag_key) == (
        "2i2c:hub-name",
        "2i2c:node-purpose",
        "2i2c:volume-purpose",
    )
    assert (s.lookback_days, s.initial_days, s.etl_cron) == (3, 30, "0 */6 * * *")
    assert (s.max_range_days, s.db_pool_size, s.statement_timeout_ms) == (1100, 5, 10000)
    assert (s.api_db_role, s.log_level, s.log_format) == ("hubcost_reader", "INFO", "text")
    assert (s.prometheus_verify_tls, s.prometheus_timeout_s) == (True, 30.0)


def test_a_real_source_turns_the_demo_off():
    assert Settings.from_env({"CLUSTER_NAME": "c"}).demo is False
    assert Settings.from_env({"PROMETHEUS_URL": "http://p:9090"}).demo is False
    with pytest.raises(SettingsError, match="DEMO"):
        Settings.from_env({"DEMO": "1", "CLUSTER_NAME": "c"})


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"LOOKBACK_DAYS": "-1"}, "LOOKBACK_DAYS"),
        ({"LOOKBACK_DAYS": "three"}, "LOOKBACK_DAYS"),
        ({"INITIAL_DAYS": "0"}, "INITIAL_DAYS"),
        ({"ETL_CRON": "every day"}, "ETL_CRON"),
        ({"ETL_CRON": "0 25 * * *"}, "ETL_CRON"),
        ({"AWS_ACCESS_KEY_ID": "AKIA..."}, "CLUSTER_NAME"),
        ({"AWS_PROFILE": "prod"}, "CLUSTER_NAME"),
        ({"DATABASE_URL": "mysql://x@y/z"}, "DATABASE_URL"),
        ({"PROMETHEUS_URL": "prometheus:9090"}, "PROMETHEUS_URL"),
        ({"PROMETHEUS_VERIFY_TLS": "maybe"}, "PROMETHEUS_VERIFY_TLS"),
        ({"PROMETHEUS_TIMEOUT_S": "nan"}, "PROMETHEUS_TIMEOUT_S"),
        ({"COST_METRIC": "Cheapest"}, "COST_METRIC"),
        ({"COST_RECORD_TYPES": "Usage,Bogus"}, "COST_RECORD_TYPES"),
        ({"DB_POOL_SIZE": "0"}, "DB_POOL_SIZE"),
        ({"API_DB_ROLE": "x; DROP TABLE cost"}, "API_DB_ROLE"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"PROMETHEUS_USERNAME": "u"}, "PROMETHEUS_PASSWORD"),
    ],
)
def test_a_bad_setting_is_refused_naming_it(environ, named):
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(environ)


def test_the_command_refuses_to_start_and_names_the_setting(monkeypatch, capsys):
    monkeypatch.setenv("ETL_CRON", "not a cron")
    assert main(["migrate"]) == 2
    err = capsys.readouterr().err
    assert "ETL_CRON" in err and err.count("\n") == 1


def test_secrets_never_show_in_repr():
    s = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://app:db-s3cret@db:5432/hubcost",
            "PROMETHEUS_URL": "https://prom",
            "PROMETHEUS_USERNAME": "u",
            "PROMETHEUS_PASSWORD": "prom-s3cret",
            "API_TOKEN": "api-s3cret",
        }
    )
    text = repr(s) + str(s)
    for secret in ("db-s3cret", "prom-s3cret", "api-s3cret"):
        assert secret not in text
    assert s.database_url.reveal().startswith("postgresql+psycopg://app:db-s3cret@db")


# --- HUBCOST_CLUSTERS ------------------------------------------------------------------------

CLUSTERS_TOML = """\
[[cluster]]
name = "openscapes"
prometheus_url = "https://prometheus.openscapes.example"
prometheus_token_env = "OPENSCAPES_TOKEN"
aws_account_id = "123456789012"
[[cluster]]
name = "leap"
cost_explorer = false
prometheus_url = "http://prometheus.leap.example"
"""


@pytest.fixture
def clusters_file(tmp_path):
    path = tmp_path / "clusters.toml"
    path.write_text(CLUSTERS_TOML)
    return path


def test_the_environment_configures_one_cluster_as_before():
    from core.clusters import ClusterConfig

    s = Settings.from_env({"CLUSTER_NAME": "c1", "PROMETHEUS_URL": "http://p/"})
    assert s.clusters_file is None
    assert s.clusters == (ClusterConfig(name="c1", cost_explorer=True, prometheus_url="http://p"),)
    assert (s.cluster_name, s.prometheus_url) == ("c1", "http://p")
    assert [c.name for c in Settings.from_env({"PROMETHEUS_URL": "http://p"}).clusters] == [
        "default"
    ]
    demo = Settings.from_env({})
    assert demo.demo and [(c.name, c.costs_enabled) for c in demo.clusters] == [
        ("demo-cluster", False)
    ]


def test_a_clusters_file_configures_several(clusters_file):
    s = Settings.from_env(
        {
            "HUBCOST_CLUSTERS": str(clusters_file),
            "OPENSCAPES_TOKEN": "tok-s3cret",
            # IRSA in the pod is the ambient credentials, not a missing CLUSTER_NAME.
            "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/irsa",
            "AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token",
            "DEMO": "0",
            "LOOKBACK_DAYS": "5",
        }
    )
    assert s.clusters_file == clusters_file
    assert [(c.name, c.costs_enabled, c.usage_enabled) for c in s.clusters] == [
        ("openscapes", True, True),
        ("leap", False, True),
    ]
    assert [c.lookback_days for c in s.clusters] == [5, 5]
    # The single-cluster fields are off: only the clusters load.
    assert (s.demo, s.cluster_name, s.prometheus_url, s.costs_enabled, s.usage_enabled) == (
        False,
        None,
        None,
        False,
        False,
    )
    assert s.lookback_days == 5
    assert "tok-s3cret" not in repr(s)


@pytest.mark.parametrize(
    ("beside", "named"),
    [
        ({"CLUSTER_NAME": "leap"}, "CLUSTER_NAME ('leap')"),
        ({"PROMETHEUS_URL": "https://u:url-s3cret@p"}, "PROMETHEUS_URL"),
        ({"DEMO": "1"}, "DEMO=1"),
    ],
)
def test_a_clusters_file_is_never_combined_with_a_single_cluster(clusters_file, beside, named):
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"HUBCOST_CLUSTERS": str(clusters_file), **beside})
    message = str(info.value)
    assert message.startswith(f"HUBCOST_CLUSTERS ({clusters_file}) and {named} are both set")
    assert "url-s3cret" not in message


def test_a_bad_clusters_file_stops_the_command_in_one_line(monkeypatch, capsys, tmp_path):
    path = tmp_path / "clusters.toml"
    path.write_text('[[cluster]]\nname = "leap"\nprometheus_password = "hunter2"\n')
    monkeypatch.setenv("HUBCOST_CLUSTERS", str(path))
    monkeypatch.delenv("CLUSTER_NAME", raising=False)
    monkeypatch.delenv("PROMETHEUS_URL", raising=False)
    monkeypatch.delenv("DEMO", raising=False)
    assert main(["etl"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "hunter2" not in err
    assert err.startswith(
        f'hubcost: configuration error: {path}: cluster "leap": prometheus_password'
    )
