"""Paths around a step: what people do just before or after an activity, and what people who
dropped out of a stage did instead.

Definitions (docs/metrics.md, "Paths"):

* each case's events are ordered by ``(ts, seq)`` and **consecutive repeats of one activity
  are collapsed** into one step (five page views in a row are one step): a path shows where
  people go, not how often they reload a page;
* ``before`` / ``after``: the **anchor** is the case's first step whose activity matches the
  glob ``anchor``; the path is the ``steps`` steps before it followed by the anchor, or the
  anchor followed by the ``steps`` steps after it;
* ``dropped``: ``anchor`` is a stage name; for the cases whose ``stage_entries`` status in that
  stage is ``dropped``, the path is the step that entered the stage followed by the ``steps``
  steps after it — what they did instead of converting;
* a path shorter than asked ends with ``(end)`` (nothing more happened up to the cut-off) or
  starts with ``(start)`` (the journey began less than ``steps`` steps before the anchor);
* ``people`` counts cases with that path; ``share`` = people / cases with the anchor; the
  ``top`` most frequent paths are kept (ties by path text).

Steps are joined by `` → ``. All of it is SQL over the whole log.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

DIRECTIONS = ("before", "after", "dropped")
SEPARATOR = " → "
START, END = "(start)", "(end)"
COLUMNS = ["anchor", "direction", "path", "people", "share"]


def _steps_sql(log: str) -> str:
    """Every event with the number of its step (runs of one activity are one step) and a flag
    for the first event of a run."""
    return f"""
        SELECT case_key, activity::VARCHAR AS activity, ts, seq,
               sum(CASE WHEN is_new THEN 1 ELSE 0 END)
                   OVER (PARTITION BY case_key ORDER BY ts, seq) AS step, is_new
        FROM (
            SELECT *, activity IS DISTINCT FROM lag(activity)
                          OVER (PARTITION BY case_key ORDER BY ts, seq) AS is_new
            FROM {log} WHERE ts <= $cutoff
        )
    """


def _anchor_sql(direction: str, entries: str) -> str:
    """One row per case: the step number of its anchor."""
    if direction == "dropped":
        return f"""
            SELECT e.case_key, min(s.step) AS a
            FROM {entries} e JOIN events s ON s.case_key = e.case_key
             AND s.ts = e.entered_at AND s.seq = e.entered_seq
            WHERE e.stage = $anchor AND e.status = 'dropped' GROUP BY e.case_key
        """
    return "SELECT case_key, min(step) AS a FROM events WHERE activity GLOB $anchor GROUP BY 1"


def _window(direction: str) -> tuple[str, str]:
    """SQL: which steps around the anchor ``a`` belong to the path; the marker condition."""
    if direction == "before":
        return "s.step BETWEEN x.a - $steps AND x.a", "x.a - $steps < 1"
    return "s.step BETWEEN x.a AND x.a + $steps", "x.a + $steps > x.last_step"


def _paths_sql(log: str, direction: str, entries: str) -> str:
    inside, short = _window(direction)
    marker = (
        f"list_prepend('{START}', p.path)"
        if direction == "before"
        else f"list_append(p.path, '{END}')"
    )
    return f"""
        WITH events AS ({_steps_sql(log)}),
        anchors AS ({_anchor_sql(direction, entries)}),
        framed AS (
            SELECT a.case_key, a.a, max(s.step) AS last_step
            FROM anchors a JOIN events s USING (case_key) GROUP BY ALL
        ),
        p AS (
            SELECT x.case_key, list(s.activity ORDER BY s.step) AS path, any_value({short}) AS short
            FROM framed x JOIN events s ON s.case_key = x.case_key AND s.is_new AND {inside}
            GROUP BY x.case_key
        )
        SELECT array_to_string(CASE WHEN p.short THEN {marker} ELSE p.path END, $sep) AS path,
               count(*) AS people, count(*) / sum(count(*)) OVER () AS share
        FROM p GROUP BY 1 ORDER BY people DESC, path LIMIT $top
    """


def paths(
    con: duckdb.DuckDBPyConnection,
    anchor: str,
    direction: str = "after",
    *,
    steps: int = 3,
    top: int = 20,
    log: str = "jm_log",
    entries: str = "stage_entries",
    cutoff: datetime | None = None,
) -> pd.DataFrame:
    """The ``top`` most frequent ``steps``-step paths ``before`` / ``after`` the first
    ``anchor`` activity (a glob) of each case, or after entering stage ``anchor`` for the cases
    that ``dropped`` out of it (``entries``). Consecutive repeats are collapsed.

    ``log`` is a relation ``case_key, activity, ts, seq``; events after ``cutoff`` (default:
    the log's latest) are ignored. Columns: ``anchor, direction, path, people, share``.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction is one of {DIRECTIONS}, not {direction!r}")
    if steps < 1 or top < 1:
        raise ValueError(f"steps and top must be at least 1, not {steps} and {top}")
    if cutoff is None:
        cutoff = con.execute(f"SELECT max(ts) FROM {log}").fetchall()[0][0]
    frame = con.execute(
        _paths_sql(log, direction, entries),
        {"anchor": anchor, "steps": steps, "top": top, "cutoff": cutoff, "sep": SEPARATOR},
    ).df()
    frame.insert(0, "direction", direction)
    frame.insert(0, "anchor", anchor)
    frame["people"] = frame["people"].astype("int64")
    return frame[COLUMNS]
