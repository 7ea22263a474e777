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

import hashlib
import json
import logging
import multiprocessing
import operator
import os
import re
import shutil
import stat
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from journeymine import warehouse
from journeymine.errors import JourneymineError, SourceFormatError
from journeymine.ingest.sources import PARSERS, TOUCHPOINT_FIXUPS
from journeymine.ingest.sources._common import ParsedFile, RawRow, Rejected
from journeymine.warehouse import schema

log = logging.getLogger(__name__)

SOURCES = tuple(PARSERS)  # the landing folders we read, in load order
# Per source, keyword arguments its parse_file takes from the journey spec (spec.source_options).
SourceOptions = Mapping[str, Mapping[str, Any]]
IGNORED_NAMES = ("README", "readme", ".")  # notes and hidden files next to the exports

PART_TABLES = ("labels", "rows", "events", "edges", "rejected")  # written in parts per file
TABLES = {name: schema.arrow_schema(columns) for name, columns in schema.STAGED.items()}
FILES_SCHEMA = TABLES["files"]


@dataclass(frozen=True)
class LandingFile:
    source: str
    path: Path
    file: str  # path relative to the landing root, e.g. "segment/2026/08/01/a.jsonl.gz"
    sha256: str


@dataclass
class StageResult:
    """A staging folder and the files that could not be parsed at all (format errors)."""

    folder: Path
    files: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FileReport:
    source: str
    file: str
    rows_read: int
    rows_loaded: int
    duplicates: int
    quarantined: int


@dataclass
class LoadReport:
    run_id: str
    files: list[FileReport] = field(default_factory=list)
    skipped_files: int = 0  # already loaded in this exact version
    errors: list[str] = field(default_factory=list)  # files or folders not loaded, and why
    gone_files: list[str] = field(default_factory=list)  # loaded before, gone now: rows kept
    unknown_folders: list[str] = field(default_factory=list)  # landing folders of no source
    persons: int = 0
    new_merges: int = 0
    touchpoints: int = 0
    stitch: str = ""  # how identities were stitched: "incremental: ..." or "full[: why]"

    def totals(self) -> dict[str, int]:
        keys = ("rows_read", "rows_loaded", "duplicates", "quarantined")
        return {k: sum(getattr(f, k) for f in self.files) for k in keys}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class LandingScan:
    """What a landing folder holds: the exports to consider, and what could not be considered."""

    files: list[LandingFile] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # "<path>: <why>", files and folders
    unreadable_paths: set[str] = field(default_factory=set)  # those paths, landing-relative
    unknown_folders: list[str] = field(default_factory=list)  # e.g. "Segment", "zendesk"


def scan_landing(landing: Path, sources: Sequence[str] | None = None) -> LandingScan:
    """Every export under ``<landing>/<source>/`` (any nesting), sorted by path within source.

    Nothing is skipped silently: a file or folder that cannot be read, and a top-level folder
    that names no source we read, are listed by name for the run's report.
    """
    landing = Path(landing)
    if not landing.is_dir():
        raise JourneymineError(f"{landing}: landing folder not found")
    unknown = set(sources or ()) - set(SOURCES)
    if unknown:
        raise JourneymineError(f"unknown source(s) {sorted(unknown)}; known: {list(SOURCES)}")
    scan = LandingScan()
    scan.unknown_folders = sorted(
        p.name for p in landing.iterdir() if p.is_dir() and p.name not in SOURCES
        and not p.name.startswith(IGNORED_NAMES)
    )  # fmt: skip
    for source in sources or SOURCES:
        if (landing / source).is_dir():
            _scan_source(landing, source, scan)
    for problem in scan.unreadable:
        log.error("%s", problem)
    return scan


