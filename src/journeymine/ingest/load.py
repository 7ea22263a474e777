"""Landing files -> staging Parquet -> the warehouse's raw layer, exactly once.

Three steps, split so that parsing can fan out while one process writes the file:

1. :func:`scan_landing` lists ``<landing>/<source>/**`` with each file's sha256 (and names what
   it cannot read, and folders of no known source), and :func:`pending_files` keeps the files
   the warehouse has not loaded in this exact version.
2. :func:`stage_files` parses them (pure, no warehouse) in parallel processes, one file per
   task, each written out in Parquet parts of :data:`BATCH_ROWS` rows as it is parsed: memory
   depends on the largest file, not on the landing.
3. :func:`load_staged` loads staging folders in the caller's transaction: a changed file's
   previous version is removed first, rows whose vendor dedup key is already loaded (or appears
   earlier in the batch) count as duplicates, and ``load_manifest`` records per file
   ``rows_read = rows_loaded + duplicates + quarantined``.

:func:`load_landing` runs all three plus identity stitching and the touchpoints rebuild in one
:func:`journeymine.warehouse.transaction`: a crash anywhere leaves the warehouse as it was, and
readers holding the warehouse open neither block the run nor see half of it. Staging lives in
``<warehouse>.staging/<run id>/``; the next run removes what a killed run left there.
Files deleted from the landing keep their rows (the warehouse is the history) and are listed
in the report as gone.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from journeymine import warehouse
from journeymine.ingest.plan import (
    IGNORED_NAMES,
    SOURCES,
    FileReport,
    LandingFile,
    LandingScan,
    LoadReport,
    Plan,
    Selection,
    file_date,
    find_landing_files,
    gone_files,
    pending_files,
    plan_load,
    planned_files,
    report_of,
    scan_landing,
    sha256_of,
)
from journeymine.ingest.sources import TOUCHPOINT_FIXUPS
from journeymine.ingest.stage import (
    BATCH_ROWS,
    FILES_SCHEMA,
    PART_TABLES,
    TABLES,
    Progress,
    SourceOptions,
    StageResult,
    clean_staging,
    parser_for,
    prepare_staging,
    stage_files,
    staging_root,
)
from journeymine.warehouse import schema

log = logging.getLogger(__name__)

# A load is plan (ingest.plan) -> stage (ingest.stage) -> commit (here); callers reach all
# three through this module (``load.stage_files``, ``load.plan_load``...).
__all__ = [
    "BATCH_ROWS",
    "FILES_SCHEMA",
    "IGNORED_NAMES",
    "PART_TABLES",
    "SOURCES",
    "TABLES",
    "FileReport",
    "LandingFile",
    "LandingScan",
    "LoadReport",
    "Plan",
    "Progress",
    "Selection",
    "SourceOptions",
    "StageResult",
    "clean_staging",
    "commit_load",
    "commit_phase",
    "file_date",
    "find_landing_files",
    "gone_files",
    "load_landing",
    "load_staged",
    "parser_for",
    "pending_files",
    "plan_load",
    "planned_files",
    "prepare_staging",
    "report_of",
    "scan_landing",
    "sha256_of",
    "stage_files",
    "staging_root",
]


def _parts_glob(folder: Path, table: str) -> Path:
    return folder / "files.parquet" if table == "files" else folder / table / "*.parquet"


RAW_TABLES = tuple(schema.RAW)  # raw_<t> holds loaded rows, dup_<t> copies
# The staged event columns as the raw tables take them (attributes staged as text, stored as JSON).
EVENT_COLUMNS = ", ".join(
    f"e.{c.name}::{c.sql}" if c.sql == "JSON" else f"e.{c.name}" for c in schema.EVENT
)


def load_staged(
    con: duckdb.DuckDBPyConnection, folders: Sequence[Path], run_id: str
) -> list[FileReport]:
    """Load staging folders into the raw layer. Runs in the caller's transaction.

    A row whose record key is already loaded is a duplicate: it is counted, and kept in the
    ``dup_*`` tables so that when the file holding the loaded copy changes and no longer holds
    the record, the next copy is promoted in its place instead of the record being lost.
    """
    folders = [f for f in folders if (f / "files.parquet").exists()]
    if not folders:
        return []
    for name in TABLES:  # views: the staged Parquet is read where used, never held whole
        paths = [str(_parts_glob(f, name)) for f in folders]
        con.read_parquet(paths).create_view(f"stg_{name}", replace=True)
    # Load order: sources by name, files in the order they were staged (one folder per source).
    con.execute(
        "CREATE OR REPLACE TEMP TABLE stg_file_order AS "
        "SELECT *, row_number() OVER (ORDER BY source, file_ord) AS ord FROM stg_files"
    )
    # The ordered files take the view's name; the view over Parquet goes (it is a view of the
    # warehouse file, and a temp view of the same name would only hide it until the end).
    con.execute("DROP VIEW stg_files")
    con.execute("CREATE TEMP VIEW stg_files AS FROM stg_file_order")
    replaced = _remove_previous_versions(con)
    duplicates = _classify(con)
    _insert_rows(con, run_id, duplicates)
    if replaced:
        _promote_orphaned_duplicates(con)
    _record_manifest(con, run_id)
    rows = con.execute(
        "SELECT source, file, rows_read, rows_loaded, duplicates, quarantined "
        "FROM load_manifest WHERE run_id = ? ORDER BY source, file",
        [run_id],
    ).fetchall()
    for name in TABLES:
        con.execute(f"DROP VIEW IF EXISTS stg_{name}")
    for name in ("file_order", "dups", "seq", "replaced_keys", "promoted"):
        con.execute(f"DROP TABLE IF EXISTS stg_{name}")
    return [FileReport(*row) for row in rows]


def _remove_previous_versions(con: duckdb.DuckDBPyConnection) -> bool:
    """A changed file replaces its previous version entirely; remember the keys it held.

    Whether any staged file replaces a loaded one. A file's rows are only ever written with its
    manifest row (here, in one transaction), so when no staged file is in the manifest there is
    nothing to remove and a night of new files skips a scan of every raw table."""
    replaced = con.execute(
        "SELECT count(*) FROM stg_files SEMI JOIN load_manifest USING (file)"
    ).fetchall()[0][0]
    if not replaced:
        return False
    con.execute(
        "CREATE OR REPLACE TEMP TABLE stg_replaced_keys AS SELECT DISTINCT source, record_key "
        "FROM raw_rows WHERE file IN (SELECT file FROM stg_files)"
    )
    tables = [f"{kind}_{t}" for kind in ("raw", "dup") for t in RAW_TABLES]
    for table in (*tables, "quarantine", "load_manifest"):
        con.execute(f"DELETE FROM {table} WHERE file IN (SELECT file FROM stg_files)")
    return True


def _classify(con: duckdb.DuckDBPyConnection) -> int:
    """Find the staged rows that are duplicates; return how many.

    Only rows whose record key is seen twice in the batch or is loaded already can be
    duplicates, and those keys are few: they are found by one aggregate and one semi join, and
    only their rows are ranked, so the loads below join nothing on a night without duplicates.
    A duplicate is a row whose key is loaded, or not the first in load order (file, line)."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE stg_dups AS
        WITH again AS (SELECT source, record_key, false AS is_loaded FROM stg_rows
                       GROUP BY source, record_key HAVING count(*) > 1),
             loaded AS (SELECT DISTINCT source, record_key, true AS is_loaded
                        FROM raw_rows SEMI JOIN stg_rows USING (source, record_key)),
             keys AS (SELECT source, record_key, bool_or(is_loaded) AS is_loaded
                      FROM (FROM again UNION ALL FROM loaded) GROUP BY source, record_key)
        SELECT r.source, r.file, r.line
        FROM stg_rows r JOIN keys k USING (source, record_key) JOIN stg_files f USING (source, file)
        QUALIFY k.is_loaded OR row_number() OVER (PARTITION BY r.source, r.record_key
                                                  ORDER BY f.ord, r.line) > 1
        """
    )
    return int(con.execute("SELECT count(*) FROM stg_dups").fetchall()[0][0])


def _insert_rows(con: duckdb.DuckDBPyConnection, run_id: str, duplicates: int) -> None:
    """Loaded rows into ``raw_*``, duplicates into ``dup_*``; events numbered in load order.

    Each staged row goes to ``raw_*`` unless it is in the (small) ``stg_dups``; with no
    duplicates the staged Parquet streams into the raw tables without a join."""
    base_seq = con.execute(
        "SELECT greatest((SELECT coalesce(max(seq), 0) FROM raw_events), "
        "(SELECT coalesce(max(seq), 0) FROM dup_events))"
    ).fetchall()[0][0]
    # Numbered over all events, duplicates too, so that seq follows the load order: files in
    # load order, events in the order their file was parsed (staged ``pos``). Only the files are
    # ordered here; each event adds its place to its file's start, streaming from Parquet.
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE stg_seq AS
        SELECT source, file,
               (? + sum(events) OVER (ORDER BY ord) - events)::BIGINT AS before
        FROM stg_files
        """,
        [base_seq],
    )
    kinds = [("raw", "ANTI" if duplicates else "")] + ([("dup", "SEMI")] if duplicates else [])
    for kind, join in kinds:
        # "t ANTI JOIN stg_dups USING (...)" keeps the rows not listed; SEMI those listed.
        keep = f"{join} JOIN stg_dups USING (source, file, line)" if join else ""
        con.execute(
            f"INSERT INTO {kind}_rows SELECT source, file, line, record_key, raw, ? "
            f"FROM stg_rows {keep}",
            [run_id],
        )
        con.execute(
            f"""
            INSERT INTO {kind}_events
            SELECT s.before + e.pos + 1, e.source, e.file, e.line, {EVENT_COLUMNS}
            FROM stg_events e JOIN stg_seq s USING (source, file) {keep}
            """
        )
        for table, columns in (
            ("edges", schema.names(schema.EDGE)),
            ("labels", schema.names(schema.LABEL)),
        ):
            con.execute(
                f"INSERT INTO {kind}_{table} SELECT source, file, line, {columns} "
                f"FROM stg_{table} {keep}"
            )
    con.execute("INSERT INTO quarantine SELECT *, ? FROM stg_rejected", [run_id])


