"""Which events mark which stage: the SQL the funnel, conformance and drivers share.

An event marks a stage when its activity matches one of the stage's patterns and every
``where`` condition holds on its JSON attributes (docs/metrics.md); ``occurrence`` counts
such events, so it is left to the callers that count them.
"""

from __future__ import annotations

import duckdb

from journeymine.spec import NUMERIC_OPS, Condition, JourneySpec, Stage, positions
from journeymine.sql import glob_any, literal, number


def _condition_sql(c: Condition, attributes: str) -> str:
    """SQL: ``c`` holds on the JSON ``attributes``; false where the attribute is missing."""
    text = f"({attributes}->>{literal(c.key)})"
    values = c.value if isinstance(c.value, tuple) else (c.value,)
    if c.op in NUMERIC_OPS:
        assert isinstance(c.value, int | float)
        return f"coalesce(TRY_CAST({text} AS DOUBLE) {c.op} {number(c.value)}, false)"
    equal = []
    for v in values:
        if isinstance(v, bool):  # JSON spells booleans in lower case
            equal.append(f"coalesce({text} = {literal(str(v).lower())}, false)")
        elif isinstance(v, int | float):  # 1000 matches "1000" and 1000.0 alike
            equal.append(f"coalesce(TRY_CAST({text} AS DOUBLE) = {number(v)}, false)")
        else:
            equal.append(f"coalesce({text} = {literal(v)}, false)")
    any_equal = "(" + " OR ".join(equal) + ")"
    if c.op in ("=", "in"):
        return any_equal
    return f"({text} IS NOT NULL AND NOT {any_equal})"


def marker_sql(stage: Stage, activity: str, attributes: str) -> str:
    """SQL: an event (``activity`` and JSON ``attributes`` columns) marks ``stage``: an
    activity pattern matches and every ``where`` condition holds. ``occurrence`` is left to
    the caller (it counts events)."""
    conditions = [_condition_sql(c, attributes) for c in stage.where]
    return (
        "(" + " AND ".join([glob_any(f"{activity}::VARCHAR", stage.activities), *conditions]) + ")"
    )


def needs_attributes(spec: JourneySpec) -> bool:
    """Whether any stage has ``where`` conditions (only then are attributes read)."""
    return any(s.where for s in spec.stages)


def columns_of(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    """The column names of ``relation``."""
    return [d[0] for d in con.execute(f"SELECT * FROM {relation} LIMIT 0").description]


def marks_sql(
    con: duckdb.DuckDBPyConnection, spec: JourneySpec, log: str, table: str = "touchpoints"
) -> str:
    """SQL: one row per event and stage it marks: ``case_key, ts, seq, stage_i`` (index in
    ``spec.stages``), ``pos``, ``occurrence`` and ``n_all`` (how many events marked that stage
    in the case so far, this one included). The attributes come from the log's
    ``attributes`` column if it has one, else from ``table`` joined on ``event_id = seq``
    (only for events whose activity marks a stage, and only when a stage has ``where``)."""
    stages = list(spec.stages)
    at = {s.name: pos for pos, (group, _) in enumerate(positions(spec)) for s in group}
    if not stages:  # no stage marks anything; the cut-off stays bound, so it is named
        return (
            "SELECT NULL::BIGINT AS case_key, $cutoff::TIMESTAMPTZ AS ts, NULL::BIGINT AS seq, "
            "NULL::INT AS stage_i, NULL::INT AS pos, NULL::INT AS occurrence, "
            "NULL::BIGINT AS n_all WHERE false"
        )
    patterns = tuple(p for s in stages for p in s.activities)
    if not needs_attributes(spec):
        source = f"SELECT case_key, ts, seq, activity, NULL::JSON AS attributes FROM {log}"
    elif "attributes" in columns_of(con, log):
        source = f"SELECT case_key, ts, seq, activity, attributes FROM {log}"
    else:
        source = (
            f"SELECT l.case_key, l.ts, l.seq, l.activity, t.attributes FROM {log} l "
            f"LEFT JOIN {table} t ON t.event_id = l.seq "
            f"WHERE {glob_any('l.activity::VARCHAR', patterns)}"
        )
    cases = ", ".join(
        f"CASE WHEN {marker_sql(s, 'activity', 'attributes')} THEN {i} END"
        for i, s in enumerate(stages)
    )
    pos_list = "[" + ", ".join(str(at[s.name]) for s in stages) + "]"
    occ_list = "[" + ", ".join(str(s.occurrence) for s in stages) + "]"
    return f"""
        WITH src AS ({source}), marked AS (
            SELECT case_key, ts, seq, unnest(list_filter([{cases}], lambda x: x IS NOT NULL))::INT
                   AS stage_i
            FROM src WHERE {glob_any("activity::VARCHAR", patterns)} AND ts <= $cutoff
        )
        SELECT case_key, ts, seq, stage_i, {pos_list}[stage_i + 1]::INT AS pos,
               {occ_list}[stage_i + 1]::INT AS occurrence,
               row_number() OVER (PARTITION BY case_key, stage_i ORDER BY ts, seq) AS n_all
        FROM marked
    """