def _scan_source(landing: Path, source: str, scan: LandingScan) -> None:
    def unreadable(path: str | Path, why: str) -> None:
        rel = Path(path).relative_to(landing).as_posix()
        scan.unreadable_paths.add(rel)
        scan.unreadable.append(f"{rel}: {why}")

    def folder_error(exc: OSError) -> None:
        unreadable(exc.filename, f"cannot read folder: {exc.strerror}")

    seen: set[str] = set()
    paths: list[Path] = []
    for top, dirs, names in os.walk(landing / source, onerror=folder_error, followlinks=True):
        real = os.path.realpath(top)
        if real in seen:  # a symlink back up the tree: walking on would never end
            unreadable(top, "folder link loop, not followed")
            dirs.clear()
            continue
        seen.add(real)
        paths += [Path(top) / n for n in names if not n.startswith(IGNORED_NAMES)]
    for path in sorted(paths):
        try:
            if not stat.S_ISREG(path.stat().st_mode):  # a broken link or a loop raises here
                raise OSError(0, "not a regular file")
            sha = sha256_of(path)
        except OSError as exc:
            unreadable(path, f"cannot read: {exc.strerror or exc}")
            continue
        scan.files.append(LandingFile(source, path, path.relative_to(landing).as_posix(), sha))


def find_landing_files(landing: Path, sources: Sequence[str] | None = None) -> list[LandingFile]:
    """The readable exports of :func:`scan_landing` (its problems are logged)."""
    return scan_landing(landing, sources).files


def gone_files(
    con: duckdb.DuckDBPyConnection, scan: LandingScan, sources: Sequence[str] | None = None
) -> list[str]:
    """Loaded files no longer in the landing folder. Their rows stay loaded (DESIGN: the
    warehouse is the history; vendors prune old exports)."""
    present = {f.file for f in scan.files} | scan.unreadable_paths
    loaded = con.execute(
        "SELECT file FROM load_manifest WHERE list_contains(?, source) ORDER BY file",
        [list(sources or SOURCES)],
    ).fetchall()
    return [file for (file,) in loaded if file not in present]


@dataclass(frozen=True)
class Selection:
    """Which landing files a run considers and reloads.

    ``since`` / ``until`` (inclusive dates) keep the files whose path names a date in range
    (``2026/08/03``, ``20260803`` or ``2026-08-03``); files without a date are always kept.
    ``reload_days`` re-loads, even unchanged, each source's files dated within that many days
    of its newest file (GA4 rewrites a day's table for three days). ``force`` re-loads every
    kept file: a backfill.
    """

    since: date | None = None
    until: date | None = None
    reload_days: int = 0
    force: bool = False


DATE_IN_PATH = re.compile(r"(20\d\d)[/_-]?(0[1-9]|1[0-2])[/_-]?(0[1-9]|[12]\d|3[01])")


def file_date(file: str) -> date | None:
    """The date a landing file's path names, if any (the last one in the path)."""
    found = DATE_IN_PATH.findall(file)
    if not found:
        return None
    year, month, day = found[-1]
    return date(int(year), int(month), int(day))


def pending_files(
    con: duckdb.DuckDBPyConnection,
    files: Sequence[LandingFile],
    selection: Selection = Selection(),
) -> list[LandingFile]:
    """The files to load: new, changed or late ones, plus what the selection asks to reload."""
    loaded = set(con.execute("SELECT file, sha256 FROM load_manifest").fetchall())
    kept = [
        f
        for f in files
        if (d := file_date(f.file)) is None
        or (
            (selection.since is None or d >= selection.since)
            and (selection.until is None or d <= selection.until)
        )
    ]
    newest: dict[str, date] = {}
    for f in kept:
        if (d := file_date(f.file)) is not None and d > newest.get(f.source, date.min):
            newest[f.source] = d

    def recent(f: LandingFile) -> bool:
        d = file_date(f.file)
        if selection.reload_days <= 0 or d is None:
            return False
        return (newest[f.source] - d).days < selection.reload_days

    ranged = selection.since is not None or selection.until is not None

    def forced(f: LandingFile) -> bool:  # a dated backfill leaves undated files alone
        return selection.force and (not ranged or file_date(f.file) is not None)

    return [f for f in kept if forced(f) or recent(f) or (f.file, f.sha256) not in loaded]


Plan = dict[str, Any]  # plain data (JSON-serialisable): see plan_load


