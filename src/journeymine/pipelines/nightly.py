"""Prefect flow ``journeymine-nightly``: land the night's exports, stitch, mine, analyse, check
the spec's alerts, publish.

Tasks are thin: they pass paths and table names and call :mod:`journeymine`. Sources are parsed
in parallel into staging Parquet; one task owns the warehouse and loads them in one transaction.

Run it once: ``python -m journeymine.pipelines.nightly --now``; serve it on its cron schedule:
``python -m journeymine.pipelines.nightly`` (or ``journeymine serve``).
"""

from __future__ import annotations

import shutil
import uuid
from contextlib import ExitStack
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, serve, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.deployments.runner import RunnerDeployment
from prefect.events import emit_event
from prefect.schedules import Cron

from journeymine import summary, warehouse
from journeymine.analyses import alerts
from journeymine.analyses import runner as analyse
from journeymine.canonical import identity
from journeymine.dashboard import export_report
from journeymine.errors import JourneymineError
from journeymine.ingest import load
from journeymine.pipelines import scale
from journeymine.pipelines.scale_people import run_people_on_cluster
from journeymine.spec import load_spec, source_options

FLOW_NAME = "journeymine-nightly"


@task(name="plan-load")
def plan_load(
    landing: str, warehouse_path: str, sources: list[str] | None, selection: load.Selection
) -> load.Plan:
    """Tonight's plan as plain data (:func:`journeymine.ingest.load.plan_load`), read from the
    published warehouse without holding it."""
    if Path(warehouse_path).exists():
        con = warehouse.connect(warehouse_path, read_only=True)
        try:
            plan = load.plan_load(con, landing, sources, selection)
        finally:
            con.close()
    else:
        plan = load.plan_load(None, landing, sources, selection)
    todo = sum(len(files) for files in plan["files"].values())
    get_run_logger().info("%d landing files, %d new or changed", todo + plan["skipped"], todo)
    return plan


