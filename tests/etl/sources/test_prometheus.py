"""The Prometheus source against a real server holding the history of prometheus_history."""

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest

from core.settings import Settings
from etl.load import save_groups, save_usage
from etl.sources.prometheus import (
    PrometheusError,
    directory_username,
    fetch_usage_day,
    make_client,
    queries,
    redacted_url,
)
from tests.etl.prometheus_history import D1, D2, D3
from tests.local_http import LocalHTTPServer
from tests.rows import CLUSTER, select_all

pytestmark = pytest.mark.prometheus
AFTER = dt.datetime(2025, 4, 1, tzinfo=dt.UTC)  # a clock well after the history


def client_for(url, **env):
    settings = Settings.from_env({"PROMETHEUS_URL": url, "PROMETHEUS_TIMEOUT_S": "5", **env})
    return make_client(settings, backoff_factor=0.01)


def load_days(conn, url, days, now=AFTER):
    client = client_for(url)
    earlier = {}
    requests = []
    for day in days:
        got = fetch_usage_day(client, day, now=now, earlier_usernames=earlier)
        requests.append(got.requests)
        save_usage(conn, got.usage, cluster=CLUSTER, first=day, last=day)
        save_groups(conn, got.groups, cluster=CLUSTER, first=day, last=day)
        for g in got.groups:
            earlier.setdefault(g.hub, {})[g.username_escaped] = g.username
    return requests


def usage_table(conn):
    return {
        (d, hub, comp, user): (round(value, 9), cpu if cpu is None else round(cpu, 9))
        for d, hub, comp, user, value, cpu in select_all(
            conn, "SELECT date::text, hub, component, username, value, cpu_core_hours FROM usage"
        )
    }


def test_stored_usage_per_day_hub_and_user_match_the_hand_computed_numbers(conn, prometheus_url):
    requests = load_days(conn, prometheus_url, [D1, D2, D3])
    assert requests == [4, 4, 4]  # four queries a day, whatever the number of users

    def n(x):
        return round(Decimal(x), 9)

    # compute: sum of the 288 points' requests x 300 s / 3600 / 2^30 = points x GiB / 12.
    # home storage: the mean over the points where the directory has a value, in GiB.
    assert usage_table(conn) == {
        # D1: alice 288 x 2.5 GiB / 12 = 60 GiB-h, cpu 288 x 0.75 / 12 = 18 core-h.
        ("2025-03-01", "prod", "compute", "alice"): (n(60), n(18)),
        ("2025-03-01", "staging", "compute", "carol"): (n(72), n(6)),
        ("2025-03-01", "staging", "compute", "frank.name"): (n(24), n(3)),
        ("2025-03-01", "prod", "home storage", "alice"): (n(10), None),
        ("2025-03-01", "prod", "home storage", "_shared"): (n(100), None),
        ("2025-03-01", "prod", "home storage", "dave@x"): (n(2), None),  # unescaped
        ("2025-03-01", "staging", "home storage", "carol"): (n(3), None),
        ("2025-03-01", "staging", "home storage", "frank.name"): (n(1), None),  # snapshot
        # D2: bob.smith: his pod 144 x 1 GiB / 12 = 12 plus the dask pod 12 x 4 / 12 = 4;
        # cpu 144 x 1 / 12 + 12 x 2 / 12 = 14; home (144 x 4 + 144 x 6) / 288 = 5.
        ("2025-03-02", "prod", "compute", "alice"): (n(48), n(12)),
        ("2025-03-02", "prod", "compute", "bob.smith"): (n(16), n(14)),
        ("2025-03-02", "staging", "compute", "carol"): (n(72), n(6)),
        ("2025-03-02", "prod", "home storage", "alice"): (n(10), None),
        ("2025-03-02", "prod", "home storage", "bob.smith"): (n(5), None),
        ("2025-03-02", "prod", "home storage", "_shared"): (n(100), None),
        ("2025-03-02", "staging", "home storage", "carol"): (n(3), None),
        # staging has no snapshot on D2: D1's, carried forward, names the directory.
        ("2025-03-02", "staging", "home storage", "frank.name"): (n(1), None),
        # D3: carol's directory (96 x 3 + 96 x 6) / 192 = 4.5 GiB.
        ("2025-03-03", "prod", "compute", "alice"): (n(48), n(12)),
        ("2025-03-03", "staging", "compute", "carol"): (n(72), n(6)),
        ("2025-03-03", "prod", "home storage", "alice"): (n(10), None),
        ("2025-03-03", "prod", "home storage", "_shared"): (n(100), None),
        ("2025-03-03", "staging", "home storage", "carol"): (n("4.5"), None),
    }
    assert select_all(
        conn,
        "SELECT date::text, hub, username, username_escaped, usergroup FROM user_group_snapshot "
        "ORDER BY 1, 2, 3, 5",
    ) == [
        ("2025-03-01", "prod", "alice", "alice", "staff"),
        ("2025-03-01", "prod", "bob.smith", "bob-2esmith", "none"),
        ("2025-03-01", "staging", "carol", "carol", "none"),
        ("2025-03-01", "staging", "frank.name", "frank-name-1a2b", "research"),
        ("2025-03-02", "prod", "alice", "alice", "multiple"),
        ("2025-03-02", "prod", "alice", "alice", "research"),
        ("2025-03-02", "prod", "alice", "alice", "staff"),
        ("2025-03-02", "prod", "bob.smith", "bob-2esmith", "none"),
        ("2025-03-03", "prod", "alice", "alice", "research"),
        ("2025-03-03", "prod", "bob.smith", "bob-2esmith", "none"),
    ]
    units = select_all(conn, "SELECT DISTINCT component, unit FROM usage ORDER BY 1")
    assert units == [("compute", "GiB-hours"), ("home storage", "GiB")]