def plan_load(
    con: duckdb.DuckDBPyConnection | None,
    landing: str | Path,
    sources: Sequence[str] | None = None,
    selection: Selection = Selection(),
) -> Plan:
    """Tonight's plan as plain data, so stage tasks can run in other processes or machines:
    ``files`` (per source, ``[file, sha256]`` pairs in load order), how many files are
    ``skipped`` as already loaded, and what the landing holds that will not be loaded
    (``unreadable`` paths, ``unknown_folders``, loaded files now ``gone_files``). ``con`` is the
    warehouse (None: a new one). The one plan of ``journeymine load``, the nightly flow and
    ``load_landing``."""
    scan = scan_landing(Path(landing), sources)
    todo = pending_files(con, scan.files, selection) if con is not None else scan.files
    files: dict[str, list[list[str]]] = {}
    for f in todo:
        files.setdefault(f.source, []).append([f.file, f.sha256])
    return {
        "landing": str(landing),
        "files": files,
        "skipped": len(scan.files) - len(todo),
        "unreadable": scan.unreadable,
        "unknown_folders": scan.unknown_folders,
        "gone_files": gone_files(con, scan, sources) if con is not None else [],
    }


def planned_files(plan: Plan, source: str | None = None) -> list[LandingFile]:
    """The plan's files (of one ``source``, or all) as :class:`LandingFile`, in load order; the
    sha256 is the one planned, so the manifest records the version that was planned."""
    root = Path(plan["landing"])
    return [
        LandingFile(name, root / file, file, sha)
        for name, pairs in plan["files"].items()
        if source is None or name == source
        for file, sha in pairs
    ]


def report_of(plan: Plan, run_id: str, errors: Sequence[str]) -> LoadReport:
    """A run's report as the plan and the staging errors leave it, before the commit."""
    report = LoadReport(run_id, skipped_files=plan["skipped"])
    report.errors = list(plan["unreadable"]) + list(errors)
    report.unknown_folders, report.gone_files = plan["unknown_folders"], plan["gone_files"]
    return report


def parser_for(source: str) -> Callable[..., ParsedFile]:
    return PARSERS[source]


Progress = Callable[[int, int, str], None]  # (files done, files in all, current file)


BATCH_ROWS = 20_000  # input rows per Parquet part: bounds the column buffers of one file


def stage_files(
    files: Sequence[LandingFile],
    folder: Path,
    progress: Progress | None = None,
    *,
    workers: int | None = None,
    options: SourceOptions | None = None,
) -> StageResult:
    """Parse ``files`` into Parquet parts in ``folder``; format errors are collected, not raised.

    Files are parsed in ``workers`` processes (default: one per CPU), in chunks of consecutive
    files (:data:`CHUNK_BYTES`), each file written out as it is parsed: memory holds one parsed
    file and a batch of rows per process, never the whole landing. The order of ``files`` is the
    load order: it decides which copy of a duplicate wins and how ties of equal timestamps are
    broken (``seq``). ``files.parquet`` is written last, so a folder
    without it is an unfinished staging. ``options`` are each source's parser options.
    """
    prepare_staging(folder)
    result = StageResult(folder)
    staged: list[dict[str, Any]] = []
    cpus = workers or len(os.sched_getaffinity(0))
    outcomes = _stage_all(files, folder, progress, cpus, options or {})
    for order, landing_file in enumerate(files):
        _collect(outcomes[order], landing_file, order, result, staged)
    pq.write_table(pa.Table.from_pylist(staged, schema=FILES_SCHEMA), folder / "files.parquet")
    return result


CHUNK_BYTES = 8 << 20  # input per staging task: small files share tasks and Parquet parts

Job = tuple[int, Callable[..., ParsedFile], LandingFile]  # (load order, parser, file)