@task(
    name="stage-source",
    retries=2,
    retry_delay_seconds=[2, 10],
    retry_condition_fn=scale.retry_on_io,
)
def stage_source(
    landing: str,
    files: list[tuple[str, str]],
    staging: str,
    options: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Parse one source's files into a staging folder (no warehouse access); ``options`` are
    the parser options per source from the journey spec (the survey's column mapping).

    A file that is not in the source's format is left out and named in ``errors`` (it is tried
    again next night); the source's other files are staged.
    """
    root = Path(landing)
    landing_files = [  # hashed once, when planned: the manifest records that version
        load.LandingFile(f.split("/", 1)[0], root / f, f, sha) for f, sha in files
    ]
    result = load.stage_files(landing_files, Path(staging), options=options)
    return {"folder": str(result.folder), "errors": result.errors}


@task(name="load-warehouse")
def load_warehouse(
    warehouse_path: str,
    folders: list[str],
    report: load.LoadReport,
    match_on_email: bool,
    max_user_ids_per_person: int = 1,
) -> load.LoadReport:
    """The single writer: load staged folders, stitch identities, rebuild touchpoints; fills
    ``report`` (the plan's and the staging's part already in it)."""
    run_id = report.run_id
    with warehouse.transaction(warehouse_path) as con:  # readers keep the last state meanwhile
        load.commit_load(
            con,
            [Path(f) for f in folders],
            run_id,
            report,
            match_on_email=match_on_email,
            max_user_ids_per_person=max_user_ids_per_person,
        )
    t = report.totals()
    get_run_logger().info(
        "loaded %d files: %d rows read, %d loaded, %d duplicates, %d quarantined; %d persons",
        len(report.files),
        t["rows_read"],
        t["rows_loaded"],
        t["duplicates"],
        t["quarantined"],
        report.persons,
    )
    return report


@task(name="analyse")
def analyse_task(
    warehouse_path: str,
    journey: str,
    out: str,
    discovery_folder: str | None = None,
    people_folder: str | None = None,
) -> dict[str, Any]:
    """Recompute every analysis in one transaction (the DFG and variants from a cluster's
    merged discovery when ``discovery_folder`` is given, the funnel entries and follow-ups
    from its shards when ``people_folder`` is)."""
    report = analyse.analyse_warehouse(
        warehouse_path, journey, out, discovery_folder, people_folder
    )
    for warning in report.warnings:
        get_run_logger().warning("journey spec: %s", warning)
    return {"cases": report.cases, "variants": report.variants, "followups": report.followups}


@task(name="evaluate-alerts")
def alerts_task(warehouse_path: str, declared: list[alerts.Alert], run_id: str) -> pd.DataFrame:
    """Evaluate the spec's ``[[alerts]]`` on tonight's analyses, append them to ``alerts``,
    and emit one Prefect event per fired alert (for an Automation to notify)."""
    if not declared:
        return pd.DataFrame(columns=alerts.COLUMNS)
    with warehouse.transaction(warehouse_path) as con:
        frame = alerts.evaluate_alerts(con, declared)
        alerts.write_alerts(con, frame, run_id)
    # Events only once the rows are published: a notification always has its row to point at.
    logger = get_run_logger()
    for row in frame.to_dict("records"):
        if row["fired"]:
            logger.warning("alert %s (%s): %s", row["name"], row["severity"], row["message"])
            emit_event(**alerts.alert_event(row))
        elif not row["evaluated"]:
            logger.warning("%s", row["message"])
    return frame


@task(name="export-dashboard")
def dashboard_task(warehouse_path: str, journey: str, out: str) -> str:
    """Write the self-contained dashboard and link it as an artifact."""
    path = export_report(warehouse_path, journey, out)
    create_link_artifact(
        key="journeymine-dashboard", link=path.resolve().as_uri(), link_text="Journey dashboard"
    )
    return str(path)


@task(name="publish-summary")
def publish_summary(
    warehouse_path: str, report: load.LoadReport, tonight: pd.DataFrame | None = None
) -> str:
    """Publish tonight's alerts, headline figures and row accounting as a Prefect artifact."""
    con = warehouse.connect(warehouse_path, read_only=True)
    try:
        figures, previous = summary.run_figures(con)
        funnel = summary.funnel_rows(con)
        opportunities = summary.opportunities_markdown(con)
        try:
            quality: dict[str, Any] | None = identity.identity_quality(con)
        except JourneymineError:  # a warehouse stitched before accounts: no figures yet
            quality = None
    finally:
        con.close()
    text = summary.markdown_summary(report, figures, previous, tonight, quality)
    create_markdown_artifact(text, key="journeymine-run-summary", description="Nightly run")
    create_markdown_artifact(
        opportunities, key="journeymine-opportunities", description="What to fix first"
    )
    if funnel:
        create_table_artifact(funnel, key="journeymine-stage-dropoff", description="Stage drop-off")
    return text


@flow(name=FLOW_NAME, log_prints=True)
def nightly(
    landing: str = "data/sample/landing",
    warehouse_path: str = "out/warehouse.duckdb",
    journey: str = "data/sample/journey.toml",
    out: str = "out",
    sources: list[str] | None = None,
    match_on_email: bool = True,
    max_user_ids_per_person: int = 1,
    since: date | None = None,
    until: date | None = None,
    reload_days: int = 0,
    force: bool = False,
    dask: str | None = None,
    shards: int = 64,
) -> load.LoadReport:
    """Load new exports into the warehouse, then recompute journeys and analyses.

    ``since`` / ``until`` limit the run to files dated in that range; with ``force`` they are
    reloaded even if unchanged (a backfill). ``reload_days`` reloads each source's most recent
    days every night (for exports that keep changing, like GA4's daily tables).
    """
    selection = load.Selection(since, until, reload_days, force)
    declared = alerts.load_alerts(journey)  # a misspelt alert stops the run before it loads
    options = source_options(load_spec(journey))  # the survey's column mapping, if any
    run_id = uuid.uuid4().hex[:12]
    staging = load.staging_root(warehouse_path)
    with warehouse.writer_lock(warehouse_path), ExitStack() as stack:
        address = _enter_cluster(stack, dask)  # one cluster for every phase
        load.clean_staging(staging)  # left by killed runs: we hold the lock, nobody uses them
        plan = plan_load(landing, warehouse_path, sources, selection)
        folders, errors = _stage_plan(landing, plan, staging / run_id, address, options)
        report: load.LoadReport = load_warehouse(
            warehouse_path,
            folders,
            load.report_of(plan, run_id, errors),
            match_on_email,
            max_user_ids_per_person,
        )
        failures = report.errors
        folder = people = None
        if address:  # mine the event log, the funnel and the follow-ups on the cluster
            folder, people = _mine_on_cluster(warehouse_path, journey, out, address, shards)
        analyse_task(warehouse_path, journey, out, folder, people)
        tonight = alerts_task(warehouse_path, declared, run_id)
        dashboard = dashboard_task(warehouse_path, journey, out)
        publish_summary(warehouse_path, report, tonight)
        get_run_logger().info("dashboard: %s", dashboard)
    shutil.rmtree(staging / run_id, ignore_errors=True)
    if failures:
        raise JourneymineError(
            "these were not loaded (everything else was):\n  " + "\n  ".join(failures)
        )
    return report


def _enter_cluster(stack: ExitStack, dask: str | None) -> str | None:
    """The Dask scheduler's address for the whole run (none without ``dask``), kept open by
    ``stack``; a local cluster is closed before the run's shared Prefect API."""
    address = stack.enter_context(scale.cluster(dask)) if dask else None
    if address:
        stack.enter_context(scale.shared_api())
    return address


def _stage_plan(
    landing: str,
    plan: load.Plan,
    staging: Path,
    address: str | None,
    options: dict[str, dict[str, Any]],
) -> tuple[list[str], list[str]]:
    """Parse the plan's files into ``staging``: on the cluster's workers (into staging every
    worker reaches) when there is one, else as tasks here. The folders to load and what
    could not be staged."""
    if address:
        staged = scale.run_stage_on_cluster(
            landing, plan["files"], staging, address, options=options
        )
        return staged["folders"], staged["errors"]
    return _stage_here(landing, plan, str(staging), options)


def _mine_on_cluster(
    warehouse_path: str, journey: str, out: str, address: str, shards: int
) -> tuple[str, str]:
    """Discover the event log's DFG and variants, and compute the funnel entries and the
    follow-ups per shard, on the cluster: the folders ``analyse_task`` merges."""
    case = load_spec(journey).case
    folder = str(scale.discover_on_cluster(warehouse_path, case, out, address, shards))
    work = Path(out) / "sharded"
    people = str(run_people_on_cluster(warehouse_path, journey, work, address, shards))
    return folder, people


def _stage_here(
    landing: str, plan: dict[str, Any], staging: str, options: dict[str, dict[str, Any]]
) -> tuple[list[str], list[str]]:
    """Stage each source as a task on this machine's threads (no cluster): the folders to
    load and what could not be staged."""
    futures = {
        source: stage_source.submit(landing, files, str(Path(staging) / source), options)
        for source, files in plan["files"].items()
    }
    folders, failures = [], []
    for source, future in futures.items():
        future.wait()
        state = future.state
        if state.is_completed():
            staged = future.result()
            folders.append(staged["folder"])
            failures += staged["errors"]
        else:
            failures.append(f"{source}: {state.message}")
    return folders, failures


def stop_background_loop(timeout_s: float = 30.0) -> None:
    """End Prefect's background event loop once a run in this process is over (its log and
    event services send what they hold first), before the interpreter exits.

    Why: every call the flow makes on that loop copies the flow run's context (the flow, its
    tasks, their parameters), and the loop keeps those copies in its pending timers, cancelled
    ones included, until they fall due. Its thread is a daemon that Prefect never stops, so at
    exit its frames are abandoned, never released, and everything the flow reaches stays alive
    past the teardown of its modules: our modules' globals, DuckDB's types and functions, which
    DuckDB's bindings then report as ``nanobind: leaked ...`` at the end of ``journeymine run``.
    Call it only when no flow runs in this process any more (a run started later gets a new
    loop).
    """
    # Prefect's own shutdown of that loop (it drains the services first); no public name.
    from prefect._internal.concurrency.threads import wait_for_global_loop_exit

    wait_for_global_loop_exit(timeout_s)


DEFAULT_CRON = "0 2 * * *"


def build_deployment(
    cron: str = DEFAULT_CRON, timezone: str = "UTC", **parameters: Any
) -> RunnerDeployment:
    """The nightly deployment: the flow on a cron schedule (default 02:00) with its parameters.

    One run at a time (``concurrency_limit=1``); the warehouse lock guards against runs started
    outside Prefect too.
    """
    deployment = nightly.to_deployment(
        name="nightly",
        schedules=[Cron(cron, timezone=timezone)],
        parameters=parameters,
        concurrency_limit=1,
        tags=["journeymine"],
        description="Load the night's exports, stitch identities, mine and analyse journeys.",
    )
    assert isinstance(deployment, RunnerDeployment)  # to_deployment is sync outside async code
    return deployment


def serve_nightly(cron: str = DEFAULT_CRON, timezone: str = "UTC", **parameters: Any) -> None:
    """Serve the nightly deployment in this process until interrupted."""
    serve(build_deployment(cron, timezone, **parameters))


if __name__ == "__main__":
    import argparse

    cli = argparse.ArgumentParser(description="Serve (or run once) the journeymine nightly flow.")
    cli.add_argument("--now", action="store_true", help="run once now instead of serving")
    cli.add_argument("--cron", default=DEFAULT_CRON)
    cli.add_argument("--timezone", default="UTC")
    opts = cli.parse_args()
    if opts.now:
        try:
            nightly()
        finally:
            stop_background_loop()
    else:
        serve_nightly(opts.cron, opts.timezone)
