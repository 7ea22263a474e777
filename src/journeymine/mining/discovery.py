"""Process discovery in DuckDB: directly-follows graph, waiting times, variants.

An *event log* here is any relation with ``case_key BIGINT, activity VARCHAR, ts TIMESTAMPTZ,
seq BIGINT``. Events of a case are ordered by ``(ts, seq)``: equal timestamps keep the order
they had in the source (``seq``), exactly as pm4py's stable sort keeps file order — so the
figures equal pm4py's on the same log (tests prove it on real logs).

Definitions (documented in docs/metrics.md):

* an edge ``a -> b`` is one pair of consecutive events in a case; ``frequency`` counts pairs,
  ``cases`` counts distinct cases with at least one such pair;
* ``wait_*_s`` is the time from ``a`` to ``b`` in seconds: mean, median (average of the two
  middle values, as numpy), and p90 = ``quantile_cont(0.9)`` (linear interpolation, numpy's
  default ``percentile``);
* a variant is the exact sequence of activities of a case; ``median_duration_s`` is the median
  of first-to-last event time of its cases.

The log is stored once with an ENUM activity in ``(case_key, ts, seq)`` order (DESIGN §7:
layout decides speed); every figure is then computed in one pass over that sorted relation read
as integer codes (:mod:`journeymine.mining.codes`), and names are decoded only for the output.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pyarrow.fs import LocalFileSystem

from journeymine.mining import codes, edges, variants


def materialise_log(con: duckdb.DuckDBPyConnection, relation: str, table: str = "jm_log") -> str:
    """Copy an event log into ``table`` with an ENUM activity, sorted by (case, time, seq).

    ``rn`` numbers the rows in that order, so later windows and lists order by one integer
    instead of re-sorting every case. One sort: the rows are stored in (case, time, seq) order
    and ``rn`` is their position in that stored order. Rows without a case, activity or time
    are left out.
    """
    enum, staged = f"{table}_activity", f"{table}_sorted"
    con.execute(f"DROP TABLE IF EXISTS {table}")
    con.execute(f"DROP TYPE IF EXISTS {enum}")
    # Names in order: a DISTINCT alone gives them in whatever order its threads finish, and
    # the stored log's type (and every code) would differ from run to run.
    con.execute(
        f"CREATE TYPE {enum} AS ENUM (SELECT DISTINCT activity::VARCHAR AS a "
        f"FROM {relation} WHERE activity IS NOT NULL ORDER BY a)"
    )
    rows = f"""
        SELECT case_key::BIGINT AS case_key, activity::{enum} AS activity,
               ts::TIMESTAMPTZ AS ts, seq::BIGINT AS seq
        FROM {relation}
        WHERE case_key IS NOT NULL AND activity IS NOT NULL AND ts IS NOT NULL
        ORDER BY case_key, ts, seq
    """
    kept = con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()[0][0]
    if kept:
        # While DuckDB preserves insertion order, the sorted rows reach a streaming
        # row_number() in order and are stored in it: one sort, no staged copy.
        con.execute(f"CREATE TABLE {table} AS SELECT row_number() OVER () AS rn, * FROM ({rows})")
        return table
    # Otherwise rows may arrive in any order: stage the sorted rows, number them by sorting.
    con.execute(f"CREATE OR REPLACE TEMP TABLE {staged} AS {rows}")
    try:
        con.execute(
            f"CREATE TABLE {table} AS SELECT row_number() OVER (ORDER BY case_key, ts, seq) "
            f"AS rn, * FROM {staged}"
        )
    finally:
        con.execute(f"DROP TABLE {staged}")
    return table


def _pairs(log: str) -> str:
    """Every event with the next event of its case (NULL after a case's last event): one window
    over the row order, cut at case boundaries."""
    return f"""
        SELECT case_key, source_activity,
               CASE WHEN next_case = case_key THEN target_activity END AS target_activity,
               CASE WHEN next_case = case_key THEN wait_s END AS wait_s
        FROM (
            SELECT case_key, activity AS source_activity,
                   lead(activity) OVER w AS target_activity, lead(case_key) OVER w AS next_case,
                   (epoch_us(lead(ts) OVER w) - epoch_us(ts)) / 1e6 AS wait_s
            FROM {log} WINDOW w AS (ORDER BY rn)
        )
    """


def _frame(con: duckdb.DuckDBPyConnection, table: pa.Table) -> pd.DataFrame:
    """A result as DuckDB hands tables to pandas (same dtypes as a stored table's ``.df()``)."""
    return con.from_arrow(table).df()


def discover_dfg(con: duckdb.DuckDBPyConnection, log: str) -> pd.DataFrame:
    """Directly-follows edges with frequency, distinct cases and waiting times (seconds)."""
    return _frame(con, edges.dfg(codes.read_sorted(con, log)))


def _boundary_activities(con: duckdb.DuckDBPyConnection, log: str, first: bool) -> dict[str, int]:
    counts = edges.boundary_counts(codes.read_sorted(con, log), first)
    return dict(zip(counts["activity"].to_pylist(), counts["cases"].to_pylist(), strict=True))


def start_activities(con: duckdb.DuckDBPyConnection, log: str) -> dict[str, int]:
    """How many cases start with each activity."""
    return _boundary_activities(con, log, first=True)


def end_activities(con: duckdb.DuckDBPyConnection, log: str) -> dict[str, int]:
    """How many cases end with each activity."""
    return _boundary_activities(con, log, first=False)


def discover_variants(con: duckdb.DuckDBPyConnection, log: str) -> pd.DataFrame:
    """Variants, most frequent first: activities, cases, share, coverage, median duration.

    ``variant`` is a readable label (activities joined by `` → ``); ``activities`` the list.
    Ties in frequency are ordered by the variant's first case (lowest ``case_key``).
    """
    return _frame(con, variants.discover(codes.read_sorted(con, log)))


@contextmanager
def one_thread(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """DuckDB's ``threads`` at 1 inside, restored after (even on error). With more threads
    and insertion order kept, ``CREATE TABLE AS`` over an Arrow scan takes the batch-insert
    path, which writes each batch apart and then merges them: at 10M events the variants'
    ingest took 0.51-0.60 s that way and 0.21-0.33 s in one thread (EXPLAIN ANALYZE: "Batch
    Create Table As" 510 ms vs "Create Table As" 210 ms). The setting is the database's, so
    other connections to it see it meanwhile: it only changes their speed."""
    threads = int(con.execute("SELECT current_setting('threads')").fetchall()[0][0])
    con.execute("SET threads = 1")
    try:
        yield
    finally:
        con.execute(f"SET threads = {threads}")


def store_tables(
    con: duckdb.DuckDBPyConnection, tables: dict[str, pa.Table | pa.RecordBatchReader]
) -> None:
    """Create or replace one DuckDB table per Arrow table or stream of batches, rows in their
    order, each ingested in one thread (:func:`one_thread`)."""
    with one_thread(con):
        for name, table in tables.items():
            con.register("jm_discovered", table)
            try:
                con.execute(f"CREATE OR REPLACE TABLE {name} AS FROM jm_discovered")
            finally:
                con.unregister("jm_discovered")


def store_discovered(con: duckdb.DuckDBPyConnection, sorted_log: codes.SortedLog) -> None:
    """Store ``dfg``, ``variants``, ``start_activities`` and ``end_activities`` of one sorted
    log (:func:`discovered`). Fresh arrays come in small pages (:func:`codes.small_pages`)."""
    with codes.small_pages():
        store_tables(con, discovered(sorted_log))


def discovered(sorted_log: codes.SortedLog) -> dict[str, pa.Table | pa.RecordBatchReader]:
    """The four tables of one sorted log, the variants as a stream; none holds the log's
    arrays, so a caller that drops the log stores them without it. The variants' grouping runs
    in a second thread while this one computes the edges (numpy and Arrow work that releases
    the GIL, so on two cores they overlap); their names and labels are then built batch by
    batch while DuckDB ingests them (:func:`variants.batches`), so that all of them never
    exist at once (~230 MB at 10M events, whose fresh pages cost more than the work). Storing
    the variants in the second thread too, beside the edges, was measured and not kept
    (benchmarks/README.md, Mining)."""
    with codes.small_pages():
        with ThreadPoolExecutor(max_workers=1) as pool:
            grouped = pool.submit(variants.columns, sorted_log)
            dfg = edges.dfg(sorted_log)
            found = grouped.result()
        return {
            "dfg": dfg,
            "variants": variants.batches(sorted_log, found=found),
            "start_activities": edges.boundary_counts(sorted_log, first=True),
            "end_activities": edges.boundary_counts(sorted_log, first=False),
        }


def write_discovery(con: duckdb.DuckDBPyConnection, log: str) -> None:
    """Store ``dfg``, ``variants``, ``start_activities`` and ``end_activities`` tables, all
    from one read of the sorted log (rows in the order the functions above return them). The
    log's arrays are freed once the tables are computed, before DuckDB stores them (at 10M
    events ~170 MB less at the step's peak): nothing here keeps the log."""
    with codes.small_pages():
        store_tables(con, discovered(codes.read_sorted(con, log)))


def write_discovery_from_arrow(con: duckdb.DuckDBPyConnection, table: pa.Table) -> None:
    """As :func:`write_discovery`, from an Arrow log (``case_key`` or ``case_id``, ``activity``,
    ``ts``, ``seq``) sorted in memory: no event-log table is stored (use
    :func:`materialise_log` when other analyses need one)."""
    store_discovered(con, codes.from_arrow(table))


@cache
def read_pool() -> pa.MemoryPool:
    """The Arrow memory pool Parquet logs are read into: jemalloc where pyarrow has it, else the
    C allocator. Not the process default (mimalloc in these wheels): with the log's buffers in
    mimalloc, the fresh discovery pass at 10M events took 1.9-3.7 s CPU, over 2.7 s in half
    the runs; with jemalloc 2.1-2.7 s at the same load (benchmarks/README.md, Mining). Only
    this library's reads use it; the process default is an entry point's choice."""
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # a pyarrow built without jemalloc
        return pa.system_memory_pool()


def read_parquet_log(path: str | Path, columns: list[str] | None = None) -> pa.Table:
    """An Arrow log (``case_key`` or ``case_id``, ``activity``, ``ts``, ``seq``; or only
    ``columns``) from a Parquet file, as :func:`codes.from_arrow` reads it best: memory-mapped,
    case ids and activities dictionary-encoded by the reader, buffers from :func:`read_pool`."""
    names = pq.read_schema(path).names
    case = "case_key" if "case_key" in names else "case_id"
    options = ds.ParquetReadOptions(dictionary_columns=[case, "activity"])
    parquet = ds.ParquetFileFormat(read_options=options)
    found = ds.dataset(str(path), format=parquet, filesystem=LocalFileSystem(use_mmap=True))
    wanted = columns or [case, "activity", "ts", "seq"]
    return found.to_table(columns=wanted, memory_pool=read_pool())


def write_discovery_from_parquet(con: duckdb.DuckDBPyConnection, path: str | Path) -> None:
    """As :func:`write_discovery_from_arrow`, from a Parquet log (:func:`read_parquet_log`)."""
    write_discovery_from_arrow(con, read_parquet_log(path))
