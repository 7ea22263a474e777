"""A count and an order-independent hash of every table of a warehouse, to show that two
checkouts loaded the same thing.

    python benchmarks/fingerprint_warehouse.py <a.duckdb> [<b.duckdb>]

With two warehouses, prints the tables that differ (and exits 1 if any). Columns that hold a
run's identity or clock (``run_id``, ``loaded_at``, ``merged_at``, ``first_assigned_at``) are
left out.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import duckdb

RUN_COLUMNS = {"run_id", "loaded_at", "merged_at", "first_assigned_at"}


def table_hashes(
    con: duckdb.DuckDBPyConnection, only: Sequence[str] | None = None
) -> dict[str, Any]:
    """(rows, hash) of every table of ``con``'s database (or of the tables ``only`` names)."""
    out: dict[str, Any] = {}
    tables = con.execute(
        "SELECT table_name, list(column_name ORDER BY column_index) FROM duckdb_columns() "
        "WHERE NOT internal AND table_name IN (SELECT table_name FROM duckdb_tables()) "
        "GROUP BY 1 ORDER BY 1"
    ).fetchall()
    for table, columns in tables:
        if only is not None and table not in only:
            continue
        kept = ", ".join(f'"{c}"' for c in columns if c not in RUN_COLUMNS)
        out[table] = con.execute(
            f'SELECT count(*), sum(hash(t)) FROM (SELECT {kept} FROM "{table}") t'
        ).fetchall()[0]
    return out


def fingerprint(path: str) -> dict[str, Any]:
    with duckdb.connect(path, read_only=True) as con:
        return table_hashes(con)


def main() -> None:
    prints = [fingerprint(p) for p in sys.argv[1:]]
    for table, value in prints[0].items():
        others = [p.get(table) for p in prints[1:]]
        mark = "" if all(o == value for o in others) else "  DIFFERS: " + repr(others)
        print(f"{table:28} {value[0]:>10} {value[1]}{mark}")
    if any(p != prints[0] for p in prints[1:]):
        sys.exit(1)


if __name__ == "__main__":
    main()
