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

import difflib
from collections.abc import Sequence
from datetime import datetime

import duckdb
import pandas as pd

from journeymine.errors import JourneymineError
from journeymine.sql import data_cutoff

DIRECTIONS = ("before", "after", "dropped")
SEPARATOR = " → "
START, END = "(start)", "(end)"
COLUMNS = ["anchor", "direction", "path", "people", "share"]
MAX_STEPS = 50  # one window column per step: a bound that keeps the SQL small


class PathsError(ValueError, JourneymineError):
    """Paths cannot be computed as asked; the message names the parameter and what exists."""


def no_match_message(
    con: duckdb.DuckDBPyConnection, relation: str, patterns: Sequence[str], what: str
) -> str | None:
    """A message when none of the glob ``patterns`` matches an activity of ``relation`` (a
    typo would otherwise give an empty or all-zero answer), with the closest activities."""
    values = [
        r[0]
        for r in con.execute(
            f"SELECT DISTINCT activity::VARCHAR FROM {relation} WHERE activity IS NOT NULL"
        ).fetchall()
    ]
    hit = con.execute(
        "SELECT count(*) FROM unnest($v::VARCHAR[]) a(x) JOIN unnest($p::VARCHAR[]) b(g) "
        "ON a.x GLOB b.g",
        {"v": values, "p": list(patterns)},
    ).fetchall()[0][0]
    if hit:
        return None
    close = sorted({c for p in patterns for c in difflib.get_close_matches(p, values, 5, 0.5)})
    hint = f"; did you mean {', '.join(close)}?" if close else f" ({len(values)} activities)"
    return f"{what} {list(patterns)} matches no activity in {relation}{hint}"


def stage_message(con: duckdb.DuckDBPyConnection, entries: str, stage: str) -> str | None:
    """A message when ``entries`` is missing or has no stage ``stage`` (naming those it has)."""
    try:
        rows = con.execute(f"SELECT DISTINCT stage FROM {entries} ORDER BY 1").fetchall()
    except duckdb.CatalogException:
        return f"no {entries} table: compute the stage funnel first (funnel.write_stage_funnel)"
    stages = [r[0] for r in rows]
    if stage in stages:
        return None
    return f"no stage {stage!r} in {entries}; the stages are {', '.join(stages) or 'none'}"


def _events_sql(log: str) -> str:
    """Every event up to the cut-off, flagged when it starts a run of one activity."""
    return f"""
        SELECT case_key, activity::VARCHAR AS activity, ts, seq,
               activity IS DISTINCT FROM lag(activity)
                   OVER (PARTITION BY case_key ORDER BY ts, seq) AS is_new
        FROM {log} WHERE ts <= $cutoff AND activity IS NOT NULL
    """


def _path_expr(direction: str, steps: int) -> str:
    """SQL: the path text of a step row from its ``n1..nN`` neighbours (leads or lags over the
    collapsed steps, one sort for all of them); ``concat_ws`` skips the NULLs past an end."""
    if direction == "before":
        items = [f"CASE WHEN n{steps} IS NULL THEN '{START}' END"]
        items += [f"n{k}" for k in range(steps, 0, -1)] + ["activity"]
    else:
        items = ["activity", *(f"n{k}" for k in range(1, steps + 1))]
        items.append(f"CASE WHEN n{steps} IS NULL THEN '{END}' END")
    return f"concat_ws($sep, {', '.join(items)})"


def _anchored_sql(direction: str, entries: str, path: str) -> str:
    """One row per case and anchor: its path (the first anchor step in event order). The path
    text is built only for anchor rows, not for every step of the log."""
    if direction != "dropped":
        return (
            f"SELECT $anchor AS anchor, arg_min({path}, (ts, seq)) AS path FROM steps "
            "WHERE activity GLOB $anchor GROUP BY case_key"
        )
    # The step holding the entering event: it starts at or before it, the next one after it.
    return f"""
        SELECT e.stage AS anchor, arg_min({path}, (s.ts, s.seq)) AS path
        FROM {entries} e JOIN steps s ON s.case_key = e.case_key
         AND (s.ts < e.entered_at OR (s.ts = e.entered_at AND s.seq <= e.entered_seq))
         AND (s.next_ts IS NULL OR s.next_ts > e.entered_at
              OR (s.next_ts = e.entered_at AND s.next_seq > e.entered_seq))
        WHERE list_contains($stages, e.stage) AND e.status = 'dropped'
        GROUP BY e.stage, e.case_key
    """


