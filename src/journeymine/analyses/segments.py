"""Segments of the stage funnel: the value of an attribute each person (or account) had, at
first touch, last touch or when entering a step, binned or mapped as the spec says
(docs/metrics.md, "segments"). Split from ``funnel`` (which re-exports these names).
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pandas as pd

from journeymine.spec import Segment
from journeymine.sql import TOUCHES, ident, literal, number, touch_value

CASE_COLUMNS = {"person": "person_id", "account": "account_id"}
UNKNOWN = "(unknown)"  # the segment label of people whose value was not known yet


def _segment_sql(attributes: tuple[str, ...], touch: str, table: str, case: str) -> str:
    """SQL: one row per case with ``case_key`` and each attribute's first- or last-touch value."""
    if touch not in TOUCHES:
        raise ValueError("touch is 'first' or 'last'")
    if case not in CASE_COLUMNS:
        raise ValueError(f"segments need a person or account case notion, not {case!r}")
    column = CASE_COLUMNS[case]
    values = "".join(f", {touch_value(touch, literal(a))} AS {ident(a)}" for a in attributes)
    return (
        f"SELECT {column} AS case_key{values} FROM {table} "
        f"WHERE {column} IS NOT NULL GROUP BY {column}"
    )


def entry_segments_sql(
    attributes: Sequence[str | Segment], touch: str, entries: str, table: str, case: str
) -> str:
    """SQL: one row per entry and segment (``case_key, pos, k, attribute, value``): the
    value known when the step was entered — the first (or latest) value carried by a
    touchpoint at or before ``entered_at`` — else ``(unknown)``. A company size first told at
    signup says nothing about who signs up. A plain name is an attribute's raw value; a
    :class:`Segment` is binned or mapped after that pick (a value that is not a number falls
    in no bin: ``(unknown)``), and may read the account's touchpoints too; ``attribute`` is
    then the segment's name."""
    if touch not in TOUCHES:
        raise ValueError("touch is 'first' or 'last'")
    if case not in CASE_COLUMNS:
        raise ValueError(f"segments need a person or account case notion, not {case!r}")
    parts = []
    for k, segment in enumerate(attributes, start=1):
        if isinstance(segment, str):
            segment = Segment(segment, segment)
        known = _known_sql(segment, table, CASE_COLUMNS[case])
        if touch == "first":
            known = (
                "SELECT case_key, min(known_at) AS known_at, "
                "arg_min(value, (known_at, known_seq)) AS value "
                f"FROM ({known}) GROUP BY case_key"
            )
            join = "LEFT JOIN v ON v.case_key = e.case_key AND v.known_at <= e.entered_at"
        else:  # the latest value at entry: an as-of join on time
            join = "ASOF LEFT JOIN v ON v.case_key = e.case_key AND v.known_at <= e.entered_at"
        parts.append(
            f"(WITH v AS ({known}) SELECT e.case_key, e.pos, {k} AS k, "
            f"{literal(segment.name)} AS attribute, "
            f"coalesce({_label_sql(segment, 'v.value')}, {literal(UNKNOWN)}) AS value "
            f"FROM {entries} e {join})"
        )
    return " UNION ALL ".join(parts)


def _known_sql(segment: Segment, table: str, column: str) -> str:
    """SQL: ``case_key, known_at, known_seq, value``: every touchpoint carrying the attribute;
    for an account segment of people, also those of every account the person belongs to
    (Segment ``group`` traits, Salesforce Account fields), each touchpoint once."""
    value = f"attributes->>{literal(segment.attribute)}"
    own = (
        f"SELECT {column} AS case_key, occurred_at AS known_at, seq AS known_seq, "
        f"{value} AS value FROM {table} WHERE {column} IS NOT NULL AND {value} IS NOT NULL"
    )
    if segment.source != "account" or column == "account_id":
        return own
    return (
        f"{own} UNION SELECT a.case_key, t.occurred_at, t.seq, t.{value} "
        f"FROM (SELECT DISTINCT person_id AS case_key, account_id FROM {table} "
        "WHERE person_id IS NOT NULL AND account_id IS NOT NULL) a "
        f"JOIN {table} t ON t.account_id = a.account_id WHERE t.{value} IS NOT NULL"
    )


def _label_sql(segment: Segment, value: str) -> str:
    """SQL: the segment's label of a raw ``value`` (NULL when it falls in no bin)."""
    if segment.bins:
        cast = f"TRY_CAST({value} AS DOUBLE)"
        arms = " ".join(
            f"WHEN {cast} < {number(edge)} THEN {literal(label)}"
            for edge, label in zip(segment.bins, segment.labels, strict=False)
        )
        last = literal(segment.labels[-1])
        return f"(CASE WHEN {cast} IS NULL THEN NULL {arms} ELSE {last} END)"
    if segment.map:
        arms = " ".join(f"WHEN {literal(a)} THEN {literal(b)}" for a, b in segment.map)
        return f"(CASE {value} {arms} ELSE {value} END)"
    return value


def segment_values(
    con: duckdb.DuckDBPyConnection,
    attributes: tuple[str, ...],
    touch: str = "first",
    *,
    table: str = "touchpoints",
    case: str = "person",
) -> pd.DataFrame:
    """Each case's value of each segment attribute: from its first (or last) touchpoint that
    carries it, in ``(occurred_at, seq)`` order, whenever it was known. Returns ``person_id``
    (``case_key`` for other case notions) and one column per attribute. The funnel breaks down
    by the value known at each step's entry instead (``stage_segments``)."""
    frame = con.execute(_segment_sql(attributes, touch, table, case)).df()
    return frame.rename(columns={"case_key": "person_id"}) if case == "person" else frame
