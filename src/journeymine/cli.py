"""The ``journeymine`` command line. Every command's defaults work on the bundled sample."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

from journeymine.errors import JourneymineError
from journeymine.load import SOURCES, LoadReport, Selection

DEFAULT_LANDING = "data/sample/landing"
DEFAULT_WAREHOUSE = "out/warehouse.duckdb"
DEFAULT_JOURNEY = "data/sample/journey.toml"
DEFAULT_OUT = "out"


def _print_report(report: LoadReport, warehouse: str) -> None:
    t = report.totals()
    print(
        f"files loaded: {len(report.files)} (already loaded, skipped: {report.skipped_files})\n"
        f"rows read {t['rows_read']:,} = loaded {t['rows_loaded']:,} + duplicates "
        f"{t['duplicates']:,} + quarantined {t['quarantined']:,}\n"
        f"persons: {report.persons:,}  new merges: {report.new_merges:,}  "
        f"touchpoints: {report.touchpoints:,}\n"
        f"warehouse: {Path(warehouse).resolve()}"
    )
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from pipelines.nightly import nightly

    report = nightly(
        landing=args.landing,
        warehouse_path=args.warehouse,
        journey=args.journey,
        out=args.out,
        sources=args.source or None,
        match_on_email=not args.no_email_matching,
        since=args.since,
        until=args.until,
        reload_days=args.reload_days,
        force=args.force,
    )
    _print_report(report, args.warehouse)
    print(f"dashboard: {(Path(args.out) / 'dashboard.html').resolve()}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from pipelines.nightly import serve_nightly

    serve_nightly(
        args.cron,
        args.timezone,
        landing=args.landing,
        warehouse_path=args.warehouse,
        journey=args.journey,
        out=args.out,
    )
    return 0


def _progress_bar() -> tuple[Callable[[int, int, str], None] | None, Callable[[], None]]:
    """A progress bar on an interactive terminal; nothing under CI or when piped."""
    if os.environ.get("CI") or not sys.stderr.isatty():
        return None, lambda: None
    from rich.progress import Progress

    bar = Progress(transient=True)
    task = bar.add_task("parsing", total=None)
    bar.start()

    def update(done: int, total: int, current: str) -> None:
        bar.update(task, completed=done, total=total, description=f"parsing {current}"[:60])

    return update, bar.stop


def cmd_load(args: argparse.Namespace) -> int:
    from journeymine.load import load_landing

    progress, stop = _progress_bar()
    try:
        report = load_landing(
            args.warehouse,
            args.landing,
            sources=args.source or None,
            match_on_email=not args.no_email_matching,
            progress=progress,
            selection=Selection(args.since, args.until, args.reload_days, args.force),
        )
    finally:
        stop()
    _print_report(report, args.warehouse)
    return 1 if report.errors else 0


def cmd_report(args: argparse.Namespace) -> int:
    from journeymine.analyse import analyse_warehouse
    from journeymine.dashboard import export_report

    result = analyse_warehouse(args.warehouse, args.journey, args.out)
    for warning in result.warnings:
        print(f"warning: journey spec: {warning}", file=sys.stderr)
    path = export_report(args.warehouse, args.journey, args.out)
    print(
        f"journeys: {result.cases:,} cases, {result.variants:,} variants, "
        f"{result.dfg_edges:,} directly-follows edges, {result.followups:,} follow-ups, "
        f"{result.conforming_share:.1%} conform to the designed journey\n"
        f"dashboard: {path.resolve()}"
    )
    return 0


def cmd_import_log(args: argparse.Namespace) -> int:
    from journeymine.load_log import load_event_log
    from journeymine.mining.eventlog import EventLogMapping, read_event_log

    mapping = EventLogMapping(
        args.case, args.activity, args.timestamp, args.resource, args.lifecycle
    )
    path = Path(args.file)
    table = read_event_log(path, mapping)
    from journeymine.load import sha256_of

    report = load_event_log(args.warehouse, table, path.name, sha256=sha256_of(path))
    _print_report(report, args.warehouse)
    return 0


def cmd_people(args: argparse.Namespace) -> int:
    from journeymine.api import open_warehouse

    with open_warehouse(args.warehouse) as wh:
        people = wh.people(args.stage, args.status, args.segment)
        print(
            f"{len(people):,} persons at stage {args.stage!r}"
            + (f" with status {args.status!r}" if args.status else "")
            + (f" in segment {args.segment!r}" if args.segment else "")
        )
        journeys = wh.journeys(people.person_id.head(args.limit).tolist())
        for row in journeys.itertuples():
            print(f"person {row.person_id}: " + " → ".join(row.activities))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from journeymine.mining import export
    from journeymine.warehouse import connect

    con = connect(args.warehouse, read_only=True)
    try:
        write = export.write_xes if args.format == "xes" else export.write_ocel
        path = write(con, args.path)
    finally:
        con.close()
    print(f"wrote {Path(path).resolve()}")
    return 0


def cmd_explain_person(args: argparse.Namespace) -> int:
    from journeymine import identity, warehouse

    con = warehouse.connect(args.warehouse, read_only=True)
    frame = identity.explain_person(con, args.person_id)
    if frame.empty:
        print(f"person {args.person_id}: a single identifier, nothing was merged")
    else:
        print(frame.to_string(index=False))
    return 0


def _add_load_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--landing", default=DEFAULT_LANDING, help="landing folder (<source>/...)")
    p.add_argument("--warehouse", default=DEFAULT_WAREHOUSE, help="DuckDB warehouse file")
    p.add_argument("--source", action="append", choices=SOURCES, help="only this source (repeat)")
    p.add_argument("--no-email-matching", action="store_true", help="do not merge persons on email")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="journeymine", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="the nightly job through the Prefect flow")
    _add_load_options(run)
    run.add_argument("--journey", default=DEFAULT_JOURNEY, help="journey spec (TOML)")
    run.add_argument("--out", default=DEFAULT_OUT, help="folder for dashboard.html and exports")
    run.set_defaults(func=cmd_run)

    rep = sub.add_parser("report", help="recompute the analyses and the dashboard")
    rep.add_argument("--warehouse", default=DEFAULT_WAREHOUSE, help="DuckDB warehouse file")
    rep.add_argument("--journey", default=DEFAULT_JOURNEY, help="journey spec (TOML)")
    rep.add_argument("--out", default=DEFAULT_OUT, help="folder for dashboard.html and models")
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
    ld.set_defaults(func=cmd_load)

    exp = sub.add_parser("export", help="export the journeys as XES or OCEL 2.0 (SQLite)")
    exp.add_argument("path", help="output file, e.g. out/journeys.xes or out/journeys.sqlite")
    exp.add_argument("--format", choices=["xes", "ocel"], default="xes")
    exp.add_argument("--warehouse", default=DEFAULT_WAREHOUSE)
    exp.set_defaults(func=cmd_export)

    ppl = sub.add_parser("people", help="the persons behind a funnel figure, with journeys")
    ppl.add_argument("stage", help="stage name, e.g. demo_held")
    ppl.add_argument("--status", choices=["converted", "dropped", "open", "final"])
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except JourneymineError as exc:
        print(f"journeymine: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
