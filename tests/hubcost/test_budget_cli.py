"""`hubcost budget ...` as an operator runs it: the installed entry point, a real database.

Exit 0 on success; bad input is exit 2 with one line on stderr, and the budget table is then
exactly as it was (updated_at included).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core import migrate
from core.budgets import Budget, save_budget
from tests.conftest import ROOT
from tests.isolated_env import MACHINE_SETTINGS, isolation
from tests.rows import select_all

ENTRY_POINT = Path(sys.executable).with_name("hubcost")


@pytest.fixture
def hubcost(database_url, tmp_path):
    """Run `hubcost ARGS` against the test's database: (exit status, stdout, stderr)."""
    assert ENTRY_POINT.exists(), f"the hubcost entry point is not installed at {ENTRY_POINT}"
    env = {k: v for k, v in os.environ.items() if k not in MACHINE_SETTINGS}
    env.update(isolation(tmp_path), DATABASE_URL=database_url)

    def run(*args: str, url: str | None = None) -> tuple[int, str, str]:
        done = subprocess.run(
            [str(ENTRY_POINT), *args],
            cwd=ROOT,
            env={**env, "DATABASE_URL": url or database_url},
            capture_output=True,
            text=True,
            timeout=120,
        )
        return done.returncode, done.stdout, done.stderr

    return run


def given(engine, *budgets: Budget) -> None:
    """Budgets stored before the command under test (written in-process: faster)."""
    with engine.begin() as c:
        for b in budgets:
            save_budget(c, b)


def stored(engine):
    with engine.connect() as c:
        return select_all(c, "SELECT * FROM budget ORDER BY name")


def test_set_list_and_remove(hubcost, engine):
    status, out, err = hubcost("budget", "set", "hub-a", "--amount", "500", "--hub", "hub-a")
    assert (status, out, err) == (
        0,
        "add hub-a: hub=hub-a, 500.00 USD per month, alert_at 50,80,100\n",
        "",
    )
    status, out, _ = hubcost(
        "budget", "set", "credits", "--amount", "25000.5", "--period", "total",
        "--start", "2026-01-01", "--cluster", "c1", "--group", "physics", "--user", "ana",
        "--alert-at", "100,80", "--notify", "slack,email",
    )  # fmt: skip
    assert status == 0
    assert out == (
        "add credits: cluster=c1 group=physics user=ana, 25000.50 USD total from 2026-01-01, "
        "alert_at 80,100, notify email,slack\n"
    )
    status, out, _ = hubcost("budget", "set", "hub-a", "--amount", "600", "--hub", "hub-a")
    assert (status, out) == (0, "change hub-a: amount 500.00 -> 600.00\n")
    status, out, _ = hubcost("budget", "list")
    assert status == 0
    assert out.splitlines() == [
        "name     scope                                amount  period  start       alert_at   notify",
        "credits  cluster=c1 group=physics user=ana  25000.50  total   2026-01-01  80,100     email,slack",
        "hub-a    hub=hub-a                            600.00  month               50,80,100",
    ]  # fmt: skip
    status, out, _ = hubcost("budget", "list", "--json")
    assert status == 0
    assert json.loads(out)[0] == {
        "name": "credits",
        "cluster": "c1",
        "hub": None,
        "usergroup": "physics",
        "username": "ana",
        "amount": "25000.50",
        "period": "total",
        "start_date": "2026-01-01",
        "alert_at": [80, 100],
        "notify": ["email", "slack"],
    }
    assert hubcost("budget", "remove", "credits")[:2] == (0, "remove credits\n")
    assert [row[0] for row in stored(engine)] == ["hub-a"]


