"""Stage funnel with censoring: who enters each stage, converts, drops, or is still open.

Definitions (docs/metrics.md):

* a person **enters** the first stage at the first event that marks it; in ``ordered`` mode a
  person enters a later stage when it **converts** into it: the first event marking the next
  stage at or after entering this one, within this step's window (the next stage's
  ``window``, else the spec's). In ``any`` mode every stage is entered at its first marking
  event, whatever came before;
* **dropped**: the window elapsed before the data's cut-off without converting;
  **open**: the window had not elapsed yet at the cut-off (right-censored: never a drop-off);
* conversion rate = converted / (converted + dropped), with a 95% Wilson interval;
* an optional stage may be skipped: converting from the stage before it means reaching it or
  the first non-optional stage after it. Alternatives (stages sharing a ``group``) are one step.

The work is set-based SQL over the whole log, one statement per step. Every person's entry,
status and times are kept in ``stage_entries`` so any figure can be drilled into.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import numpy as np
import pandas as pd

from journeymine.analyses.stats import kaplan_meier, wilson
from journeymine.spec import JourneySpec, Stage, positions
from journeymine.warehouse import replace_table

MODES = ("ordered", "strict", "any")
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
]


def _step_table(con: duckdb.DuckDBPyConnection, spec: JourneySpec) -> list[tuple[str, bool, float]]:
    """Register ``jm_stage_patterns(pos, pattern)``; return (label, optional, window_s) per step."""
    rows, steps = [], []
    for pos, (stages, optional) in enumerate(positions(spec)):
        window = _window(stages, spec)
        steps.append((" | ".join(s.name for s in stages), optional, window))
        rows += [(pos, p) for s in stages for p in s.activities]
    con.register("jm_stage_patterns", pd.DataFrame(rows, columns=["pos", "pattern"]))
    return steps


def _window(stages: list[Stage], spec: JourneySpec) -> float:
    windows = [s.window for s in stages if s.window is not None]
    return (max(windows) if windows else spec.window).total_seconds()


def _marks(con: duckdb.DuckDBPyConnection, log: str) -> None:
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE jm_marks AS
        SELECT DISTINCT l.case_key, p.pos, l.ts, l.seq
        FROM {log} l JOIN jm_stage_patterns p ON l.activity::VARCHAR GLOB p.pattern
        """
    )


def _targets(steps: list[tuple[str, bool, float]], pos: int) -> list[int]:
    """Positions that count as converting from ``pos``: up to the next non-optional one."""
    out = []
    for nxt in range(pos + 1, len(steps)):
        out.append(nxt)
        if not steps[nxt][1]:
            break
    return out


