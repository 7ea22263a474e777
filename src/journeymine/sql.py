"""SQL fragments used across the analyses: literals, identifiers, activity patterns, the data's
cut-off and first- / last-touch attribute values. Each fragment is written here once.

Values from a spec or a user reach SQL through these (or as bound parameters), never pasted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

import duckdb

TOUCHES = ("first", "last")


def literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def in_partition(key: str, part: int, parts: int) -> str:
    """A predicate that keeps hash partition ``part`` of ``parts`` of the expression ``key``
    (every row when ``parts`` is 1): a statement run once per part sees each key in one."""
    return "true" if parts == 1 else f"hash({key}) % {int(parts)} = {int(part)}"


def create_in_parts(
    con: duckdb.DuckDBPyConnection, table: str, selects: Iterable[str], temp: bool = False
) -> None:
    """(Re)create ``table`` from the first query of ``selects`` and append the others, in order:
    one statement per part of a step cut to fit the writer's memory cap."""
    kind = "TEMP TABLE" if temp else "TABLE"
    for part, select in enumerate(selects):
        verb = f"INSERT INTO {table} " if part else f"CREATE OR REPLACE {kind} {table} AS "
        con.execute(verb + select)


def glob_any(column: str, patterns: tuple[str, ...]) -> str:
    """A condition: ``column`` matches any of the shell-style ``patterns`` (false if none),
    the patterns as literals: for SQL text built once and run with other parameters (the
    funnel's stage marks, which conformance and the shards reuse)."""
    if not patterns:
        return "false"
    return "(" + " OR ".join(f"{column} GLOB {literal(p)}" for p in patterns) + ")"


def glob_param(column: str, parameter: str) -> str:
    """A condition: ``column`` matches any glob of the bound ``$parameter`` (a list of
    patterns); false if the list is empty or ``column`` is NULL, as :func:`glob_any`."""
    # A lambda per row: about 1.6x the time of literal ORs (+20 ms per 1M rows and condition);
    # a correlated EXISTS over unnest() was as fast as the literals but took 80 MB more peak
    # memory in bench_analyses at 1M events.
    return f"(len(list_filter(${parameter}::VARCHAR[], lambda g: {column} GLOB g)) > 0)"


def number(value: float) -> str:
    """A SQL numeric literal (a float: ``1000`` compares equal to ``1000.0``)."""
    return repr(float(value))


def glob_bound(column: str, name: str, patterns: Sequence[str], params: dict[str, Any]) -> str:
    """:func:`glob_param` with the ``patterns`` bound as ``$name`` in ``params``; without
    patterns the condition is ``false``, which the planner folds (a join it guards is dropped)
    and which binds nothing (DuckDB refuses a parameter the statement does not use)."""
    if not patterns:
        return "false"
    params[name] = list(patterns)
    return glob_param(column, name)


def cutoff_sql(relation: str, column: str = "occurred_at") -> str:
    """SQL: the data's cut-off, the latest ``column`` of ``relation`` (one row, one value)."""
    return f"SELECT max({column}) FROM {relation}"


def data_cutoff(con: duckdb.DuckDBPyConnection, relation: str, column: str = "ts") -> datetime:
    """The data's cut-off: the latest event time in ``relation`` (``ts`` of an event log;
    ``occurred_at`` of touchpoints)."""
    value: datetime = con.execute(cutoff_sql(relation, column)).fetchall()[0][0]
    return value


def duration_s(ts: str = "ts") -> str:
    """SQL aggregate: seconds from the first to the last ``ts`` of a group (a case's duration),
    in whole microseconds as the event log stores them."""
    return f"(epoch_us(max({ts})) - epoch_us(min({ts}))) / 1e6"


def touch_value(touch: str, key: str, attributes: str = "attributes") -> str:
    """SQL aggregate: the JSON ``attributes`` value at ``key`` (a SQL expression: a literal or
    a bound parameter) of the first (or last) row carrying it, in ``(occurred_at, seq)``
    order."""
    if touch not in TOUCHES:
        raise ValueError("touch is 'first' or 'last'")
    pick = "arg_min" if touch == "first" else "arg_max"
    value = f"{attributes}->>{key}"
    return f"{pick}({value}, (occurred_at, seq)) FILTER (WHERE {value} IS NOT NULL)"


@cache
def statement(package: str, name: str) -> str:
    """The text of the SQL file ``name`` in ``package``'s ``sql`` folder, read once: long
    statements live in ``.sql`` files beside their module (placeholders in braces)."""
    return (resources.files(package) / "sql" / name).read_text(encoding="utf-8")
