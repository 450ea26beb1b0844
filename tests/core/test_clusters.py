"""core.clusters: the clusters file and the single-cluster environment, one rule per key.

Every bad file stops with one SettingsError line naming the file, the cluster and the key;
secrets come only from `<key>_env` or `<key>_file` and never show in a repr or a message.
"""

from __future__ import annotations

import dataclasses
import re
import textwrap

import pytest

from core.clusters import (
    KEYS,
    ClusterConfig,
    cluster_from_env,
    clusters_from_file,
    inherited_environment,
)
from core.settings import Secret, Settings, SettingsError

ISSUE_EXAMPLE = """\
[defaults]                      # optional; any per-cluster key, for every cluster
lookback_days = 3
[[cluster]]
name = "openscapes"             # the CLUSTER_NAME of its Cost Explorer tag filters
prometheus_url = "https://prometheus.openscapes.example"
prometheus_password_env = "OPENSCAPES_PROMETHEUS_PASSWORD"   # secrets: *_env or *_file only
prometheus_username = "hubcost"
aws_account_id = "123456789012" # optional: its linked account (see below)
aws_role_arn = "arn:aws:iam::123456789012:role/hubcost-ce"   # optional: AssumeRole for CE
hub_tag_key = "2i2c:hub-name"   # optional overrides of the per-cluster settings
[[cluster]]
name = "leap"
cost_explorer = false           # this cluster's costs are not in an account we can read
prometheus_url = "http://prometheus.leap.example"
"""


