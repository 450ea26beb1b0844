"""Budgets as data: one `Budget`, its validation, the budgets file, and writing them.

A `Budget` is always valid and canonical (amount to the cent, thresholds and receivers sorted,
no duplicates), so two budgets are equal exactly when their stored rows would be. Every bad
value is one `BudgetError` line naming the budget and the field. The budgets file
(docs/budgets.md §4) is the whole desired set: `apply_budgets` adds, changes and removes to
match it, and writes nothing when the table already does. Every writer takes a connection and
leaves the transaction to its caller.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from core.schema import BUDGET_PERIODS, DEFAULT_ALERT_AT, budget
from core.webhooks import NAME as RECEIVER_NAME

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("1e12")  # numeric(14, 2)
THRESHOLDS = range(1, 1001)
# The budgets file's keys of a [budget.NAME] table → the Budget field each one sets.
FILE_KEYS = {
    "amount": "amount",
    "period": "period",
    "start": "start_date",
    "cluster": "cluster",
    "hub": "hub",
    "group": "usergroup",
    "user": "username",
    "alert_at": "alert_at",
    "notify": "notify",
}
SCOPE_FIELDS = ("cluster", "hub", "usergroup", "username")
# How a change names each field: as the file and the CLI options do.
LABELS = {field: key for key, field in FILE_KEYS.items()}


class BudgetError(ValueError):
    """A budget, a budgets file or a budget command that must not be stored (one line)."""


@dataclass(frozen=True, kw_only=True)
class Budget:
    name: str
    cluster: str | None = None
    hub: str | None = None
    usergroup: str | None = None
    username: str | None = None
    amount: Decimal
    period: str = "month"
    start_date: dt.date | None = None
    alert_at: tuple[int, ...] = DEFAULT_ALERT_AT
    notify: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise BudgetError("a budget's name must not be empty")
        who = f"budget {self.name!r}"
        for field in SCOPE_FIELDS:
            value = getattr(self, field)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise BudgetError(f"{who}: {LABELS[field]} must be a non-empty name when given")
        set_ = object.__setattr__  # frozen: the canonical form is set once, here
        set_(self, "amount", _amount(self.amount, who))
        if self.period not in BUDGET_PERIODS:
            raise BudgetError(
                f"{who}: unknown period {self.period!r} (one of {', '.join(BUDGET_PERIODS)})"
            )
        if self.start_date is not None and (
            isinstance(self.start_date, dt.datetime) or not isinstance(self.start_date, dt.date)
        ):
            raise BudgetError(f"{who}: start must be a date (YYYY-MM-DD), got {self.start_date!r}")
        if self.period == "total" and self.start_date is None:
            raise BudgetError(
                f"{who}: period total needs a start date (--start, or start in a budgets file)"
            )
        if self.period != "total" and self.start_date is not None:
            raise BudgetError(
                f"{who}: a start date is only for period total, not {self.period} "
                "(calendar periods start on their first day)"
            )
        set_(self, "alert_at", _thresholds(self.alert_at, who))
        set_(self, "notify", _receivers(self.notify, who))

    @property
    def scope(self) -> str:
        """The scope as `key=value` pairs, or `everything`."""
        parts = [
            f"{LABELS[field]}={getattr(self, field)}"
            for field in SCOPE_FIELDS
            if getattr(self, field) is not None
        ]
        return " ".join(parts) or "everything"


def _amount(value, who: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise BudgetError(f"{who}: amount must be a number of USD, got {value!r}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise BudgetError(f"{who}: amount must be a number of USD, got {value!r}") from None
    if not amount.is_finite():
        raise BudgetError(f"{who}: amount must be a number of USD, got {value!r}")
    if amount <= 0:
        raise BudgetError(f"{who}: amount must be more than 0, got {amount}")
    if amount >= MAX_AMOUNT:
        raise BudgetError(f"{who}: amount must be less than {MAX_AMOUNT:,.0f} USD")
    if amount != amount.quantize(CENT, rounding=ROUND_DOWN):
        raise BudgetError(f"{who}: amount has more than 2 decimal places: {amount}")
    return amount.quantize(CENT)


def _thresholds(values, who: str) -> tuple[int, ...]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise BudgetError(f"{who}: alert_at must be a list of percentages, got {values!r}")
    values = list(values)
    if not values:
        raise BudgetError(f"{who}: alert_at needs at least one threshold")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or value not in THRESHOLDS:
            raise BudgetError(
                f"{who}: a threshold must be a whole percentage from 1 to 1000, got {value!r}"
            )
    return tuple(sorted(set(values)))


def _receivers(values, who: str) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise BudgetError(f"{who}: notify must be a list of receiver names, got {values!r}")
    values = list(values)
    for value in values:
        if not isinstance(value, str) or not value.strip():
            raise BudgetError(f"{who}: notify names must be non-empty strings")
        if "://" in value or "/" in value:
            # Never echo it: a webhook URL is a secret.
            raise BudgetError(
                f"{who}: notify takes receiver names of NOTIFY_WEBHOOK_URLS, not URLs "
                "(a webhook URL is a secret and never goes in a budget)"
            )
        if not RECEIVER_NAME.fullmatch(value):
            raise BudgetError(
                f"{who}: notify name {value!r} is not a receiver name of NOTIFY_WEBHOOK_URLS "
                "(letters, digits, '.', '_' and '-', starting with a letter or digit)"
            )
    return tuple(sorted(set(values)))


# --- text forms: the CLI's options -------------------------------------------------------------


def parse_date(text: str, what: str = "start") -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except (TypeError, ValueError):
        raise BudgetError(f"{what} is not a date in YYYY-MM-DD form: {text!r}") from None


def parse_thresholds(text: str) -> tuple[int, ...]:
    """`50,80,100` → (50, 80, 100); a value that is not a whole number is refused."""
    values = []
    for part in text.split(","):
        part = part.strip()
        if not (part.isascii() and part.isdigit()):
            raise BudgetError(
                f"a threshold must be a whole percentage from 1 to 1000, got {part!r}"
            )
        values.append(int(part))
    return tuple(values)


def parse_names(text: str) -> tuple[str, ...]:
    """`a,b` → ("a", "b"); blanks around names are dropped."""
    return tuple(part.strip() for part in text.split(","))


# --- the budgets file --------------------------------------------------------------------------


def read_budgets_file(path: str | Path) -> list[Budget]:
    """Every `[budget.NAME]` table of the TOML file at `path`, validated, sorted by name."""
    where = str(path)
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise BudgetError(
            f"{where}: cannot read the budgets file ({exc.strerror or exc})"
        ) from None
    except UnicodeDecodeError:
        raise BudgetError(f"{where}: the budgets file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise BudgetError(f"{where}: not valid TOML ({exc})") from None
    for key in document:
        if key != "budget":
            raise BudgetError(
                f"{where}: unknown top-level key {key!r} (a budgets file has only "
                "[budget.NAME] tables)"
            )
    tables = document.get("budget", {})
    if not isinstance(tables, dict):
        raise BudgetError(f"{where}: budget must be [budget.NAME] tables, one per budget")
    budgets = []
    for name, table in sorted(tables.items()):
        try:
            budgets.append(budget_from_table(name, table))
        except BudgetError as exc:
            raise BudgetError(f"{where}: {exc}") from None
    return budgets


def budget_from_table(name: str, table) -> Budget:
    """One `[budget.NAME]` table of the budgets file as a Budget."""
    if not isinstance(table, Mapping):
        raise BudgetError(f"budget {name!r} must be a table ([budget.{name}])")
    for key in table:
        if key not in FILE_KEYS:
            raise BudgetError(
                f"budget {name!r}: unknown key {key!r} (known: {', '.join(FILE_KEYS)})"
            )
    if "amount" not in table:
        raise BudgetError(f"budget {name!r}: amount is missing")
    values = {FILE_KEYS[key]: value for key, value in table.items()}
    if isinstance(values.get("amount"), float):
        values["amount"] = str(values["amount"])  # 500.1 as written, never through binary
    start = values.get("start_date")
    if isinstance(start, str):
        values["start_date"] = parse_date(start, f"budget {name!r}: start")
    for field in ("period", *SCOPE_FIELDS):
        if field in values and not isinstance(values[field], str):
            raise BudgetError(f"budget {name!r}: {LABELS[field]} must be a string")
    return Budget(name=name, **values)


# --- stored budgets ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """What writing `after` in place of `before` does to one budget (None: absent)."""

    before: Budget | None
    after: Budget | None

    @property
    def name(self) -> str:
        return (self.after or self.before).name

    @property
    def kind(self) -> str:
        if self.before is None:
            return "add"
        return "remove" if self.after is None else "change"

    @property
    def differences(self) -> tuple[str, ...]:
        """`amount 500.00 -> 600.00`, one per differing field (a change only)."""
        if self.kind != "change":
            return ()
        return tuple(
            f"{LABELS[f.name]} {_shown(f.name, getattr(self.before, f.name))} -> "
            f"{_shown(f.name, getattr(self.after, f.name))}"
            for f in fields(Budget)
            if getattr(self.before, f.name) != getattr(self.after, f.name)
        )

    def __str__(self) -> str:
        if self.kind == "remove":
            return f"remove {self.name}"
        if self.kind == "change":
            return f"change {self.name}: {', '.join(self.differences)}"
        return f"add {self.name}: {describe(self.after)}"


def describe(b: Budget) -> str:
    """`hub=hub-a, 500.00 USD per month, alert_at 50,80,100` (start and notify when given)."""
    period = f"total from {b.start_date}" if b.period == "total" else f"per {b.period}"
    text = f"{b.scope}, {b.amount} USD {period}, alert_at {_shown('alert_at', b.alert_at)}"
    if b.notify:
        text += f", notify {_shown('notify', b.notify)}"
    return text


def _shown(field: str, value) -> str:
    if value is None:
        return "any" if field in SCOPE_FIELDS else "none"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or "none"
    return str(value)


def difference(before: Budget | None, after: Budget | None) -> Change | None:
    return None if before == after else Change(before, after)


_SELECT = sa.select(*[budget.c[f.name] for f in fields(Budget)])


def list_budgets(conn: Connection) -> list[Budget]:
    """Every stored budget, by name."""
    rows = conn.execute(_SELECT.order_by(budget.c.name)).mappings()
    return [_from_row(row) for row in rows]


def _stored(conn: Connection, name: str) -> Budget | None:
    row = conn.execute(_SELECT.where(budget.c.name == name)).mappings().one_or_none()
    return None if row is None else _from_row(row)


def _from_row(row) -> Budget:
    values = dict(row)
    values["alert_at"] = tuple(values["alert_at"])
    values["notify"] = tuple(values["notify"])
    return Budget(**values)


def save_budget(conn: Connection, b: Budget) -> Change | None:
    """Add or replace one budget; None (and nothing written) when it is stored already."""
    _lock(conn)
    change = difference(_stored(conn, b.name), b)
    if change is not None:
        _upsert(conn, [b])
    return change


def remove_budget(conn: Connection, name: str) -> Change:
    """Remove the budget `name`; BudgetError when there is none."""
    _lock(conn)
    stored = _stored(conn, name)
    if stored is None:
        raise BudgetError(f"no budget named {name!r}")
    conn.execute(sa.delete(budget).where(budget.c.name == name))
    return Change(stored, None)


def apply_budgets(
    conn: Connection, desired: Iterable[Budget], *, dry_run: bool = False
) -> list[Change]:
    """Make the stored budgets exactly `desired`; the changes, by name (written unless dry_run).

    Nothing is written, not even `updated_at`, for a budget that is stored as desired.
    """
    wanted: dict[str, Budget] = {}
    for b in desired:
        if b.name in wanted:
            raise BudgetError(f"budget {b.name!r} is given twice")
        wanted[b.name] = b
    if not dry_run:
        _lock(conn)
    stored = {b.name: b for b in list_budgets(conn)}
    changes = [
        change
        for name in sorted(wanted.keys() | stored.keys())
        if (change := difference(stored.get(name), wanted.get(name))) is not None
    ]
    if dry_run or not changes:
        return changes
    removed = [c.name for c in changes if c.kind == "remove"]
    if removed:
        conn.execute(sa.delete(budget).where(budget.c.name.in_(removed)))
    written = [c.after for c in changes if c.after is not None]
    if written:
        _upsert(conn, written)
    return changes


def _lock(conn: Connection) -> None:
    # One writer of budgets at a time (until the caller's transaction ends): an apply reads
    # the stored set and writes the difference, which another writer must not change between.
    conn.execute(sa.text("LOCK TABLE budget IN SHARE ROW EXCLUSIVE MODE"))


def _upsert(conn: Connection, budgets: list[Budget]) -> None:
    statement = postgresql.insert(budget).values(
        [{f.name: _column_value(getattr(b, f.name)) for f in fields(Budget)} for b in budgets]
    )
    replaced = {f.name: statement.excluded[f.name] for f in fields(Budget) if f.name != "name"}
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[budget.c.name], set_={**replaced, "updated_at": sa.func.now()}
        )
    )


def _column_value(value):
    return list(value) if isinstance(value, tuple) else value
