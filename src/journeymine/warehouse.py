"""The DuckDB warehouse file: opening it safely, its schema, and the single-writer lock.

One writer process owns the file at a time (:func:`writer_lock`). Every load runs inside one
transaction, so a crash leaves the warehouse exactly as it was before the run.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd

from journeymine.errors import WarehouseError

SCHEMA_VERSION = 1
_HELD: set[str] = set()  # writer locks this process holds: re-entering one is a no-op

# The raw layer: what the parsers accepted (with file/line lineage) and what they rejected.
# ``dup_*`` keep the rows counted as duplicates, so that one can replace a loaded copy that a
# changed file no longer holds (journeymine.load).
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS load_manifest (
    source VARCHAR, file VARCHAR, sha256 VARCHAR, rows_read BIGINT, rows_loaded BIGINT,
    duplicates BIGINT, quarantined BIGINT, loaded_at TIMESTAMPTZ, run_id VARCHAR
);
CREATE TABLE IF NOT EXISTS raw_rows (
    source VARCHAR, file VARCHAR, line INTEGER, record_key VARCHAR, raw VARCHAR, run_id VARCHAR
);
CREATE TABLE IF NOT EXISTS raw_events (
    seq BIGINT, source VARCHAR, file VARCHAR, line INTEGER, event_key VARCHAR,
    event_type VARCHAR, activity VARCHAR, actor VARCHAR, occurred_at TIMESTAMPTZ,
    raw_time VARCHAR, id_type VARCHAR, id_value VARCHAR, channel VARCHAR, owner VARCHAR,
    account_type VARCHAR, account_value VARCHAR, attributes JSON
);
CREATE TABLE IF NOT EXISTS raw_edges (
    source VARCHAR, file VARCHAR, line INTEGER, src_type VARCHAR, src_id VARCHAR,
    dst_type VARCHAR, dst_id VARCHAR, rule VARCHAR, observed_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS raw_labels (
    source VARCHAR, file VARCHAR, line INTEGER, kind VARCHAR, id VARCHAR, name VARCHAR
);
CREATE TABLE IF NOT EXISTS dup_rows (
    source VARCHAR, file VARCHAR, line INTEGER, record_key VARCHAR, raw VARCHAR, run_id VARCHAR
);
CREATE TABLE IF NOT EXISTS dup_events AS FROM raw_events LIMIT 0;
CREATE TABLE IF NOT EXISTS dup_edges AS FROM raw_edges LIMIT 0;
CREATE TABLE IF NOT EXISTS dup_labels AS FROM raw_labels LIMIT 0;
CREATE TABLE IF NOT EXISTS quarantine (
    source VARCHAR, file VARCHAR, line INTEGER, reason VARCHAR, raw VARCHAR, run_id VARCHAR
);
CREATE TABLE IF NOT EXISTS identity_nodes (
    node_type VARCHAR, node_id VARCHAR, person_id BIGINT, first_assigned_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS person_merges (
    merged_person_id BIGINT, into_person_id BIGINT, merged_at TIMESTAMPTZ, run_id VARCHAR
);
CREATE TABLE IF NOT EXISTS account_nodes (
    node_type VARCHAR, node_id VARCHAR, account_id BIGINT, first_assigned_at TIMESTAMPTZ
);
"""


def connect(path: str | Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) a warehouse with the schema in place and limits set.

    ``memory_limit`` and ``max_temp_directory_size`` make a runaway query fail fast instead of
    filling the disk (DESIGN §7).
    """
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.exists():
        raise WarehouseError(f"{path}: no warehouse here; run `journeymine run` first")
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        raise WarehouseError(f"{path}: cannot open the warehouse: {exc}") from exc
    temp = path.parent / (path.name + ".tmp")
    con.execute(f"SET temp_directory = '{temp}'")
    con.execute("SET max_temp_directory_size = '50GB'")
    con.execute("SET memory_limit = '16GB'")
    if not read_only:
        ensure_schema(con)
    return con


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(SCHEMA)
    con.execute(
        "INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT (key) DO NOTHING",
        [str(SCHEMA_VERSION)],
    )


@contextmanager
def writer_lock(path: str | Path, *, wait_s: float = 0.0) -> Iterator[None]:
    """Hold the exclusive writer lock of a warehouse, waiting up to ``wait_s`` seconds.

    A second run that cannot get the lock stops with a message saying who holds it, instead of
    both writing the file. Within one process the lock is re-entrant.
    """
    lock_path = Path(str(path) + ".lock")
    key = str(lock_path.resolve())
    if key in _HELD:  # this process holds it already (the flow around its tasks)
        yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a+") as fh:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    fh.seek(0)
                    holder = fh.read().strip() or "another process"
                    raise WarehouseError(
                        f"{path}: another journeymine run is writing this warehouse "
                        f"(lock held by {holder}); wait for it to finish"
                    ) from None
                time.sleep(0.2)
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        _HELD.add(key)
        try:
            yield
        finally:
            _HELD.discard(key)
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? "
        "UNION ALL SELECT count(*) FROM duckdb_views() WHERE view_name = ?",
        [name, name],
    ).fetchall()
    return sum(r[0] for r in row) > 0


def replace_table(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> None:
    """Replace table ``name`` with the rows of ``frame`` (an analysis result)."""
    if len(frame.columns) == 0:
        raise WarehouseError(f"refusing to store {name!r}: the result has no columns")
    con.register("jm_frame", frame)
    try:
        con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM jm_frame")
    finally:
        con.unregister("jm_frame")
