"""The `hubcost` command: migrate, serve, run, etl, backfill, budget; the one module above `etl` and `api`.

Each subcommand reads the settings once, builds its engine and clients here at the edge, and
hands them to the code that does the work. A bad setting or bad argument prints one line
naming it and exits 2.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import signal
import sys
import threading

from core.budgets import BudgetError
from core.settings import Settings, SettingsError
from hubcost import budget_commands

log = logging.getLogger("hubcost")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143, as a shell reports a process ended by SIGTERM


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date in YYYY-MM-DD form: {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    from etl.sources.configured import source_names

    parser = argparse.ArgumentParser(
        prog="hubcost", description="Daily cost attribution for JupyterHub clusters."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("migrate", help="bring the database to the current schema")

    serve = sub.add_parser("serve", help="serve the HTTP API only")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)

    run = sub.add_parser("run", help="migrate, then the scheduler and the API in one process")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8080)

    etl = sub.add_parser("etl", help="one ETL run now for every configured source")
    etl.add_argument("--cluster", metavar="NAME", help="only this cluster's sources")

    backfill = sub.add_parser(
        "backfill", help="reload every chunk of a window (both ends inclusive)"
    )
    backfill.add_argument("--from", dest="first", type=_date, required=True, metavar="YYYY-MM-DD")
    backfill.add_argument("--to", dest="last", type=_date, required=True, metavar="YYYY-MM-DD")
    backfill.add_argument("--source", choices=(*source_names(), "all"), default="all")
    backfill.add_argument(
        "--resume", action="store_true", help="skip chunks that already succeeded in the window"
    )
    backfill.add_argument("--cluster", metavar="NAME", help="only this cluster's sources")
    budget_commands.add_budget_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"hubcost: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from core.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    if args.command == "backfill" and args.first > args.last:
        print("hubcost: --from must not be after --to", file=sys.stderr)
        return EXIT_USAGE
    from core.embedded import EmbeddedUnavailable
    from etl.jobs import UnknownCluster
    from etl.stopping import Terminated

    try:
        return COMMANDS[args.command](settings, args)
    except KeyboardInterrupt:
        return 130
    except Terminated:
        log.warning("stopped by SIGTERM: the chunk in flight was rolled back, marked interrupted")
        return EXIT_TERMINATED
    except (EmbeddedUnavailable, UnknownCluster, BudgetError) as exc:
        print(f"hubcost: {exc}", file=sys.stderr)
        return EXIT_USAGE


def cmd_migrate(settings: Settings, args) -> int:
    from core import bootstrap, migrate

    engine = bootstrap.writer_engine(settings)
    try:
        revision = migrate.upgrade(
            engine,
            api_db_role=settings.api_db_role,
            # Rows from before clusters existed belong to the first configured one.
            cluster_name=settings.clusters[0].name,
        )
    finally:
        engine.dispose()
    log.info("database schema at revision %s", revision)
    return EXIT_OK


def first_screen(settings: Settings, *, host: str, port: int, scheduler: bool) -> str:
    """What `hubcost serve|run` prints once it is about to listen: where, from what, how to stop."""
    from sqlalchemy.engine import make_url

    open_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    if settings.database_url is None:
        database = f"embedded PostgreSQL in {settings.embedded_data_dir} (stopped with hubcost)"
    else:
        url = make_url(settings.database_url.reveal())
        database = f"PostgreSQL {url.database or ''} on {url.host or 'a local socket'}"
    if settings.demo:
        data = "DEMO: synthetic costs and usage (set CLUSTER_NAME or PROMETHEUS_URL for real ones)"
    elif settings.clusters_file is not None:
        names = ", ".join(cluster.name for cluster in settings.clusters)
        data = f"{len(settings.clusters)} clusters of {settings.clusters_file}: {names}"
    else:
        data = (
            ", ".join(
                name
                for name, on in (
                    (f"Cost Explorer for {settings.cluster_name}", settings.costs_enabled),
                    (f"Prometheus at {settings.prometheus_url}", settings.usage_enabled),
                )
                if on
            )
            or "no source configured: serving what the database holds"
        )
    if not scheduler:
        data += "; loaded by `hubcost etl`, not by this process"
    lines = [
        f"hubcost is listening on http://{host}:{port}",
        f"  open      http://{open_host}:{port}/ui/  (the cost pages, in a browser)",
        f"  api       http://{open_host}:{port}/  (the JSON index; /openapi.json lists every endpoint)",
        f"  pages     {pages_access(settings)}",
        f"  database  {database}",
        f"  data      {data}",
        "  stop      Ctrl-C",
    ]
    return "\n".join(lines)


def pages_access(settings: Settings) -> str:
    """Who may see the pages, in the words of docs/pages.md ("Who may see what")."""
    if settings.ui_access == "jupyterhub":
        hub = settings.jupyterhub
        return (
            f"JupyterHub sign-in, at {hub.service_prefix}ui/ through the hub; each user sees "
            f"their own costs on {settings.ui_hub}, admins everything"
        )
    if settings.ui_access == "token":
        return "API_TOKEN asked once by a form, then a session cookie"
    return "open to anyone who reaches this port (set API_TOKEN to ask for a token)"


def cmd_serve(settings: Settings, args) -> int:
    from api.server import serve

    print(first_screen(settings, host=args.host, port=args.port, scheduler=False), flush=True)

    # uvicorn stops gracefully on SIGTERM and then raises it again: ours turns that into
    # exit 143 through `main`, so exit handlers (the embedded server's stop) still run.
    with stop_on_sigterm():
        serve(settings, host=args.host, port=args.port)
    return EXIT_OK


def cmd_run(settings: Settings, args) -> int:
    from api.server import serve
    from etl.scheduler import start_scheduler, stop_scheduler

    if cmd_migrate(settings, args) != EXIT_OK:
        return EXIT_FAILED
    # From the first scheduled run on, a SIGTERM stops the server and then the scheduler,
    # whose chunk in flight is recorded interrupted (uvicorn holds SIGTERM while it serves).
    with stop_on_sigterm():
        scheduler = start_scheduler(settings)
        try:
            screen = first_screen(settings, host=args.host, port=args.port, scheduler=True)
            print(screen, flush=True)
            serve(settings, host=args.host, port=args.port)
        except BaseException as exc:
            stop_scheduler(scheduler, settings, cause=exc)
            raise
        stop_scheduler(scheduler, settings, cause=None)
    return EXIT_OK


@contextlib.contextmanager
def stop_on_sigterm():
    """While the block runs, SIGTERM (a pod stop) raises `Terminated` in the main thread, once.

    The chunk in flight rolls back, its run-log row says `interrupted by SIGTERM`, and the run
    lock is released, well within Kubernetes' grace period. A second SIGTERM kills at once.
    """
    from etl.stopping import Terminated

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_etl(settings: Settings, args) -> int:
    from etl.jobs import etl_command

    with stop_on_sigterm():
        return etl_command(settings, cluster=args.cluster)


def cmd_backfill(settings: Settings, args) -> int:
    from etl.jobs import backfill_command

    with stop_on_sigterm():
        return backfill_command(
            settings,
            first=args.first,
            last=args.last,
            source=args.source,
            resume=args.resume,
            cluster=args.cluster,
        )


COMMANDS = {
    "migrate": cmd_migrate,
    "serve": cmd_serve,
    "run": cmd_run,
    "etl": cmd_etl,
    "backfill": cmd_backfill,
    "budget": budget_commands.cmd_budget,
}

if __name__ == "__main__":
    sys.exit(main())