def test_setting_the_same_budget_again_writes_nothing(hubcost, engine):
    args = ("budget", "set", "hub-a", "--amount", "500", "--hub", "hub-a")
    assert hubcost(*args)[0] == 0
    before = stored(engine)
    assert hubcost(*args)[:2] == (0, "no changes\n")
    assert stored(engine) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--amount", "-5"], "hubcost: budget 'x': amount must be more than 0, got -5"),
        (["--amount", "abc"], "hubcost: budget 'x': amount must be a number of USD, got 'abc'"),
        (["--amount", "5", "--period", "weekly"], "hubcost: budget 'x': unknown period 'weekly'"),
        (["--amount", "5", "--start", "2026-01-01"], "hubcost: budget 'x': a start date is only"),
        (["--amount", "5", "--period", "total"], "hubcost: budget 'x': period total needs a start"),
        (
            ["--amount", "5", "--period", "total", "--start", "2026-02-30"],
            "hubcost: --start is not a date in YYYY-MM-DD form: '2026-02-30'",
        ),
        (["--amount", "5", "--alert-at", "50,1001"], "hubcost: budget 'x': a threshold must be"),
        (["--amount", "5", "--alert-at", "50.5"], "hubcost: a threshold must be a whole"),
        (["--amount", "5", "--hub", ""], "hubcost: budget 'x': hub must be a non-empty name"),
    ],
)
def test_bad_input_is_exit_2_one_line_and_nothing_written(hubcost, engine, args, message):
    given(engine, Budget(name="x", amount="7", hub="hub-a"))
    before = stored(engine)
    status, out, err = hubcost("budget", "set", "x", *args)
    assert status == 2
    assert out == ""
    assert len(err.splitlines()) == 1 and err.startswith(message), err
    assert stored(engine) == before


def test_an_empty_name_and_an_unknown_one(hubcost, engine):
    assert hubcost("budget", "set", "", "--amount", "5")[::2] == (
        2,
        "hubcost: a budget's name must not be empty\n",
    )
    assert hubcost("budget", "remove", "nope")[::2] == (2, "hubcost: no budget named 'nope'\n")
    assert stored(engine) == []


def test_a_webhook_url_is_refused_and_never_printed(hubcost, engine):
    url = "https://hooks.example/services/T0/B0/secret-token"
    status, out, err = hubcost("budget", "set", "x", "--amount", "5", "--notify", url)
    assert status == 2 and len(err.splitlines()) == 1 and "NOTIFY_WEBHOOK_URLS" in err
    assert "secret-token" not in out + err
    assert stored(engine) == []


BUDGETS = """\
[budget.hub-a]
amount = "500.00"
hub = "hub-a"

[budget.credits]
amount = 25000
period = "total"
start = 2026-01-01
notify = ["community-slack"]
"""


def write(tmp_path, text: str, name: str = "budgets.toml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def test_apply_dry_run_then_apply_then_again_changes_nothing(hubcost, engine, tmp_path):
    given(engine, Budget(name="old", amount="5"))
    path = write(tmp_path, BUDGETS)
    before = stored(engine)
    status, out, err = hubcost("budget", "apply", path, "--dry-run")
    changes = [
        "add credits: everything, 25000.00 USD total from 2026-01-01, alert_at 50,80,100, "
        "notify community-slack",
        "add hub-a: hub=hub-a, 500.00 USD per month, alert_at 50,80,100",
        "remove old",
    ]
    assert (status, out.splitlines(), err) == (
        0,
        [*changes, "dry run: 3 change(s) not written"],
        "",
    )
    assert stored(engine) == before
    status, out, _ = hubcost("budget", "apply", path)
    assert (status, out.splitlines()) == (0, changes)
    applied = stored(engine)
    assert [row[0] for row in applied] == ["credits", "hub-a"]
    assert hubcost("budget", "apply", path)[:2] == (0, "no changes\n")
    assert hubcost("budget", "apply", path, "--dry-run")[:2] == (0, "no changes\n")
    assert stored(engine) == applied  # updated_at has not moved

    write(tmp_path, BUDGETS.replace('"500.00"', '"600"'))
    assert hubcost("budget", "apply", path)[:2] == (0, "change hub-a: amount 500.00 -> 600.00\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BUDGETS + 'webhook = "https://x"\n', "budget 'credits': unknown key 'webhook'"),
        (BUDGETS + "[budget.bad]\namount = 0\n", "budget 'bad': amount must be more than 0"),
        (BUDGETS + "[budget.bad\n", "not valid TOML"),
    ],
)
def test_a_bad_file_is_exit_2_one_line_and_nothing_written(
    hubcost, engine, tmp_path, text, message
):
    given(engine, Budget(name="old", amount="5"))
    before = stored(engine)
    path = write(tmp_path, text)
    status, out, err = hubcost("budget", "apply", path)
    assert (status, out) == (2, "")
    assert len(err.splitlines()) == 1 and err.startswith(f"hubcost: {path}: ") and message in err
    assert stored(engine) == before


def test_a_database_without_the_schema_is_one_line(hubcost, empty_database_url):
    status, _, err = hubcost("budget", "list", url=empty_database_url)
    assert (status, err) == (
        2,
        "hubcost: the database schema is at revision none, not "
        f"{migrate.head_revision()}: run `hubcost migrate` first\n",
    )
