"""Stage funnel with censoring: who enters each stage, converts, drops, or is still open.

Definitions (docs/metrics.md):

* a person **enters** the first stage at the first event that marks it; in ``ordered`` mode a
  person enters a later stage when it **converts** into it: the first event marking the next
  stage after entering this one (in event order ``(ts, seq)``), within this step's window (the
  next stage's ``window``, else the spec's). In ``any`` mode every stage is entered at its
  first marking event, whatever came before;
* **dropped**: the window elapsed at or before the data's cut-off without converting;
  **open**: the window had not elapsed yet at the cut-off (right-censored: never a drop-off);
* conversion rate = converted / (converted + dropped), with a 95% Wilson interval;
* an optional stage may be skipped: converting from the stage before it means reaching it or
  the first non-optional stage after it. Alternatives (stages sharing a ``group``) are one step.

The work is set-based SQL over the whole log, one statement per step; only per-stage
aggregates leave DuckDB. Every person's entry, status and times are kept in ``stage_entries``
so any figure can be drilled into.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import numpy as np
import pandas as pd

from journeymine.analyses.sql import ident, literal
from journeymine.analyses.stats import Z95, kaplan_meier, wilson
from journeymine.spec import JourneySpec, Stage, positions

MODES = ("ordered", "strict", "any")
COHORTS = {"W": "week", "M": "month", "week": "week", "month": "month"}
ENTRIES = "jm_stage_entries"
FUNNEL_COLUMNS = [
    "segment",
    "position",
    "stage",
    "entered",
    "converted",
    "dropped",
    "open",
    "excluded",
    "conversion_rate",
    "conversion_ci_low",
    "conversion_ci_high",
    "time_to_convert_p50_s",
    "time_to_convert_p90_s",
    "time_to_convert_p95_s",
    "segment_rank",
]
CASE_COLUMNS = {"person": "person_id", "account": "account_id"}


def _step_table(con: duckdb.DuckDBPyConnection, spec: JourneySpec) -> list[tuple[str, bool, float]]:
    """Create ``jm_stage_patterns(pos, pattern)``; return (label, optional, window_s) per step."""
    rows, steps = [], []
    for pos, (stages, optional) in enumerate(positions(spec)):
        window = _window(stages, spec)
        steps.append((" | ".join(s.name for s in stages), optional, window))
        rows += [(pos, p) for s in stages for p in s.activities]
    con.execute("CREATE OR REPLACE TEMP TABLE jm_stage_patterns (pos INT, pattern VARCHAR)")
    if rows:
        con.executemany("INSERT INTO jm_stage_patterns VALUES (?, ?)", rows)
    return steps


def _window(stages: list[Stage], spec: JourneySpec) -> float:
    windows = [s.window for s in stages if s.window is not None]
    return (max(windows) if windows else spec.window).total_seconds()


def _marks(con: duckdb.DuckDBPyConnection, log: str, cutoff: datetime) -> None:
    """Every event marking a step, up to the cut-off; one row per event and position."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE jm_marks AS
        SELECT DISTINCT l.case_key, p.pos, l.ts, l.seq
        FROM {log} l JOIN jm_stage_patterns p ON l.activity::VARCHAR GLOB p.pattern
        WHERE l.ts <= $cutoff
        """,
        {"cutoff": cutoff},
    )


def _targets(steps: list[tuple[str, bool, float]], pos: int) -> list[int]:
    """Positions that count as converting from ``pos``: up to the next non-optional one."""
    out = []
    for nxt in range(pos + 1, len(steps)):
        out.append(nxt)
        if not steps[nxt][1]:
            break
    return out


def data_cutoff(con: duckdb.DuckDBPyConnection, relation: str, column: str = "ts") -> datetime:
    """The data's cut-off: the latest event time in ``relation``."""
    value: datetime = con.execute(f"SELECT max({column}) FROM {relation}").fetchall()[0][0]
    return value


