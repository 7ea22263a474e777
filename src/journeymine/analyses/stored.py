"""Store the result of a query as a declared analyses table, without a round trip through pandas.

``warehouse.replace_table`` stores a frame; at volume the frame is the memory (a pandas row per
case is gigabytes at 100M events). ``store_query`` keeps such a result in DuckDB: the query
builds the table, cast to the declared types in the declared order, and checked as
``replace_table``'s are.
"""

from __future__ import annotations

from typing import Any

import duckdb

from journeymine.sql import ident
from journeymine.warehouse import schema


def store_query(
    con: duckdb.DuckDBPyConnection, name: str, query: str, params: dict[str, Any] | None = None
) -> None:
    """Replace table ``name`` with the rows of ``query``, whose columns are ``name``'s declared
    ones (optional ones may be missing), each cast to its declared type."""
    held = [d[0] for d in con.execute(f"SELECT * FROM ({query}) LIMIT 0", params).description]
    columns = [c for c in schema.declared(name).columns if c.name in held]
    select = ", ".join(_cast(c) + " AS " + ident(c.name) for c in columns)
    table = ident(name)
    con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT {select} FROM ({query}) q", params)
    schema.conform(con, name)


def _cast(column: schema.Column) -> str:
    if column.sql == schema.ENUM:  # the producer's own ENUM of the values it holds
        return f"q.{ident(column.name)}"
    return f"CAST(q.{ident(column.name)} AS {column.sql})"
