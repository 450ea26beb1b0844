"""core.budgets: a budget's validation, the budgets file, and writing the desired set.

Every bad value is one BudgetError line naming the budget and what is wrong; the stored table
changes only where it differs from what is asked, so applying the same set twice writes nothing.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from decimal import Decimal

import pytest
import sqlalchemy as sa

from core.budgets import (
    Budget,
    BudgetError,
    apply_budgets,
    list_budgets,
    parse_date,
    parse_names,
    parse_thresholds,
    read_budgets_file,
    remove_budget,
    save_budget,
)
from tests.conftest import ROOT
from tests.rows import select_all

HUB_A = Budget(name="hub-a", hub="hub-a", amount=Decimal("500"))
POOL = Budget(
    name="credits",
    cluster="c1",
    amount=Decimal("25000"),
    period="total",
    start_date=dt.date(2026, 1, 1),
)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"amount": "-5"}, "budget 'b': amount must be more than 0, got -5"),
        ({"amount": "0"}, "budget 'b': amount must be more than 0, got 0"),
        ({"amount": "abc"}, "budget 'b': amount must be a number of USD, got 'abc'"),
        ({"amount": ""}, "budget 'b': amount must be a number of USD, got ''"),
        ({"amount": "NaN"}, "budget 'b': amount must be a number of USD, got 'NaN'"),
        ({"amount": "Infinity"}, "budget 'b': amount must be a number of USD, got 'Infinity'"),
        ({"amount": 1.5}, "budget 'b': amount must be a number of USD, got 1.5"),
        ({"amount": True}, "budget 'b': amount must be a number of USD, got True"),
        ({"amount": "1.234"}, "budget 'b': amount has more than 2 decimal places: 1.234"),
        ({"amount": "1e12"}, "budget 'b': amount must be less than 1,000,000,000,000 USD"),
        ({"period": "week"}, "budget 'b': unknown period 'week' (one of month, quarter, year"),
        ({"period": "total"}, "budget 'b': period total needs a start date"),
        (
            {"start_date": dt.date(2026, 1, 1)},
            "budget 'b': a start date is only for period total, not month",
        ),
        (
            {"period": "year", "start_date": dt.date(2026, 1, 1)},
            "budget 'b': a start date is only for period total, not year",
        ),
        (
            {"period": "total", "start_date": "2026-01-01"},
            "budget 'b': start must be a date (YYYY-MM-DD), got '2026-01-01'",
        ),
        (
            {"period": "total", "start_date": dt.datetime(2026, 1, 1)},
            "budget 'b': start must be a date",
        ),
        ({"alert_at": ()}, "budget 'b': alert_at needs at least one threshold"),
        (
            {"alert_at": (0,)},
            "budget 'b': a threshold must be a whole percentage from 1 to 1000, got 0",
        ),
        (
            {"alert_at": (1001,)},
            "budget 'b': a threshold must be a whole percentage from 1 to 1000, got 1001",
        ),
        (
            {"alert_at": (50.5,)},
            "budget 'b': a threshold must be a whole percentage from 1 to 1000, got 50.5",
        ),
        (
            {"alert_at": (True,)},
            "budget 'b': a threshold must be a whole percentage from 1 to 1000, got True",
        ),
        ({"alert_at": "50"}, "budget 'b': alert_at must be a list of percentages, got '50'"),
        ({"hub": ""}, "budget 'b': hub must be a non-empty name when given"),
        ({"usergroup": " "}, "budget 'b': group must be a non-empty name when given"),
        ({"username": 7}, "budget 'b': user must be a non-empty name when given"),
        ({"notify": ("",)}, "budget 'b': notify names must be non-empty strings"),
        ({"notify": "slack"}, "budget 'b': notify must be a list of receiver names"),
        ({"name": ""}, "a budget's name must not be empty"),
        ({"name": "  "}, "a budget's name must not be empty"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_budget(values, message):
    with pytest.raises(BudgetError) as refused:
        Budget(**{"name": "b", "amount": "10", **values})
    assert str(refused.value).startswith(message)
    assert "\n" not in str(refused.value)


def test_a_webhook_url_in_notify_is_refused_without_showing_it():
    with pytest.raises(BudgetError) as refused:
        Budget(name="b", amount="10", notify=("https://hooks.example/T000/secret-token",))
    assert "NOTIFY_WEBHOOK_URLS" in str(refused.value)
    assert "secret-token" not in str(refused.value)


def test_a_budget_is_canonical_so_equal_budgets_store_equal_rows():
    b = Budget(name="b", amount="500", alert_at=[100, 50, 100], notify=["z", "a", "z"])
    assert b.amount == Decimal("500.00") and str(b.amount) == "500.00"
    assert b.alert_at == (50, 100) and b.notify == ("a", "z")
    assert b == Budget(name="b", amount=Decimal("500.00"), alert_at=(50, 100), notify=("a", "z"))
    assert (b.period, b.start_date, b.alert_at) == ("month", None, (50, 100))
    assert Budget(name="d", amount=1).alert_at == (50, 80, 100)
    assert Budget(name="e", amount="0.01").amount == Decimal("0.01")
    assert Budget(name="f", amount="999999999999.99").amount == Decimal("999999999999.99")


def test_scope_reads_as_the_options_name_it():
    assert Budget(name="b", amount=1).scope == "everything"
    assert (
        Budget(name="b", amount=1, cluster="c", hub="h", usergroup="g", username="u").scope
        == "cluster=c hub=h group=g user=u"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("50,80.5", "got '80.5'"),
        ("", "got ''"),
        ("50,,100", "got ''"),
        ("-5", "got '-5'"),
        ("٥٠", "got '٥٠'"),
    ],
)
def test_thresholds_from_an_option_are_whole_numbers(text, message):
    with pytest.raises(BudgetError, match=message):
        parse_thresholds(text)


def test_option_lists_and_dates():
    assert parse_thresholds(" 50, 80 ,100") == (50, 80, 100)
    assert parse_names("slack, email") == ("slack", "email")
    assert parse_date("2024-02-29") == dt.date(2024, 2, 29)
    with pytest.raises(
        BudgetError, match=r"^--start is not a date in YYYY-MM-DD form: '2026-02-30'$"
    ):
        parse_date("2026-02-30", "--start")


# --- the budgets file --------------------------------------------------------------------------

EXAMPLE = """\
[budget.hub-a]
amount = "500.00"
hub = "hub-a"
alert_at = [100, 80, 50]
notify = ["community-slack"]

