"""How dashboard figures read their tables: from an open warehouse or from a DataFrame given
instead, aggregated in DuckDB SQL first (a 10M-event warehouse still makes a figure of a few
kilobytes). Raw attributes and person ids are never read.

A missing or empty table raises :class:`MissingTable`; :func:`degrades` turns that into a
figure that says so, in plain words, instead of an exception.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import ParamSpec, TypeAlias

import duckdb
import pandas as pd
import plotly.graph_objects as go

from journeymine.dashboard.style import missing_figure
from journeymine.dashboard.tables import table
from journeymine.sql import ident
from journeymine.warehouse import table_exists

Data: TypeAlias = duckdb.DuckDBPyConnection | pd.DataFrame
P = ParamSpec("P")


class MissingTable(LookupError):
    """A figure needs a warehouse table that is not there (or has no rows)."""


# Whether the warehouse has a table (or view): the warehouse layer's own check.
exists = table_exists


def columns(data: Data, table: str) -> set[str]:
    """The columns of ``table`` (or of the frame given instead); MissingTable if absent."""
    if isinstance(data, pd.DataFrame):
        return {str(c) for c in data.columns}
    if not exists(data, table):
        raise MissingTable(f"The warehouse has no {table} table yet.")
    return {d[0] for d in data.execute(f"SELECT * FROM {ident(table)} LIMIT 0").description}


Params: TypeAlias = Sequence[object] | Mapping[str, object] | None


def query(data: Data, table: str, sql: str, params: Params = None) -> pd.DataFrame:
    """Run ``sql`` where ``{t}`` names ``table`` (or the frame given instead of a warehouse),
    with ``params`` bound (positional ``?`` or named ``$name``)."""
    if isinstance(data, pd.DataFrame):
        local = duckdb.connect()
        try:
            local.register("jm_frame", data)
            return local.execute(sql.replace("{t}", "jm_frame"), params).df()
        finally:
            local.close()
    columns(data, table)
    return data.execute(sql.replace("{t}", ident(table)), params).df()


def degrades(build: Callable[P, go.Figure]) -> Callable[P, go.Figure]:
    """A missing table makes a figure that says so, not an exception."""

    @functools.wraps(build)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> go.Figure:
        try:
            return build(*args, **kwargs)
        except MissingTable as exc:
            return missing_figure(str(exc))

    return wrapper


def stored_table(data: Data, name: str, sql: str, formats: Mapping[str, str]) -> go.Figure:
    """An analysis table shown as it is stored: ``sql`` (``{t}`` names the table ``name``) read
    into a :func:`tables.table`; MissingTable when the table is absent or has no rows."""
    frame = query(data, name, sql)
    if frame.empty:
        raise MissingTable(f"The {name} table has no rows yet.")
    return table(frame, "", formats)


def outcome_steps(data: Data) -> tuple[set[str], set[str]]:
    """(the outcome stages, the stages just before one), from ``stage_funnel.outcome`` when
    stored: reaching an outcome (a cancellation) is where a lifecycle ends, not a conversion,
    so the stage before it is drawn as the journey's last."""
    if not isinstance(data, duckdb.DuckDBPyConnection) or not exists(data, "stage_funnel"):
        return set(), set()
    if "outcome" not in columns(data, "stage_funnel"):
        return set(), set()
    stages = query(
        data,
        "stage_funnel",
        "SELECT stage, position, outcome FROM {t} WHERE segment = 'all' ORDER BY position",
    )
    outcome = stages.outcome.fillna(False).astype(bool)
    ends = {int(p) - 1 for p in stages.position[outcome]}
    return set(stages.stage[outcome]), set(stages.stage[stages.position.isin(ends) & ~outcome])