def build_entries(
    con: duckdb.DuckDBPyConnection,
    spec: JourneySpec,
    log: str,
    *,
    mode: str = "ordered",
    cutoff: datetime | None = None,
    exclude: tuple[str, ...] | None = None,
    name: str = ENTRIES,
) -> str:
    """Compute the stage entries in SQL into TEMP table ``name`` and return its name.

    One row per person and step entered: ``case_key, pos, stage, entered_at, entered_seq,
    next_pos, converted_at, status, time_to_convert_s, window_s``. ``log`` is a relation with
    ``case_key, activity, ts, seq`` (e.g. from ``mining.eventlog.log_from_touchpoints``).

    ``strict``: the next *other* stage a person reaches after entering must be the next one;
    reaching any other stage first counts as a drop (the journey left the designed order).
    ``exclude`` (default: the spec's ``exclude``): activity patterns that take a person out of
    a step when done between entering it and converting (or the window's end), e.g.
    ``crm.call_completed`` to see who converts without talking to sales; such people get
    status ``excluded`` and do not go on to the next step.
    Events after ``cutoff`` (default: the log's latest event) are ignored.
    """
    exclude = spec.exclude if exclude is None else exclude
    if mode not in MODES:
        raise ValueError(f"unknown funnel mode {mode!r}; use one of {MODES}")
    if cutoff is None:
        cutoff = data_cutoff(con, log)
    steps = _step_table(con, spec)
    _marks(con, log, cutoff)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE jm_entered "
        "(case_key BIGINT, pos INT, entered_at TIMESTAMPTZ, entered_seq BIGINT)"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {name} (
            case_key BIGINT, pos INT, stage VARCHAR, entered_at TIMESTAMPTZ, entered_seq BIGINT,
            next_pos INT, converted_at TIMESTAMPTZ, status VARCHAR, time_to_convert_s DOUBLE,
            window_s DOUBLE)
        """
    )
    first_marks = (
        "INSERT INTO jm_entered SELECT case_key, $pos, min(ts), arg_min(seq, (ts, seq)) "
        "FROM jm_marks WHERE pos = $pos GROUP BY case_key"
    )
    if steps:
        con.execute(first_marks, {"pos": 0})
    excluded = " OR ".join(f"l.activity::VARCHAR GLOB {literal(p)}" for p in exclude) or "false"
    for pos, (label, _, _) in enumerate(steps):
        if mode == "any" and pos > 0:
            con.execute(first_marks, {"pos": pos})
        targets = _targets(steps, pos)
        window = steps[targets[0]][2] if targets else 0.0
        con.execute(
            f"""
            INSERT INTO {name}
            WITH entered AS (
                SELECT case_key, min(entered_at) AS entered_at,
                       arg_min(entered_seq, (entered_at, entered_seq)) AS entered_seq
                FROM jm_entered WHERE pos = $pos GROUP BY case_key
            ), hits AS (
                SELECT e.case_key, arg_min(m.pos, (m.ts, m.seq)) AS next_pos,
                       min(m.ts) AS next_at
                FROM entered e JOIN jm_marks m ON m.case_key = e.case_key
                WHERE (CASE WHEN $strict THEN m.pos <> $pos
                            ELSE list_contains($targets::INT[], m.pos) END)
                  AND (m.ts > e.entered_at OR (m.ts = e.entered_at AND m.seq > e.entered_seq))
                  AND m.ts <= e.entered_at + to_seconds($window)
                GROUP BY e.case_key
            ), judged AS (
                SELECT e.*, h.next_pos,
                       CASE WHEN list_contains($targets::INT[], h.next_pos)
                            THEN h.next_at END AS converted_at,
                       h.next_at IS NOT NULL AND NOT list_contains($targets::INT[], h.next_pos)
                           AS out_of_order
                FROM entered e LEFT JOIN hits h USING (case_key)
            ), left_step AS (
                SELECT DISTINCT j.case_key FROM judged j JOIN {log} l ON l.case_key = j.case_key
                WHERE NOT $last AND l.ts <= $cutoff
                  AND (l.ts > j.entered_at OR (l.ts = j.entered_at AND l.seq > j.entered_seq))
                  AND l.ts <= coalesce(j.converted_at, j.entered_at + to_seconds($window))
                  AND ({excluded})
            )
            SELECT case_key, $pos, $label, entered_at, entered_seq, next_pos, converted_at,
                   CASE WHEN case_key IN (SELECT case_key FROM left_step) THEN 'excluded'
                        WHEN converted_at IS NOT NULL THEN 'converted'
                        WHEN $last THEN 'final'
                        WHEN out_of_order THEN 'dropped'
                        WHEN entered_at + to_seconds($window) > $cutoff THEN 'open'
                        ELSE 'dropped' END,
                   epoch(converted_at) - epoch(entered_at),
                   CASE WHEN NOT $last THEN $window END
            FROM judged
            """,
            {
                "pos": pos,
                "targets": targets,
                "window": window,
                "label": label,
                "last": not targets,
                "cutoff": cutoff,
                "strict": mode == "strict",
            },
        )
        if mode != "any" and targets:
            con.execute(
                f"""
                INSERT INTO jm_entered
                SELECT s.case_key, s.next_pos, s.converted_at, m.seq
                FROM {name} s JOIN jm_marks m ON m.case_key = s.case_key
                 AND m.pos = s.next_pos AND m.ts = s.converted_at
                WHERE s.pos = $pos AND s.status = 'converted'
                QUALIFY row_number() OVER (PARTITION BY s.case_key ORDER BY m.seq) = 1
                """,
                {"pos": pos},
            )
    con.execute(f"UPDATE {name} SET time_to_convert_s = NULL WHERE status = 'excluded'")
    return name


def compute_entries(
    con: duckdb.DuckDBPyConnection,
    spec: JourneySpec,
    log: str,
    *,
    mode: str = "ordered",
    cutoff: datetime | None = None,
    exclude: tuple[str, ...] | None = None,
) -> pd.DataFrame:
    """:func:`build_entries` as a frame (one row per person and step: small next to the log)."""
    table = build_entries(con, spec, log, mode=mode, cutoff=cutoff, exclude=exclude)
    return con.execute(f"SELECT * FROM {table} ORDER BY pos, case_key").df()


UNKNOWN = "(unknown)"  # the segment label of people whose value was not known yet


def _segment_sql(attributes: tuple[str, ...], touch: str, table: str, case: str) -> str:
    """SQL: one row per case with ``case_key`` and each attribute's first- or last-touch value."""
    if touch not in ("first", "last"):
        raise ValueError("touch is 'first' or 'last'")
    if case not in CASE_COLUMNS:
        raise ValueError(f"segments need a person or account case notion, not {case!r}")
    column = CASE_COLUMNS[case]
    pick = "arg_min" if touch == "first" else "arg_max"
    values = "".join(
        f", {pick}(attributes->>{literal(a)}, (occurred_at, seq)) "
        f"FILTER (WHERE attributes->>{literal(a)} IS NOT NULL) AS {ident(a)}"
        for a in attributes
    )
    return (
        f"SELECT {column} AS case_key{values} FROM {table} "
        f"WHERE {column} IS NOT NULL GROUP BY {column}"
    )