def _paths_sql(log: str, direction: str, entries: str, steps: int) -> str:
    """The top paths of each anchor (one, or every stage asked for ``dropped``), in one pass
    over the log: its steps are numbered once, whatever the number of stages."""
    shift = "lag" if direction == "before" else "lead"
    neighbours = ", ".join(f"{shift}(activity, {k}) OVER w AS n{k}" for k in range(1, steps + 1))
    if direction == "dropped":  # where the step ends, to find the step holding an event
        neighbours += ", lead(ts) OVER w AS next_ts, lead(seq) OVER w AS next_seq"
    return f"""
        WITH events AS ({_events_sql(log)}),
        steps AS (
            SELECT case_key, activity, ts, seq, {neighbours}
            FROM events WHERE is_new WINDOW w AS (PARTITION BY case_key ORDER BY ts, seq)
        ),
        anchored AS ({_anchored_sql(direction, entries, _path_expr(direction, steps))})
        SELECT anchor, path, count(*) AS people,
               count(*) / sum(count(*)) OVER (PARTITION BY anchor) AS share
        FROM anchored GROUP BY anchor, path
        QUALIFY row_number() OVER (PARTITION BY anchor ORDER BY count(*) DESC, path) <= $top
        ORDER BY {"list_position($stages, anchor)" if direction == "dropped" else "anchor"},
                 people DESC, path
    """


def paths(
    con: duckdb.DuckDBPyConnection,
    anchor: str,
    direction: str = "after",
    *,
    steps: int = 3,
    top: int = 20,
    log: str = "event_log",
    entries: str = "stage_entries",
    cutoff: datetime | None = None,
) -> pd.DataFrame:
    """The ``top`` most frequent ``steps``-step paths ``before`` / ``after`` the first
    ``anchor`` activity (a glob) of each case, or after entering stage ``anchor`` for the cases
    that ``dropped`` out of it (``entries``). Consecutive repeats are collapsed.

    ``log`` (default: the warehouse's stored ``event_log``) is a relation ``case_key,
    activity, ts, seq``; events after ``cutoff`` (default: the log's latest) are ignored.
    Columns: ``anchor, direction, path, people, share``.
    """
    if direction not in DIRECTIONS:
        raise PathsError(f"direction is one of {DIRECTIONS}, not {direction!r}")
    if direction == "dropped":
        return dropped_paths(
            con, [anchor], steps=steps, top=top, log=log, entries=entries, cutoff=cutoff
        )
    problem = no_match_message(con, log, [anchor], "anchor")
    if problem:
        raise PathsError(problem)
    return _run(con, log, direction, entries, steps, top, cutoff, {"anchor": anchor})


def dropped_paths(
    con: duckdb.DuckDBPyConnection,
    stages: Sequence[str],
    *,
    steps: int = 3,
    top: int = 20,
    log: str = "event_log",
    entries: str = "stage_entries",
    cutoff: datetime | None = None,
) -> pd.DataFrame:
    """:func:`paths` ``dropped`` of each of ``stages`` (stage by stage, in the order given),
    from one pass over the log instead of one per stage."""
    if not stages:  # nobody dropped out anywhere: no pass over the log at all
        return pd.DataFrame(columns=COLUMNS)
    for stage in stages:
        problem = stage_message(con, entries, stage)
        if problem:
            raise PathsError(problem)
    return _run(con, log, "dropped", entries, steps, top, cutoff, {"stages": list(stages)})


def _run(
    con: duckdb.DuckDBPyConnection,
    log: str,
    direction: str,
    entries: str,
    steps: int,
    top: int,
    cutoff: datetime | None,
    anchors: dict[str, object],
) -> pd.DataFrame:
    if not 1 <= steps <= MAX_STEPS or top < 1:
        raise PathsError(f"steps must be 1..{MAX_STEPS} and top at least 1, not {steps} and {top}")
    if cutoff is None:
        cutoff = data_cutoff(con, log)
    frame = con.execute(
        _paths_sql(log, direction, entries, steps),
        {**anchors, "top": top, "cutoff": cutoff, "sep": SEPARATOR},
    ).df()
    frame.insert(1, "direction", direction)
    frame["people"] = frame["people"].astype("int64")
    return frame[COLUMNS]
