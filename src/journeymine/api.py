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
from journeymine.analyses.funnel import segment_values
from journeymine.errors import WarehouseError

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
        self.con: duckdb.DuckDBPyConnection = warehouse.connect(self.path, read_only=True)

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
        """Any read-only SQL over the warehouse, as a DataFrame."""
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
        return identity.explain_person(self.con, person_id)

    def people(
        self, stage: str, status: str | None = None, segment: str | None = None
    ) -> pd.DataFrame:
        """Drill-down: the persons behind a stage-funnel cell (``status`` converted / dropped /
        open / final; ``segment`` like ``"company_size=1-10"``), with their entry times."""
        if not warehouse.table_exists(self.con, "stage_entries"):
            raise WarehouseError(f"{self.path}: no funnel yet; run `journeymine report`")
        where, params = ["stage = ?"], [stage]
        if status:
            where.append("status = ?")
            params.append(status)
        people = self.sql(
            "SELECT case_key AS person_id, stage, status, entered_at, converted_at "
            f"FROM stage_entries WHERE {' AND '.join(where)} ORDER BY case_key",
            params,
        )
        if segment:  # the same first-touch segment values the funnel was broken down by
            key, _, value = segment.partition("=")
            values = segment_values(self.con, (key,))
            members = values.loc[values[key].fillna("(none)") == value, "person_id"]
            people = people[people.person_id.isin(members)].reset_index(drop=True)
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


def open_warehouse(path: str | Path = "out/warehouse.duckdb") -> Warehouse:
    """Open a warehouse read-only for analysis."""
    return Warehouse(path)