def _stage_all(
    files: Sequence[LandingFile],
    folder: Path,
    progress: Progress | None,
    workers: int,
    options: SourceOptions,
) -> dict[int, int | str]:
    """Each file's outcome by its order; chunks of files in a process pool when worth it."""
    chunks = _chunks([(order, parser_for(f.source), f) for order, f in enumerate(files)])
    outcomes: dict[int, int | str] = {}
    if workers <= 1 or len(chunks) <= 1:
        for number, chunk in enumerate(chunks):
            outcomes |= stage_chunk(chunk, number, folder, options)
            if progress:
                progress(len(outcomes), len(files), chunk[-1][2].file)
        return outcomes
    # fork is fastest, but forking a process that runs other threads (a Prefect task runner)
    # can copy a lock some thread holds; there, start workers from a clean server process.
    method = "fork" if threading.active_count() == 1 else "forkserver"
    context = multiprocessing.get_context(method)
    with ProcessPoolExecutor(min(workers, len(chunks)), mp_context=context) as pool:
        futures = {pool.submit(stage_chunk, c, n, folder, options): c for n, c in enumerate(chunks)}
        for future in as_completed(futures):
            outcomes |= future.result()
            if progress:
                progress(len(outcomes), len(files), futures[future][-1][2].file)
    return outcomes


def _chunks(jobs: list[Job]) -> list[list[Job]]:
    """Consecutive files grouped up to :data:`CHUNK_BYTES` of input (a bigger file alone)."""
    chunks: list[list[Job]] = []
    size = 0
    for job in jobs:
        try:
            nbytes = job[2].path.stat().st_size
        except OSError:  # gone since the scan: staging it reports the error by name
            nbytes = 0
        if not chunks or (size + nbytes > CHUNK_BYTES and size > 0):
            chunks.append([])
            size = 0
        chunks[-1].append(job)
        size += nbytes
    return chunks


def prepare_staging(folder: Path) -> None:
    """One sub-folder per table, each with an empty part so that a scan always finds a file."""
    for name in PART_TABLES:
        (folder / name).mkdir(parents=True, exist_ok=True)
        pq.write_table(TABLES[name].empty_table(), folder / name / "empty.parquet")


def _collect(
    outcome: int | str,
    landing_file: LandingFile,
    order: int,
    result: StageResult,
    staged: list[dict[str, Any]],
) -> None:
    if isinstance(outcome, str):  # the file could not be read or is not in its format
        result.errors.append(outcome)
        log.error("%s", outcome)
        return
    result.files.append(landing_file.file)
    staged.append(
        {
            "source": landing_file.source,
            "file": landing_file.file,
            "sha256": landing_file.sha256,
            "rows_read": outcome,
            "file_ord": order,
        }
    )


def stage_chunk(
    jobs: Sequence[Job], number: int, folder: Path, options: SourceOptions | None = None
) -> dict[int, int | str]:
    """Parse a chunk of files into shared Parquet parts; per file its rows read or its error."""
    parts = _Parts(folder, number)
    outcomes = {
        order: stage_one(parse, landing_file, parts, (options or {}).get(landing_file.source))
        for order, parse, landing_file in jobs
    }
    parts.flush()
    return outcomes


def stage_one(
    parse: Callable[..., ParsedFile],
    landing_file: LandingFile,
    parts: _Parts,
    options: Mapping[str, Any] | None = None,
) -> int | str:
    """Parse one file into ``parts``; its rows read, or the error text naming it."""
    try:
        parsed = parse(landing_file.path, landing_file.file, **(options or {}))
    except SourceFormatError as exc:
        return str(exc)
    except OSError as exc:  # vanished, unreadable, truncated gzip: name it, load the rest
        return f"{landing_file.file}: cannot read: {exc.strerror or exc}"
    for row in parsed.rows:
        parts.add_row(parsed.source, parsed.file, row)
    for rej in parsed.rejected:
        parts.add_rejected(parsed.source, parsed.file, rej)
    return parsed.rows_read


# An Event's fields in the staged column order; attributes (the last column) become JSON text.
_EVENT_VALUES = operator.attrgetter(*(c.name for c in schema.EVENT[:-1]))
assert schema.EVENT[-1].name == "attributes"
_EDGE_VALUES = operator.attrgetter(*(c.name for c in schema.EDGE))
_LABEL_VALUES = operator.attrgetter(*(c.name for c in schema.LABEL))


