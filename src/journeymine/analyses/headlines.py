"""Headline figures: the one definition behind the run summary and the dashboard header.

Each figure is computed from the analyses' tables (never from its own copy of a metric) and kept
in ``headlines``; every analysis run appends its figures to ``run_history`` so that "change since
the last run" compares with the run before this one, whoever asks (the nightly summary, a later
``journeymine report``, the dashboard).

* ``persons``: stitched persons with at least one touchpoint;
* ``journeys_started`` / ``reached_last_stage``: people who entered the first stage, and the share
  of them who entered the last stage that is not an outcome stage (a churn stage is left out;
  the label names the stage; ``stage_funnel``, segment ``all``);
* ``median_wait:<rule>``: median time to the first reply of answered triggers, in the unit the
  rule's SLA is judged in (business hours for ``business_hours = true``, else hours);
* ``breach_rate`` (and ``breach_rate:<rule>``): share of decided triggers (answered or
  unanswered) that breached the SLA;
* ``first_event`` / ``cutoff``: the data period (epoch seconds, UTC); the cut-off is the latest
  touchpoint, the instant every "open" status is judged at.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import pandas as pd

from journeymine.spec import JourneySpec, outcome_stages
from journeymine.warehouse import replace_table, table_exists

HISTORY = (
    "CREATE TABLE IF NOT EXISTS run_history (run_id VARCHAR, finished_at TIMESTAMPTZ, figures JSON)"
)
COLUMNS = ["key", "label", "value", "unit", "higher_is_better"]


@dataclass(frozen=True)
class Headline:
    key: str
    label: str
    value: float
    unit: str  # "count", "share", "hours", "business hours", "time"
    higher_is_better: bool | None = None


def _row(con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None) -> Any:
    """The first row of a query, or None (fetching all: DuckDB keeps a result open otherwise)."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0] if rows else None


def _one(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None
) -> float | None:
    row = _row(con, sql, params)
    return None if not row or row[0] is None or pd.isna(row[0]) else float(row[0])


def _business_rules(spec: JourneySpec | None) -> set[str]:
    return {r.name for r in spec.followups if r.business_hours} if spec else set()


def compute_headlines(
    con: duckdb.DuckDBPyConnection, spec: JourneySpec | None = None
) -> list[Headline]:
    """The headline figures the warehouse has tables for (see the module docstring)."""
    out: list[Headline] = []
    if table_exists(con, "persons"):
        events = "WHERE events > 0" if "events" in _columns(con, "persons") else ""
        out.append(
            Headline(
                "persons",
                "people",
                _one(con, f"SELECT count(*) FROM persons {events}") or 0.0,
                "count",
                True,
            )
        )
    if table_exists(con, "stage_funnel"):
        order = "position" if "position" in _columns(con, "stage_funnel") else "entered DESC"
        funnel = con.execute(
            f"SELECT stage, entered FROM stage_funnel WHERE segment = 'all' ORDER BY {order}"
        ).fetchall()
        goals = [(st, n) for st, n in funnel if st not in outcome_stages(spec)]
        if funnel and funnel[0][1] and goals:
            goal, reached = goals[-1]
            out.append(
                Headline("journeys_started", "journeys started", float(funnel[0][1]), "count", True)
            )
            out.append(
                Headline(
                    "reached_last_stage",
                    f"reached {goal}",
                    float(reached) / float(funnel[0][1]),
                    "share",
                    True,
                )
            )
    if table_exists(con, "followups"):
        out += _followup_headlines(con, _business_rules(spec))
    if table_exists(con, "touchpoints"):
        row = _row(con, "SELECT epoch(min(occurred_at)), epoch(max(occurred_at)) FROM touchpoints")
        if row and row[0] is not None:
            out.append(Headline("first_event", "first event", float(row[0]), "time"))
            out.append(Headline("cutoff", "cut-off (latest event)", float(row[1]), "time"))
    return out


