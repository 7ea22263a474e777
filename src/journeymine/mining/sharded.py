"""Discovery on an event log split into shards by case, merged exactly.

The same figures as :mod:`journeymine.mining.discovery` (``dfg``, ``variants``, start and end
activities), computed as map → shuffle → reduce over Parquet files so each step can run on a
different machine (see docs/scaling.md). Every case lives in exactly one shard, so everything
that is per case is computed once, where the case is:

1. :func:`write_shards` writes the log as ``shard=K/`` Parquet folders, ``K = hash(case_key) % N``.
2. :func:`mine_shard` (one per shard) writes partial results, each partitioned by a hash of its
   key (``bucket=B``: an edge, or a variant's activity list) so that all partials of one key
   meet in one bucket: per edge frequency, cases and the sum of waits in whole microseconds;
   per variant cases and first case; and the *values* behind the quantiles (every wait per edge,
   every case duration per variant). Start and end activities are counted per shard.
3. :func:`reduce_bucket` (one per bucket) adds the counts up and computes the median and p90
   with ``quantile_cont`` over all values of each key — the same function over the same values
   as the single-machine run, so the quantiles are exact, not estimates.
4. :func:`merge_buckets` concatenates the buckets, adds start/end counts and computes share and
   coverage over the totals.

Counts, quantiles, variant lists and order are identical to the single-machine run. The mean
wait is the integer sum of microseconds divided once, so it is exact up to one rounding;
the single-machine ``avg`` sums doubles, and the two may differ in the last bits (1e-12 s).

Each step writes its output into a fresh folder and renames it into place, so a retried task
(a worker lost mid-run) replaces its own output and never doubles it.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from journeymine.errors import EventLogError
from journeymine.mining.discovery import _pairs, materialise_log
from journeymine.sql import duration_s, ident

PARTIALS = ("edges", "waits", "variants", "durations")
EMPTY = {
    "edges": "SELECT NULL::VARCHAR AS source_activity, NULL::VARCHAR AS target_activity, "
    "NULL::BIGINT AS frequency, NULL::BIGINT AS cases, NULL::DECIMAL(38, 0) AS wait_sum_us",
    "waits": "SELECT NULL::VARCHAR AS source_activity, NULL::VARCHAR AS target_activity, "
    "NULL::DOUBLE AS wait_s",
    "variants": "SELECT NULL::VARCHAR[] AS activities, NULL::BIGINT AS cases, "
    "NULL::BIGINT AS first_case",
    "durations": "SELECT NULL::VARCHAR[] AS activities, NULL::DOUBLE AS duration_s",
    "dfg": "SELECT NULL::VARCHAR AS source_activity, NULL::VARCHAR AS target_activity, "
    "NULL::BIGINT AS frequency, NULL::BIGINT AS cases, NULL::DOUBLE AS wait_mean_s, "
    "NULL::DOUBLE AS wait_median_s, NULL::DOUBLE AS wait_p90_s",
    "variant_totals": "SELECT NULL::VARCHAR[] AS activities, NULL::BIGINT AS cases, "
    "NULL::BIGINT AS first_case, NULL::DOUBLE AS median_duration_s",
    "boundaries": "SELECT NULL::VARCHAR AS kind, NULL::VARCHAR AS activity, NULL::BIGINT AS cases",
}


@dataclass(frozen=True)
class Discovery:
    """What :func:`journeymine.mining.discovery` computes: the frames and dicts it returns."""

    dfg: pd.DataFrame
    variants: pd.DataFrame
    start: dict[str, int]
    end: dict[str, int]


def _positive(value: int, what: str) -> int:
    if value < 1:
        raise EventLogError(f"the number of {what} must be at least 1, not {value}")
    return value


def _view(con: duckdb.DuckDBPyConnection, name: str, files: list[Path], empty: str) -> str:
    """A view over Parquet files (paths bound, never spliced into SQL), or an empty typed one."""
    if files:
        con.read_parquet([str(f) for f in files], hive_partitioning=False).create_view(name)
    else:
        con.execute(f"CREATE OR REPLACE TEMP VIEW {ident(name)} AS {EMPTY[empty]} WHERE false")
    return name


def _publish(tmp: Path, final: Path) -> Path:
    """Replace ``final`` by the finished ``tmp`` folder: a retry's output replaces the old one."""
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return final


