"""Step 2 of a load: parse planned files into staging Parquet, pure (no warehouse).

:func:`stage_files` parses files in parallel processes, each written out in Parquet parts of
:data:`BATCH_ROWS` rows as it is parsed: memory depends on the largest file, not on the landing.
Staging lives in ``<warehouse>.staging/<run id>/``; the next run removes what a killed run left.
"""

from __future__ import annotations

import gc
import json
import logging
import multiprocessing
import os
import shutil
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from journeymine.errors import SourceFormatError
from journeymine.ingest.plan import LandingFile
from journeymine.ingest.sources import PARSERS
from journeymine.ingest.sources._common import Edge, Event, Label, ParsedFile, RawRow, Rejected
from journeymine.warehouse import schema

log = logging.getLogger(__name__)

SourceOptions = Mapping[str, Mapping[str, Any]]
PART_TABLES = ("labels", "rows", "events", "edges", "rejected")  # written in parts per file
TABLES = {name: schema.arrow_schema(columns) for name, columns in schema.STAGED.items()}
FILES_SCHEMA = TABLES["files"]


@dataclass
class StageResult:
    """A staging folder and the files that could not be parsed at all (format errors)."""

    folder: Path
    files: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def parser_for(source: str) -> Callable[..., ParsedFile]:
    return PARSERS[source]


Progress = Callable[[int, int, str], None]  # (files done, files in all, current file)
Staged = tuple[int, int]  # what a file staged: (rows read, events)


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
    files (:data:`CHUNK_BYTES` of input, the largest chunks first), each file written out as it
    is parsed: memory holds one parsed file and a batch of rows per process, never the whole
    landing. The order of ``files`` is the load order: it decides which copy of a duplicate
    wins and how ties of equal timestamps are broken (``seq``). ``files.parquet`` is written
    last, so a folder without it is an unfinished staging. ``options`` are each source's parser
    options.
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
) -> dict[int, Staged | str]:
    """Each file's outcome by its order; chunks of files in a process pool when worth it."""
    chunks = _chunks([(order, parser_for(f.source), f) for order, f in enumerate(files)])
    outcomes: dict[int, Staged | str] = {}
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
    """Consecutive files grouped up to :data:`CHUNK_BYTES` of input (a bigger file alone),
    largest first: the long tasks start early and the small ones fill the end, so that no
    worker sits idle while another finishes a big chunk handed out last."""
    chunks: list[list[Job]] = []
    sizes: list[int] = []
    for job in jobs:
        nbytes = input_bytes(job[2].path)
        if not chunks or (sizes[-1] + nbytes > CHUNK_BYTES and sizes[-1] > 0):
            chunks.append([])
            sizes.append(0)
        chunks[-1].append(job)
        sizes[-1] += nbytes
    by_size = sorted(range(len(chunks)), key=lambda n: -sizes[n])  # stable: ties keep order
    return [chunks[n] for n in by_size]


def input_bytes(path: Path) -> int:
    """The bytes a parser reads from ``path``: a ``.gz`` file's own size is a tenth of it.

    For gzip, the trailer's ISIZE (size mod 2**32 of the last member): only an estimate, so
    a file that is no gzip or truncated still counts its own size; 0 if the file is gone
    (staging it reports the error by name)."""
    try:
        size = path.stat().st_size
        if not path.name.endswith(".gz") or size < 18:  # header and trailer of a gzip
            return size
        with path.open("rb") as fh:
            fh.seek(-4, os.SEEK_END)
            return max(size, int.from_bytes(fh.read(4), "little"))
    except OSError:
        return 0


def prepare_staging(folder: Path) -> None:
    """One sub-folder per table, each with an empty part so that a scan always finds a file."""
    for name in PART_TABLES:
        (folder / name).mkdir(parents=True, exist_ok=True)
        pq.write_table(TABLES[name].empty_table(), folder / name / "empty.parquet")


def _collect(
    outcome: Staged | str,
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
    rows_read, events = outcome
    staged.append(
        {
            "source": landing_file.source,
            "file": landing_file.file,
            "sha256": landing_file.sha256,
            "rows_read": rows_read,
            "file_ord": order,
            "events": events,
        }
    )


def stage_chunk(
    jobs: Sequence[Job], number: int, folder: Path, options: SourceOptions | None = None
) -> dict[int, Staged | str]:
    """Parse a chunk of files into shared Parquet parts; per file what it staged or its error."""
    with gc_paused():
        parts = _Parts(folder, number)
        outcomes = {
            order: stage_one(parse, landing_file, parts, (options or {}).get(landing_file.source))
            for order, parse, landing_file in jobs
        }
        parts.flush()
    return outcomes


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: parsing allocates millions of small dicts, lists
    and tuples, and Python's collector kept scanning the growing parsed file (a quarter to a
    third of the CPU staging took). Parsed rows hold no reference cycles; what cycles a chunk
    leaves are collected as usual once it is done."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def stage_one(
    parse: Callable[..., ParsedFile],
    landing_file: LandingFile,
    parts: _Parts,
    options: Mapping[str, Any] | None = None,
) -> Staged | str:
    """Parse one file into ``parts``; its rows read and events, or the error text naming it."""
    try:
        parsed = parse(landing_file.path, landing_file.file, **(options or {}))
    except SourceFormatError as exc:
        return str(exc)
    except OSError as exc:  # vanished, unreadable, truncated gzip: name it, load the rest
        return f"{landing_file.file}: cannot read: {exc.strerror or exc}"
    parts.start_file(parsed.source, parsed.file)
    for row in parsed.rows:
        parts.add_row(row)
    for rej in parsed.rejected:
        parts.add_rejected(rej)
    return parsed.rows_read, parts.pos