def entry_segments_sql(
    attributes: tuple[str, ...], touch: str, entries: str, table: str, case: str
) -> str:
    """SQL: one row per entry and attribute (``case_key, pos, k, attribute, value``): the
    value known when the step was entered — the first (or latest) value carried by a
    touchpoint at or before ``entered_at`` — else ``(unknown)``. A company size first told at
    signup says nothing about who signs up."""
    if touch not in ("first", "last"):
        raise ValueError("touch is 'first' or 'last'")
    if case not in CASE_COLUMNS:
        raise ValueError(f"segments need a person or account case notion, not {case!r}")
    column = CASE_COLUMNS[case]
    parts = []
    for k, attribute in enumerate(attributes, start=1):
        value = f"attributes->>{literal(attribute)}"
        known = (
            f"SELECT {column} AS case_key, occurred_at AS known_at, seq AS known_seq, "
            f"{value} AS value FROM {table} WHERE {column} IS NOT NULL AND {value} IS NOT NULL"
        )
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
            f"{literal(attribute)} AS attribute, coalesce(v.value, {literal(UNKNOWN)}) AS value "
            f"FROM {entries} e {join})"
        )
    return " UNION ALL ".join(parts)


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


def conversion(converted: int, dropped: int) -> tuple[float, float, float]:
    """Conversion rate among the decided (converted + dropped) and its Wilson interval."""
    decided = converted + dropped
    low, high = wilson(converted, decided)
    return (converted / decided if decided else np.nan), low, high


