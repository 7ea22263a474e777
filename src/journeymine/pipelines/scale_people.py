"""The stage funnel and the follow-ups on a Dask cluster, sharded by case and by person.

Both are per case: a case's funnel entries depend on its own events only, a trigger's follow-up
on its person's events only. So each shard — the cases with ``hash(case_key) % shards = k``
for the funnel, the persons with ``hash(person_id) % shards = k`` for the follow-ups — is
computed on a worker by the analyses' own functions (``funnel.build_entries``,
``funnel.entry_segments_sql``, ``followups.compute_followups``) against the published warehouse
opened read-only, with the cut-offs computed once over all the data (a shard's own latest event
would be another cut-off). The rows concatenate exactly; the single writer stores them and
computes everything derived from them (``stage_funnel``, the cost of waiting, …) with the same
SQL as the single-machine run (``analyse(..., people_folder=...)``).

Each shard's output is written to a fresh folder and renamed into place, so a task re-run after
a lost worker replaces what the failed attempt left.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from prefect import flow, task, unmapped

from journeymine.analyses import followups, funnel
from journeymine.mining.eventlog import log_from_touchpoints
from journeymine.spec import JourneySpec, load_spec
from journeymine.sql import data_cutoff, in_partition
from journeymine.warehouse import connect

SHARD_LOG = "jm_shard_log"
SHARD_TOUCHPOINTS = "jm_shard_touchpoints"


def _spec(journey: str | None) -> JourneySpec:
    return load_spec(journey) if journey else JourneySpec(name="imported log")


def cutoffs(warehouse_path: str | Path, case: str) -> tuple[datetime | None, datetime | None]:
    """The data's cut-offs over everything: the event log's latest event (the funnel's) and
    the latest touchpoint (the follow-ups'), as the single run computes them."""
    con = connect(warehouse_path, read_only=True)
    try:
        log = log_from_touchpoints(con, case=case)
        # as the single run's: its stored log keeps only events with an activity
        events = f"(SELECT ts FROM {log} WHERE activity IS NOT NULL)"
        return data_cutoff(con, events), data_cutoff(con, "touchpoints", "occurred_at")
    finally:
        con.close()


def _shard_views(con: duckdb.DuckDBPyConnection, case: str, shard: int, shards: int) -> None:
    """The shard's event log (as ``discovery.materialise_log`` lays it out, minus the ENUM) and
    the shard's persons' touchpoints, as TEMP views (the warehouse is read-only)."""
    log = log_from_touchpoints(con, case=case)
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {SHARD_LOG} AS "
        "SELECT case_key::BIGINT AS case_key, activity::VARCHAR AS activity, "
        f"ts::TIMESTAMPTZ AS ts, seq::BIGINT AS seq FROM {log} "
        f"WHERE activity IS NOT NULL AND ts IS NOT NULL "
        f"AND {in_partition('case_key::BIGINT', shard, shards)}"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {SHARD_TOUCHPOINTS} AS "
        f"SELECT * FROM touchpoints WHERE {in_partition('person_id', shard, shards)}"
    )


def _write_shard(
    con: duckdb.DuckDBPyConnection,
    spec: JourneySpec,
    folder: Path,
    log_cutoff: datetime | None,
    touch_cutoff: datetime | None,
) -> None:
    if spec.stages:
        # the segments and the stages' attributes read every touchpoint (an account's too)
        entries = funnel.build_entries(con, spec, SHARD_LOG, cutoff=log_cutoff)
        con.sql(f"SELECT * FROM {entries}").write_parquet(str(folder / "entries.parquet"))
        if spec.segment_defs and spec.case in funnel.CASE_COLUMNS:
            segments = funnel.entry_segments_sql(
                spec.segment_defs, "first", entries, "touchpoints", spec.case
            )
            con.sql(segments).write_parquet(str(folder / "segments.parquet"))
    rows = followups.compute_followups(con, spec, table=SHARD_TOUCHPOINTS, cutoff=touch_cutoff)
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), folder / "followups.parquet")


@task(name="people-shard", retries=2, retry_delay_seconds=1)
def people_shard(
    warehouse_path: str,
    journey: str | None,
    out: str,
    shard: int,
    shards: int,
    log_cutoff: datetime | None,
    touch_cutoff: datetime | None,
) -> str:
    """Funnel entries, their segments and the follow-ups of one shard, as Parquet files in
    ``<out>/people/shard=K``."""
    spec = _spec(journey)
    target = Path(out) / "people" / f"shard={shard}"
    work = target.with_name(target.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    con = connect(warehouse_path, read_only=True)
    try:
        _shard_views(con, spec.case, shard, shards)
        _write_shard(con, spec, work, log_cutoff, touch_cutoff)
    finally:
        con.close()
    shutil.rmtree(target, ignore_errors=True)
    work.rename(target)
    return str(target)


@flow(name="journeymine-people-on-cluster")
def people_on_cluster(warehouse_path: str, journey: str | None, out: str, shards: int = 64) -> str:
    """Every shard of the funnel and the follow-ups as a task on the task runner's workers;
    the folder holding the shards (read back by :mod:`journeymine.analyses.shards`)."""
    log_cutoff, touch_cutoff = cutoffs(warehouse_path, _spec(journey).case)
    # an earlier run's shards (with another --shards) would be read as tonight's
    shutil.rmtree(Path(out) / "people", ignore_errors=True)
    people_shard.map(
        unmapped(warehouse_path),
        unmapped(journey),
        unmapped(out),
        range(shards),
        unmapped(shards),
        unmapped(log_cutoff),
        unmapped(touch_cutoff),
    ).result()
    return str(Path(out) / "people")


def run_people_on_cluster(
    warehouse_path: str | Path, journey: str | None, out: str | Path, address: str, shards: int
) -> Path:
    """:func:`people_on_cluster` on the scheduler at ``address``; the shards' folder.
    ``out`` and the warehouse must be reachable by every worker."""
    from journeymine.pipelines.scale import task_runner

    runner = task_runner(address)
    folder = people_on_cluster.with_options(task_runner=runner)(
        str(warehouse_path), journey, str(out), shards
    )
    return Path(folder)
