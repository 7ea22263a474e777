"""Step 1 of a load: what the landing holds and what tonight must load, as plain data.

:func:`scan_landing` lists ``<landing>/<source>/**`` with each file's sha256 (and names what it
cannot read, and folders of no known source); :func:`pending_files` keeps the files the
warehouse has not loaded in this exact version; :func:`plan_load` puts both in a JSON-able plan
that stage tasks in other processes or machines can take. The run's report starts here.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from journeymine.errors import JourneymineError
from journeymine.ingest.sources import PARSERS

log = logging.getLogger(__name__)

SOURCES = tuple(PARSERS)  # the landing folders we read, in load order
IGNORED_NAMES = ("README", "readme", ".")  # notes and hidden files next to the exports


@dataclass(frozen=True)
class LandingFile:
    source: str
    path: Path
    file: str  # path relative to the landing root, e.g. "segment/2026/08/01/a.jsonl.gz"
    sha256: str


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