def _promote_orphaned_duplicates(con: duckdb.DuckDBPyConnection) -> None:
    """A record whose loaded copy went with a changed file lives on in its next kept copy."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE stg_promoted AS
        SELECT d.source, d.file, d.line
        FROM dup_rows d SEMI JOIN stg_replaced_keys k USING (source, record_key)
        WHERE NOT EXISTS (SELECT 1 FROM raw_rows r
                          WHERE r.source = d.source AND r.record_key = d.record_key)
        QUALIFY row_number() OVER (PARTITION BY d.source, d.record_key
                                   ORDER BY d.file, d.line) = 1
        """
    )
    for table in RAW_TABLES:
        con.execute(
            f"INSERT INTO raw_{table} SELECT d.* FROM dup_{table} d "
            "SEMI JOIN stg_promoted USING (source, file, line)"
        )
        con.execute(
            f"DELETE FROM dup_{table} d USING stg_promoted p "
            "WHERE d.source = p.source AND d.file = p.file AND d.line = p.line"
        )
    con.execute(
        """
        UPDATE load_manifest m
        SET rows_loaded = m.rows_loaded + p.n, duplicates = m.duplicates - p.n
        FROM (SELECT file, count(*) AS n FROM stg_promoted GROUP BY file) p
        WHERE m.file = p.file
        """
    )