def _with_rates(frame: pd.DataFrame, prefix: str = "conversion_") -> pd.DataFrame:
    """Add the rate and 95% Wilson interval columns (vectorised) to per-group counts."""
    n = (frame.converted + frame.dropped).astype(float)
    p = np.where(n > 0, frame.converted / n.where(n > 0, 1.0), np.nan)
    z2 = Z95 * Z95
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = (p + z2 / (2 * n)) / (1 + z2 / n)
        half = Z95 * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    frame[f"{prefix}rate"] = p
    frame[f"{prefix}ci_low"] = np.where(n > 0, np.maximum(0.0, centre - half), np.nan)
    frame[f"{prefix}ci_high"] = np.where(n > 0, np.minimum(1.0, centre + half), np.nan)
    return frame


def summarise_table(
    con: duckdb.DuckDBPyConnection, entries: str, segments: str | None = None
) -> pd.DataFrame:
    """``stage_funnel`` rows computed in SQL from an entries relation: overall (segment
    ``all``) and, given ``segments`` (a relation ``case_key, pos, k, attribute, value``: one
    row per entry and attribute), per ``attribute=value``. Segments are ordered by attribute,
    then numerically where the value starts with a number (``1-10`` before ``11-50``), then
    alphabetically, with ``(unknown)`` last."""
    branches = ["SELECT 'all' AS segment, 0 AS k, NULL AS value, pos, stage, status, "
                "time_to_convert_s FROM e"]  # fmt: skip
    if segments:
        branches.append(
            "SELECT s.attribute || '=' || s.value, s.k, s.value, e.pos, e.stage, e.status, "
            f"e.time_to_convert_s FROM e JOIN ({segments}) s USING (case_key, pos)"
        )
    converted = "FILTER (WHERE status = 'converted')"
    frame = con.execute(
        f"""
        WITH e AS (SELECT * FROM {entries}), long AS ({" UNION ALL ".join(branches)})
        SELECT segment, pos AS position, stage, count(*) AS entered,
               count(*) {converted} AS converted,
               count(*) FILTER (WHERE status = 'dropped') AS dropped,
               count(*) FILTER (WHERE status = 'open') AS open,
               count(*) FILTER (WHERE status = 'excluded') AS excluded,
               quantile_cont(time_to_convert_s, 0.5) {converted} AS time_to_convert_p50_s,
               quantile_cont(time_to_convert_s, 0.9) {converted} AS time_to_convert_p90_s,
               quantile_cont(time_to_convert_s, 0.95) {converted} AS time_to_convert_p95_s,
               dense_rank() OVER (ORDER BY k, value = {literal(UNKNOWN)},
                   TRY_CAST(regexp_extract(value, '^\\s*(-?[0-9]+(\\.[0-9]+)?)', 1) AS DOUBLE)
                       NULLS LAST, segment) AS segment_rank
        FROM long GROUP BY segment, k, value, pos, stage
        ORDER BY segment_rank, pos
        """
    ).df()
    for column in (
        "entered",
        "converted",
        "dropped",
        "open",
        "excluded",
        "position",
        "segment_rank",
    ):
        frame[column] = frame[column].astype("int64")
    return _with_rates(frame)[FUNNEL_COLUMNS]


def summarise(entries: pd.DataFrame, segments: pd.DataFrame | None = None) -> pd.DataFrame:
    """``stage_funnel`` rows from frames (``compute_entries``, ``segment_values``): the same
    SQL as :func:`summarise_table`, run on the frames. Each case's segment values in the frame
    hold for every step it entered."""
    con = duckdb.connect()
    con.register("jm_entries_frame", entries)
    segments_sql = None
    if segments is not None:
        key = "person_id" if "person_id" in segments.columns else "case_key"
        attributes = [c for c in segments.columns if c != key]
        con.register("jm_segments_frame", segments.rename(columns={key: "case_key"}))
        segments_sql = " UNION ALL ".join(
            f"SELECT e.case_key, e.pos, {k} AS k, {literal(a)} AS attribute, "
            f"coalesce(s.{ident(a)}::VARCHAR, {literal(UNKNOWN)}) AS value "
            "FROM jm_entries_frame e LEFT JOIN jm_segments_frame s USING (case_key)"
            for k, a in enumerate(attributes, start=1)
        )
    try:
        return summarise_table(con, "jm_entries_frame", segments_sql or None)
    finally:
        con.close()