def test_today_counts_only_the_points_already_past(conn, prometheus_url):
    now = dt.datetime(2025, 3, 3, 12, 0, 0, 321000, tzinfo=dt.UTC)
    at, texts = queries(D3, now)
    assert at == dt.datetime(2025, 3, 3, 12, tzinfo=dt.UTC)
    assert "[43201s:5m]" in texts["memory"]  # since yesterday 23:59:59
    got = fetch_usage_day(client_for(prometheus_url), D3, now=now)
    rows = {(r.hub, r.component, r.username): r for r in got.usage}
    # Points 00:00 to 12:00: 145. alice 145 x 2 GiB / 12; carol 145 x 3 / 12.
    assert round(rows["prod", "compute", "alice"].value, 9) == round(Decimal(145 * 2) / 12, 9)
    assert rows["staging", "compute", "carol"].value == Decimal("36.25")
    # carol's directory: 96 points at 3 GiB, then 49 at 6 GiB.
    assert round(rows["staging", "home storage", "carol"].value, 9) == round(
        Decimal(96 * 3 + 49 * 6) / 145, 9
    )
    assert {(g.username, g.usergroup) for g in got.groups} == {
        ("alice", "research"),
        ("bob.smith", "none"),
    }


def test_a_day_with_no_series_yields_no_rows(prometheus_url):
    got = fetch_usage_day(client_for(prometheus_url), dt.date(2025, 1, 10), now=AFTER)
    assert (got.usage, got.groups, got.requests) == ([], [], 4)


def test_unreachable_prometheus_fails_without_showing_credentials():
    from tests.etl.prometheus_history import free_port

    url = f"http://admin:hunter2@127.0.0.1:{free_port()}"
    with pytest.raises(PrometheusError, match="unreachable") as info:
        fetch_usage_day(client_for(url), D1, now=AFTER)
    assert "hunter2" not in str(info.value)


def test_directory_names():
    assert directory_username("bob-2esmith", {}) == "bob.smith"
    assert directory_username("x-slug-1a2b", {"x-slug-1a2b": "x.slug"}) == "x.slug"
    assert directory_username("_shared", {"_shared": "nobody"}) == "_shared"
    assert directory_username("shared-data", {}) == "shared-data"
    assert (
        redacted_url("https://u:p@prom.example:9090/prefix") == "https://prom.example:9090/prefix"
    )


