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
* an event marks a stage when its activity matches a pattern and the stage's ``where``
  conditions hold on its attributes; a stage with ``occurrence = N`` is reached at its N-th
  marking event counted from the event that entered the previous stage (that one included);
* an optional stage may be skipped: converting from the stage before it means reaching it or
  the first non-optional stage after it. Alternatives (stages sharing a ``group``) are one step.

The work is set-based SQL over the whole log, one statement per step; only per-stage
aggregates leave DuckDB. Every person's entry, status and times are kept in ``stage_entries``
so any figure can be drilled into.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import duckdb
import numpy as np
import pandas as pd

from journeymine.analyses.markers import marks_sql
from journeymine.analyses.segments import CASE_COLUMNS as CASE_COLUMNS
from journeymine.analyses.segments import UNKNOWN as UNKNOWN
from journeymine.analyses.segments import entry_segments_sql as entry_segments_sql
from journeymine.analyses.segments import segment_values as segment_values
from journeymine.analyses.stats import Z95, kaplan_meier, wilson
from journeymine.spec import (
    MODES,
    JourneySpec,
    Segment,
    Stage,
    outcome_stages,
    positions,
    step_label,
)
from journeymine.sql import data_cutoff as data_cutoff
from journeymine.sql import glob_bound, ident, literal, statement
from journeymine.warehouse import replace_table

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


def _step_table(spec: JourneySpec) -> list[tuple[str, bool, float]]:
    """(label, optional, window_s) per step (alternatives share one step)."""
    return [
        (step_label(stages), optional, _window(stages, spec))
        for stages, optional in positions(spec)
    ]


def _window(stages: list[Stage], spec: JourneySpec) -> float:
    windows = [s.window for s in stages if s.window is not None]
    return (max(windows) if windows else spec.window).total_seconds()


def _marks(
    con: duckdb.DuckDBPyConnection, spec: JourneySpec, log: str, cutoff: datetime, table: str
) -> None:
    """Every event marking a step, up to the cut-off; one row per event and stage."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE jm_marks AS {marks_sql(con, spec, log, table)}",
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


def build_entries(
    con: duckdb.DuckDBPyConnection,
    spec: JourneySpec,
    log: str,
    *,
    mode: str | None = None,
    cutoff: datetime | None = None,
    exclude: tuple[str, ...] | None = None,
    name: str = ENTRIES,
    table: str = "touchpoints",
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
    mode = spec.mode if mode is None else mode
    if mode not in MODES:
        raise ValueError(f"unknown funnel mode {mode!r}; use one of {MODES}")
    if cutoff is None:
        cutoff = data_cutoff(con, log)
    steps = _step_table(spec)
    _create_entry_tables(con, name)
    if not steps:
        return name
    _marks(con, spec, log, cutoff, table)
    _enter_and_judge_steps(con, steps, log, tuple(exclude), mode, cutoff, name)
    con.execute(f"UPDATE {name} SET time_to_convert_s = NULL WHERE status = 'excluded'")
    return name


def _create_entry_tables(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Empty TEMP tables: ``jm_entered`` (who entered which step, at which event) and the
    entries table ``name``."""
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


# Who enters step $pos at its first marking event (its occurrence-th one, when it has one).
_FIRST_MARKS = (
    "INSERT INTO jm_entered SELECT case_key, $pos, min(ts), arg_min(seq, (ts, seq)) "
    "FROM jm_marks WHERE pos = $pos AND n_all >= occurrence GROUP BY case_key"
)


def _enter_and_judge_steps(
    con: duckdb.DuckDBPyConnection,
    steps: list[tuple[str, bool, float]],
    log: str,
    exclude: tuple[str, ...],
    mode: str,
    cutoff: datetime,
    name: str,
) -> None:
    """Step by step: judge who entered it (``_judge_step``), append them to ``name``, and
    (except in ``any`` mode, where every step is entered at its own first mark) let the
    converted enter the step they converted into."""
    con.execute(_FIRST_MARKS, {"pos": 0})
    for pos, (label, _, _) in enumerate(steps):
        if mode == "any" and pos > 0:
            con.execute(_FIRST_MARKS, {"pos": pos})
        targets = _targets(steps, pos)
        window = steps[targets[0]][2] if targets else 0.0
        _judge_step(con, log, exclude, pos, targets, window, label, cutoff, mode == "strict")
        con.execute(
            f"INSERT INTO {name} SELECT * EXCLUDE (converted_seq) FROM jm_step ORDER BY case_key"
        )
        if mode != "any" and targets:
            con.execute(
                "INSERT INTO jm_entered SELECT case_key, next_pos, converted_at, converted_seq "
                "FROM jm_step WHERE status = 'converted'"
            )


def _judge_step(
    con: duckdb.DuckDBPyConnection,
    log: str,
    exclude: tuple[str, ...],
    pos: int,
    targets: list[int],
    window: float,
    label: str,
    cutoff: datetime,
    strict: bool,
) -> None:
    """TEMP table ``jm_step``: the entries of step ``pos`` judged (the next stage reached, at
    which event, and the status). A target stage with ``occurrence = N`` is reached at the
    N-th event marking it counted from the event that entered this step (that event counts
    when it marks the target too: the first paid invoice made the person ``paid``, the
    second one is the renewal)."""
    params: dict[str, object] = {
        "pos": pos,
        "targets": targets,
        "window": window,
        "label": label,
        "last": not targets,
        "cutoff": cutoff,
        "strict": strict,
    }
    excluded = glob_bound("l.activity::VARCHAR", "exclude", exclude, params)
    sql = statement("journeymine.analyses", "funnel_step.sql")
    con.execute(sql.format(log=log, excluded=excluded), params)