def time_to_convert_curve(
    entries: pd.DataFrame, stage: str, cutoff: datetime | None = None
) -> pd.DataFrame:
    """Kaplan–Meier curve of time to convert out of ``stage`` within its window.

    Converted people are events at their time to convert; open people are censored at the
    time they were followed (cut-off - entered); dropped people are censored at the end of
    their window (followed for the whole window without converting). Excluded people are left
    out. ``cutoff`` defaults to the latest time in ``entries``."""
    step = entries[(entries.stage == stage) & entries.status.isin(["converted", "dropped", "open"])]
    if cutoff is None:
        cutoff = pd.concat([entries.entered_at, entries.converted_at]).max()
    followed = np.select(
        [step.status == "converted", step.status == "dropped"],
        [step.time_to_convert_s, step.window_s],
        (pd.Timestamp(cutoff) - step.entered_at).dt.total_seconds(),
    )
    return kaplan_meier(followed, (step.status == "converted").to_numpy())


def cohort_table(
    con: duckdb.DuckDBPyConnection, entries: str, stage: str, period: str = "W"
) -> pd.DataFrame:
    """Conversion out of ``stage`` by entry cohort: ``W``/``week`` (ISO weeks from Monday) or
    ``M``/``month``, in UTC; counts, rate and 95% Wilson interval per cohort."""
    if period not in COHORTS:
        raise ValueError(f"cohort period is one of {sorted(COHORTS)}, not {period!r}")
    frame = con.execute(
        f"""
        SELECT date_trunc('{COHORTS[period]}', entered_at AT TIME ZONE 'UTC') AS cohort,
               count(*) AS entered, count(*) FILTER (WHERE status = 'converted') AS converted,
               count(*) FILTER (WHERE status = 'dropped') AS dropped,
               count(*) FILTER (WHERE status = 'open') AS open
        FROM {entries} WHERE stage = $stage GROUP BY ALL ORDER BY cohort
        """,
        {"stage": stage},
    ).df()
    frame = _with_rates(frame, "")
    return frame.rename(columns={"rate": "conversion_rate"})


def conversion_by_cohort(entries: pd.DataFrame, stage: str, freq: str = "W") -> pd.DataFrame:
    """:func:`cohort_table` on an entries frame."""
    con = duckdb.connect()
    con.register("jm_entries_frame", entries)
    try:
        return cohort_table(con, "jm_entries_frame", stage, freq)
    finally:
        con.close()


def write_stage_funnel(
    con: duckdb.DuckDBPyConnection,
    spec: JourneySpec,
    log: str,
    *,
    mode: str = "ordered",
    touch: str = "first",
    cutoff: datetime | None = None,
    table: str = "touchpoints",
) -> pd.DataFrame:
    """Compute and store ``stage_entries`` and ``stage_funnel`` (all in DuckDB); return the
    funnel. ``table`` is the touchpoints relation the segment attributes come from."""
    entries = build_entries(con, spec, log, mode=mode, cutoff=cutoff)
    con.execute(f"CREATE OR REPLACE TABLE stage_entries AS SELECT * FROM {entries}")
    con.execute(
        "CREATE OR REPLACE TABLE stage_segments (case_key BIGINT, pos INT, k INT, "
        "attribute VARCHAR, value VARCHAR)"
    )
    if spec.segments and spec.case in CASE_COLUMNS:
        con.execute(
            "INSERT INTO stage_segments "
            + entry_segments_sql(spec.segments, touch, "stage_entries", table, spec.case)
        )
    funnel = summarise_table(con, "stage_entries", "SELECT * FROM stage_segments")
    con.register("jm_funnel_frame", funnel)
    try:
        con.execute("CREATE OR REPLACE TABLE stage_funnel AS SELECT * FROM jm_funnel_frame")
    finally:
        con.unregister("jm_funnel_frame")
    return funnel