[budget.credits]
amount = 25000
period = "total"
start = 2026-01-01
cluster = "c1"

[budget."physics on hub-b"]
amount = 99.9
period = "quarter"
hub = "hub-b"
group = "physics"

[budget.everything]
amount = "1e4"
period = "year"
user = "ana"
"""


def write(tmp_path, text: str):
    path = tmp_path / "budgets.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_the_file_gives_every_budget_sorted_by_name(tmp_path):
    assert read_budgets_file(write(tmp_path, EXAMPLE)) == [
        POOL,
        Budget(name="everything", username="ana", amount=Decimal("10000"), period="year"),
        Budget(name="hub-a", hub="hub-a", amount=Decimal("500"), notify=("community-slack",)),
        Budget(
            name="physics on hub-b",
            hub="hub-b",
            usergroup="physics",
            amount=Decimal("99.90"),
            period="quarter",
        ),
    ]


def test_a_float_amount_is_read_as_written_and_a_start_may_be_a_string(tmp_path):
    path = write(
        tmp_path,
        """\
        [budget.a]
        amount = 0.1
        period = "total"
        start = "2024-02-29"
        """,
    )
    (b,) = read_budgets_file(path)
    assert (b.amount, b.start_date) == (Decimal("0.10"), dt.date(2024, 2, 29))


def test_an_empty_file_is_an_empty_set(tmp_path):
    assert read_budgets_file(write(tmp_path, "")) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[budget.a]\namount = 5\nwebhook = "https://x"\n',
            "budget 'a': unknown key 'webhook' (known: amount, period, start, cluster, hub, "
            "group, user, alert_at, notify)",
        ),
        ("[budget.a]\nperiod = 'month'\n", "budget 'a': amount is missing"),
        ("[budgets.a]\namount = 5\n", "unknown top-level key 'budgets'"),
        ("budget = 5\n", "budget must be [budget.NAME] tables"),
        ("[budget]\na = 5\n", "budget 'a' must be a table ([budget.a])"),
        ("[budget.a]\namount = 5\nhub = 3\n", "budget 'a': hub must be a string"),
        ("[budget.a]\namount = 5\nperiod = 1\n", "budget 'a': period must be a string"),
        ("[budget.a]\namount = -5\n", "budget 'a': amount must be more than 0, got -5"),
        ("[budget.a]\namount = 5\nalert_at = [50, 1001]\n", "got 1001"),
        ("[budget.a]\namount = 5\nalert_at = 50\n", "alert_at must be a list"),
        ("[budget.a]\namount = 5\nstart = 2026-01-01\n", "only for period total, not month"),
        ("[budget.a]\namount = 5\nperiod = 'total'\nstart = '1st'\n", "start is not a date"),
        ("[budget.a]\namount = 5\nperiod = 'total'\nstart = 2026-01-01T00:00:00\n", "a date"),
        ('[budget.""]\namount = 5\n', "a budget's name must not be empty"),
        ("[budget.a]\namount = 5\n[budget.a]\namount = 6\n", "not valid TOML"),
        ("[budget.a\n", "not valid TOML"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_file_the_budget_and_the_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(BudgetError) as refused:
        read_budgets_file(path)
    assert str(refused.value).startswith(f"{path}: ")
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_missing_file_is_one_line(tmp_path):
    with pytest.raises(BudgetError, match="cannot read the budgets file"):
        read_budgets_file(tmp_path / "nope.toml")


# --- stored budgets ----------------------------------------------------------------------------


def stored_rows(engine):
    with engine.connect() as c:
        return select_all(c, "SELECT * FROM budget ORDER BY name")


def apply(engine, desired, **kwargs):
    with engine.begin() as c:
        return apply_budgets(c, desired, **kwargs)


def test_save_adds_replaces_and_leaves_an_unchanged_budget_unwritten(engine):
    with engine.begin() as c:
        assert str(save_budget(c, HUB_A)) == (
            "add hub-a: hub=hub-a, 500.00 USD per month, alert_at 50,80,100"
        )
    before = stored_rows(engine)
    with engine.begin() as c:
        assert save_budget(c, HUB_A) is None
    assert stored_rows(engine) == before  # updated_at too
    more = Budget(name="hub-a", hub="hub-a", amount="600", alert_at=(80, 100))
    with engine.begin() as c:
        assert str(save_budget(c, more)) == (
            "change hub-a: amount 500.00 -> 600.00, alert_at 50,80,100 -> 80,100"
        )
    with engine.connect() as c:
        assert list_budgets(c) == [more]
    assert stored_rows(engine)[0][-1] > before[0][-1]


def test_remove_and_an_unknown_name(engine):
    apply(engine, [HUB_A, POOL])
    with engine.begin() as c:
        assert str(remove_budget(c, "hub-a")) == "remove hub-a"
    with engine.begin() as c, pytest.raises(BudgetError, match="^no budget named 'hub-a'$"):
        remove_budget(c, "hub-a")
    with engine.connect() as c:
        assert list_budgets(c) == [POOL]


def test_apply_lists_each_change_and_removes_what_the_file_leaves_out(engine):
    assert [str(c) for c in apply(engine, [HUB_A, POOL])] == [
        "add credits: cluster=c1, 25000.00 USD total from 2026-01-01, alert_at 50,80,100",
        "add hub-a: hub=hub-a, 500.00 USD per month, alert_at 50,80,100",
    ]
    wanted = [
        Budget(name="hub-a", cluster="c1", hub="hub-a", amount="600", notify=("slack",)),
        Budget(name="ana", username="ana", amount="20", period="quarter", alert_at=(100,)),
    ]
    changes = apply(engine, wanted)
    assert [(c.kind, c.name) for c in changes] == [
        ("add", "ana"),
        ("remove", "credits"),
        ("change", "hub-a"),
    ]
    assert [str(c) for c in changes] == [
        "add ana: user=ana, 20.00 USD per quarter, alert_at 100",
        "remove credits",
        "change hub-a: cluster any -> c1, amount 500.00 -> 600.00, notify none -> slack",
    ]
    with engine.connect() as c:
        assert list_budgets(c) == sorted(wanted, key=lambda b: b.name)


def test_a_period_change_shows_the_start_too(engine):
    apply(engine, [HUB_A])
    pool = Budget(
        name="hub-a", hub="hub-a", amount="500", period="total", start_date=dt.date(2026, 3, 1)
    )
    assert [str(c) for c in apply(engine, [pool])] == [
        "change hub-a: period month -> total, start none -> 2026-03-01"
    ]


def test_applying_twice_writes_nothing_not_even_updated_at(engine):
    apply(engine, [HUB_A, POOL])
    before = stored_rows(engine)
    assert apply(engine, [POOL, HUB_A]) == []
    assert stored_rows(engine) == before


def test_a_dry_run_returns_the_changes_and_writes_nothing(engine):
    apply(engine, [HUB_A])
    before = stored_rows(engine)
    changes = apply(engine, [POOL], dry_run=True)
    assert [str(c) for c in changes][-1] == "remove hub-a"
    assert [c.kind for c in changes] == ["add", "remove"]
    assert stored_rows(engine) == before


def test_an_empty_set_removes_every_budget(engine):
    apply(engine, [HUB_A, POOL])
    assert [str(c) for c in apply(engine, [])] == ["remove credits", "remove hub-a"]
    assert stored_rows(engine) == []


def test_a_name_given_twice_is_refused_and_nothing_is_written(engine):
    apply(engine, [HUB_A])
    before = stored_rows(engine)
    with pytest.raises(BudgetError, match="^budget 'credits' is given twice$"):
        apply(engine, [POOL, POOL])
    assert stored_rows(engine) == before


def test_apply_is_one_transaction(engine):
    apply(engine, [HUB_A])
    before = stored_rows(engine)
    with pytest.raises(RuntimeError), engine.begin() as c:
        apply_budgets(c, [POOL])
        raise RuntimeError("the caller fails after the apply")
    assert stored_rows(engine) == before


def test_stored_budgets_read_back_through_the_public_view(engine):
    apply(engine, [HUB_A, POOL])
    with engine.connect() as c:
        rows = select_all(
            c, "SELECT name, hub, amount, period, start_date, alert_at FROM budgets ORDER BY name"
        )
        status = select_all(c, "SELECT name FROM budget_status('2026-06-15') ORDER BY name")
    assert rows == [
        ("credits", None, Decimal("25000.00"), "total", dt.date(2026, 1, 1), [50, 80, 100]),
        ("hub-a", "hub-a", Decimal("500.00"), "month", None, [50, 80, 100]),
    ]
    assert status == [("credits",), ("hub-a",)]


def test_a_second_writer_waits_for_the_first(engine):
    # The apply's read-then-write is not interleaved with another writer's: the table lock
    # makes the second wait until the first commits.
    with engine.begin() as first:
        apply_budgets(first, [HUB_A])
        with engine.connect() as second:
            second.execute(sa.text("SET lock_timeout = '200ms'"))
            with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
                apply_budgets(second, [POOL])
            second.rollback()
    with engine.begin() as c:
        assert [change.kind for change in apply_budgets(c, [POOL])] == ["add", "remove"]


def test_the_documented_example_file_reads_as_documented(tmp_path):
    guide = (ROOT / "docs" / "budgets.md").read_text(encoding="utf-8")
    section = guide.split("### 4.1 The budgets file", 1)[1]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    budgets = read_budgets_file(write(tmp_path, example))
    assert [(b.name, b.scope, str(b.amount), b.period) for b in budgets] == [
        ("hub-a", "hub=hub-a", "500.00", "month"),
        ("physics on hub-b", "hub=hub-b group=physics", "300.00", "quarter"),
        ("prepaid-credits", "cluster=openscapes", "25000.00", "total"),
    ]
    assert budgets[0].notify == ("community-slack",)
    assert budgets[2].start_date == dt.date(2026, 1, 1)


@pytest.mark.parametrize("name", ["team a", "-team", "équipe", "a" * 64])
def test_notify_names_follow_the_receiver_names_of_notify_webhook_urls(name):
    with pytest.raises(BudgetError, match="is not a receiver name"):
        Budget(name="b", amount=Decimal("1"), period="month", notify=(name,))
