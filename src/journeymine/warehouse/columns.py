"""The vocabulary of the warehouse declaration: a column, a table, and a column's Arrow type
derived from its SQL type (so a declaration names each type once)."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

# The layers, in the order data flows through them (docs/warehouse.md has one section each).
LAYERS = ("raw", "duplicates", "identity", "canonical", "analyses")
ENUM = "ENUM"  # a column DuckDB types as an ENUM of the values it holds (data-dependent)


@dataclass(frozen=True)
class Column:
    name: str
    arrow: pa.DataType
    sql: str
    meaning: str
    optional: bool = False  # may be absent (e.g. retention's revenue columns without amounts)


@dataclass(frozen=True)
class Table:
    """One table (or view) of the warehouse: its layer, what one of its rows is, its columns."""

    name: str
    layer: str
    row: str
    columns: tuple[Column, ...]
    view: bool = False


_SCALARS: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "JSON": pa.string(),
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
    "TIMESTAMP": pa.timestamp("us"),
    ENUM: pa.dictionary(pa.uint8(), pa.string()),
}


def arrow_type(sql: str) -> pa.DataType:
    """The Arrow type of a scalar SQL type or a list of one (``VARCHAR[]``)."""
    if sql.endswith("[]"):
        return pa.list_(arrow_type(sql[:-2]))
    try:
        return _SCALARS[sql]
    except KeyError:
        raise ValueError(f"no Arrow type declared for SQL type {sql!r}") from None


def col(name: str, sql: str, meaning: str, *, optional: bool = False) -> Column:
    """A column whose Arrow type follows from its SQL type."""
    return Column(name, arrow_type(sql), sql, meaning, optional)