def test_auth_and_tls_settings_reach_the_client():
    token = client_for("https://p.example", PROMETHEUS_TOKEN="tok", PROMETHEUS_VERIFY_TLS="false")
    assert token.headers == {"Authorization": "Bearer tok"}
    assert token._session.verify is False
    basic = client_for("https://p.example", PROMETHEUS_USERNAME="u", PROMETHEUS_PASSWORD="pw")
    assert basic.auth == ("u", "pw") and basic._session.verify is True


class FlakyPrometheus(LocalHTTPServer):
    """A local HTTP endpoint answering /api/v1/query from a script of (status, delay_s)."""

    EMPTY = b'{"status":"success","data":{"resultType":"vector","result":[]}}'

    def __init__(self, script):
        import time
        from http.server import BaseHTTPRequestHandler

        self.hits = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                step = script[min(fake.hits, len(script) - 1)]
                fake.hits += 1
                status, delay = step
                time.sleep(delay)
                body = fake.EMPTY if status == 200 else b"unavailable"
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client timed out and left

            def log_message(self, *args):
                pass

        super().__init__(Handler)


def test_5xx_answers_are_retried_then_succeed():
    with FlakyPrometheus([(503, 0), (502, 0), (200, 0)]) as server:
        got = fetch_usage_day(client_for(server.url), D1, now=AFTER)
    assert (got.usage, got.requests) == ([], 4)
    assert server.hits == 2 + 4


def test_5xx_that_persists_fails_the_day_after_the_retries():
    with FlakyPrometheus([(503, 0)]) as server:
        with pytest.raises(PrometheusError, match="after retries"):
            fetch_usage_day(client_for(server.url), D1, now=AFTER)
    assert server.hits == 1 + 3  # the first attempt and RETRIES more


def test_a_slow_prometheus_times_out():
    settings = Settings.from_env({"PROMETHEUS_URL": "http://x", "PROMETHEUS_TIMEOUT_S": "0.2"})
    with FlakyPrometheus([(200, 1.0)]) as server:
        settings = dataclasses.replace(settings, prometheus_url=server.url)
        client = make_client(settings, retries=1, backoff_factor=0.01)
        with pytest.raises(PrometheusError, match="timed out"):
            fetch_usage_day(client, D1, now=AFTER)
    assert server.hits == 2


class CannedPrometheus:
    """Answers each of the four queries with canned series (no server)."""

    url = "http://canned"

    def __init__(self, **answers):
        self.answers = answers

    def custom_query(self, query, params=None, timeout=None):
        for key, marker in (
            ("groups", "jupyterhub_user_group_info"),
            ("memory", 'resource="memory"'),
            ("cpu", 'resource="cpu"'),
            ("home", "dirsize_total_size_bytes"),
        ):
            if marker in query:
                return self.answers.get(key, [])
        raise AssertionError(query)


def test_non_finite_values_are_skipped_with_a_warning(caplog):
    def s(value, **labels):
        return {"metric": {"namespace": "prod", **labels}, "value": [0, value]}

    fake = CannedPrometheus(
        memory=[s("NaN", username="a"), s("+Inf", username="b"), s("3221225472", username="c")],
        home=[
            s("-Inf", directory="a"),
            s(str(2**30), directory="bob-2esmith"),
            s(str(2**30), directory="bob.smith"),
        ],
        groups=[s("1", username="bob.smith", username_escaped="bob.smith", usergroup="none")],
    )
    got = fetch_usage_day(fake, D1, now=AFTER)
    assert [(r.component, r.username, r.value) for r in got.usage] == [
        ("compute", "c", Decimal(3) * 300 / 3600),
        # Both of bob.smith's directories (old and new escaping) count as his.
        ("home storage", "bob.smith", Decimal(2)),
    ]
    assert len([r for r in caplog.records if "non-finite" in r.getMessage()]) == 3
