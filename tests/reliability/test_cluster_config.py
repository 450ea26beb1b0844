"""A bad clusters file stops real `hubcost` processes before they connect to anything.

Each bad configuration makes the command exit 2 with one stderr line naming the file, the
cluster and the key. The database URL points at a listening socket and the Prometheus and AWS
endpoints at a recording HTTP server: neither may see a single connection.
"""

from __future__ import annotations

import datetime as dt
import socket
from http.server import BaseHTTPRequestHandler

import pytest

from tests.etl.prometheus_history import free_port
from tests.etl.recent_days import backfill, first_of_last_month
from tests.local_http import LocalHTTPServer
from tests.reliability.processes import child_env, run_hubcost


class Recorder(LocalHTTPServer):
    """Answers 500 to anything and remembers that something came."""

    def __init__(self):
        self.seen: list[str] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self):
                recorder.seen.append(f"{self.command} {self.path}")
                self.send_response(500)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = _any

            def log_message(self, *args):
                pass

        super().__init__(Handler)


@pytest.fixture
def endpoints():
    """(database URL on a listening socket nobody may reach, recording HTTP server)."""
    database = socket.socket()
    database.bind(("127.0.0.1", 0))
    database.listen(8)
    database.setblocking(False)
    port = database.getsockname()[1]
    with Recorder() as http:
        yield f"postgresql://hubcost:pw@127.0.0.1:{port}/hubcost", http
        try:
            connection, _ = database.accept()
        except BlockingIOError:
            pass
        else:
            connection.close()
            raise AssertionError("a command connected to the database despite a bad setting")
        finally:
            database.close()
        assert http.seen == [], http.seen


def cluster(name: str, *lines: str, url: str = "http://127.0.0.1:9") -> str:
    return "\n".join(["[[cluster]]", f'name = "{name}"', f'prometheus_url = "{url}"', *lines, ""])


# (what is wrong, the file, extra environment, what the one stderr line must contain)
BAD_CONFIGURATIONS = [
    (
        "inline secret",
        cluster("leap", 'prometheus_username = "u"', 'prometheus_password = "hunter2-s3cret"'),
        {},
        ['cluster "leap"', "prometheus_password is a secret", "prometheus_password_env"],
    ),
    (
        "unknown key",
        cluster("leap", "lookbak_days = 3"),
        {},
        ['cluster "leap"', "unknown key 'lookbak_days'"],
    ),
    (
        "duplicate name",
        cluster("leap", 'aws_account_id = "111111111111"')
        + cluster("openscapes", 'aws_account_id = "222222222222"')
        + cluster("leap", 'aws_account_id = "333333333333"'),
        {},
        ['cluster "leap"', "name 'leap' is already cluster #1's"],
    ),
    (
        "beside CLUSTER_NAME",
        cluster("openscapes"),
        {"CLUSTER_NAME": "leap"},
        ["HUBCOST_CLUSTERS", "CLUSTER_NAME ('leap')", "are both set"],
    ),
    (
        "shared account without strict tags",
        cluster("a", 'aws_account_id = "123456789012"', "strict_cluster_tags = true")
        + cluster("b", 'aws_role_arn = "arn:aws:iam::123456789012:role/hubcost-ce"'),
        {},
        ['cluster "b"', "aws_role_arn is in account 123456789012", "strict_cluster_tags"],
    ),
    (
        "secret variable unset",
        cluster("leap", 'prometheus_token_env = "LEAP_PROMETHEUS_TOKEN"'),
        {},
        ['cluster "leap"', "prometheus_token_env names the environment variable"],
    ),
    (
        "bad value",
        cluster("leap", 'prometheus_timeout_s = "soon"'),
        {},
        ["cluster \"leap\": prometheus_timeout_s must be a number, got 'soon'"],
    ),
]


def run_with(tmp_path, endpoints, name, text, extra, command=("etl",)):
    database_url, http = endpoints
    path = tmp_path / f"{name.replace(' ', '-')}.toml"
    path.write_text(text.replace("http://127.0.0.1:9", http.url), encoding="utf-8")
    env = child_env(
        tmp_path,
        DATABASE_URL=database_url,
        HUBCOST_CLUSTERS=str(path),
        AWS_ACCESS_KEY_ID="AKIDTEST",
        AWS_SECRET_ACCESS_KEY="not-a-secret",
        AWS_ENDPOINT_URL=http.url,
        **extra,
    )
    status, err = run_hubcost(list(command), env, tmp_path, name.replace(" ", "-"), timeout=60)
    return path, status, err


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "text", "extra", "named"), BAD_CONFIGURATIONS, ids=[c[0] for c in BAD_CONFIGURATIONS]
)
def test_a_bad_clusters_file_stops_hubcost_etl_in_one_line(
    tmp_path, endpoints, name, text, extra, named
):
    path, status, err = run_with(tmp_path, endpoints, name, text, extra)
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    (line,) = lines
    assert line.startswith("hubcost: configuration error: "), line
    assert str(path) in line, line
    for part in named:
        assert part in line, (part, line)
    assert "hunter2" not in err


@pytest.mark.slow
def test_a_bad_clusters_file_stops_every_command(tmp_path, endpoints):
    text = cluster("leap", 'prometheus_password = "hunter2-s3cret"')
    first = first_of_last_month()  # days Cost Explorer serves: only the bad file keeps it unasked
    commands = [
        ["migrate"],
        ["serve", "--port", str(free_port())],
        ["run", "--port", str(free_port())],
        backfill(first, first + dt.timedelta(days=1)),
        ["etl", "--cluster", "leap"],
    ]
    for command in commands:
        path, status, err = run_with(tmp_path, endpoints, command[0], text, {}, command)
        lines = err.strip().splitlines()
        assert status == 2 and len(lines) == 1, (command, err)
        assert f'{path}: cluster "leap": prometheus_password is a secret' in lines[0], lines