class _Parts:
    """Rows per table of a chunk of files, written out as a Parquet part every
    :data:`BATCH_ROWS` input rows. Buffered as tuples in schema order: the cheapest shape to
    build in Python."""

    def __init__(self, folder: Path, number: int) -> None:
        self.folder, self.number = folder, number
        self.batch = 0
        self.rows = 0
        self.buffers: dict[str, list[tuple[Any, ...]]] = {name: [] for name in PART_TABLES}

    def add_row(self, source: str, file: str, row: RawRow) -> None:
        at = (source, file, row.line)
        self.buffers["rows"].append((*at, row.record_key, row.raw))
        self.buffers["events"] += [
            (*at, idx, *_EVENT_VALUES(ev), _attributes_json(ev.attributes))
            for idx, ev in enumerate(row.events)
        ]
        self.buffers["labels"] += [(*at, *_LABEL_VALUES(lab)) for lab in row.labels]
        self.buffers["edges"] += [(*at, *_EDGE_VALUES(e)) for e in row.edges]
        self.rows += 1
        if self.rows % BATCH_ROWS == 0:
            self.flush()

    def add_rejected(self, source: str, file: str, rej: Rejected) -> None:
        self.buffers["rejected"].append((source, file, rej.line, rej.reason, rej.raw))

    def flush(self) -> None:
        for name, rows in self.buffers.items():
            if rows:
                part = f"{self.number:07d}-{self.batch:05d}.parquet"
                pq.write_table(_table(name, rows), self.folder / name / part)
        self.buffers = {name: [] for name in PART_TABLES}
        self.batch += 1


def _table(name: str, rows: list[tuple[Any, ...]]) -> pa.Table:
    schema = TABLES[name]
    columns = zip(*rows, strict=True)  # tuples -> columns
    return pa.Table.from_arrays(
        [pa.array(list(c), type=f.type) for c, f in zip(columns, schema, strict=True)],
        schema=schema,
    )


ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def _attributes_json(attributes: dict[str, Any]) -> str:
    """Attributes as compact JSON with sorted keys; values JSON cannot hold become strings."""
    try:
        return orjson.dumps(attributes, option=ORJSON_OPTIONS, default=str).decode()
    except (TypeError, orjson.JSONEncodeError):  # e.g. integers beyond 64 bits
        return json.dumps(attributes, sort_keys=True, default=str)


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
    con.execute("CREATE OR REPLACE TEMP VIEW stg_files AS FROM stg_file_order")
    _remove_previous_versions(con)
    _classify(con)
    _insert_rows(con, run_id)
    _promote_orphaned_duplicates(con)
    _record_manifest(con, run_id)
    rows = con.execute(
        "SELECT source, file, rows_read, rows_loaded, duplicates, quarantined "
        "FROM load_manifest WHERE run_id = ? ORDER BY source, file",
        [run_id],
    ).fetchall()
    for name in TABLES:
        con.execute(f"DROP VIEW IF EXISTS stg_{name}")
    for name in ("file_order", "class", "seq", "replaced_keys", "promoted"):
        con.execute(f"DROP TABLE IF EXISTS stg_{name}")
    return [FileReport(*row) for row in rows]


def _remove_previous_versions(con: duckdb.DuckDBPyConnection) -> None:
    """A changed file replaces its previous version entirely; remember the keys it held."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE stg_replaced_keys AS SELECT DISTINCT source, record_key "
        "FROM raw_rows WHERE file IN (SELECT file FROM stg_files)"
    )
    tables = [f"{kind}_{t}" for kind in ("raw", "dup") for t in RAW_TABLES]
    for table in (*tables, "quarantine", "load_manifest"):
        con.execute(f"DELETE FROM {table} WHERE file IN (SELECT file FROM stg_files)")


def _classify(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE stg_class AS
        SELECT r.source, r.file, r.line, r.record_key, f.ord,
               (EXISTS (SELECT 1 FROM raw_rows o
                        WHERE o.source = r.source AND o.record_key = r.record_key)
                OR row_number() OVER (PARTITION BY r.source, r.record_key
                                      ORDER BY f.ord, r.line) > 1) AS is_duplicate
        FROM stg_rows r JOIN stg_files f USING (source, file)
        """
    )