def compute_entries(
    con: duckdb.DuckDBPyConnection,
    spec: JourneySpec,
    log: str,
    *,
    mode: str = "ordered",
    cutoff: datetime | None = None,
    exclude: tuple[str, ...] | None = None,
) -> pd.DataFrame:
    """One row per person and step entered: entered_at, status, converted_at.

    ``strict``: the next *other* stage a person reaches after entering must be the next one;
    reaching any other stage first counts as a drop (the journey left the designed order).
    ``exclude`` (default: the spec's ``exclude``): activity patterns that take a person out of
    a step when done between entering it and converting (or the window's end), e.g.
    ``crm.call_completed`` to see who converts without talking to sales; such people get
    status ``excluded`` and do not go on to the next step.
    """
    exclude = spec.exclude if exclude is None else exclude
    if mode not in MODES:
        raise ValueError(f"unknown funnel mode {mode!r}; use one of {MODES}")
    steps = _step_table(con, spec)
    _marks(con, log)
    if cutoff is None:
        row = con.execute(f"SELECT max(ts) FROM {log}").fetchall()[0]
        cutoff = row[0]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE jm_entries (case_key BIGINT, pos INT, entered_at TIMESTAMPTZ)"
    )
    first_marks = "SELECT case_key, ?, min(ts) FROM jm_marks WHERE pos = ? GROUP BY ALL"
    con.execute(f"INSERT INTO jm_entries {first_marks}", [0, 0])
    results = []
    for pos, (label, _, _) in enumerate(steps):
        if mode == "any" and pos > 0:
            con.execute(f"INSERT INTO jm_entries {first_marks}", [pos, pos])
        targets = _targets(steps, pos)
        window = steps[targets[0]][2] if targets else 0.0
        frame = con.execute(
            """
            WITH entered AS (
                SELECT case_key, min(entered_at) AS entered_at FROM jm_entries WHERE pos = $pos
                GROUP BY case_key
            ), hits AS (
                SELECT e.case_key, arg_min(m.pos, (m.ts, m.seq)) AS next_pos, min(m.ts) AS next_at
                FROM entered e JOIN jm_marks m ON m.case_key = e.case_key
                WHERE (CASE WHEN $strict THEN m.pos <> $pos
                            ELSE m.pos IN (SELECT unnest($targets::INT[])) END)
                  AND m.ts >= e.entered_at AND m.ts <= e.entered_at + to_seconds($window)
                GROUP BY e.case_key
            )
            , judged AS (
                SELECT e.case_key, e.entered_at, h.next_pos,
                       CASE WHEN h.next_pos IN (SELECT unnest($targets::INT[]))
                            THEN h.next_at END AS converted_at,
                       h.next_at IS NOT NULL AND h.next_pos NOT IN
                           (SELECT unnest($targets::INT[])) AS out_of_order
                FROM entered e LEFT JOIN hits h USING (case_key)
            )
            SELECT case_key, $pos AS pos, $label AS stage, entered_at, next_pos, converted_at,
                   CASE WHEN converted_at IS NOT NULL THEN 'converted'
                        WHEN $last THEN 'final'
                        WHEN out_of_order THEN 'dropped'
                        WHEN entered_at + to_seconds($window) > $cutoff THEN 'open'
                        ELSE 'dropped' END AS status
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
        ).df()
        if exclude:
            frame = _apply_exclusions(con, log, frame, exclude, window)
        results.append(frame)
        if mode != "any" and targets:
            con.execute(
                "INSERT INTO jm_entries SELECT case_key, next_pos, converted_at FROM frame "
                "WHERE status = 'converted'"
            )
    con.unregister("jm_stage_patterns")
    out = pd.concat(results, ignore_index=True)
    out["time_to_convert_s"] = (out.converted_at - out.entered_at).dt.total_seconds()
    return out


def _apply_exclusions(
    con: duckdb.DuckDBPyConnection,
    log: str,
    frame: pd.DataFrame,
    patterns: tuple[str, ...],
    window: float,
) -> pd.DataFrame:
    """Mark as ``excluded`` the people who did an excluded activity while in the step."""
    matches = " OR ".join(
        "l.activity::VARCHAR GLOB '" + p.replace("'", "''") + "'" for p in patterns
    )
    con.register("jm_step", frame[["case_key", "entered_at", "converted_at"]])
    hit = con.execute(
        f"""
        SELECT DISTINCT s.case_key FROM jm_step s JOIN {log} l ON l.case_key = s.case_key
        WHERE l.ts >= s.entered_at
          AND l.ts <= coalesce(s.converted_at, s.entered_at + to_seconds(?)) AND ({matches})
        """,
        [window],
    ).fetchall()
    con.unregister("jm_step")
    excluded = frame.case_key.isin({k for (k,) in hit})
    return frame.assign(status=frame.status.where(~excluded, "excluded"))


def segment_values(
    con: duckdb.DuckDBPyConnection, attributes: tuple[str, ...], touch: str = "first"
) -> pd.DataFrame:
    """Each person's value of each segment attribute: from its first (or last) touchpoint that
    carries it. Returns ``person_id`` and one column per attribute."""
    if touch not in ("first", "last"):
        raise ValueError("touch is 'first' or 'last'")
    pick = "arg_min" if touch == "first" else "arg_max"
    columns = ", ".join(
        f"{pick}(attributes->>'{a}', (occurred_at, seq)) "
        f"FILTER (WHERE attributes->>'{a}' IS NOT NULL) AS \"{a}\""
        for a in attributes
    )
    if not columns:
        return con.execute("SELECT DISTINCT person_id FROM touchpoints").df()
    return con.execute(f"SELECT person_id, {columns} FROM touchpoints GROUP BY person_id").df()


def conversion(converted: int, dropped: int) -> tuple[float, float, float]:
    """Conversion rate among the decided (converted + dropped) and its Wilson interval."""
    decided = converted + dropped
    low, high = wilson(converted, decided)
    return (converted / decided if decided else np.nan), low, high


def summarise(entries: pd.DataFrame, segments: pd.DataFrame | None = None) -> pd.DataFrame:
    """``stage_funnel`` rows: overall (segment 'all') and per segment value."""
    groups = [("all", entries)]
    if segments is not None:
        joined = entries.merge(segments, left_on="case_key", right_on="person_id", how="left")
        for column in segments.columns.drop("person_id"):
            for value, part in joined.groupby(joined[column].fillna("(none)")):
                groups.append((f"{column}={value}", part))
    rows = []
    for segment, part in groups:
        for (pos, stage), step in part.groupby(["pos", "stage"], sort=True):
            counts = step.status.value_counts()
            converted, dropped = int(counts.get("converted", 0)), int(counts.get("dropped", 0))
            excluded = int(counts.get("excluded", 0))
            rate, low, high = conversion(converted, dropped)
            times = step.time_to_convert_s.dropna()
            rows.append(
                {
                    "segment": segment,
                    "position": int(pos),
                    "stage": stage,
                    "entered": len(step),
                    "converted": converted,
                    "dropped": dropped,
                    "open": int(counts.get("open", 0)),
                    "excluded": excluded,
                    "conversion_rate": rate,
                    "conversion_ci_low": low,
                    "conversion_ci_high": high,
                    "time_to_convert_p50_s": times.quantile(0.5) if len(times) else np.nan,
                    "time_to_convert_p90_s": times.quantile(0.9) if len(times) else np.nan,
                    "time_to_convert_p95_s": times.quantile(0.95) if len(times) else np.nan,
                }
            )
    return pd.DataFrame(rows, columns=FUNNEL_COLUMNS)


def time_to_convert_curve(entries: pd.DataFrame, stage: str, cutoff: datetime) -> pd.DataFrame:
    """Kaplan–Meier curve of time to convert out of ``stage``; open people are censored at the
    cut-off, dropped people at the end of their window."""
    step = entries[entries.stage == stage]
    converted = step.status == "converted"
    followed = np.where(
        converted,
        step.time_to_convert_s,
        (pd.Timestamp(cutoff) - step.entered_at).dt.total_seconds(),
    )
    return kaplan_meier(followed, converted.to_numpy())


def conversion_by_cohort(entries: pd.DataFrame, stage: str, freq: str = "W") -> pd.DataFrame:
    """Conversion out of ``stage`` by entry cohort (week ``W`` or month ``M``), with intervals."""
    step = entries[entries.stage == stage].copy()
    step["cohort"] = (
        step.entered_at.dt.tz_convert("UTC").dt.tz_localize(None).dt.to_period(freq).dt.start_time
    )
    rows = []
    for cohort, part in step.groupby("cohort"):
        converted = int((part.status == "converted").sum())
        dropped = int((part.status == "dropped").sum())
        rate, low, high = conversion(converted, dropped)
        rows.append(
            {
                "cohort": cohort,
                "entered": len(part),
                "converted": converted,
                "dropped": dropped,
                "open": int((part.status == "open").sum()),
                "conversion_rate": rate,
                "ci_low": low,
                "ci_high": high,
            }
        )
    return pd.DataFrame(rows)


def write_stage_funnel(
    con: duckdb.DuckDBPyConnection,
    spec: JourneySpec,
    log: str,
    *,
    mode: str = "ordered",
    touch: str = "first",
) -> pd.DataFrame:
    """Compute and store ``stage_entries`` and ``stage_funnel``; return the funnel."""
    entries = compute_entries(con, spec, log, mode=mode)
    segments = segment_values(con, spec.segments, touch) if spec.segments else None
    funnel = summarise(entries, segments)
    for name, frame in (("stage_entries", entries), ("stage_funnel", funnel)):
        replace_table(con, name, frame)
    return funnel
