"""`hubcost budget set|list|remove|apply`: the operator's budgets (docs/budgets.md §4).

Every argument and the budgets file are validated before anything connects; a bad one is a
`BudgetError`, which `hubcost.cli.main` prints as one line with exit status 2. Each command
writes in one transaction of the writer engine, so a refused one leaves the table as it was.
"""

from __future__ import annotations

import argparse
import contextlib
import json

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
from core.schema import DEFAULT_ALERT_AT
from core.settings import Settings

EXIT_OK = 0


def add_budget_parser(sub) -> None:
    """The `budget` subcommand group, under the CLI's subparsers."""
    group = sub.add_parser("budget", help="set, list, remove or apply budgets")
    actions = group.add_subparsers(dest="budget_command", required=True, metavar="ACTION")

    set_ = actions.add_parser("set", help="add a budget or replace it whole")
    set_.add_argument("name", metavar="NAME")
    set_.add_argument("--amount", required=True, metavar="USD")
    # Validated by core.budgets (one line, exit 2), not by argparse choices.
    set_.add_argument("--period", default="month", metavar="month|quarter|year|total")
    set_.add_argument("--start", metavar="YYYY-MM-DD", help="first day; only with total")
    set_.add_argument("--cluster", metavar="C")
    set_.add_argument("--hub", metavar="H")
    set_.add_argument("--group", metavar="G")
    set_.add_argument("--user", metavar="U")
    set_.add_argument(
        "--alert-at",
        metavar="PCT,...",
        default=",".join(map(str, DEFAULT_ALERT_AT)),
        help="thresholds in percent of the amount (default %(default)s)",
    )
    set_.add_argument("--notify", metavar="NAME,...", help="receivers of NOTIFY_WEBHOOK_URLS")

    listing = actions.add_parser("list", help="every budget")
    listing.add_argument("--json", action="store_true", help="a JSON array instead of a table")

    remove = actions.add_parser("remove", help="remove a budget")
    remove.add_argument("name", metavar="NAME")

    apply = actions.add_parser("apply", help="make the budgets exactly those of a TOML file")
    apply.add_argument("file", metavar="FILE.toml")
    apply.add_argument("--dry-run", action="store_true", help="print the changes, write nothing")


def cmd_budget(settings: Settings, args: argparse.Namespace) -> int:
    return ACTIONS[args.budget_command](settings, args)


def cmd_set(settings: Settings, args) -> int:
    wanted = budget_from_args(args)
    with _transaction(settings) as conn:
        change = save_budget(conn, wanted)
    print(change or "no changes")
    return EXIT_OK


def budget_from_args(args) -> Budget:
    return Budget(
        name=args.name,
        cluster=args.cluster,
        hub=args.hub,
        usergroup=args.group,
        username=args.user,
        amount=args.amount,
        period=args.period,
        start_date=None if args.start is None else parse_date(args.start, "--start"),
        alert_at=parse_thresholds(args.alert_at),
        notify=() if args.notify is None else parse_names(args.notify),
    )


def cmd_list(settings: Settings, args) -> int:
    with _connection(settings) as conn:
        budgets = list_budgets(conn)
    print(budgets_json(budgets) if args.json else budgets_table(budgets))
    return EXIT_OK


def cmd_remove(settings: Settings, args) -> int:
    with _transaction(settings) as conn:
        change = remove_budget(conn, args.name)
    print(change)
    return EXIT_OK


def cmd_apply(settings: Settings, args) -> int:
    desired = read_budgets_file(args.file)
    opened = _connection if args.dry_run else _transaction
    with opened(settings) as conn:
        changes = apply_budgets(conn, desired, dry_run=args.dry_run)
    for change in changes:
        print(change)
    if not changes:
        print("no changes")
    elif args.dry_run:
        print(f"dry run: {len(changes)} change(s) not written")
    return EXIT_OK


ACTIONS = {"set": cmd_set, "list": cmd_list, "remove": cmd_remove, "apply": cmd_apply}

COLUMNS = ("name", "scope", "amount", "period", "start", "alert_at", "notify")


def budgets_table(budgets: list[Budget]) -> str:
    """A plain table, one line per budget; amounts right-aligned."""
    if not budgets:
        return "no budgets"
    rows = [
        (
            b.name,
            b.scope,
            f"{b.amount}",
            b.period,
            "" if b.start_date is None else b.start_date.isoformat(),
            ",".join(map(str, b.alert_at)),
            ",".join(b.notify),
        )
        for b in budgets
    ]
    widths = [max(len(row[i]) for row in [COLUMNS, *rows]) for i in range(len(COLUMNS))]

    def line(row) -> str:
        cells = [
            cell.rjust(width) if i == COLUMNS.index("amount") else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return "\n".join(line(row) for row in [COLUMNS, *rows])


def budgets_json(budgets: list[Budget]) -> str:
    """The budgets as the view `budgets` names its columns; amount as an exact string."""
    return json.dumps(
        [
            {
                "name": b.name,
                "cluster": b.cluster,
                "hub": b.hub,
                "usergroup": b.usergroup,
                "username": b.username,
                "amount": str(b.amount),
                "period": b.period,
                "start_date": None if b.start_date is None else b.start_date.isoformat(),
                "alert_at": list(b.alert_at),
                "notify": list(b.notify),
            }
            for b in budgets
        ],
        indent=2,
    )


@contextlib.contextmanager
def _connection(settings: Settings):
    from core import bootstrap

    engine = bootstrap.writer_engine(settings)
    try:
        with engine.connect() as conn:
            _check_schema(conn)
            yield conn
    finally:
        engine.dispose()


@contextlib.contextmanager
def _transaction(settings: Settings):
    """One transaction: committed when the block ends, rolled back when it raises."""
    with _connection(settings) as conn, conn.begin():
        yield conn


def _check_schema(conn) -> None:
    from core import migrate

    found, expected = migrate.current_revision(conn), migrate.head_revision()
    conn.rollback()
    if found != expected:
        raise BudgetError(
            f"the database schema is at revision {found or 'none'}, not {expected}: "
            "run `hubcost migrate` first"
        )