def _record_manifest(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    con.execute(
        """
        INSERT INTO load_manifest
        SELECT f.source, f.file, f.sha256, f.rows_read,
               coalesce(n.n_rows, 0) - coalesce(d.n_rows, 0), coalesce(d.n_rows, 0),
               (SELECT count(*) FROM stg_rejected q WHERE q.file = f.file),
               ?, ?
        FROM stg_files f
        LEFT JOIN (SELECT source, file, count(*) AS n_rows FROM stg_rows GROUP BY ALL) n
               USING (source, file)
        LEFT JOIN (SELECT source, file, count(*) AS n_rows FROM stg_dups GROUP BY ALL) d
               USING (source, file)
        """,
        [datetime.now(UTC), run_id],
    )


def load_landing(
    warehouse_path: str | Path,
    landing: str | Path,
    *,
    sources: Sequence[str] | None = None,
    match_on_email: bool = True,
    max_user_ids_per_person: int = 1,
    lock_wait_s: float = 0.0,
    progress: Progress | None = None,
    selection: Selection = Selection(),  # noqa: B008 (frozen: one shared default is safe)
    options: SourceOptions | None = None,
    incremental: bool = True,
    memory_limit: str | None = None,
) -> LoadReport:
    """The whole load: find, parse, load, stitch, rebuild touchpoints — in one transaction.

    ``options`` are each source's parser options from the journey spec (spec.source_options);
    ``incremental=False`` forces the full rebuild of identities and touchpoints;
    ``memory_limit`` caps DuckDB's memory (journeymine.warehouse.settings).
    """
    run_id = uuid.uuid4().hex[:12]
    writer = warehouse.transaction(warehouse_path, wait_s=lock_wait_s, memory_limit=memory_limit)
    with writer as con:
        root = staging_root(warehouse_path)
        clean_staging(root)  # left by killed runs: we hold the lock, so no run is using them
        plan = plan_load(con, landing, sources, selection)
        folder = root / run_id
        try:
            staged = stage_files(planned_files(plan), folder, progress, options=options)
            report = report_of(plan, run_id, staged.errors)
            commit_load(
                con,
                [staged.folder],
                run_id,
                report,
                match_on_email=match_on_email,
                max_user_ids_per_person=max_user_ids_per_person,
                incremental=incremental,
            )
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return report


def commit_load(
    con: duckdb.DuckDBPyConnection,
    folders: Sequence[Path],
    run_id: str,
    report: LoadReport,
    *,
    match_on_email: bool = True,
    max_user_ids_per_person: int = 1,
    incremental: bool = True,
) -> None:
    """Load staged folders, stitch identities and rebuild touchpoints atomically.
    ``max_user_ids_per_person`` is the person-merge policy (docs/identity.md).

    Stitching and the touchpoints are incremental (only the persons the new rows reach are
    recomputed, with the result of a full rebuild) unless ``incremental`` is off or a staged
    file replaces a loaded version (rows removed can split persons): then everything is
    rebuilt. ``report.stitch`` says which, and why.

    ``con`` must be a :func:`journeymine.warehouse.transaction`'s: its working copy makes the
    whole load atomic (published on success, discarded on any failure, a kill included), and its
    cap bounds DuckDB's memory. Inside that copy each phase commits on its own: a DuckDB
    transaction keeps what its statements replaced and dropped until it ends, so a full stitch
    at 100M raw rows left the touchpoints rebuild after it no room under the default cap."""
    from journeymine.canonical import identity, touchpoints

    con.begin()
    try:
        replaced = _replaced_files(con, folders)
        report.files = load_staged(con, folders, run_id)
        commit_phase(con)
        stitched = identity.stitch(
            con,
            run_id,
            match_on_email=match_on_email,
            max_user_ids_per_person=max_user_ids_per_person,
            incremental=incremental and not replaced,
        )
        report.persons, report.new_merges = stitched.persons, stitched.new_merges
        commit_phase(con)
        report.stitch = stitched.mode
        if replaced and incremental:
            report.stitch += f": {replaced} file(s) replace a loaded version"
        # only the changed persons after a night
        report.touchpoints = touchpoints.build(con, TOUCHPOINT_FIXUPS)
        log.info("identity stitching and touchpoints: %s", report.stitch)
        con.commit()
    except BaseException:
        con.rollback()
        raise


def commit_phase(con: duckdb.DuckDBPyConnection) -> None:
    """End one phase of :func:`commit_load` inside the working copy and begin the next."""
    con.commit()
    con.begin()


def _replaced_files(con: duckdb.DuckDBPyConnection, folders: Sequence[Path]) -> int:
    """How many staged files are new versions of files already loaded."""
    lists = [str(f / "files.parquet") for f in folders if (f / "files.parquet").exists()]
    if not lists:
        return 0
    rows = con.execute(
        "SELECT count(*) FROM read_parquet(?) WHERE file IN (SELECT file FROM load_manifest)",
        [lists],
    ).fetchall()
    return int(rows[0][0])
