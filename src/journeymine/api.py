"""The notebook API: open a warehouse, get a DataFrame for every view.

>>> import journeymine as jm
>>> wh = jm.open_warehouse("out/warehouse.duckdb")
>>> wh.touchpoints(person_id=42)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import duckdb
import pandas as pd

from journeymine import identity, warehouse
from journeymine.errors import UsageError, WarehouseError

STATUSES = ("converted", "dropped", "open", "excluded", "final")
VIEWS = (
    "touchpoints",
    "persons",
    "identity_edges",
    "quarantine",
    "load_manifest",
    "dfg",
    "variants",
    "stage_funnel",
    "followups",
)


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

    def view(self, name: str) -> pd.DataFrame:
        """One of the documented views (``VIEWS``), whole."""
        if name not in VIEWS:
            raise WarehouseError(f"unknown view {name!r}; the views are {', '.join(VIEWS)}")
        if not warehouse.table_exists(self.con, name):
            raise WarehouseError(
                f"{self.path}: no {name!r} yet; run `journeymine run` (or `report`) to build it"
            )
        return self.sql(f"SELECT * FROM {name}")

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
    """Open a warehouse read-only for analysis."""
    return Warehouse(path)