# Events, edges and labels are tuples in the staged column order (an event's attributes, its
# last field, become JSON text): checked here, relied on by _Parts.add_row.
assert Event._fields == tuple(c.name for c in schema.EVENT)
assert Edge._fields == tuple(c.name for c in schema.EDGE)
assert Label._fields == tuple(c.name for c in schema.LABEL)
# Every staged table starts with the file's source and name: _Parts adds those per file.
assert all(tuple(TABLES[name].names[:2]) == ("source", "file") for name in PART_TABLES)


# Columns of few distinct values, written with a dictionary. The others (raw text, keys, ids,
# times) are mostly distinct: Parquet's dictionary encoding of them is built and then thrown
# away page by page, which took a fifth of the time a part took to write.
FEW_VALUES = frozenset(
    {"source", "file", "event_type", "activity", "actor", "id_type", "channel", "owner"}
    | {"account_type", "src_type", "dst_type", "rule", "kind"}
)
DICTIONARY = {name: [c for c in TABLES[name].names if c in FEW_VALUES] for name in PART_TABLES}


class _Parts:
    """Rows per table of a chunk of files, written out as a Parquet part every
    :data:`BATCH_ROWS` input rows. Buffered as tuples in schema order without the first two
    columns, the source and the file, which are the same for all rows of a file: they are
    kept once per file (:meth:`start_file`) and spread over its rows when a part is written.
    An event's attributes become JSON text then too. Events are numbered within their file as
    parsed (``pos``); with each file's count of events, the load numbers them in load order
    (``seq``) by adding, without sorting or joining every event."""

    def __init__(self, folder: Path, number: int) -> None:
        self.folder, self.number = folder, number
        self.batch = 0
        self.rows = 0
        self.buffers: dict[str, list[tuple[Any, ...]]] = {name: [] for name in PART_TABLES}
        # Per file in this part: its source, its name, where its rows start in each buffer.
        self.files: list[tuple[str, str, list[int]]] = []
        self.pos = 0  # events of the file being staged so far: the next event's ``pos``

    def start_file(self, source: str, file: str) -> None:
        """The rows and rejects added next are ``file``'s, until the next call."""
        self.files.append((source, file, [len(rows) for rows in self.buffers.values()]))
        self.pos = 0

    def add_row(self, row: RawRow) -> None:
        line, buffers = row.line, self.buffers
        buffers["rows"].append((line, row.record_key, row.raw))
        events, pos = row.events, self.pos
        if len(events) == 1:  # the usual case: no list to build
            buffers["events"].append((line, pos, *events[0]))
        elif events:
            buffers["events"] += [(line, pos + n, *ev) for n, ev in enumerate(events)]
        self.pos = pos + len(events)
        if row.labels:
            buffers["labels"] += [(line, *label) for label in row.labels]
        if row.edges:
            buffers["edges"] += [(line, *edge) for edge in row.edges]
        self.rows += 1
        if self.rows % BATCH_ROWS == 0:
            self.flush()

    def add_rejected(self, rej: Rejected) -> None:
        self.buffers["rejected"].append((rej.line, rej.reason, rej.raw))

    def flush(self) -> None:
        for number, (name, rows) in enumerate(self.buffers.items()):
            if rows:
                starts = [at[number] for _, _, at in self.files]
                lineage = _lineage(self.files, starts, len(rows))
                part = f"{self.number:07d}-{self.batch:05d}.parquet"
                table = _table(name, lineage, rows)
                pq.write_table(table, self.folder / name / part, use_dictionary=DICTIONARY[name])
        self.buffers = {name: [] for name in PART_TABLES}
        self.batch += 1
        if self.files:  # the file being staged goes on in the next part
            source, file, _ = self.files[-1]
            self.files = [(source, file, [0] * len(PART_TABLES))]


def _lineage(files: list[tuple[str, str, list[int]]], starts: list[int], total: int) -> Lineage:
    """The source and file columns of ``total`` rows, the files' rows starting at ``starts``."""
    counts = [end - start for start, end in zip(starts, [*starts[1:], total], strict=True)]
    runs = np.repeat(np.arange(len(files)), counts)
    sources = pa.array([source for source, _, _ in files], pa.string()).take(runs)
    names = pa.array([file for _, file, _ in files], pa.string()).take(runs)
    return sources, names


Lineage = tuple[pa.Array, pa.Array]  # the source and file columns of a part


def _table(name: str, lineage: Lineage, rows: list[tuple[Any, ...]]) -> pa.Table:
    schema = TABLES[name]
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True))  # tuples -> columns
    if name == "events":  # attributes, the last column, as JSON text
        columns[-1] = list(map(_attributes_json, columns[-1]))
    arrays = [pa.array(c, type=f.type) for c, f in zip(columns, list(schema)[2:], strict=True)]
    return pa.Table.from_arrays([*lineage, *arrays], schema=schema)


ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def _attributes_json(attributes: dict[str, Any]) -> str:
    """Attributes as compact JSON with sorted keys; values JSON cannot hold become strings."""
    try:
        return orjson.dumps(attributes, option=ORJSON_OPTIONS, default=str).decode()
    except (TypeError, orjson.JSONEncodeError):  # e.g. integers beyond 64 bits
        return json.dumps(attributes, sort_keys=True, default=str)


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