def _followup_headlines(con: duckdb.DuckDBPyConnection, business: set[str]) -> list[Headline]:
    out: list[Headline] = []
    breach = _one(con, "SELECT avg(sla_breached::INT) FROM followups WHERE status <> 'open'")
    if breach is not None:
        out.append(Headline("breach_rate", "replies later than the SLA", breach, "share", False))
    # the median wait in the unit the rule's SLA is judged in
    business_rules = sorted(business) if "business_latency_s" in _columns(con, "followups") else []
    rows = con.execute(  # every rule in one pass
        """
        SELECT rule,
               median(CASE WHEN list_contains($business, rule) THEN business_latency_s
                           ELSE latency_s END) FILTER (WHERE status = 'answered') / 3600,
               list_contains($business, rule),
               avg(sla_breached::INT) FILTER (WHERE status <> 'open')
        FROM followups GROUP BY rule ORDER BY rule
        """
        if business_rules
        else "SELECT rule, median(latency_s) FILTER (WHERE status = 'answered') / 3600, false, "
        "avg(sla_breached::INT) FILTER (WHERE status <> 'open') FROM followups "
        "GROUP BY rule ORDER BY rule",
        {"business": business_rules} if business_rules else {},
    ).fetchall()
    for rule, median, in_business, rate in rows:
        if median is not None and not pd.isna(median):
            unit = "business hours" if in_business else "hours"
            label = f"median wait for a reply: {rule}"
            out.append(Headline(f"median_wait:{rule}", label, float(median), unit, False))
        if rate is not None and not pd.isna(rate):
            label = f"later than the SLA: {rule}"
            out.append(Headline(f"breach_rate:{rule}", label, float(rate), "share", False))
    return out


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    return {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}


def as_frame(headlines: list[Headline]) -> pd.DataFrame:
    return pd.DataFrame([h.__dict__ for h in headlines], columns=COLUMNS)


def write_headlines(
    con: duckdb.DuckDBPyConnection, spec: JourneySpec | None, run_id: str | None = None
) -> pd.DataFrame:
    """Store ``headlines`` and append this run's figures to ``run_history``; return them."""
    frame = as_frame(compute_headlines(con, spec))
    replace_table(con, "headlines", frame)
    con.execute(HISTORY)
    con.execute(
        "INSERT INTO run_history VALUES (?, ?, ?)",
        [
            run_id or uuid.uuid4().hex[:12],
            datetime.now(UTC),
            json.dumps(dict(zip(frame.key, frame.value, strict=True))),
        ],
    )
    return frame


def read_headlines(con: duckdb.DuckDBPyConnection, spec: JourneySpec | None = None) -> pd.DataFrame:
    """The stored ``headlines``, or (a warehouse from before them, a hand-made one) the same
    figures computed now from whatever tables exist."""
    if table_exists(con, "headlines"):
        return con.execute(f"SELECT {', '.join(COLUMNS)} FROM headlines").df()
    return as_frame(compute_headlines(con, spec))


def previous_figures(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """The figures of the run before the latest analysis run (empty when there is none).

    With a ``headlines`` table, the latest ``run_history`` row is the run that wrote it, so the
    previous run is the one before; without one (figures computed on the fly) it is the latest."""
    if not table_exists(con, "run_history"):
        return {}
    skip = 1 if table_exists(con, "headlines") else 0
    row = _row(
        con,
        "SELECT figures::VARCHAR FROM run_history ORDER BY finished_at DESC LIMIT 1 OFFSET ?",
        [skip],
    )
    figures = json.loads(row[0]) if row and row[0] else {}
    return {k: float(v) for k, v in figures.items() if isinstance(v, int | float)}


def format_value(value: float, unit: str) -> str:
    """A figure as people read it: ``3,968``, ``38.0%``, ``7.2 h``, ``2026-11-01 00:00 UTC``."""
    if unit == "share":
        return f"{value:.1%}"
    if unit == "hours":
        return f"{value:,.1f} h"
    if unit == "business hours":
        return f"{value:,.1f} business h"
    if unit == "time":
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{value:,.0f}"


def data_period(con: duckdb.DuckDBPyConnection) -> tuple[str, str] | None:
    """(first event, cut-off) as text, from the headlines."""
    frame = read_headlines(con).set_index("key")
    if not {"first_event", "cutoff"} <= set(frame.index):
        return None
    first, cut = (float(frame.loc[k, "value"]) for k in ("first_event", "cutoff"))
    return format_value(first, "time"), format_value(cut, "time")
