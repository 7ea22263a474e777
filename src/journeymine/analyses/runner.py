"""Recompute every analysis of a warehouse from its touchpoints and a journey spec.

touchpoints -> event log (case per the spec) -> discovery (dfg, variants, start/end) ->
stage funnel -> follow-ups -> conformance -> discovered model files. All tables are replaced
in one transaction, so readers never see half of a night's analyses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from journeymine import warehouse
from journeymine.analyses import conformance
from journeymine.analyses.drift import compare_periods
from journeymine.analyses.drivers import drivers
from journeymine.analyses.feelings import write_feelings
from journeymine.analyses.followups import write_cost_of_waiting, write_followups
from journeymine.analyses.funnel import write_stage_funnel
from journeymine.analyses.headlines import write_headlines
from journeymine.analyses.journey_grid import write_journey_grid
from journeymine.analyses.opportunities import write_opportunities
from journeymine.analyses.paths import dropped_paths
from journeymine.analyses.retention import RetentionError, retention
from journeymine.errors import WarehouseError
from journeymine.mining import discovery, pm4py_adapter, sharded
from journeymine.mining.eventlog import log_from_touchpoints
from journeymine.mining.journey_map import write_journey_map
from journeymine.spec import (
    JourneySpec,
    check_attributes,
    check_patterns,
    load_spec,
    steps_before_outcomes,
)
from journeymine.sql import data_cutoff
from journeymine.warehouse import replace_table

log = logging.getLogger(__name__)
EVENT_LOG = "event_log"
# The follow-ups' columns the cost of waiting, the journey grid and the opportunities read.
HELD_FOLLOWUP_COLUMNS = [
    "rule", "person_id", "trigger_event_id", "triggered_at", "status", "latency_s", "sla_breached",
]  # fmt: skip


@dataclass
class AnalysisReport:
    cases: int = 0
    dfg_edges: int = 0
    variants: int = 0
    followups: int = 0
    conforming_share: float = 0.0
    models: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def analyse(
    con: duckdb.DuckDBPyConnection,
    spec: JourneySpec,
    out: Path,
    discovery_folder: Path | None = None,
    people_folder: Path | None = None,
) -> AnalysisReport:
    """Run every analysis on an open warehouse (in the caller's transaction). With
    ``discovery_folder`` (the merged output of a sharded run on a cluster, ``scale``), the
    directly-follows graph and variants are taken from there instead of computed here; with
    ``people_folder`` (``scale_people``), the funnel entries and the follow-ups."""
    report = AnalysisReport()
    if not warehouse.table_exists(con, "touchpoints"):
        raise WarehouseError("the warehouse has no touchpoints yet; load some exports first")
    activities = [a for (a,) in con.execute("SELECT DISTINCT activity FROM touchpoints").fetchall()]
    report.warnings = check_patterns(spec, activities) + check_attributes(spec, con)
    for warning in report.warnings:
        log.warning("journey spec: %s", warning)
    stored = discovery.materialise_log(con, log_from_touchpoints(con, case=spec.case), EVENT_LOG)
    if discovery_folder is None:
        discovery.write_discovery(con, stored)
    else:
        sharded.store_discovery(con, discovery_folder)
    write_journey_map(con, spec, stored)
    people = None
    if people_folder is not None:
        from journeymine.analyses.shards import read_people

        people = read_people(con, people_folder, spec)
    followups = write_followups(con, spec, rows=people.followups if people else None)
    report.followups = len(followups)
    # Only what the later analyses read is held through them (a copy: a column selection
    # would keep the whole frame's blocks alive); the rest is in the stored table.
    followups = followups[HELD_FOLLOWUP_COLUMNS].copy()
    report.dfg_edges = _count(con, "dfg")
    report.variants = _count(con, "variants")
    if spec.stages:
        entries = (people.entries, people.segments) if people else (None, None)
        _write_stage_analyses(con, spec, stored, followups, report, entries)
    else:  # an imported log without a designed journey: what needs stages is left out
        report.cases = _count(con, f"(SELECT DISTINCT case_key FROM {stored})")
        report.warnings.append(
            "no stages in the journey spec: discovery, the map and follow-ups only (no funnel, "
            "conformance, drivers, retention, paths or opportunities)"
        )
    write_headlines(con, spec)
    # The model from what was stored, however it was computed (here or on a cluster).
    dfg = con.execute("SELECT * FROM dfg").df()
    if len(dfg):
        starts, ends = (
            {a: int(n) for a, n in con.execute(f"SELECT activity, cases FROM {t}").fetchall()}
            for t in ("start_activities", "end_activities")
        )
        tree = pm4py_adapter.discover_model(dfg, starts, ends)
        report.models = pm4py_adapter.write_model(tree, out / "models", "discovered_journey")
    return report


def _write_stage_analyses(
    con: duckdb.DuckDBPyConnection,
    spec: JourneySpec,
    stored: str,
    followups: pd.DataFrame,
    report: AnalysisReport,
    entries: tuple[str | None, str | None] = (None, None),
) -> None:
    """Everything that needs the designed stages: funnel, feelings, cost of waiting,
    conformance, drivers and drift, retention and paths, the grid and the opportunities."""
    funnel = write_stage_funnel(con, spec, stored, entries=entries[0], segments=entries[1])
    people = spec.case in ("person", "account")
    if people:
        write_feelings(con, spec)
    write_cost_of_waiting(con, spec, followups)
    summary = conformance.write_conformance(con, spec, stored)
    _write_drivers_and_drift(con, spec, funnel)
    report.warnings += _write_lifecycle(con, spec, funnel, stored)
    if people:
        write_journey_grid(con, spec, followups=followups)
        write_opportunities(con, spec, followups=followups)
    entered = funnel.loc[funnel.segment == "all", "entered"]
    report.cases = int(entered.max()) if len(entered) else 0
    conforming = summary[summary.deviation == "(conforming)"]
    report.conforming_share = float(conforming.share.iloc[0]) if len(conforming) else 0.0


def _write_drivers_and_drift(
    con: duckdb.DuckDBPyConnection, spec: JourneySpec, funnel: pd.DataFrame
) -> None:
    """``drivers`` of each of the spec's ``driver_outcomes`` for every stage transition but
    those into an outcome stage (``steps_before_outcomes``: converting there is cancelling);
    ``drift_*``: the last 30 days before the cut-off against the 30 days before them."""
    decided = (funnel.segment == "all") & (funnel.converted + funnel.dropped > 0)
    stages = funnel.loc[decided & ~funnel.stage.isin(steps_before_outcomes(spec)), "stage"]
    found = [
        drivers(con, stage, spec.segment_defs, outcome=outcome, spec=spec).assign(
            stage=stage, outcome=outcome
        )
        for stage in stages
        for outcome in spec.driver_outcomes
    ]
    found = [f for f in found if len(f) and "finding" in f.columns]
    if found:
        replace_table(con, "drivers", pd.concat(found, ignore_index=True))
    cutoff = data_cutoff(con, "touchpoints", "occurred_at")
    if cutoff is not None:
        period = spec.drift_window
        drift = compare_periods(
            con, spec, (cutoff - 2 * period, cutoff - period), (cutoff - period, cutoff)
        )
        replace_table(con, "drift_edges", drift["edges"])
        replace_table(con, "drift_stages", drift["stages"])
        replace_table(con, "drift_variants", drift["variants"])
        replace_table(con, "drift_latency", drift["latency"])


def _write_lifecycle(
    con: duckdb.DuckDBPyConnection, spec: JourneySpec, funnel: pd.DataFrame, log: str
) -> list[str]:
    """``retention`` (cohorts of the spec's ``[retention]`` stage, by default the last) and
    ``paths`` (what people who dropped out of each stage did next); return warnings."""
    warnings: list[str] = []
    overall = funnel[funnel.segment == "all"]
    if spec.stages and spec.case in ("person", "account"):
        settings = spec.retention
        start = settings.stage or spec.stages[-1].name
        active = settings.active or next(s.activities for s in spec.stages if s.name == start)

        def cohorts(churn: tuple[str, ...]) -> pd.DataFrame:
            return retention(
                con, active=active, stage=start, churn=churn, period=settings.period,
                periods=settings.periods, case=spec.case,
            )  # fmt: skip

        try:
            try:
                frame = cohorts(settings.churn)
            except RetentionError as exc:  # e.g. no cancellations in this data: retention alone
                warnings.append(f"retention without churn: {exc}")
                frame = cohorts(())
            replace_table(con, "retention", frame.assign(stage=start))
        except RetentionError as exc:  # nobody reached the retention stage yet
            warnings.append(f"no retention table: {exc}")
    # Not out of a step into an outcome stage: "dropping" there is not cancelling, i.e. staying.
    ends = steps_before_outcomes(spec)
    dropped = [s for s in overall[overall.dropped > 0].stage if s not in ends]
    found = dropped_paths(con, dropped, steps=3, top=10, log=log)
    if len(found):
        replace_table(con, "paths", found)
    return warnings


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])


def analyse_warehouse(
    warehouse_path: str | Path,
    journey: str | Path | None,
    out: str | Path,
    discovery_folder: str | Path | None = None,
    people_folder: str | Path | None = None,
) -> AnalysisReport:
    """Replace all analyses atomically: on a working copy under the writer lock, published
    when every analysis succeeded (readers never block it, nor see half of it)."""
    spec = load_spec(journey) if journey else JourneySpec(name=Path(warehouse_path).stem)
    if not Path(warehouse_path).exists():
        raise WarehouseError(f"{warehouse_path}: no warehouse here; run `journeymine run` first")
    with warehouse.transaction(warehouse_path) as con:  # readers see the old analyses meanwhile
        folder = Path(discovery_folder) if discovery_folder else None
        people = Path(people_folder) if people_folder else None
        report = analyse(con, spec, Path(out), folder, people)
    return report
