"""The notebook API: load, analyse, open a warehouse, get a DataFrame for every table.

>>> import journeymine as jm
>>> wh = jm.open_warehouse("out/warehouse.duckdb")
>>> int(wh.touchpoints(person_id=1).person_id.unique()[0])
1
>>> sorted(set(jm.TABLES) - set(wh.tables()))
[]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd

from journeymine import warehouse
from journeymine.canonical import identity
from journeymine.dashboard import sections
from journeymine.errors import UsageError, WarehouseError
from journeymine.sql import ident
from journeymine.warehouse import schema

if TYPE_CHECKING:  # the heavy layers load when a function needs them, not on `import`
    import plotly.graph_objects as go

    from journeymine.analyses.runner import AnalysisReport
    from journeymine.ingest.load import LoadReport
    from journeymine.spec import JourneySpec

STATUSES = ("converted", "dropped", "open", "excluded", "final")
# Every table and view a full run creates, in docs/warehouse.md's order: the declaration
# (warehouse/schema.py), which the doc is made from and tests/warehouse holds to a run.
TABLES = tuple(schema.WAREHOUSE)
# The dashboard's figures a notebook may ask for by name (``figure``), in the page's order:
# the names of the section registry's functions (dashboard/sections), not a second list.
_FIGURES = {build.__name__: build for build in sections.FIGURES.values()}
FIGURES = tuple(_FIGURES)


class Warehouse:
    """A read-only handle on a warehouse file; every method returns a pandas DataFrame."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.con: duckdb.DuckDBPyConnection = connect_read_only(self.path)

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()

    def sql(self, query: str, params: Sequence[object] | None = None) -> pd.DataFrame:
        """Any read-only SQL over the warehouse, as a DataFrame (files outside it are out of
        reach: see :func:`connect_read_only`)."""
        return self.con.execute(query, list(params or ())).df()

    def tables(self) -> list[str]:
        """The documented tables (``TABLES``) this warehouse holds so far, in the doc's order."""
        held = warehouse.held_tables(self.con)
        return [name for name in TABLES if name in held]

    def view(self, name: str) -> pd.DataFrame:
        """One documented table (``TABLES``, docs/warehouse.md), whole.

        >>> jm.open_warehouse("out/warehouse.duckdb").view("accounts")
        Traceback (most recent call last):
        ...
        journeymine.errors.WarehouseError: unknown view 'accounts'; the tables are: raw_rows, ...
        """
        if name not in TABLES:
            raise WarehouseError(
                f"unknown view {name!r}; the tables are: {', '.join(TABLES)} (docs/warehouse.md)"
            )
        if not warehouse.table_exists(self.con, name):
            raise WarehouseError(
                f"{self.path}: no {name!r} yet; run `journeymine run` (or `report`) to build it"
            )
        return self.sql(f"SELECT * FROM {ident(name)}")

    def touchpoints(
        self,
        person_id: int | None = None,
        since: str | None = None,
        until: str | None = None,
        source: str | None = None,
    ) -> pd.DataFrame:
        """Touchpoints in journey order, optionally for one person / period / source."""
        where, params = ["true"], []
        for clause, value in (
            ("person_id = ?", person_id),
            ("occurred_at >= ?::TIMESTAMPTZ", since),
            ("occurred_at < ?::TIMESTAMPTZ", until),
            ("source = ?", source),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        return self.sql(
            f"SELECT * FROM touchpoints WHERE {' AND '.join(where)} "
            "ORDER BY person_id, occurred_at, seq",
            params,
        )

    def persons(self) -> pd.DataFrame:
        return self.view("persons")

    def explain_person(self, person_id: int) -> pd.DataFrame:
        """The identity links that made this person, and the merges that were refused."""
        self.check_person(person_id)
        return identity.explain_person(self.con, person_id)

    def check_person(self, person_id: int) -> None:
        """Raise :class:`UsageError` unless ``person_id`` is a current person."""
        known, low, high = self.con.execute(
            "SELECT count(*) FILTER (WHERE person_id = ?), min(person_id), max(person_id) "
            "FROM identity_nodes",
            [person_id],
        ).fetchall()[0]
        if known:
            return
        merged = self.con.execute(
            "SELECT any_value(into_person_id) FROM person_merges WHERE merged_person_id = ?",
            [person_id],
        ).fetchall()[0][0]
        if merged is not None:
            raise UsageError(f"person {person_id} was merged into person {merged}; ask for that")
        raise UsageError(
            f"{self.path}: no person {person_id}; person ids run from {low} to {high}"
            if low is not None
            else f"{self.path}: no persons yet; run `journeymine load` first"
        )

    def _check_choice(self, what: str, value: str, query: str) -> None:
        """Refuse a value the warehouse does not hold, listing the ones it does."""
        valid = tuple(sorted(str(v) for (v,) in self.con.execute(query).fetchall()))
        _check_listed(what, value, valid)

    def people(
        self, stage: str, status: str | None = None, segment: str | None = None
    ) -> pd.DataFrame:
        """Drill-down: the persons behind a stage-funnel cell (``status`` converted / dropped /
        open / final; ``segment`` like ``"company_size=1-10"``), with their entry times.
        Unknown stages, statuses and segments are refused with the valid ones listed."""
        if not warehouse.table_exists(self.con, "stage_entries"):
            raise WarehouseError(f"{self.path}: no funnel yet; run `journeymine report`")
        self._check_choice("stage", stage, "SELECT DISTINCT stage FROM stage_entries")
        where, params = ["stage = ?"], [stage]
        if status:
            _check_listed("status", status, STATUSES)
            where.append("status = ?")
            params.append(status)
        join = ""
        if segment:  # the values the funnel was broken down by: known at each step's entry
            self._check_choice(
                "segment",
                segment,
                "SELECT DISTINCT segment FROM stage_funnel WHERE segment <> 'all'",
            )
            key, _, value = segment.partition("=")
            join = "JOIN stage_segments s USING (case_key, pos)"
            where += ["s.attribute = ?", "s.value = ?"]
            params += [key, value]
        people = self.sql(
            "SELECT case_key AS person_id, stage, status, entered_at, converted_at "
            f"FROM stage_entries {join} WHERE {' AND '.join(where)} ORDER BY case_key",
            params,
        )
        return people

    def journeys(self, person_ids: Sequence[int]) -> pd.DataFrame:
        """Each person's journey as one row: the activities in order, first and last time."""
        return self.sql(
            "SELECT person_id, list(activity ORDER BY occurred_at, seq) AS activities, "
            "min(occurred_at) AS first_seen, max(occurred_at) AS last_seen FROM touchpoints "
            "WHERE person_id IN (SELECT unnest(?::BIGINT[])) GROUP BY person_id ORDER BY person_id",
            [list(person_ids)],
        )

    def quarantine(self) -> pd.DataFrame:
        return self.view("quarantine")

    def followups(self, by: str = "rule") -> pd.DataFrame:
        """Follow-up latency per rule (and ``owner``, ``owner_name``, ``responder`` or
        ``channel``): counts, median / p90 waits and breach rates, as docs/metrics.md defines
        them (:func:`journeymine.analyses.followups.summarise_followups`)."""
        from journeymine.analyses.followups import summarise_followups

        _check_listed("breakdown", by, ("rule", "owner", "owner_name", "responder", "channel"))
        return summarise_followups(self.view("followups"), by=by)

    def load_manifest(self) -> pd.DataFrame:
        return self.view("load_manifest")


def _check_listed(what: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        shown = ", ".join(valid[:40]) + (f", ... ({len(valid)} in all)" if len(valid) > 40 else "")
        raise UsageError(f"unknown {what} {value!r}; the {what}s are: {shown or '(none)'}")


def connect_read_only(path: str | Path) -> duckdb.DuckDBPyConnection:
    """Open a warehouse file read-only, refusing a missing, corrupt or truncated one.

    Settings go in as connection config, never spliced into SQL: a quote in the path is data.
    The connection cannot touch the file system (no ``COPY ... TO``, ``read_csv``, ``ATTACH``)
    and its configuration is locked: SQL run through it, from a notebook or spliced in by a
    bug, can read the warehouse and nothing else. (DuckDB's default temp folder for a file is
    ``<file>.tmp``, as :func:`journeymine.warehouse.connect` sets it.)
    """
    path = Path(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "no warehouse here"
        raise WarehouseError(f"{path}: {what}; run `journeymine load` or `run` to build one")
    config: dict[str, str | bool | int | float | list[str]] = {
        "max_temp_directory_size": "50GB",
        "memory_limit": "16GB",
        "enable_external_access": False,
        "lock_configuration": True,
    }
    try:
        con = duckdb.connect(str(path), read_only=True, config=config)
        _check_complete(con, path)
    except duckdb.Error as exc:
        reason = str(exc).splitlines()[0]
        raise WarehouseError(
            f"{path}: not a readable warehouse ({reason}); restore it from a backup or "
            "rebuild it with `journeymine run`"
        ) from None
    return con


DUCKDB_HEADERS = 3 * 4096  # a DuckDB file starts with a main header and two database headers


def _check_complete(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """A truncated file opens (its headers are intact) and fails later, mid-report: compare
    its size with the blocks in use its header promises, and refuse it now. (Free blocks at
    the end may legitimately be cut off by a checkpoint, so only used blocks count.)"""
    block_size, blocks = con.execute(
        "SELECT block_size, total_blocks - free_blocks FROM pragma_database_size() "
        "WHERE database_name = current_database()"
    ).fetchall()[0]
    if path.stat().st_size < DUCKDB_HEADERS + block_size * blocks:
        con.close()
        raise duckdb.IOException(
            f"the file is truncated: {path.stat().st_size:,} bytes, its header promises "
            f"{DUCKDB_HEADERS + block_size * blocks:,}"
        )


def open_warehouse(path: str | Path = "out/warehouse.duckdb") -> Warehouse:
    """Open a warehouse read-only for analysis (a missing, corrupt or truncated file is a
    ``WarehouseError`` saying what to do)."""
    return Warehouse(path)


def load(
    warehouse_path: str | Path,
    landing: str | Path,
    journey: str | Path | None = None,
    **options: Any,
) -> LoadReport:
    """Load a landing folder (``<source>/...``) into a warehouse, created if missing: parse,
    stitch identities, rebuild touchpoints, in one transaction (``journeymine load``).
    ``journey`` is the spec whose source sections some parsers need (a survey CSV's column
    mapping); ``options`` are :func:`journeymine.ingest.load.load_landing`'s (``sources``...).
    """
    from journeymine.ingest.load import load_landing
    from journeymine.spec import load_spec, source_options

    if journey is not None:
        options.setdefault("options", source_options(load_spec(journey)))
    return load_landing(warehouse_path, landing, **options)


def import_log(
    warehouse_path: str | Path,
    path: str | Path,
    *,
    case: str = "case:concept:name",
    activity: str = "concept:name",
    timestamp: str = "time:timestamp",
    resource: str | None = None,
    lifecycle: str | None = None,
) -> LoadReport:
    """Load a XES / XES.gz / CSV / Parquet event log as source ``log`` (``journeymine
    import-log``); the column names default to XES's. Importing the same file again is a no-op.
    """
    from journeymine.ingest.import_log import load_event_log
    from journeymine.ingest.load import sha256_of
    from journeymine.mining.eventlog import EventLogMapping, read_event_log

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such file; pass the event log file")
    table = read_event_log(path, EventLogMapping(case, activity, timestamp, resource, lifecycle))
    return load_event_log(warehouse_path, table, path.name, sha256=sha256_of(path))


def analyse(
    warehouse_path: str | Path, journey: str | Path | None, out: str | Path
) -> AnalysisReport:
    """Recompute every analysis of a warehouse for a journey spec (``None``: an imported log
    without a designed journey), replacing them atomically; models go to ``<out>/models``
    (``journeymine report`` without the dashboard)."""
    from journeymine.analyses.runner import analyse_warehouse

    return analyse_warehouse(warehouse_path, journey, out)


def load_spec(path: str | Path) -> JourneySpec:
    """Read and check a journey spec (TOML); a mistake is a ``SpecError`` naming file and key."""
    from journeymine import spec

    return spec.load_spec(path)


def export_dashboard(
    source: Warehouse | str | Path,
    out_path: str | Path,
    *,
    journey: str | Path | JourneySpec | None = None,
    title: str = "Customer journeys",
) -> Path:
    """Write the self-contained dashboard of an open warehouse or a warehouse file to
    ``out_path``; ``journey`` (a spec or its path) names the journey and its costed stage."""
    from journeymine.dashboard import export_dashboard as export
    from journeymine.spec import JourneySpec

    spec = journey if isinstance(journey, JourneySpec) or journey is None else load_spec(journey)
    con_or_path = source.con if isinstance(source, Warehouse) else source
    return export(con_or_path, out_path, spec=spec, title=title)


def figure(name: str, source: Warehouse | duckdb.DuckDBPyConnection, **options: Any) -> go.Figure:
    """One of the dashboard's figures (``FIGURES``) by name, drawn from a warehouse;
    ``options`` are the figure function's own (:mod:`journeymine.dashboard.sections`).

    >>> [trace.name for trace in jm.figure("stage_funnel", wh).data if trace.type == "bar"]
    ['converted', 'dropped', 'open', 'reached the last stage']
    """
    _check_listed("figure", name, FIGURES)
    build: Callable[..., go.Figure] = _FIGURES[name]
    return build(source.con if isinstance(source, Warehouse) else source, **options)
