"""The ``journeymine`` command line. Every command's defaults work on the bundled sample."""

from __future__ import annotations

import argparse
import errno
import gc
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date
from typing import NoReturn

from journeymine.api import STATUSES
from journeymine.cli_commands import (
    DEFAULT_JOURNEY,
    DEFAULT_LANDING,
    DEFAULT_OUT,
    DEFAULT_WAREHOUSE,
    cmd_compare,
    cmd_explain_account,
    cmd_explain_person,
    cmd_export,
    cmd_import_log,
    cmd_load,
    cmd_opportunities,
    cmd_paths,
    cmd_people,
    cmd_report,
    cmd_run,
    cmd_serve,
)
from journeymine.errors import JourneymineError
from journeymine.ingest.load import SOURCES


class Parser(argparse.ArgumentParser):
    """argparse with the product's error shape: one ``journeymine:`` line and exit code 1."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("journeymine").strip()
        where = f"{command}: " if command else ""
        self.exit(1, f"journeymine: {where}{message}; see `{self.prog} --help`\n")


def package_version() -> str:
    """The installed distribution's version; the source tree's when run uninstalled."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("journeymine")
    except PackageNotFoundError:
        from journeymine import __version__

        return __version__


def _add_load_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--landing", default=DEFAULT_LANDING, help="landing folder (<source>/...)")
    p.add_argument("--warehouse", default=DEFAULT_WAREHOUSE, help="DuckDB warehouse file")
    p.add_argument("--source", action="append", choices=SOURCES, help="only this source (repeat)")
    p.add_argument("--no-email-matching", action="store_true", help="do not merge persons on email")
    p.add_argument(
        "--max-user-ids-per-person",
        type=int,
        default=1,
        help="person-merge policy: how many product user ids one person may hold (1: two "
        "sign-ups sharing a mailbox stay two people; 2: a customer who signed up twice is one)",
    )
    p.add_argument("--since", type=date.fromisoformat, help="only files dated from (YYYY-MM-DD)")
    p.add_argument("--until", type=date.fromisoformat, help="only files dated up to (YYYY-MM-DD)")
    p.add_argument(
        "--reload-days",
        type=int,
        default=0,
        help="reload each source's last N days even if unchanged (GA4: 3)",
    )
    p.add_argument(
        "--force", action="store_true", help="reload the selected files even if unchanged"
    )