def _fresh(final: Path) -> Path:
    tmp = final.with_name(f"{final.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    return tmp


def write_shards(con: duckdb.DuckDBPyConnection, log: str, folder: Path, shards: int) -> list[Path]:
    """Write an event log relation (``case_key, activity, ts, seq``) as ``shard=K`` Parquet
    folders, ``K = hash(case_key) % shards``; returns the folders that got events.

    Rows without activity or time are left out, as :func:`discovery.materialise_log` does.
    """
    _positive(shards, "shards")
    tmp = _fresh(folder)
    con.sql(
        f"""
        SELECT case_key::BIGINT AS case_key, activity::VARCHAR AS activity,
               ts::TIMESTAMPTZ AS ts, seq::BIGINT AS seq, hash(case_key::BIGINT) % $shards AS shard
        FROM {ident(log)} WHERE activity IS NOT NULL AND ts IS NOT NULL
        """,
        params={"shards": shards},
    ).write_parquet(str(tmp / "log"), partition_by=["shard"], overwrite=True)
    if not (tmp / "log").exists():  # an empty log writes no partition
        (tmp / "log").mkdir()
    final = _publish(tmp, folder)
    return sorted((final / "log").glob("shard=*"), key=lambda p: int(p.name.split("=")[1]))


def _pairs_table_sql(log: str) -> str:
    # Activities as VARCHAR: each shard has its own ENUM, so only the names compare across
    # shards (and hash the same way into buckets).
    return f"""
        SELECT case_key, source_activity::VARCHAR AS source_activity,
               target_activity::VARCHAR AS target_activity, wait_s,
               hash(source_activity::VARCHAR, target_activity::VARCHAR) % $buckets AS bucket
        FROM ({_pairs(log)}) WHERE target_activity IS NOT NULL
    """


# Waits are whole microseconds over 1e6; summing the microseconds as integers makes the mean
# independent of the order in which shards are added.
EDGE_PARTIALS = """
    SELECT source_activity, target_activity, count(*) AS frequency,
           count(DISTINCT case_key) AS cases,
           sum(round(wait_s * 1e6)::BIGINT)::DECIMAL(38, 0) AS wait_sum_us, bucket
    FROM jm_pairs GROUP BY ALL
"""


def _traces_sql(log: str) -> str:
    return f"""
        SELECT *, hash(activities) % $buckets AS bucket FROM (
            SELECT case_key, list(activity::VARCHAR ORDER BY rn) AS activities,
                   {duration_s()} AS duration_s
            FROM {log} GROUP BY case_key
        )
    """


def _boundaries_sql(log: str) -> str:
    return f"""
        WITH ends AS (
            SELECT arg_min(activity::VARCHAR, rn) AS first, arg_max(activity::VARCHAR, rn) AS last
            FROM {log} GROUP BY case_key
        )
        SELECT 'start' AS kind, first AS activity, count(*) AS cases FROM ends GROUP BY ALL
        UNION ALL
        SELECT 'end' AS kind, last AS activity, count(*) AS cases FROM ends GROUP BY ALL
    """


def mine_shard(shard: Path, out: Path, buckets: int) -> Path:
    """Partial results of one shard in ``out/partials/<shard name>``: ``edges``, ``waits``,
    ``variants``, ``durations`` (each in ``bucket=B`` folders) and ``boundaries.parquet``."""
    _positive(buckets, "buckets")
    final = out / "partials" / shard.name
    tmp = _fresh(final)
    con = duckdb.connect()
    try:
        con.read_parquet(str(shard / "*.parquet"), hive_partitioning=False).create_view(
            "jm_shard_in"
        )
        log = materialise_log(con, "jm_shard_in")
        for table, sql in (("jm_traces", _traces_sql(log)), ("jm_pairs", _pairs_table_sql(log))):
            con.execute(f"CREATE TEMP TABLE {table} AS {sql}", {"buckets": buckets})
        queries = {
            "edges": EDGE_PARTIALS,
            "waits": "SELECT source_activity, target_activity, wait_s, bucket FROM jm_pairs",
            "variants": "SELECT activities, count(*) AS cases, min(case_key) AS first_case, "
            "bucket FROM jm_traces GROUP BY activities, bucket",
            "durations": "SELECT activities, duration_s, bucket FROM jm_traces",
        }
        for name, sql in queries.items():
            con.sql(sql).write_parquet(str(tmp / name), partition_by=["bucket"], overwrite=True)
        con.sql(_boundaries_sql(log)).write_parquet(str(tmp / "boundaries.parquet"))
    finally:
        con.close()
    return _publish(tmp, final)


def _bucket_files(partials: list[Path], kind: str, bucket: int) -> list[Path]:
    return [f for p in partials for f in sorted((p / kind / f"bucket={bucket}").glob("*.parquet"))]


def reduce_bucket(partials: list[Path], bucket: int, out: Path) -> Path:
    """Merge one bucket of every shard's partials into ``out/reduced/bucket=B``: counts add up,
    median and p90 from ``quantile_cont`` over all the values of each key (exact)."""
    final = out / "reduced" / f"bucket={bucket}"
    tmp = _fresh(final)
    con = duckdb.connect()
    try:
        for kind in PARTIALS:
            _view(con, f"jm_{kind}", _bucket_files(partials, kind, bucket), kind)
        con.sql(
            """
            WITH counts AS (
                SELECT source_activity, target_activity, sum(frequency)::BIGINT AS frequency,
                       sum(cases)::BIGINT AS cases, sum(wait_sum_us) AS wait_sum_us
                FROM jm_edges GROUP BY ALL
            ), quantiles AS (
                SELECT source_activity, target_activity, quantile_cont(wait_s, [0.5, 0.9]) AS q
                FROM jm_waits GROUP BY ALL
            )
            SELECT source_activity, target_activity, frequency, cases,
                   wait_sum_us::DOUBLE / frequency / 1e6 AS wait_mean_s,
                   q[1] AS wait_median_s, q[2] AS wait_p90_s
            FROM counts JOIN quantiles USING (source_activity, target_activity)
            """
        ).write_parquet(str(tmp / "dfg.parquet"))
        con.sql(
            """
            WITH counts AS (
                SELECT activities, sum(cases)::BIGINT AS cases, min(first_case) AS first_case
                FROM jm_variants GROUP BY activities
            ), medians AS (
                SELECT activities, median(duration_s) AS median_duration_s
                FROM jm_durations GROUP BY activities
            )
            SELECT activities, cases, first_case, median_duration_s
            FROM counts JOIN medians USING (activities)
            """
        ).write_parquet(str(tmp / "variants.parquet"))
    finally:
        con.close()
    return _publish(tmp, final)


def _check_one_bucket_per_key(con: duckdb.DuckDBPyConnection) -> None:
    """Each edge and variant must come out of exactly one bucket; it does not when workers
    hash differently (different DuckDB versions), and the counts would then be split."""
    row = con.execute(
        "SELECT (SELECT count(*) - count(DISTINCT (source_activity, target_activity)) FROM jm_dfg),"
        " (SELECT count(*) - count(DISTINCT activities) FROM jm_variants)"
    ).fetchall()[0]  # fetchall: DuckDB 2.0 refuses more work while a result is half read
    if row[0] or row[1]:
        raise EventLogError(
            f"{row[0]} edges and {row[1]} variants came out of more than one bucket: the workers "
            "do not hash alike; run the same journeymine and DuckDB versions on every worker"
        )


def merge_buckets(reduced: list[Path], partials: list[Path], out: Path) -> Path:
    """Write ``dfg``, ``variants``, ``start_activities`` and ``end_activities`` Parquet files
    into ``out/discovery`` (columns and order as the single-machine tables)."""
    final = out / "discovery"
    tmp = _fresh(final)
    con = duckdb.connect()
    try:
        _view(con, "jm_dfg", [r / "dfg.parquet" for r in reduced], "dfg")
        _view(con, "jm_variants", [r / "variants.parquet" for r in reduced], "variant_totals")
        _view(con, "jm_bounds", [p / "boundaries.parquet" for p in partials], "boundaries")
        _check_one_bucket_per_key(con)
        con.sql(
            "FROM jm_dfg ORDER BY frequency DESC, source_activity, target_activity"
        ).write_parquet(str(tmp / "dfg.parquet"))
        con.sql(
            """
            SELECT array_to_string(activities, ' → ') AS variant, activities, cases,
                   cases / sum(cases) OVER () AS share,
                   sum(cases) OVER (ORDER BY cases DESC, first_case ROWS UNBOUNDED PRECEDING)
                       / sum(cases) OVER () AS coverage,
                   len(activities) AS length, median_duration_s
            FROM jm_variants ORDER BY cases DESC, first_case
            """
        ).write_parquet(str(tmp / "variants.parquet"))
        for kind in ("start", "end"):
            con.sql(
                "SELECT activity, sum(cases)::BIGINT AS cases FROM jm_bounds WHERE kind = $kind "
                "GROUP BY activity ORDER BY 2 DESC, 1",
                params={"kind": kind},
            ).write_parquet(str(tmp / f"{kind}_activities.parquet"))
    finally:
        con.close()
    return _publish(tmp, final)


def read_discovery(folder: Path) -> Discovery:
    """The merged results as :mod:`discovery` returns them (frames, and dicts for start/end)."""
    con = duckdb.connect()
    try:

        def frame(name: str) -> pd.DataFrame:
            return con.read_parquet(str(folder / f"{name}.parquet")).df()

        def counts(kind: str) -> dict[str, int]:
            rows = con.read_parquet(str(folder / f"{kind}_activities.parquet")).fetchall()
            return {a: int(n) for a, n in rows}

        return Discovery(frame("dfg"), frame("variants"), counts("start"), counts("end"))
    finally:
        con.close()


def store_discovery(con: duckdb.DuckDBPyConnection, folder: Path) -> None:
    """Replace the warehouse's ``dfg``, ``variants``, ``start_activities`` and
    ``end_activities`` tables with merged results (what :func:`discovery.write_discovery`
    stores on one machine)."""
    for name in ("dfg", "variants", "start_activities", "end_activities"):
        con.execute(
            f"CREATE OR REPLACE TABLE {ident(name)} AS SELECT * FROM read_parquet($path)",
            {"path": str(folder / f"{name}.parquet")},
        )


def discover_sharded(
    con: duckdb.DuckDBPyConnection, log: str, out: Path, shards: int, buckets: int | None = None
) -> Discovery:
    """All steps in this process, one after the other: the reference for the distributed run."""
    shard_folders = write_shards(con, log, out / "shards", shards)
    partials = [mine_shard(s, out, buckets or shards) for s in shard_folders]
    reduced = [reduce_bucket(partials, b, out) for b in range(buckets or shards)]
    return read_discovery(merge_buckets(reduced, partials, out))
