"""What each ``journeymine`` command does (``cmd_<name>``, given the parsed arguments; ``cli``
builds the parser and turns failures into one line), and the checks they share: folders we
can write to, files that exist, a warehouse a report can be built from."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from journeymine.errors import UsageError, WarehouseError
from journeymine.ingest.load import LoadReport, Selection
from journeymine.spec import JourneySpec

# Every command's defaults work on the bundled sample.
DEFAULT_LANDING = "data/sample/landing"
DEFAULT_WAREHOUSE = "out/warehouse.duckdb"
DEFAULT_JOURNEY = "data/sample/journey.toml"
DEFAULT_OUT = "out"


def writable_folder(folder: str | Path, option: str, *, create: bool = True) -> Path:
    """A folder we can write into (created if ``create``), checked before any long work."""
    path = Path(folder)
    try:
        if create:
            path.mkdir(parents=True, exist_ok=True)
        elif not path.is_dir():
            raise UsageError(f"{option} {path}: no such folder; create it or choose another")
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise UsageError(
            f"{option} {path}: cannot write there ({exc.strerror}); choose a folder you can "
            "write to"
        ) from None
    return path


def existing_file(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        state = "is a folder" if path.is_dir() else "no such file"
        raise UsageError(f"{path}: {state}; pass the {what} file")
    return path


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


def _slow_start_ok() -> None:
    """The run's temporary Prefect API may need more than Prefect's default 20 s to start on a
    busy machine (a nightly run beside other jobs, or with --dask the workers starting too);
    a user's own setting wins (read before Prefect is first imported)."""
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def cmd_run(args: argparse.Namespace) -> int:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    _slow_start_ok()
    from journeymine.pipelines.nightly import nightly, stop_background_loop
    from journeymine.spec import load_spec

    load_spec(args.journey)  # a bad spec, out folder or cluster stops the night before the load
    writable_folder(args.out, "--out")
    if args.dask:
        from journeymine.pipelines.scale import task_runner

        task_runner(args.dask)  # says now if the scheduler cannot be reached
    try:
        report = nightly(
            landing=args.landing,
            warehouse_path=args.warehouse,
            journey=args.journey,
            out=args.out,
            sources=args.source or None,
            match_on_email=not args.no_email_matching,
            max_user_ids_per_person=args.max_user_ids_per_person,
            since=args.since,
            until=args.until,
            reload_days=args.reload_days,
            force=args.force,
            dask=args.dask,
            shards=args.shards,
        )
    finally:  # one run per process: release what Prefect's loop holds of it before exit
        stop_background_loop()
    _print_report(report, args.warehouse)
    print(f"dashboard: {(Path(args.out) / 'dashboard.html').resolve()}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from journeymine.pipelines.nightly import serve_nightly

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


def _load_options(journey: str | None) -> dict[str, dict[str, Any]]:
    """The sources' parser options (the survey's column mapping) from the journey spec: the one
    named, else the default one if it exists; none without a spec (a survey file then says
    which spec key it needs)."""
    from journeymine.spec import load_spec, source_options

    if journey is None:
        journey = DEFAULT_JOURNEY if Path(DEFAULT_JOURNEY).is_file() else None
    return source_options(load_spec(journey)) if journey else {}


def cmd_load(args: argparse.Namespace) -> int:
    from journeymine.ingest.load import load_landing

    options = _load_options(args.journey)  # a bad spec stops before the load
    progress, stop = _progress_bar()
    try:
        report = load_landing(
            args.warehouse,
            args.landing,
            sources=args.source or None,
            match_on_email=not args.no_email_matching,
            max_user_ids_per_person=args.max_user_ids_per_person,
            progress=progress,
            selection=Selection(args.since, args.until, args.reload_days, args.force),
            options=options,
        )
    finally:
        stop()
    _print_report(report, args.warehouse)
    return 1 if report.errors else 0


def cmd_report(args: argparse.Namespace) -> int:
    from journeymine.analyses.runner import analyse_warehouse
    from journeymine.dashboard import export_report
    from journeymine.spec import load_spec

    journey = None if args.no_journey else args.journey
    spec = load_spec(journey) if journey else JourneySpec(name=Path(args.warehouse).stem)
    check_report_inputs(args.warehouse, spec, journey or "--no-journey")
    writable_folder(args.out, "--out")
    folder = people = None
    if args.dask:  # the graph, variants, funnel entries and follow-ups on the cluster
        _slow_start_ok()
        from journeymine.pipelines.scale import cluster, discover_on_cluster, shared_api
        from journeymine.pipelines.scale_people import run_people_on_cluster

        with cluster(args.dask) as address, shared_api():
            folder = discover_on_cluster(args.warehouse, spec.case, args.out, address, args.shards)
            work = Path(args.out) / "sharded"
            people = run_people_on_cluster(args.warehouse, journey, work, address, args.shards)
    result = analyse_warehouse(args.warehouse, journey, args.out, folder, people)
    for warning in result.warnings:
        print(f"warning: journey spec: {warning}", file=sys.stderr)
    path = export_report(args.warehouse, journey, args.out)
    conform = (
        f", {result.conforming_share:.1%} conform to the designed journey" if spec.stages else ""
    )
    print(
        f"journeys: {result.cases:,} cases, {result.variants:,} variants, "
        f"{result.dfg_edges:,} directly-follows edges, {result.followups:,} follow-ups{conform}"
        f"\ndashboard: {path.resolve()}"
    )
    return 0


def check_report_inputs(warehouse_path: str, spec: JourneySpec, journey: str) -> None:
    """Refuse what no report can be built from: a corrupt or empty warehouse, a case notion
    without ids (``case = "deal"`` on data without deals), stages that match nothing."""
    from journeymine.api import connect_read_only
    from journeymine.mining.eventlog import CASE_COLUMNS
    from journeymine.warehouse import table_exists

    con = connect_read_only(warehouse_path)
    try:
        if not table_exists(con, "touchpoints"):
            raise WarehouseError(
                f"{warehouse_path}: the warehouse is empty; run `journeymine load` first"
            )
        column = CASE_COLUMNS[spec.case]  # a fixed column name, chosen by the validated notion
        with_case = con.execute(f"SELECT count({column}) FROM touchpoints").fetchall()[0][0]
        activities = [
            a for (a,) in con.execute("SELECT DISTINCT activity FROM touchpoints").fetchall()
        ]
    finally:
        con.close()
    if not activities:
        raise WarehouseError(f"{warehouse_path}: no touchpoints; load some exports first")
    if not with_case:
        raise UsageError(
            f"{warehouse_path}: journey spec key case = {spec.case!r}, but no touchpoint has "
            f"a {column}; use case = 'person' or load data that has them"
        )
    _check_stages_match(spec, journey, sorted(activities))


def _check_stages_match(spec: JourneySpec, journey: str, activities: list[str]) -> None:
    """A spec whose stages match no activity at all is for other data: say so, with examples
    of the activities there are (a few unmatched patterns are only warnings)."""
    import fnmatch

    patterns = [p for stage in spec.stages for p in stage.activities]
    if patterns and not any(fnmatch.fnmatchcase(a, p) for a in activities for p in patterns):
        shown = ", ".join(activities[:12]) + (", ..." if len(activities) > 12 else "")
        raise UsageError(
            f"{journey}: stages: no pattern matches any activity in the warehouse; the "
            f"activities include {shown} (see docs/activities.md)"
        )


def cmd_import_log(args: argparse.Namespace) -> int:
    from journeymine.ingest.import_log import load_event_log
    from journeymine.mining.eventlog import EventLogMapping, read_event_log

    mapping = EventLogMapping(
        args.case, args.activity, args.timestamp, args.resource, args.lifecycle
    )
    path = existing_file(args.file, "event log")
    table = read_event_log(path, mapping)
    from journeymine.ingest.load import sha256_of

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
    from journeymine.api import connect_read_only
    from journeymine.mining import export

    target = Path(args.path)
    if target.is_dir():
        raise UsageError(f"{target}: is a folder; give the file to write, e.g. {target}/x.xes")
    writable_folder(target.parent, "export into", create=False)
    con = connect_read_only(args.warehouse)
    try:
        write = export.write_xes if args.format == "xes" else export.write_ocel
        path = write(con, args.path)
    finally:
        con.close()
    print(f"wrote {Path(path).resolve()}")
    return 0


def cmd_explain_person(args: argparse.Namespace) -> int:
    from journeymine.api import open_warehouse

    with open_warehouse(args.warehouse) as wh:
        frame = wh.explain_person(args.person_id)
    if frame.empty:
        print(f"person {args.person_id}: a single identifier, nothing was merged")
    else:
        print(frame.to_string(index=False))
    return 0


def cmd_explain_account(args: argparse.Namespace) -> int:
    from journeymine.api import connect_read_only
    from journeymine.canonical.identity import explain_account

    con = connect_read_only(args.warehouse)
    try:
        print(explain_account(con, args.account_id))
    finally:
        con.close()
    return 0


def cmd_paths(args: argparse.Namespace) -> int:
    from journeymine.analyses.paths import paths
    from journeymine.api import connect_read_only

    direction, anchor = next(
        (d, a)
        for d, a in (("after", args.after), ("before", args.before), ("dropped", args.dropped_from))
        if a is not None
    )
    con = connect_read_only(args.warehouse)
    try:
        frame = paths(con, anchor, direction, steps=args.steps, top=args.top)
    finally:
        con.close()
    print(f"{direction} {anchor!r}: the {len(frame)} most frequent {args.steps}-step paths")
    for row in frame.itertuples():
        print(f"{row.people:>8,}  {row.share:6.1%}  {row.path}")
    return 0


def cmd_opportunities(args: argparse.Namespace) -> int:
    from journeymine.api import connect_read_only
    from journeymine.summary import opportunities_markdown

    con = connect_read_only(args.warehouse)
    try:
        text = opportunities_markdown(con, args.top)
    finally:
        con.close()
    print(text, end="")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from journeymine.analyses.compare import compare_segments
    from journeymine.api import connect_read_only

    con = connect_read_only(args.warehouse)
    try:
        frame = compare_segments(
            con, "event_log", args.segment, tuple(args.a), tuple(args.b), alpha=args.alpha
        )
    finally:
        con.close()
    frame = frame[frame.significant] if not args.all else frame
    print(f"{args.segment} in {args.a} vs {args.b}: {len(frame)} differences")
    print(frame.head(args.top).to_string(index=False))
    return 0