def compute_entries(
    con: duckdb.DuckDBPyConnection,
    spec: JourneySpec,
    log: str,
    *,
    mode: str | None = None,
    cutoff: datetime | None = None,
    exclude: tuple[str, ...] | None = None,
    table: str = "touchpoints",
) -> pd.DataFrame:
    """:func:`build_entries` as a frame (one row per person and step: small next to the log)."""
    entries = build_entries(con, spec, log, mode=mode, cutoff=cutoff, exclude=exclude, table=table)
    return con.execute(f"SELECT * FROM {entries} ORDER BY pos, case_key").df()


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
    con: duckdb.DuckDBPyConnection,
    entries: str,
    segments: str | None = None,
    order: Sequence[Segment] = (),
) -> pd.DataFrame:
    """``stage_funnel`` rows computed in SQL from an entries relation: overall (segment
    ``all``) and, given ``segments`` (a relation ``case_key, pos, k, attribute, value``: one
    row per entry and attribute), per ``attribute=value``. Segments are ordered by attribute,
    then by bin for the binned ones in ``order`` (``SMB`` before ``Enterprise``), then
    numerically where the value starts with a number (``1-10`` before ``11-50``), then
    alphabetically, with ``(unknown)`` last."""
    converted = "FILTER (WHERE status = 'converted')"
    frame = con.execute(
        f"""
        WITH e AS (SELECT * FROM {entries}), long AS ({_long_entries_sql(segments)})
        SELECT segment, pos AS position, stage, count(*) AS entered,
               count(*) {converted} AS converted,
               count(*) FILTER (WHERE status = 'dropped') AS dropped,
               count(*) FILTER (WHERE status = 'open') AS open,
               count(*) FILTER (WHERE status = 'excluded') AS excluded,
               quantile_cont(time_to_convert_s, 0.5) {converted} AS time_to_convert_p50_s,
               quantile_cont(time_to_convert_s, 0.9) {converted} AS time_to_convert_p90_s,
               quantile_cont(time_to_convert_s, 0.95) {converted} AS time_to_convert_p95_s,
               dense_rank() OVER (ORDER BY k, value = {literal(UNKNOWN)},
                   {_bin_rank_sql(order)} NULLS LAST,
                   TRY_CAST(regexp_extract(value, '^\\s*(-?[0-9]+(\\.[0-9]+)?)', 1) AS DOUBLE)
                       NULLS LAST, segment) AS segment_rank
        FROM long GROUP BY segment, k, value, pos, stage
        ORDER BY segment_rank, pos
        """
    ).df()
    for column in ("entered", "converted", "dropped", "open", "excluded", "position",
                   "segment_rank"):  # fmt: skip
        frame[column] = frame[column].astype("int64")
    return _with_rates(frame)[FUNNEL_COLUMNS]


def _long_entries_sql(segments: str | None) -> str:
    """SQL over the entries ``e``: each entry once under segment ``all`` and, given
    ``segments``, once per ``attribute=value`` it has (``k`` orders the attributes)."""
    branches = ["SELECT 'all' AS segment, 0 AS k, NULL AS value, pos, stage, status, "
                "time_to_convert_s FROM e"]  # fmt: skip
    if segments:
        branches.append(
            "SELECT s.attribute || '=' || s.value, s.k, s.value, e.pos, e.stage, e.status, "
            f"e.time_to_convert_s FROM e JOIN ({segments}) s USING (case_key, pos)"
        )
    return " UNION ALL ".join(branches)


def _bin_rank_sql(order: Sequence[Segment]) -> str:
    """SQL: a segment's bin position within its binned attribute in ``order`` (``SMB``
    before ``Enterprise``), NULL for the others."""
    bins = [
        f"WHEN segment = {literal(f'{s.name}={label}')} THEN {i}"
        for s in order
        for i, label in enumerate(s.labels)
    ]
    return f"CASE {' '.join(bins)} END" if bins else "NULL"


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
    mode: str | None = None,
    touch: str = "first",
    cutoff: datetime | None = None,
    table: str = "touchpoints",
    entries: str | None = None,
    segments: str | None = None,
) -> pd.DataFrame:
    """Compute and store ``stage_entries`` and ``stage_funnel`` (all in DuckDB); return the
    funnel. ``table`` is the touchpoints relation the segment and ``where`` attributes come
    from; ``mode`` defaults to the spec's. ``entries`` and ``segments``: relations of entries
    and their segments already computed per shard of cases (``scale_people``), stored instead
    of computing them here."""
    if entries is None:
        entries = build_entries(con, spec, log, mode=mode, cutoff=cutoff, table=table)
    con.execute(f"CREATE OR REPLACE TABLE stage_entries AS SELECT * FROM {entries}")
    con.execute(
        "CREATE OR REPLACE TABLE stage_segments (case_key BIGINT, pos INT, k INT, "
        "attribute VARCHAR, value VARCHAR)"
    )
    if spec.segment_defs and spec.case in CASE_COLUMNS:
        con.execute(
            "INSERT INTO stage_segments "
            + (
                f"SELECT * FROM {segments}"
                if segments
                else entry_segments_sql(spec.segment_defs, touch, "stage_entries", table, spec.case)
            )
        )
    funnel = summarise_table(
        con, "stage_entries", "SELECT * FROM stage_segments", spec.segment_defs
    )
    # Where a lifecycle ends (a cancellation), not progress: the views do not draw reaching it
    # as a conversion (spec.outcome_stages, the one definition).
    funnel["outcome"] = funnel.stage.isin(outcome_stages(spec))
    replace_table(con, "stage_funnel", funnel)
    return funnel