def _add_dask_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dask",
        help="mine on a Dask cluster: tcp://HOST:PORT of a running scheduler, or local:N for N "
        "local worker processes (needs the dask extra; --out must be reachable by every worker)",
    )
    p.add_argument("--shards", type=int, default=64, help="event-log shards for --dask")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command; each sets ``func``, the ``cmd_*`` that runs it."""
    parser = Parser(prog="journeymine", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"journeymine {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    _add_pipeline_commands(sub)
    _add_question_commands(sub)
    return parser


def _add_pipeline_commands(sub: argparse._SubParsersAction[Parser]) -> None:
    """The commands that build the warehouse and its reports (the nightly job and its steps)."""
    run = sub.add_parser("run", help="the nightly job through the Prefect flow")
    _add_load_options(run)
    run.add_argument("--journey", default=DEFAULT_JOURNEY, help="journey spec (TOML)")
    run.add_argument("--out", default=DEFAULT_OUT, help="folder for dashboard.html and exports")
    _add_dask_options(run)
    run.set_defaults(func=cmd_run)

    rep = sub.add_parser("report", help="recompute the analyses and the dashboard")
    rep.add_argument("--warehouse", default=DEFAULT_WAREHOUSE, help="DuckDB warehouse file")
    rep.add_argument("--journey", default=DEFAULT_JOURNEY, help="journey spec (TOML)")
    rep.add_argument("--out", default=DEFAULT_OUT, help="folder for dashboard.html and models")
    rep.add_argument(
        "--no-journey",
        action="store_true",
        help="no designed journey (an imported event log): discovery, the map and follow-ups only",
    )
    _add_dask_options(rep)
    rep.set_defaults(func=cmd_report)

    imp = sub.add_parser("import-log", help="load a XES / CSV / Parquet event log (source 'log')")
    imp.add_argument("file", help="the log: .xes, .xes.gz, .csv or .parquet")
    imp.add_argument("--case", default="case:concept:name", help="case id column")
    imp.add_argument("--activity", default="concept:name", help="activity column")
    imp.add_argument("--timestamp", default="time:timestamp", help="timestamp column")
    imp.add_argument("--resource", default=None, help="resource column (optional)")
    imp.add_argument("--lifecycle", default=None, help="lifecycle column (optional)")
    imp.add_argument("--warehouse", default=DEFAULT_WAREHOUSE, help="DuckDB warehouse file")
    imp.set_defaults(func=cmd_import_log)

    srv = sub.add_parser("serve", help="serve the nightly flow on its cron schedule")
    srv.add_argument("--landing", default=DEFAULT_LANDING, help="landing folder (<source>/...)")
    srv.add_argument("--warehouse", default=DEFAULT_WAREHOUSE, help="DuckDB warehouse file")
    srv.add_argument("--journey", default=DEFAULT_JOURNEY, help="journey spec (TOML)")
    srv.add_argument("--out", default=DEFAULT_OUT, help="folder for dashboard.html and exports")
    srv.add_argument("--cron", default="0 2 * * *", help="cron schedule (default: 02:00)")
    srv.add_argument("--timezone", default="UTC", help="time zone of the schedule")
    srv.set_defaults(func=cmd_serve)

    ld = sub.add_parser("load", help="load landing files into the warehouse (no Prefect)")
    _add_load_options(ld)
    ld.add_argument(
        "--journey",
        default=None,
        help="journey spec (TOML) whose [sources.survey] maps the survey CSV's columns "
        f"(default: {DEFAULT_JOURNEY} if it exists)",
    )
    ld.set_defaults(func=cmd_load)


def _add_question_commands(sub: argparse._SubParsersAction[Parser]) -> None:
    """The commands that answer a question from a built warehouse (who, why, what next)."""
    exp = sub.add_parser("export", help="export the journeys as XES or OCEL 2.0 (SQLite)")
    exp.add_argument("path", help="output file, e.g. out/journeys.xes or out/journeys.sqlite")
    exp.add_argument("--format", choices=["xes", "ocel"], default="xes")
    exp.add_argument("--warehouse", default=DEFAULT_WAREHOUSE)
    exp.set_defaults(func=cmd_export)

    ppl = sub.add_parser("people", help="the persons behind a funnel figure, with journeys")
    ppl.add_argument("stage", help="stage name, e.g. demo_held")
    ppl.add_argument("--status", choices=STATUSES)
    ppl.add_argument("--segment", help="e.g. company_size=1-10")
    ppl.add_argument("--limit", type=int, default=10, help="how many journeys to print")
    ppl.add_argument("--warehouse", default=DEFAULT_WAREHOUSE)
    ppl.set_defaults(func=cmd_people)

    ex = sub.add_parser(
        "explain-person", help="which links merged a person, and which were refused"
    )
    ex.add_argument("person_id", type=int)
    ex.add_argument("--warehouse", default=DEFAULT_WAREHOUSE)
    ex.set_defaults(func=cmd_explain_person)

    acc = sub.add_parser("explain-account", help="which evidence joined an account's systems")
    acc.add_argument("account_id", type=int)
    acc.add_argument("--warehouse", default=DEFAULT_WAREHOUSE)
    acc.set_defaults(func=cmd_explain_account)

    pth = sub.add_parser("paths", help="the most frequent paths around a step")
    where = pth.add_mutually_exclusive_group(required=True)
    where.add_argument("--after", help="paths after the first ACTIVITY (a glob)")
    where.add_argument("--before", help="paths before the first ACTIVITY (a glob)")
    where.add_argument("--dropped-from", help="what people who dropped out of STAGE did next")
    pth.add_argument("--steps", type=int, default=3, help="steps per path")
    pth.add_argument("--top", type=int, default=20, help="how many paths")
    pth.add_argument("--warehouse", default=DEFAULT_WAREHOUSE)
    pth.set_defaults(func=cmd_paths)

    opp = sub.add_parser("opportunities", help="the ranked fixes: what to do first, and its gain")
    opp.add_argument("--top", type=int, default=10, help="how many to print")
    opp.add_argument("--warehouse", default=DEFAULT_WAREHOUSE)
    opp.set_defaults(func=cmd_opportunities)

    cmp = sub.add_parser("compare", help="how two segments' journeys differ (edges, variants)")
    cmp.add_argument("segment", help="segment attribute, e.g. company_size")
    cmp.add_argument("--a", action="append", required=True, help="a value of group A (repeat)")
    cmp.add_argument("--b", action="append", required=True, help="a value of group B (repeat)")
    cmp.add_argument("--alpha", type=float, default=0.05, help="false-discovery rate")
    cmp.add_argument("--top", type=int, default=20, help="how many rows to print")
    cmp.add_argument("--all", action="store_true", help="also differences that are not significant")
    cmp.add_argument("--warehouse", default=DEFAULT_WAREHOUSE)
    cmp.set_defaults(func=cmd_compare)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, --version, or a bad argument (already told)
        return stop.code if isinstance(stop.code, int) else 1
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except BrokenPipeError:  # the reader went away (`| head`): nothing left to tell it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # the user gets one line; -v adds the traceback for a bug report
        if args.verbose:
            logging.exception("journeymine failed")
        print(f"journeymine: {one_line(failure_message(exc))}", file=sys.stderr)
        return 1
    finally:
        # Free what a run leaves in reference cycles (Prefect run contexts copied into threads,
        # DuckDB objects) while every module is alive. Left to the interpreter's last
        # collection they were freed after pydantic_core was torn down (a --dask run crashed
        # with exit 139 after its work was done) and DuckDB's bindings reported leaks.
        gc.collect()


def failure_message(exc: Exception) -> str:
    """What failed and what to do, for any error (ours name the file and key already)."""
    if isinstance(exc, JourneymineError):
        return str(exc)
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        hint = {
            errno.ENOSPC: "free some space or choose another disk",
            errno.EACCES: "check the permissions or choose another path",
            errno.EROFS: "the file system is read-only; choose another path",
            errno.ENOENT: "check the path",
        }.get(exc.errno or 0, "check the path and try again")
        return f"{where}{exc.strerror or exc}; {hint}"
    import duckdb

    if isinstance(exc, duckdb.Error):
        return f"the warehouse refused the work: {exc}; check the --warehouse file"
    return f"unexpected {type(exc).__name__}: {exc}; rerun with -v and report it with the output"


def one_line(text: str) -> str:
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