@pytest.fixture
def here(tmp_path, monkeypatch):
    """The tests' files live in tmp_path, named relative to it as an operator would."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(here, text: str, name: str = "clusters.toml") -> str:
    (here / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return name


def one_cluster(here, body: str, environ=None) -> ClusterConfig:
    path = write(here, '[[cluster]]\nname = "c"\n' + textwrap.dedent(body))
    (cluster,) = clusters_from_file(path, environ or {})
    return cluster


def refused(here, text: str, environ=None) -> str:
    path = write(here, text)
    with pytest.raises(SettingsError) as info:
        clusters_from_file(path, environ or {})
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("clusters.toml: "), message
    return message


# --- good files ------------------------------------------------------------------------------


def test_the_issue_example(here):
    path = write(here, ISSUE_EXAMPLE)
    openscapes, leap = clusters_from_file(path, {"OPENSCAPES_PROMETHEUS_PASSWORD": "pw-s3cret"})
    assert openscapes == ClusterConfig(
        name="openscapes",
        cost_explorer=True,
        prometheus_url="https://prometheus.openscapes.example",
        prometheus_username="hubcost",
        prometheus_password=Secret("pw-s3cret"),
        aws_account_id="123456789012",
        aws_role_arn="arn:aws:iam::123456789012:role/hubcost-ce",
        hub_tag_key="2i2c:hub-name",
        lookback_days=3,
    )
    assert (openscapes.costs_enabled, openscapes.usage_enabled) == (True, True)
    assert openscapes.cost_account == "123456789012"
    assert leap == ClusterConfig(
        name="leap", cost_explorer=False, prometheus_url="http://prometheus.leap.example"
    )
    assert (leap.costs_enabled, leap.usage_enabled) == (False, True)
    assert "pw-s3cret" not in repr(openscapes) + str(openscapes)


def test_every_key_with_typed_toml_values(here):
    cluster = one_cluster(
        here,
        """
        cost_explorer = true
        prometheus_url = "https://prom.example/"
        prometheus_token_env = "C_TOKEN"
        prometheus_verify_tls = false
        prometheus_timeout_s = 2.5
        cost_metric = "AmortizedCost"
        cost_record_types = ["Usage", "Credit"]
        hub_tag_key = "hub"
        node_purpose_tag_key = "np"
        volume_purpose_tag_key = "vp"
        lookback_days = 7
        initial_days = 90
        aws_account_id = "000000000042"
        aws_role_arn = "arn:aws:iam::111122223333:role/path/to/hubcost-ce"
        aws_profile = "payer"
        aws_region = "eu-west-1"
        strict_cluster_tags = true
        """,
        {"C_TOKEN": " tok-s3cret\n"},
    )
    assert cluster == ClusterConfig(
        name="c",
        cost_explorer=True,
        prometheus_url="https://prom.example",
        prometheus_token=Secret("tok-s3cret"),
        prometheus_verify_tls=False,
        prometheus_timeout_s=2.5,
        cost_metric="AmortizedCost",
        cost_record_types=("Usage", "Credit"),
        hub_tag_key="hub",
        node_purpose_tag_key="np",
        volume_purpose_tag_key="vp",
        lookback_days=7,
        initial_days=90,
        aws_account_id="000000000042",
        aws_role_arn="arn:aws:iam::111122223333:role/path/to/hubcost-ce",
        aws_profile="payer",
        aws_region="eu-west-1",
        strict_cluster_tags=True,
    )
    assert "tok-s3cret" not in repr(cluster)
    # Every field of ClusterConfig is a key of the file, and nothing else is.
    assert set(KEYS) == {field.name for field in dataclasses.fields(ClusterConfig)}


def test_the_built_in_defaults_are_the_single_cluster_ones(here):
    cluster = one_cluster(here, "")
    assert cluster == ClusterConfig(name="c")
    single = cluster_from_env({"CLUSTER_NAME": "c"})
    assert dataclasses.replace(single, aws_region=None) == cluster


def test_secrets_from_files_relative_to_the_clusters_file(here):
    (here / "secrets").mkdir()
    (here / "secrets" / "password").write_text("pw-from-file\n")
    absolute = here / "token"
    absolute.write_text("tok-from-file")
    path = write(
        here,
        f"""
        [[cluster]]
        name = "a"
        prometheus_url = "http://a"
        prometheus_username = "u"
        prometheus_password_file = "secrets/password"
        [[cluster]]
        name = "b"
        prometheus_url = "http://b"
        prometheus_token_file = "{absolute}"
        cost_explorer = false
        """,
    )
    a, b = clusters_from_file(here / path, {})
    assert a.prometheus_password == Secret("pw-from-file")
    assert b.prometheus_token == Secret("tok-from-file")
    assert "pw-from-file" not in repr(a) and "tok-from-file" not in repr(b)


def test_a_secret_file_is_relative_to_the_file_not_the_working_directory(here, monkeypatch):
    conf = here / "conf"
    conf.mkdir()
    (conf / "token").write_text("tok")
    (conf / "clusters.toml").write_text(
        '[[cluster]]\nname = "c"\nprometheus_url = "http://p"\nprometheus_token_file = "token"\n'
    )
    elsewhere = here / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (cluster,) = clusters_from_file(conf / "clusters.toml", {})
    assert cluster.prometheus_token == Secret("tok")


def test_cluster_over_defaults_over_environment_over_built_in(here):
    path = write(
        here,
        """
        [defaults]
        lookback_days = 5
        prometheus_token_env = "SHARED_TOKEN"
        [[cluster]]
        name = "a"
        prometheus_url = "http://a"
        [[cluster]]
        name = "b"
        prometheus_url = "http://b"
        lookback_days = 9
        prometheus_token_file = "b-token"
        aws_account_id = "222222222222"
        """,
    )
    (here / "b-token").write_text("b-tok")
    environ = {
        "SHARED_TOKEN": "shared-tok",
        "LOOKBACK_DAYS": "4",
        "INITIAL_DAYS": "60",
        "PROMETHEUS_TOKEN": "never-inherited",
        "PROMETHEUS_USERNAME": "never-inherited",
    }
    a, b = clusters_from_file(path, environ)
    assert (a.lookback_days, a.initial_days, a.prometheus_token) == (5, 60, Secret("shared-tok"))
    # b's own secret source replaces the default's, whichever kind it is.
    assert (b.lookback_days, b.initial_days, b.prometheus_token) == (9, 60, Secret("b-tok"))
    assert a.prometheus_username is None and b.prometheus_username is None


def test_only_the_non_secret_per_cluster_variables_are_inherited():
    environ = {
        "LOOKBACK_DAYS": "4",
        "COST_METRIC": "AmortizedCost",
        "CLUSTER_NAME": "x",
        "PROMETHEUS_URL": "http://p",
        "PROMETHEUS_PASSWORD": "s",
        "PROMETHEUS_TOKEN": "t",
        "PROMETHEUS_USERNAME": "u",
        "AWS_REGION": "eu-west-1",
    }
    assert inherited_environment(environ) == {"LOOKBACK_DAYS": "4", "COST_METRIC": "AmortizedCost"}


@pytest.mark.parametrize(
    "accounts",
    [
        ('aws_account_id = "123456789012"', 'aws_account_id = "123456789012"'),
        (
            'aws_account_id = "123456789012"',
            'aws_role_arn = "arn:aws:iam::123456789012:role/ce"',
        ),
        ("", ""),
        ('aws_profile = "one"', 'aws_profile = "two"'),
    ],
)
def test_clusters_sharing_an_account_load_with_strict_tags_in_both(here, accounts):
    text = "".join(
        f'[[cluster]]\nname = "c{i}"\nstrict_cluster_tags = true\n{account}\n'
        for i, account in enumerate(accounts)
    )
    clusters = clusters_from_file(write(here, text), {})
    assert [c.strict_cluster_tags for c in clusters] == [True, True]


def test_clusters_in_different_accounts_or_without_cost_explorer_need_no_strict_tags(here):
    path = write(
        here,
        """
        [[cluster]]
        name = "a"
        aws_account_id = "111111111111"
        [[cluster]]
        name = "b"
        aws_role_arn = "arn:aws:iam::222222222222:role/ce"
        [[cluster]]
        name = "c"
        [[cluster]]
        name = "d"
        cost_explorer = false
        prometheus_url = "http://d"
        [[cluster]]
        name = "e.f_g-1"
        aws_account_id = "333333333333"
        aws_role_arn = "arn:aws:iam::999999999999:role/payer-ce"
        """,
    )
    clusters = clusters_from_file(path, {})
    assert [c.cost_account for c in clusters] == [
        "111111111111",
        "222222222222",
        None,
        None,
        "333333333333",
    ]


# --- bad files -------------------------------------------------------------------------------


def test_the_brief_s_example_message(here):
    message = refused(
        here,
        """
        [[cluster]]
        name = "leap"
        prometheus_url = "http://prometheus.leap.example"
        prometheus_timeout_s = "soon"
        """,
    )
    assert (
        message
        == "clusters.toml: cluster \"leap\": prometheus_timeout_s must be a number, got 'soon'"
    )


@pytest.mark.parametrize("key", ["prometheus_password", "prometheus_token"])
@pytest.mark.parametrize("table", ["[[cluster]]", "[defaults]"])
def test_an_inline_secret_is_refused_without_showing_it(here, key, table):
    cluster = '[[cluster]]\nname = "leap"\nprometheus_url = "http://p"\n'
    if table == "[[cluster]]":
        text = cluster + f'{key} = "hunter2-s3cret"\n'
        where = 'cluster "leap"'
    else:
        text = f'[defaults]\n{key} = "hunter2-s3cret"\n' + cluster
        where = "[defaults]"
    message = refused(here, text)
    assert message.startswith(f"clusters.toml: {where}: {key} is a secret"), message
    assert f"{key}_env" in message and f"{key}_file" in message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[[cluster]]\nname = "leap"\nprometheus_pasword_env = "X"\n',
            "clusters.toml: cluster \"leap\": unknown key 'prometheus_pasword_env' "
            "(did you mean 'prometheus_password_env'?)",
        ),
        (
            '[[cluster]]\nname = "leap"\nregion = "us-east-1"\n',
            "clusters.toml: cluster \"leap\": unknown key 'region' (did you mean 'aws_region'?)",
        ),
        (
            '[[cluster]]\nname = "leap"\nname_env = "X"\n',
            "clusters.toml: cluster \"leap\": unknown key 'name_env' (did you mean 'name'?)",
        ),
        (
            '[[cluster]]\nname = "leap"\nprometheus_url_file = "x"\n',
            "clusters.toml: cluster \"leap\": unknown key 'prometheus_url_file' "
            "(did you mean 'prometheus_url'?)",
        ),
        (
            '[defaults]\nlookbak_days = 3\n[[cluster]]\nname = "leap"\n',
            "clusters.toml: [defaults]: unknown key 'lookbak_days' (did you mean 'lookback_days'?)",
        ),
        (
            '[[clusters]]\nname = "leap"\n',
            "clusters.toml: unknown top-level key 'clusters' (a clusters file has a [defaults] "
            "table and [[cluster]] tables)",
        ),
    ],
)
def test_an_unknown_key_is_refused_naming_it(here, text, expected):
    assert refused(here, text) == expected


def test_a_duplicate_name_is_refused(here):
    message = refused(
        here,
        """
        [[cluster]]
        name = "leap"
        [[cluster]]
        name = "openscapes"
        aws_account_id = "111111111111"
        [[cluster]]
        name = "leap"
        aws_account_id = "222222222222"
        """,
    )
    assert message == (
        "clusters.toml: cluster \"leap\": name 'leap' is already cluster #1's: names must be unique"
    )


@pytest.mark.parametrize(
    ("name_line", "expected"),
    [
        ("", "clusters.toml: cluster #2: name is missing"),
        ('name = ""', "clusters.toml: cluster #2: name is missing"),
        ('name = "   "', "clusters.toml: cluster #2: name is missing"),
        (
            'name = "a b"',
            "clusters.toml: cluster #2: name must be letters, digits, '-', '_' and '.' "
            "(starting with a letter or digit, at most 100 characters), got 'a b'",
        ),
    ],
)
def test_a_cluster_needs_a_plain_name(here, name_line, expected):
    text = f'[[cluster]]\nname = "first"\n[[cluster]]\n{name_line}\nprometheus_url = "http://p"\n'
    assert refused(here, text) == expected


@pytest.mark.parametrize(
    "name", ["-leap", ".leap", "leap/prod", "leap:prod", "léap", "a" * 101, 'le"ap', "le ap"]
)
def test_names_that_are_not_identifier_like_are_refused(here, name):
    escaped = name.replace('"', '\\"')
    message = refused(here, f'[[cluster]]\nname = "{escaped}"\n')
    assert message.startswith("clusters.toml: cluster #1: name must be letters, digits"), message


@pytest.mark.parametrize("name", ["leap", "LEAP-2", "a.b_c-d", "0cluster", "a" * 100])
def test_identifier_like_names_are_accepted(here, name):
    (cluster,) = clusters_from_file(write(here, f'[[cluster]]\nname = "{name}"\n'), {})
    assert cluster.name == name


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            'aws_account_id = "12345678901"',
            "aws_account_id must be 12 digits (in quotes), got '12345678901'",
        ),
        (
            'aws_account_id = "12345678901a"',
            "aws_account_id must be 12 digits (in quotes), got '12345678901a'",
        ),
        ("aws_account_id = 12345", "aws_account_id must be 12 digits (in quotes), got '12345'"),
        (
            'aws_role_arn = "arn:aws:iam::123456789012:user/hubcost"',
            "aws_role_arn must be an IAM role ARN (arn:aws:iam::<account>:role/<name>), got "
            "'arn:aws:iam::123456789012:user/hubcost'",
        ),
        (
            'aws_role_arn = "arn:aws:iam::1234:role/ce"',
            "aws_role_arn must be an IAM role ARN (arn:aws:iam::<account>:role/<name>), got "
            "'arn:aws:iam::1234:role/ce'",
        ),
        (
            'aws_role_arn = "hubcost-ce"',
            "aws_role_arn must be an IAM role ARN (arn:aws:iam::<account>:role/<name>), got "
            "'hubcost-ce'",
        ),
        (
            'aws_region = "US East"',
            "aws_region must be an AWS region such as us-east-1, got 'US East'",
        ),
        (
            'cost_explorer = "maybe"',
            "cost_explorer must be a boolean (1/0, true/false), got 'maybe'",
        ),
        (
            "strict_cluster_tags = 2",
            "strict_cluster_tags must be a boolean (1/0, true/false), got '2'",
        ),
        ("lookback_days = 3.5", "lookback_days must be an integer, got '3.5'"),
        ("lookback_days = true", "lookback_days must be an integer, got 'true'"),
        ("lookback_days = {days = 3}", "lookback_days must be a string, a number or a boolean"),
        ("initial_days = 1979-05-27", "initial_days must be a string, a number or a boolean"),
        ('hub_tag_key = ["a"]', "hub_tag_key must be a string, a number or a boolean"),
        ("cost_record_types = [1]", "cost_record_types must be a list of strings"),
        (
            "prometheus_timeout_s = inf",
            "prometheus_timeout_s must be a finite number of at least 0.1",
        ),
        (
            "prometheus_timeout_s = nan",
            "prometheus_timeout_s must be a finite number of at least 0.1",
        ),
        ('prometheus_url = "ftp://p"', "prometheus_url must start with http:// or https://"),
        (
            'prometheus_username = "u"',
            "prometheus_username and prometheus_password go together",
        ),
        (
            'prometheus_token_env = "T"\nprometheus_username = "u"\nprometheus_password_env = "P"',
            "prometheus_token_env and prometheus_password_env are both set: choose one way to "
            "authenticate",
        ),
        (
            'prometheus_password_env = "P"\nprometheus_password_file = "p"',
            "prometheus_password_env and prometheus_password_file are both set: choose one",
        ),
        (
            'prometheus_token_env = "UNSET_VARIABLE"',
            "prometheus_token_env names the environment variable UNSET_VARIABLE, which is not set "
            "or empty",
        ),
        (
            'prometheus_token_env = "EMPTY_VARIABLE"',
            "prometheus_token_env names the environment variable EMPTY_VARIABLE, which is not set "
            "or empty",
        ),
        (
            "prometheus_token_env = 3",
            "prometheus_token_env must name an environment variable (a string)",
        ),
        ('prometheus_token_file = ""', "prometheus_token_file must name a file (a string)"),
    ],
)
def test_a_bad_value_names_the_file_the_cluster_and_the_key(here, line, expected):
    text = f'[[cluster]]\nname = "leap"\nprometheus_url = "http://p"\n{line}\n'
    if line.startswith("prometheus_url"):
        text = f'[[cluster]]\nname = "leap"\n{line}\n'
    environ = {"T": "t", "P": "p", "EMPTY_VARIABLE": "  "}
    assert refused(here, text, environ) == f'clusters.toml: cluster "leap": {expected}'


def test_an_unreadable_or_empty_secret_file_is_named(here):
    (here / "empty-token").write_text("\n")
    base = '[[cluster]]\nname = "leap"\nprometheus_url = "http://p"\n'
    message = refused(here, base + 'prometheus_token_file = "missing-token"\n')
    assert message == (
        'clusters.toml: cluster "leap": prometheus_token_file names missing-token, which '
        "cannot be read (No such file or directory)"
    )
    message = refused(here, base + 'prometheus_token_file = "empty-token"\n')
    assert message == (
        'clusters.toml: cluster "leap": prometheus_token_file names empty-token, which is empty'
    )


def test_a_bad_default_says_it_came_from_the_defaults(here):
    message = refused(here, '[defaults]\nlookback_days = 0\n[[cluster]]\nname = "leap"\n')
    assert message == (
        'clusters.toml: cluster "leap": lookback_days (in [defaults]) must be between 1 and 366, '
        "got 0"
    )


def test_a_name_cannot_be_a_default(here):
    assert refused(here, '[defaults]\nname = "x"\n[[cluster]]\nname = "leap"\n') == (
        "clusters.toml: [defaults]: name cannot be a default: every [[cluster]] names itself"
    )


def test_a_cluster_without_a_source_is_refused(here):
    assert refused(here, '[[cluster]]\nname = "leap"\ncost_explorer = false\n') == (
        'clusters.toml: cluster "leap": no source: cost_explorer is false and prometheus_url '
        "is not set"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "clusters.toml: no [[cluster]] table: the file must name a cluster"),
        (
            "[defaults]\nlookback_days = 3\n",
            "clusters.toml: no [[cluster]] table: the file must name a cluster",
        ),
        (
            '[cluster]\nname = "leap"\n',
            "clusters.toml: cluster must be [[cluster]] tables, one per cluster",
        ),
        ("defaults = 3\n", "clusters.toml: defaults must be a table ([defaults])"),
    ],
)
def test_a_file_of_the_wrong_shape_is_refused(here, text, expected):
    assert refused(here, text) == expected


def test_a_file_that_is_not_toml_or_not_there(here):
    message = refused(here, "[[cluster]]\nname = leap\nprometheus_password = hunter2\n")
    assert message.startswith("clusters.toml: not valid TOML (") and "line 2" in message
    assert "hunter2" not in message
    with pytest.raises(SettingsError) as info:
        clusters_from_file("absent.toml", {})
    assert str(info.value) == (
        "absent.toml: cannot read the clusters file (No such file or directory)"
    )
    (here / "latin1.toml").write_bytes(b'[[cluster]]\nname = "l\xe9ap"\n')
    with pytest.raises(SettingsError, match=r"^latin1\.toml: the clusters file is not UTF-8"):
        clusters_from_file("latin1.toml", {})


@pytest.mark.parametrize(
    ("b_account", "expected"),
    [
        (
            'aws_account_id = "123456789012"',
            'cluster "b": aws_account_id 123456789012 is also the account of cluster "a"',
        ),
        (
            'aws_role_arn = "arn:aws:iam::123456789012:role/ce"',
            'cluster "b": aws_role_arn is in account 123456789012, also the account of cluster "a"',
        ),
    ],
)
def test_two_clusters_in_one_account_need_strict_tags(here, b_account, expected):
    text = (
        '[[cluster]]\nname = "a"\naws_account_id = "123456789012"\nstrict_cluster_tags = true\n'
        f'[[cluster]]\nname = "b"\n{b_account}\n'
    )
    message = refused(here, text)
    assert message.startswith(f"clusters.toml: {expected}; "), message
    assert message.endswith("set strict_cluster_tags = true in both (docs/clusters.md)")


def test_two_clusters_on_the_ambient_credentials_need_strict_tags(here):
    message = refused(
        here,
        """
        [[cluster]]
        name = "a"
        [[cluster]]
        name = "b"
        aws_account_id = "111111111111"
        [[cluster]]
        name = "c"
        aws_profile = "other"
        strict_cluster_tags = true
        """,
    )
    assert message.startswith(
        'clusters.toml: cluster "c": aws_account_id and aws_role_arn are unset, as for '
        'cluster "a": both read the ambient credentials\' account; '
    ), message
    assert "strict_cluster_tags = true in both" in message


def test_three_clusters_in_one_account_all_need_strict_tags(here):
    strict = "strict_cluster_tags = true\n"
    text = "".join(
        f'[[cluster]]\nname = "c{i}"\naws_account_id = "123456789012"\n{strict if i != 2 else ""}'
        for i in range(3)
    )
    assert refused(here, text).startswith('clusters.toml: cluster "c2": aws_account_id')


# --- one rule per key, both ways -------------------------------------------------------------

SAME_RULES = [
    ("PROMETHEUS_TIMEOUT_S", "soon"),
    ("PROMETHEUS_TIMEOUT_S", "0.01"),
    ("PROMETHEUS_VERIFY_TLS", "maybe"),
    ("PROMETHEUS_URL", "prometheus:9090"),
    ("COST_METRIC", "Cheapest"),
    ("COST_RECORD_TYPES", "Usage,Bogus"),
    ("COST_RECORD_TYPES", ","),
    ("LOOKBACK_DAYS", "-1"),
    ("LOOKBACK_DAYS", "three"),
    ("LOOKBACK_DAYS", "367"),
    ("INITIAL_DAYS", "0"),
    ("INITIAL_DAYS", "3661"),
    ("CLUSTER_NAME", "x; DROP"),
    ("PROMETHEUS_USERNAME", "u"),
]
FILE_KEY = {variable: key for key, variable in KEYS.items()}


@pytest.mark.parametrize(("variable", "value"), SAME_RULES)
def test_the_file_and_the_environment_refuse_the_same_values_alike(here, variable, value):
    with pytest.raises(SettingsError) as from_env:
        Settings.from_env({"PROMETHEUS_URL": "http://p", variable: value})
    key = FILE_KEY[variable]
    name_line = "" if key == "name" else 'name = "c"\n'
    url_line = "" if key == "prometheus_url" else 'prometheus_url = "http://p"\n'
    text = f"[[cluster]]\n{name_line}{url_line}{key} = {value!r}\n".replace("'", '"')
    message = refused(here, text)
    who = "cluster #1" if key == "name" else 'cluster "c"'
    expected = str(from_env.value).replace(variable, key)
    expected = re.sub(r"\bPROMETHEUS_PASSWORD\b", "prometheus_password", expected)
    assert message == f"clusters.toml: {who}: {expected}"


@pytest.mark.parametrize(
    ("variable", "value", "field", "parsed"),
    [
        ("PROMETHEUS_TIMEOUT_S", "2.5", "prometheus_timeout_s", 2.5),
        ("PROMETHEUS_VERIFY_TLS", "off", "prometheus_verify_tls", False),
        ("COST_RECORD_TYPES", "Usage, Credit", "cost_record_types", ("Usage", "Credit")),
        ("LOOKBACK_DAYS", " 12 ", "lookback_days", 12),
        ("HUB_TAG_KEY", "hub", "hub_tag_key", "hub"),
    ],
)
def test_the_file_and_the_environment_accept_the_same_values_alike(
    here, variable, value, field, parsed
):
    assert getattr(cluster_from_env({variable: value}), field) == parsed
    cluster = one_cluster(here, f'{FILE_KEY[variable]} = "{value}"\n')
    assert getattr(cluster, field) == parsed


# --- the single-cluster environment ----------------------------------------------------------


def test_the_environment_s_one_cluster():
    cluster = cluster_from_env(
        {
            "CLUSTER_NAME": "openscapes",
            "PROMETHEUS_URL": "https://prom/",
            "PROMETHEUS_USERNAME": "u",
            "PROMETHEUS_PASSWORD": "pw-s3cret",
            "AWS_REGION": "eu-west-1",
            "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/irsa",
            "AWS_PROFILE": "p",
        }
    )
    assert cluster == ClusterConfig(
        name="openscapes",
        cost_explorer=True,
        prometheus_url="https://prom",
        prometheus_username="u",
        prometheus_password=Secret("pw-s3cret"),
        aws_region="eu-west-1",
    )
    # IRSA's AWS_ROLE_ARN and AWS_PROFILE stay boto3's ambient chain: no AssumeRole of ours.
    assert (cluster.aws_role_arn, cluster.aws_profile, cluster.aws_account_id) == (None,) * 3
    assert "pw-s3cret" not in repr(cluster)


def test_the_environment_s_cluster_names_without_cluster_name():
    prometheus_only = cluster_from_env({"PROMETHEUS_URL": "http://p"})
    assert (prometheus_only.name, prometheus_only.costs_enabled) == ("default", False)
    assert prometheus_only.usage_enabled
    demo = cluster_from_env({}, demo=True)
    assert (demo.name, demo.costs_enabled, demo.usage_enabled) == ("demo-cluster", False, False)
    assert cluster_from_env({"AWS_DEFAULT_REGION": "ap-south-1"}).aws_region == "ap-south-1"
    assert cluster_from_env({}).aws_region is None


def test_the_environment_s_cluster_name_follows_the_same_rule():
    with pytest.raises(SettingsError, match="^CLUSTER_NAME must be letters, digits"):
        cluster_from_env({"CLUSTER_NAME": "my cluster"})