def _insert_rows(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Loaded rows into ``raw_*``, duplicates into ``dup_*``; events numbered in load order."""
    base_seq = con.execute(
        "SELECT greatest((SELECT coalesce(max(seq), 0) FROM raw_events), "
        "(SELECT coalesce(max(seq), 0) FROM dup_events))"
    ).fetchone()
    # Narrow tables only: the wide staged columns stream from Parquet straight into the inserts.
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE stg_seq AS
        SELECT e.source, e.file, e.line, e.idx, c.is_duplicate,
               ? + row_number() OVER (ORDER BY c.ord, e.line, e.idx) AS seq
        FROM stg_events e JOIN stg_class c USING (source, file, line)
        """,
        [base_seq[0] if base_seq else 0],
    )
    for kind, wanted in (("raw", False), ("dup", True)):
        con.execute(
            f"INSERT INTO {kind}_rows SELECT source, file, line, r.record_key, r.raw, ? "
            "FROM stg_rows r JOIN stg_class c USING (source, file, line) "
            "WHERE c.is_duplicate = ?",
            [run_id, wanted],
        )
        con.execute(
            f"""
            INSERT INTO {kind}_events
            SELECT s.seq, source, file, line, {EVENT_COLUMNS}
            FROM stg_events e JOIN stg_seq s USING (source, file, line, idx)
            WHERE s.is_duplicate = ?
            """,
            [wanted],
        )
        for table, columns in (
            ("edges", schema.names(schema.EDGE)),
            ("labels", schema.names(schema.LABEL)),
        ):
            con.execute(
                f"INSERT INTO {kind}_{table} SELECT source, file, line, {columns} "
                f"FROM stg_{table} JOIN stg_class c USING (source, file, line) "
                "WHERE c.is_duplicate = ?",
                [wanted],
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
               count(c.line) FILTER (WHERE NOT c.is_duplicate),
               count(c.line) FILTER (WHERE c.is_duplicate),
               (SELECT count(*) FROM stg_rejected q WHERE q.file = f.file),
               ?, ?
        FROM stg_files f LEFT JOIN stg_class c USING (source, file)
        GROUP BY ALL
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
    selection: Selection = Selection(),
    options: SourceOptions | None = None,
    incremental: bool = True,
) -> LoadReport:
    """The whole load: find, parse, load, stitch, rebuild touchpoints — in one transaction.

    ``options`` are each source's parser options from the journey spec (spec.source_options);
    ``incremental=False`` forces the full rebuild of identities and touchpoints.
    """
    run_id = uuid.uuid4().hex[:12]
    with warehouse.transaction(warehouse_path, wait_s=lock_wait_s) as con:
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


def staging_root(warehouse_path: str | Path) -> Path:
    """Where a warehouse's runs stage their Parquet: next to it, on the same disk."""
    path = Path(warehouse_path)
    return path.parent / (path.name + ".staging")


def clean_staging(root: Path) -> list[str]:
    """Remove staging folders of earlier runs (call it holding the writer lock); their names."""
    if not root.is_dir():
        return []
    removed = sorted(p.name for p in root.iterdir())
    for name in removed:
        target = root / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)
    if removed:
        log.info("removed staging left by earlier runs: %s", ", ".join(removed))
    return removed


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
    rebuilt. ``report.stitch`` says which, and why."""
    from journeymine.canonical import identity, touchpoints

    con.begin()
    try:
        replaced = _replaced_files(con, folders)
        report.files = load_staged(con, folders, run_id)
        stitched = identity.stitch(
            con,
            run_id,
            match_on_email=match_on_email,
            max_user_ids_per_person=max_user_ids_per_person,
            incremental=incremental and not replaced,
        )
        report.persons, report.new_merges = stitched.persons, stitched.new_merges
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
