"""Dashboard figures: each function takes an open warehouse (or the table as a DataFrame) and
returns a Plotly figure, in a notebook or in the exported dashboard.

* Everything is aggregated in DuckDB SQL first, so a 10M-event warehouse still makes a figure
  of a few kilobytes.
* Every string that came from the data goes through :func:`label` (email addresses masked,
  HTML special characters escaped: Plotly renders a subset of HTML in labels and hovers) and is
  passed as data (``customdata``/``text``), never pasted into a hover template. Raw attributes
  and person ids are never read.
* Only the DESIGN §3.2 columns are required; richer columns (``position``, ``excluded``,
  ``sla_s``, ``owner``, ``activities``) are used when a table has them.
* A missing or empty table gives a figure that says so (see :func:`missing_reason`) instead of
  an exception.
"""

from __future__ import annotations

import functools
import html
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any, ParamSpec, TypeAlias

import duckdb
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from journeymine.analyses.followups import NO_REPLY, summarise_followups
from journeymine.analyses.followups import cost_of_waiting as analysed_cost
from journeymine.analyses.headlines import previous_figures, read_headlines
from journeymine.analyses.stats import wilson
from journeymine.dashboard.layout import layered_layout

Data: TypeAlias = duckdb.DuckDBPyConnection | pd.DataFrame
P = ParamSpec("P")

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
EMAIL_MASK = "[email hidden]"
STATUS_COLOURS = {
    "converted": "#2a9d8f",
    "dropped": "#e76f51",
    "open": "#b8c4cc",
    "excluded": "#e9c46a",
    "final": "#264653",
}
STATUS_NAMES = {"final": "reached the last stage"}
SEGMENT_COLOURS = ["#264653", "#e76f51", "#2a9d8f", "#8d6cab", "#e9c46a", "#6c757d"]
WAIT_SCALE = [[0.0, "#2a9d8f"], [0.5, "#e9c46a"], [1.0, "#d62828"]]
FONT = {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 13, "color": "#222"}
# Latency buckets for the cost of waiting: (upper bound in seconds, label); no reply is its own.


class MissingTable(LookupError):
    """A figure needs a warehouse table that is not there (or has no rows)."""


# ------------------------------------------------------------------ helpers


def label(value: object) -> str:
    """A data string made safe for a figure: emails masked, HTML special characters escaped."""
    return html.escape(EMAIL.sub(EMAIL_MASK, str(value)), quote=False)


def short(value: object, limit: int = 34) -> str:
    """:func:`label` of a long name cut to ``limit`` characters (the hover shows it whole)."""
    text = EMAIL.sub(EMAIL_MASK, str(value))
    return label(text if len(text) <= limit else text[: limit - 1] + "…")


def wrap(value: object, width: int = 22) -> str:
    """:func:`label` of a name broken into lines of about ``width`` characters, never cut."""
    words = re.split(r"(?<=[ ._:/-])", EMAIL.sub(EMAIL_MASK, str(value)))
    lines, line = [], ""
    for word in words:
        if line and len(line) + len(word) > width:
            lines.append(line)
            line = ""
        line += word
    lines.append(line)
    return "<br>".join(label(x) for x in lines)


def duration(seconds: float | None) -> str:
    """A wait in words: minutes, hours or days ("–" for a missing or masked value)."""
    if seconds is None or np.ma.is_masked(seconds) or pd.isna(seconds):
        return "–"
    seconds = float(seconds)
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    row = con.execute(
        "SELECT (SELECT count(*) FROM duckdb_tables() WHERE table_name = ?) "
        "+ (SELECT count(*) FROM duckdb_views() WHERE view_name = ?)",
        [table, table],
    ).fetchone()
    return bool(row and row[0])


def columns(data: Data, table: str) -> set[str]:
    """The columns of ``table`` (or of the frame given instead); MissingTable if absent."""
    if isinstance(data, pd.DataFrame):
        return {str(c) for c in data.columns}
    if not _exists(data, table):
        raise MissingTable(f"The warehouse has no {table} table yet.")
    return {d[0] for d in data.execute(f'SELECT * FROM "{table}" LIMIT 0').description}


def query(data: Data, table: str, sql: str, params: Sequence[object] | None = None) -> pd.DataFrame:
    """Run ``sql`` where ``{t}`` names ``table`` (or the frame given instead of a warehouse)."""
    if isinstance(data, pd.DataFrame):
        local = duckdb.connect()
        try:
            local.register("jm_frame", data)
            return local.execute(sql.replace("{t}", "jm_frame"), params).df()
        finally:
            local.close()
    columns(data, table)
    return data.execute(sql.replace("{t}", f'"{table}"'), params).df()


def missing_figure(message: str, height: int = 140) -> go.Figure:
    """A figure that only says, in plain words, why there is nothing to draw."""
    fig = go.Figure()
    fig.add_annotation(
        text=label(message),
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        showarrow=False,
        font={"size": 15, "color": "#8a6d3b"},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=height, font=FONT, meta={"jm_missing": message}, plot_bgcolor="white")
    return fig


def missing_reason(fig: go.Figure) -> str | None:
    """The plain-text reason when ``fig`` is a placeholder for missing data, else None."""
    meta = fig.layout.meta
    return meta.get("jm_missing") if isinstance(meta, dict) else None


def _degrades(build: Callable[P, go.Figure]) -> Callable[P, go.Figure]:
    """A missing table makes a figure that says so, not an exception."""

    @functools.wraps(build)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> go.Figure:
        try:
            return build(*args, **kwargs)
        except MissingTable as exc:
            return missing_figure(str(exc))

    return wrapper


def _layout(fig: go.Figure, title: str, height: int = 420) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.01, "font": {"size": 16}},
        height=height,
        font=FONT,
        margin={"l": 70, "r": 30, "t": 70, "b": 60},
        plot_bgcolor="white",
        legend={"orientation": "h", "y": -0.14, "yanchor": "top", "x": 0, "xanchor": "left"},
        colorway=SEGMENT_COLOURS,
        hoverlabel={"font": {"size": 13}},
    )
    fig.update_xaxes(gridcolor="#e6e6e6", zerolinecolor="#ccc")
    fig.update_yaxes(gridcolor="#e6e6e6", zerolinecolor="#ccc")
    return fig


def _stage_order_sql(cols: set[str]) -> str:
    return "position" if "position" in cols else "entered DESC"


# ------------------------------------------------------------------ KPI header


# d3 number formats per headline unit (analyses.headlines defines the figures themselves)
UNIT_FORMATS = {"count": ",.0f", "share": ".1%", "hours": ",.1f", "business hours": ",.1f"}
UNIT_SUFFIX = {"hours": " (h)", "business hours": " (business h)"}


def kpi_numbers(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The headline figures shown in the header: the ``headlines`` table (the same figures
    as the run summary), the first follow-up rule's median wait, no time stamps."""
    frame = read_headlines(con)
    frame = frame[frame.unit != "time"]
    waits = frame[frame.key.str.startswith("median_wait:")].head(1)
    keep = frame.key.isin(["persons", "journeys_started", "reached_last_stage", "breach_rate"])
    return pd.concat([frame[keep], waits], ignore_index=True)


@_degrades
def kpi_header(con: duckdb.DuckDBPyConnection) -> go.Figure:
    """The headline figures (``analyses.headlines``), each with its change since the previous
    analysis run when ``run_history`` has one; waits in the unit their SLA is judged in."""
    now = kpi_numbers(con)
    if now.empty:
        raise MissingTable("No persons, stage_funnel or followups table yet: no headline figures.")
    previous = previous_figures(con)
    fig = go.Figure()
    good, bad = "#2a9d8f", "#d62828"
    for i, row in enumerate(now.itertuples()):
        fmt = UNIT_FORMATS.get(row.unit, ",.1f")
        delta = None
        if row.key in previous:
            higher_better = bool(row.higher_is_better)
            delta = {
                "reference": float(previous[row.key]),
                "valueformat": fmt,
                "increasing": {"color": good if higher_better else bad},
                "decreasing": {"color": bad if higher_better else good},
            }
        fig.add_trace(
            go.Indicator(
                mode="number+delta" if delta else "number",
                value=float(row.value),
                delta=delta,
                number={"valueformat": fmt, "font": {"size": 34}},
                title={
                    "text": wrap(str(row.label) + UNIT_SUFFIX.get(row.unit, ""), 20),
                    "font": {"size": 13, "color": "#555"},
                },
                domain={"row": 0, "column": i},
            )
        )
    fig.update_layout(
        grid={"rows": 1, "columns": max(len(now), 1), "xgap": 0.15},
        height=160,
        font=FONT,
        margin={"l": 20, "r": 20, "t": 50, "b": 10},
    )
    return fig


# ------------------------------------------------------------------ stage funnel


def _funnel_frame(data: Data, segments: Sequence[str] | None) -> tuple[pd.DataFrame, list[str]]:
    cols = columns(data, "stage_funnel")
    extra = [c for c in ("position", "excluded") if c in cols]
    frame = query(
        data,
        "stage_funnel",
        "SELECT segment, stage, entered, converted, dropped, open, conversion_rate, "
        "conversion_ci_low, conversion_ci_high" + "".join(f", {c}" for c in extra) + " FROM {t}",
    )
    if frame.empty:
        raise MissingTable("The stage_funnel table has no rows yet.")
    if "excluded" not in frame:
        frame["excluded"] = 0
    frame[["converted", "dropped", "open", "excluded"]] = frame[
        ["converted", "dropped", "open", "excluded"]
    ].fillna(0)
    frame["final"] = (
        frame.entered - frame.converted - frame.dropped - frame.open - frame.excluded
    ).clip(lower=0)
    present = list(dict.fromkeys(frame.segment.astype(str)))
    if segments is None:
        segments = ["all"] if "all" in present else sorted(present)[:4]
    chosen = [s for s in segments if s in present]
    if not chosen:
        raise MissingTable(f"The stage_funnel table has no rows for segment(s) {list(segments)}.")
    # Stage order: the funnel's position when stored, else the most-entered first (ties: the
    # one more people converted out of, since they entered the next).
    ref = frame[frame.segment == chosen[0]]
    ordered = (
        ref.sort_values(["position", "stage"])
        if "position" in ref
        else ref.sort_values(["entered", "converted", "stage"], ascending=[False, False, True])
    )
    order = {s: i for i, s in enumerate(dict.fromkeys(ordered.stage))}
    frame = frame[frame.segment.isin(chosen)].copy()
    frame["stage_rank"] = frame.stage.map(lambda s: order.get(s, len(order)))
    frame["segment_rank"] = frame.segment.map(chosen.index)
    return frame.sort_values(["stage_rank", "stage", "segment_rank"]), chosen


@_degrades
def stage_funnel(data: Data, segments: Sequence[str] | None = None) -> go.Figure:
    """Entered / converted / dropped / open per stage (left) and the conversion rate with its
    95% Wilson interval (right); several ``segments`` are shown side by side per stage.

    Default: the ``all`` segment when the table has it, else up to four segments.
    """
    frame, chosen = _funnel_frame(data, segments)
    several = len(chosen) > 1
    y: list[Any] = (
        [[label(s) for s in frame.stage], [label(s) for s in frame.segment]]
        if several
        else [label(s) for s in frame.stage]
    )
    fig = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        column_widths=[0.62, 0.38],
        horizontal_spacing=0.03,
        subplot_titles=(
            "People who entered each stage, and what happened",
            "Converted (95% interval)",
        ),
    )
    for status, colour in STATUS_COLOURS.items():
        if status not in ("converted", "dropped") and not frame[status].any():
            continue  # no legend entries for statuses nobody has
        name = STATUS_NAMES.get(status, status)
        fig.add_trace(
            go.Bar(
                y=y,
                x=frame[status].astype(float).tolist(),
                name=name,
                orientation="h",
                marker_color=colour,
                customdata=frame.entered.astype(float).tolist(),
                hovertemplate="%{x:,} " + name + " of %{customdata:,} who entered<extra></extra>",
            ),
            row=1,
            col=1,
        )
    rate = frame.conversion_rate.astype(float)
    fig.add_trace(
        go.Scatter(
            y=y,
            x=rate.tolist(),
            mode="markers",
            name="conversion rate",
            marker={"size": 11, "color": "#264653"},
            error_x={
                "type": "data",
                "symmetric": False,
                "array": (frame.conversion_ci_high.astype(float) - rate).tolist(),
                "arrayminus": (rate - frame.conversion_ci_low.astype(float)).tolist(),
                "color": "#264653",
                "thickness": 2,
                "width": 6,
            },
            customdata=np.stack(
                [
                    frame.conversion_ci_low.astype(float),
                    frame.conversion_ci_high.astype(float),
                    frame.converted.astype(float),
                    (frame.converted + frame.dropped).astype(float),
                ],
                axis=1,
            ).tolist(),
            hovertemplate="%{x:.1%} converted (95% interval %{customdata[0]:.1%}–"
            "%{customdata[1]:.1%})<br>%{customdata[2]:,} of %{customdata[3]:,} decided"
            "<extra></extra>",
        ),
        row=1,
        col=2,
    )
    fig.update_layout(barmode="stack")
    fig.update_yaxes(autorange="reversed", row=1, col=1)
    fig.update_xaxes(title_text="people", row=1, col=1)
    fig.update_xaxes(title_text="converted", tickformat=".0%", range=[0, 1.02], row=1, col=2)
    rows = len(frame)
    _layout(fig, "", 230 + 38 * rows)
    fig.update_layout(
        title=None,
        margin={"t": 40, "b": 40},
        legend={"y": -0.5 if rows < 4 else -0.25},
    )
    return fig


@_degrades
def conversion_by_segment(data: Data, attribute: str | None = None) -> go.Figure:
    """Conversion rate to the next stage per segment value (``attribute=value`` segments), with
    95% Wilson intervals; buttons switch between attributes. Segments come in the order the
    funnel gives them (``segment_rank``: numeric values numerically, ``(unknown)`` last, shown);
    segments with fewer than 20 decided people are left out."""
    cols = columns(data, "stage_funnel")
    order = "position" if "position" in cols else "stage"
    rank = "segment_rank" if "segment_rank" in cols else "segment"  # the analysis's own order
    pattern = "%=%" if attribute is None else attribute.replace("%", "") + "=%"
    frame = query(
        data,
        "stage_funnel",
        "SELECT segment, stage, conversion_rate, conversion_ci_low, conversion_ci_high, "
        f"converted + dropped AS decided, {order} AS stage_order FROM {{t}} "
        "WHERE segment <> 'all' AND segment LIKE ? "
        "AND conversion_rate IS NOT NULL "
        f"AND converted + dropped >= 20 ORDER BY {rank}, {order}",
        [pattern],
    )
    if frame.empty:
        raise MissingTable("No segment of the stage_funnel table has 20 decided people yet.")
    fig = go.Figure()
    keys = []
    for segment, part in frame.groupby("segment", sort=False):
        keys.append(str(segment).split("=", 1)[0])
        fig.add_trace(
            go.Bar(
                x=[label(s) for s in part.stage],
                y=part.conversion_rate.tolist(),
                name=label(segment),
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": (part.conversion_ci_high - part.conversion_rate).tolist(),
                    "arrayminus": (part.conversion_rate - part.conversion_ci_low).tolist(),
                },
                customdata=[[label(segment), int(d)] for d in part.decided],
                hovertemplate="%{customdata[0]} · %{x}<br>%{y:.1%} of %{customdata[1]:,} "
                "decided<extra></extra>",
            )
        )
    attributes = list(dict.fromkeys(keys))  # in the spec's order
    if len(attributes) > 1:  # an in-page filter: one attribute at a time, no server needed
        for trace, key in zip(fig.data, keys, strict=True):
            trace.visible = key == attributes[0]
        buttons = [
            {"label": label(a), "method": "update", "args": [{"visible": [k == a for k in keys]}]}
            for a in attributes
        ]
        fig.update_layout(
            updatemenus=[
                {
                    "buttons": buttons,
                    "direction": "right",
                    "type": "buttons",
                    "x": 0.0,
                    "xanchor": "left",
                    "y": 1.18,
                }
            ]
        )
    fig.update_yaxes(tickformat=".0%", title="converted to the next stage", range=[0, 1])
    stages = frame.sort_values("stage_order", kind="stable").stage.drop_duplicates()
    fig.update_xaxes(categoryorder="array", categoryarray=[label(s) for s in stages])
    fig.update_layout(barmode="group")
    _layout(fig, "", 440)
    fig.update_layout(title=None, margin={"t": 80})
    return fig


# ------------------------------------------------------------------ follow-ups


OWNER_STATUSES = [  # (label, colour) of the per-owner bars, best first
    ("within the SLA", "#2a9d8f"),
    ("answered late", "#e9c46a"),
    ("no reply", "#d62828"),
    ("open", "#b8c4cc"),
]


def _owner_counts(frame: pd.DataFrame, top: int, min_triggers: int) -> pd.DataFrame:
    """Per rule and owner (responsible at trigger time): the triggers by outcome, from
    ``summarise_followups`` (its counts and rates), worst breach rate first."""
    key = "owner_name" if "owner_name" in frame.columns else "owner"
    if key not in frame.columns or frame[key].isna().all():
        return pd.DataFrame()
    table = summarise_followups(frame.dropna(subset=[key]), by=key).rename(columns={key: "owner"})
    table = table[table.triggers >= min_triggers]
    table["within the SLA"] = table.answered - (table.breached - table.unanswered)
    table["answered late"] = table.breached - table.unanswered
    table["no reply"] = table.unanswered
    order = table.sort_values(["breach_rate", "triggers"], ascending=[False, False])
    return order.head(top).reset_index(drop=True)


@_degrades
def followup_latency(
    data: Data,
    sla_hours: Mapping[str, float] | None = None,
    *,
    top_owners: int = 12,
    min_triggers: int = 5,
) -> go.Figure:
    """How long customers wait for a reply: per rule, the distribution of answered waits in the
    unit the SLA is judged in (``wait_s``: business hours where the rule says so; box: quartiles
    and median, whiskers p5 and p95, ``quantile_cont``) with the rule's SLA (``sla_s``, else
    ``sla_hours``); below, per owner responsible at trigger time, every trigger by outcome
    (within the SLA, late, no reply, open), the worst breach rate first."""
    cols = columns(data, "followups")
    wait = "wait_s" if "wait_s" in cols else "latency_s"
    unit = "any_value(sla_unit)" if "sla_unit" in cols else "'hours'"
    sla = "max(sla_s)" if "sla_s" in cols else "NULL::DOUBLE"
    rules = query(
        data,
        "followups",
        f"""
        SELECT rule::VARCHAR AS rule, count(*) AS triggers,
               count(*) FILTER (WHERE status = 'answered') AS answered,
               quantile_cont(greatest({wait}, 60) / 3600, [0.05, 0.25, 0.5, 0.75, 0.95])
                   FILTER (WHERE status = 'answered' AND {wait} IS NOT NULL) AS q,
               avg(sla_breached::INT) FILTER (WHERE status <> 'open') AS breach_rate,
               {sla} AS sla_s, {unit} AS unit
        FROM {{t}} GROUP BY 1 ORDER BY 1
        """,
    )
    rules = rules[rules.q.notna()].reset_index(drop=True)
    if rules.empty:
        raise MissingTable("The followups table has no answered triggers yet.")
    owners = _owner_counts(query(data, "followups", "SELECT * FROM {t}"), top_owners, min_triggers)
    with_owners = not owners.empty
    fig = make_subplots(
        rows=2 if with_owners else 1,
        cols=1,
        row_heights=[0.45, 0.55] if with_owners else [1.0],
        vertical_spacing=0.3 if len(rules) < 3 else 0.2,
        subplot_titles=(
            "Time to the first reply per rule, in the SLA's unit (box: middle half, "
            "whiskers: 5%–95%)",
            f"Every trigger per owner responsible at the time (owners with ≥{min_triggers})",
        )
        if with_owners
        else ("Time to the first reply per rule (box: middle half, whiskers: 5%–95%)",),
    )
    names = [
        label(r) + (" (business h)" if u == "business hours" else "")
        for r, u in zip(rules.rule, rules.unit, strict=True)
    ]
    q = np.array(rules.q.tolist(), dtype=float)
    fig.add_trace(
        go.Box(
            y=names,
            lowerfence=q[:, 0].tolist(),
            q1=q[:, 1].tolist(),
            median=q[:, 2].tolist(),
            q3=q[:, 3].tolist(),
            upperfence=q[:, 4].tolist(),
            orientation="h",
            name="time to reply",
            marker_color="#264653",
            fillcolor="rgba(42,157,143,0.35)",
            hoverinfo="x",
        ),
        row=1,
        col=1,
    )
    sla_h = [
        (s / 3600 if pd.notna(s) else (sla_hours or {}).get(str(r), math.nan))
        for r, s in zip(rules.rule, rules.sla_s, strict=True)
    ]
    if any(pd.notna(s) for s in sla_h):
        fig.add_trace(
            go.Scatter(
                y=names,
                x=sla_h,
                mode="markers",
                name="SLA",
                marker={
                    "symbol": "line-ns",
                    "size": 34,
                    "color": "#d62828",
                    "line": {"width": 3, "color": "#d62828"},
                },
                customdata=np.stack(
                    [rules.breach_rate.fillna(0).astype(float), rules.answered.astype(float)],
                    axis=1,
                ).tolist(),
                hovertemplate="SLA %{x:.1f} h<br>%{customdata[0]:.0%} of decided triggers "
                "breached it<extra></extra>",
            ),
            row=1,
            col=1,
        )
    ticks = [1 / 60, 0.25, 1, 4, 8, 24, 48, 24 * 7, 24 * 30]
    fig.update_xaxes(
        type="log",
        tickvals=ticks,
        ticktext=[duration(t * 3600) for t in ticks],
        title_text="time until the first reply (log scale"
        + ("; red mark: the SLA)" if any(pd.notna(s) for s in sla_h) else ")"),
        row=1,
        col=1,
    )
    fig.update_yaxes(autorange="reversed", row=1, col=1)
    if with_owners:
        many_rules = owners.rule.nunique() > 1
        who = [
            f"{label(o)} · {label(r)}" if many_rules else label(o)
            for o, r in zip(owners.owner, owners.rule, strict=True)
        ]
        details = np.stack(
            [owners.breach_rate.fillna(0).astype(float), owners.median_wait_h.astype(float)],
            axis=1,
        ).tolist()
        for name, colour in OWNER_STATUSES:
            fig.add_trace(
                go.Bar(
                    y=who,
                    x=owners[name].astype(float).tolist(),
                    orientation="h",
                    name=name,
                    marker_color=colour,
                    customdata=details,
                    hovertemplate="%{y}: %{x:,} " + name + "<br>%{customdata[0]:.0%} of "
                    "decided triggers later than the SLA · median wait %{customdata[1]:.1f} h "
                    "(SLA unit)<extra></extra>",
                ),
                row=2,
                col=1,
            )
        fig.update_layout(barmode="stack")
        fig.update_xaxes(title_text="triggers", row=2, col=1)
        fig.update_yaxes(autorange="reversed", row=2, col=1)
    height = 160 + 44 * len(rules) + (140 + 30 * len(owners) if with_owners else 0)
    _layout(fig, "", max(height, 320))
    fig.update_layout(title=None, margin={"t": 40, "l": 220}, showlegend=with_owners)
    return fig


# How the follow-up latency buckets of analyses.followups read on the page.
BUCKET_LABELS = {
    "<1h": "under 1 h",
    "1-4h": "1-4 h",
    "4-24h": "4-24 h",
    "24-48h": "1-2 days",
    ">48h": "over 2 days",
    NO_REPLY: "no reply",
}


def _cost_frame(
    con: duckdb.DuckDBPyConnection,
    rule: str | None,
    target_activities: Sequence[str],
    window: timedelta,
) -> tuple[pd.DataFrame, str]:
    """The ``cost_of_waiting`` rows of ``rule`` (default: the rule with most people): from the
    stored table, else computed now by the same analysis from ``followups``."""
    if not _exists(con, "cost_of_waiting"):
        columns(con, "followups")  # says which table is missing
    if rule is None:
        source = "cost_of_waiting" if _exists(con, "cost_of_waiting") else "followups"
        counted = "sum(people)" if source == "cost_of_waiting" else "count(*)"
        row = con.execute(
            f"SELECT rule FROM {source} GROUP BY 1 ORDER BY {counted} DESC, 1 LIMIT 1"
        ).fetchall()
        if not row:
            raise MissingTable(f"The {source} table has no rows yet.")
        rule = str(row[0][0])
    if _exists(con, "cost_of_waiting"):
        frame = con.execute(
            "SELECT * FROM cost_of_waiting WHERE rule = ? ORDER BY bucket_order", [rule]
        ).df()
        if len(frame):
            return frame, rule
    if not target_activities:
        raise MissingTable(
            "Say which activities count as converting (a follow-up rule with converts_to)."
        )
    followups = query(con, "followups", "SELECT * FROM {t}")
    return (
        analysed_cost(con, followups, rule, tuple(target_activities), window),
        rule,
    )


@_degrades
def cost_of_waiting(
    data: Data,
    *,
    target_activities: Sequence[str] = (),
    rule: str | None = None,
    window: timedelta = timedelta(days=30),
    target: str | None = None,
) -> go.Figure:
    """Conversion by follow-up latency bucket, with 95% Wilson intervals, as defined by
    ``analyses.followups.cost_of_waiting`` (docs/metrics.md): from the stored
    ``cost_of_waiting`` table, else computed by that function for ``rule`` and
    ``target_activities``; or from a frame with ``bucket, people, converted``."""
    if isinstance(data, pd.DataFrame):
        frame = data.copy()
    else:
        frame, rule = _cost_frame(data, rule, target_activities, window)
        if target is None and "target" in frame.columns and len(frame):
            target = str(frame.target.iloc[0])
    frame = frame[frame.people > 0]
    if frame.empty:
        raise MissingTable("No decided follow-ups yet to compare conversion by waiting time.")
    bounds = [wilson(int(c), int(n)) for c, n in zip(frame.converted, frame.people, strict=True)]
    rate = (frame.converted / frame.people).to_numpy(dtype=float)
    low = np.array([b[0] for b in bounds])
    high = np.array([b[1] for b in bounds])
    names = [BUCKET_LABELS.get(str(b), str(b)) for b in frame.bucket]
    colours = ["#b8c4cc" if b == NO_REPLY else "#2a9d8f" for b in frame.bucket]
    goal = label(target or " or ".join(target_activities) or "the next stage")
    fig = go.Figure(
        go.Bar(
            x=[label(b) for b in names],
            y=rate.tolist(),
            marker_color=colours,
            name="conversion",
            error_y={
                "type": "data",
                "symmetric": False,
                "array": (high - rate).tolist(),
                "arrayminus": (rate - low).tolist(),
                "color": "#444",
            },
            customdata=np.stack(
                [frame.converted.astype(float), frame.people.astype(float), low, high], axis=1
            ).tolist(),
            hovertemplate="waited %{x}: %{y:.1%} converted<br>%{customdata[0]:,} of "
            "%{customdata[1]:,} people (95% interval %{customdata[2]:.1%}–%{customdata[3]:.1%})"
            "<extra></extra>",
        )
    )
    fig.update_yaxes(tickformat=".0%", range=[0, 1], title=f"reached {goal}")
    fig.update_xaxes(
        title="time until the first reply, wall clock" + (f" ({label(rule)})" if rule else "")
    )
    _layout(fig, "", 380)
    fig.update_layout(title=None, margin={"t": 30})
    return fig


# ------------------------------------------------------------------ journey map


def _bezier(
    start: tuple[float, float], control: tuple[float, float], end: tuple[float, float], stop: float
) -> tuple[list[float], list[float]]:
    ts = np.linspace(0.0, stop, 14)
    xs = (1 - ts) ** 2 * start[0] + 2 * (1 - ts) * ts * control[0] + ts**2 * end[0]
    ys = (1 - ts) ** 2 * start[1] + 2 * (1 - ts) * ts * control[1] + ts**2 * end[1]
    return xs.round(4).tolist(), ys.round(4).tolist()


def _edge_path(
    a: tuple[float, float], b: tuple[float, float], back: bool, k: int
) -> tuple[list[float], list[float]]:
    if a == b:  # a self-loop: a small teardrop above the node
        angles = np.linspace(-0.35 * math.pi, 1.35 * math.pi, 16)
        xs = a[0] + 0.16 * np.cos(angles + math.pi / 2) * 1.2
        ys = a[1] + 0.22 + 0.2 * np.sin(angles + math.pi / 2)
        return xs.round(4).tolist(), ys.round(4).tolist()
    span = abs(b[0] - a[0])
    mid = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
    if back:  # arcs below, deeper for longer jumps back
        control = (mid[0], min(a[1], b[1]) - 0.45 - 0.18 * span)
    elif span > 1:  # skip over the layers in between
        control = (mid[0], mid[1] + (0.35 + 0.1 * span) * (1 if k % 2 else -1))
    else:
        control = mid
    return _bezier(a, control, b, 0.9)


def _map_frames(
    data: Data, max_activities: int, max_edges: int
) -> tuple[pd.DataFrame, pd.DataFrame, str, dict[str, Any]]:
    """(nodes: node, label, size, kind; shown edges; note; meta) — from the analysis's
    ``map_nodes`` / ``map_edges`` (the designed stages always drawn), else from ``dfg``."""
    if isinstance(data, duckdb.DuckDBPyConnection) and _exists(data, "map_edges"):
        nodes = data.execute("SELECT * FROM map_nodes").df()
        edges = data.execute("SELECT * FROM map_edges ORDER BY frequency DESC, source, target").df()
        if edges.empty:
            raise MissingTable("The map_edges table has no edges yet.")
        kept = edges[edges.shown].reset_index(drop=True)
        nodes = nodes[nodes.node.isin(set(kept.source) | set(kept.target))]
        nodes = nodes.assign(size=nodes.events.astype(float))
        share = float(edges.hidden_people_share.iloc[0])
        folded = nodes[nodes.kind == "group"].label.tolist()
        note = (
            f"The designed stages and the follow-up steps are always drawn; "
            f"{len(kept)} of {len(edges)} steps shown. Hidden steps touch {share:.1%} of "
            "people."
            + (f" Folded: {', '.join(label(f) for f in folded)}." if folded else "")
            + "<br>Line width and number: how often; colour: median wait; arcs below go back."
        )
        meta = {"hidden": {"edges": len(edges) - len(kept), "people_share": share}}
        return nodes, kept, note, meta
    dfg = query(
        data,
        "dfg",
        "SELECT source_activity::VARCHAR AS source, target_activity::VARCHAR AS target, "
        "frequency, cases, wait_median_s, wait_p90_s FROM {t} "
        "WHERE source_activity IS NOT NULL AND target_activity IS NOT NULL "
        "ORDER BY frequency DESC, source, target",
    )
    if dfg.empty:
        raise MissingTable("The dfg table has no edges yet.")
    outgoing = dfg.groupby("source").frequency.sum()
    incoming = dfg.groupby("target").frequency.sum()
    size = pd.concat([outgoing, incoming], axis=1).fillna(0).max(axis=1)
    ranked = sorted(size.items(), key=lambda kv: (-kv[1], kv[0]))
    keep = {a for a, _ in ranked[:max_activities]}
    kept = dfg[dfg.source.isin(keep) & dfg.target.isin(keep)].head(max_edges)
    shown = sorted(set(kept.source) | set(kept.target))
    nodes = pd.DataFrame(
        {"node": shown, "label": shown, "size": [float(size[a]) for a in shown], "kind": "activity"}
    )
    total_freq = float(dfg.frequency.sum())
    hidden_acts = len(size) - len(shown)
    hidden_edges = len(dfg) - len(kept)
    hidden_share = 1 - float(kept.frequency.sum()) / total_freq if total_freq else 0.0
    note = (
        f"Showing the {len(kept)} most frequent steps between the {len(shown)} most frequent "
        f"activities. Hidden: {hidden_acts} activities, {hidden_edges} steps "
        f"({hidden_share:.1%} of all steps).<br>Line width and number: how often; colour: "
        "median wait; arcs below go back."
    )
    return nodes, kept, note, {"hidden": {"activities": hidden_acts, "edges": hidden_edges}}


@_degrades
def journey_map(data: Data, max_activities: int = 14, max_edges: int = 30) -> go.Figure:
    """The journey map, laid out in layers left to right.

    From the analysis's ``map_nodes`` / ``map_edges`` (``mining.journey_map``: every designed
    stage's and follow-up rule's activity is a node, the rest folded into groups), else the
    ``max_activities`` most frequent activities of ``dfg`` and the ``max_edges`` most frequent
    edges between them. A note says what was hidden. Line width and the number on a line are
    the edge's frequency, colour its median wait; arcs below the nodes go back in the journey.
    """
    nodes, kept, note, meta = _map_frames(data, max_activities, max_edges)
    names = dict(zip(nodes.node, nodes.label, strict=True))
    size = dict(zip(nodes.node, nodes["size"], strict=True))
    incoming = kept.groupby("target").frequency.sum()
    outgoing = kept.groupby("source").frequency.sum()
    shown = sorted(set(kept.source) | set(kept.target))
    layout = layered_layout(
        zip(kept.source, kept.target, kept.frequency.astype(float), strict=True)
    )
    pos = layout.positions

    hours = (kept.wait_median_s.astype(float).fillna(0) / 3600).clip(lower=1 / 60)
    logs = np.log10(hours)
    lo, hi = float(logs.min()), float(logs.max())
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    shade = ((logs - lo) / (hi - lo)).clip(0, 1)
    colours = sample_colorscale(WAIT_SCALE, shade.tolist())
    top = float(kept.frequency.max())

    fig = go.Figure()
    for k, (edge, colour) in enumerate(zip(kept.itertuples(), colours, strict=True)):
        back = (edge.source, edge.target) in layout.back_edges
        xs, ys = _edge_path(pos[edge.source], pos[edge.target], back, k)
        info = [
            label(names.get(edge.source, edge.source)),
            label(names.get(edge.target, edge.target)),
            int(edge.frequency),
            int(edge.cases),
            duration(edge.wait_median_s),
            duration(edge.wait_p90_s),
        ]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines+markers",
                line={"width": 1.5 + 10 * float(edge.frequency) / top, "color": colour},
                marker={
                    "symbol": "arrow",
                    "angleref": "previous",
                    "size": [0] * (len(xs) - 1) + [10 + 8 * float(edge.frequency) / top],
                    "color": colour,
                },
                opacity=0.8,
                showlegend=False,
                customdata=[info] * len(xs),
                hovertemplate="%{customdata[0]} → %{customdata[1]}<br>%{customdata[2]:,} times "
                "· %{customdata[3]:,} people<br>median wait %{customdata[4]} · p90 "
                "%{customdata[5]}<extra></extra>",
            )
        )
    middles = [
        _edge_path(pos[e.source], pos[e.target], (e.source, e.target) in layout.back_edges, k)
        for k, e in enumerate(kept.itertuples())
    ]
    fig.add_trace(
        go.Scatter(
            x=[xs[len(xs) // 2] for xs, _ in middles],
            y=[ys[len(ys) // 2] for _, ys in middles],
            mode="text",
            text=[f"{int(f):,}" for f in kept.frequency],
            textfont={"size": 10, "color": "#333"},
            showlegend=False,
            hoverinfo="skip",
            name="counts",
        )
    )
    order = sorted(shown, key=lambda a: (pos[a][0], -pos[a][1]))
    biggest = max(float(size[a]) for a in order)
    ranks = {a: i for i, a in enumerate(order)}
    fig.add_trace(
        go.Scatter(
            x=[pos[a][0] for a in order],
            y=[pos[a][1] for a in order],
            mode="markers+text",
            text=[wrap(names.get(a, a), 16) for a in order],
            textposition=["top center" if ranks[a] % 2 == 0 else "bottom center" for a in order],
            textfont={"size": 12, "color": "#111"},
            showlegend=False,
            marker={
                "size": [14 + 18 * math.sqrt(float(size[a]) / biggest) for a in order],
                "color": "#264653",
                "line": {"width": 2, "color": "white"},
            },
            customdata=[
                [label(names.get(a, a)), int(incoming.get(a, 0)), int(outgoing.get(a, 0))]
                for a in order
            ],
            hovertemplate="%{customdata[0]}<br>reached %{customdata[1]:,} times from an "
            "activity · followed %{customdata[2]:,} times<extra></extra>",
        )
    )
    # The colour key: an invisible trace that only carries the colour bar.
    ticks = [v for v in (1 / 60, 0.25, 1, 4, 24, 72, 24 * 7, 24 * 30) if lo <= math.log10(v) <= hi]
    fig.add_trace(
        go.Scatter(
            x=[None],
            y=[None],
            mode="markers",
            showlegend=False,
            hoverinfo="skip",
            marker={
                "colorscale": WAIT_SCALE,
                "cmin": lo,
                "cmax": hi,
                "color": [lo],
                "showscale": True,
                "colorbar": {
                    "title": {"text": "median<br>wait", "side": "top"},
                    "tickvals": [math.log10(v) for v in ticks],
                    "ticktext": [duration(v * 3600) for v in ticks],
                    "thickness": 12,
                    "len": 0.6,
                },
            },
        )
    )
    fig.add_annotation(
        text=note,
        xref="paper",
        yref="paper",
        x=0,
        y=0,
        yanchor="top",
        showarrow=False,
        align="left",
        font={"size": 12, "color": "#555"},
    )
    widest = max(layout.width - 1, 0)
    fig.update_xaxes(visible=False, range=[-0.9, widest + 0.9])  # room for whole labels
    ys = [p[1] for p in pos.values()]
    fig.update_yaxes(visible=False, range=[min(ys) - 1.2, max(ys) + 0.8])
    _layout(fig, "", max(520, 200 + 170 * layout.height))  # room for two-line labels
    fig.update_layout(title=None, margin={"t": 20, "b": 60, "l": 30, "r": 30}, hovermode="closest")
    fig.update_layout(meta=meta)
    return fig


# ------------------------------------------------------------------ paths


@_degrades
def paths_sankey(
    data: Data, steps: int = 4, start: str | None = None, max_paths: int = 40
) -> go.Figure:
    """The first ``steps`` steps of every journey (from the first ``start`` activity when
    given), from the ``variants`` table: its ``activities`` list when present, else ``variant``
    split on `` → ``. The ``max_paths`` most frequent beginnings are drawn."""
    cols = columns(data, "variants")
    acts = "activities::VARCHAR[]" if "activities" in cols else "string_split(variant, ' → ')"
    heads = query(
        data,
        "variants",
        f"""
        WITH v AS (SELECT {acts} AS acts, cases FROM {{t}}),
        s AS (
            SELECT CASE WHEN ?::VARCHAR IS NULL THEN acts
                        ELSE acts[list_position(acts, ?::VARCHAR):] END AS acts, cases
            FROM v WHERE ?::VARCHAR IS NULL OR list_contains(acts, ?::VARCHAR)
        )
        SELECT head, ends, sum(cases)::BIGINT AS cases FROM (
            SELECT acts[1:{int(steps)}] AS head, len(acts) <= {int(steps)} AS ends, cases FROM s
        ) GROUP BY ALL ORDER BY cases DESC, head
        """,
        [start, start, start, start],
    )
    if heads.empty:
        raise MissingTable(
            "The variants table has no journeys yet"
            + (f" that pass through {start}." if start else ".")
        )
    total = int(heads.cases.sum())
    drawn = heads.head(max_paths)
    end = "(journey ends)"
    rows = [
        ([str(a) for a in head] + ([end] if ends and len(head) < steps else []), int(cases))
        for head, ends, cases in zip(drawn["head"], drawn.ends, drawn.cases, strict=True)
    ]
    shown = int(drawn.cases.sum())
    note = f"{shown:,} of {total:,} journeys ({shown / total:.0%}); the rest begin differently."
    return _sankey(rows, note)


def _sankey(rows: list[tuple[list[str], int]], note: str) -> go.Figure:
    """A Sankey of paths (steps, people), step k of every path in column k."""
    nodes: dict[tuple[int, str], int] = {}
    links: dict[tuple[int, int], int] = defaultdict(int)
    ends = ("(journey ends)", "(end)")
    for path, people in rows:
        for k in range(len(path) - 1):
            a = nodes.setdefault((k, path[k]), len(nodes))
            b = nodes.setdefault((k + 1, path[k + 1]), len(nodes))
            links[(a, b)] += people
        if len(path) == 1:
            nodes.setdefault((0, path[0]), len(nodes))
    names = [name if name in ends else f"{k + 1}. {label(name)}" for (k, name) in nodes]
    node_colours = ["#b8c4cc" if name in ends else "#264653" for (_, name) in nodes]
    fig = go.Figure(
        go.Sankey(
            arrangement="snap",
            node={
                "label": names,
                "pad": 14,
                "thickness": 16,
                "color": node_colours,
                "hovertemplate": "%{label}: %{value:,} people<extra></extra>",
            },
            link={
                "source": [a for a, _ in links],
                "target": [b for _, b in links],
                "value": list(links.values()),
                "color": "rgba(42,157,143,0.35)",
                "hovertemplate": "%{source.label} → %{target.label}: %{value:,} people"
                "<extra></extra>",
            },
            textfont={"size": 12, "color": "#111"},
        )
    )
    fig.add_annotation(
        text=note,
        xref="paper",
        yref="paper",
        x=0,
        y=-0.04,
        yanchor="top",
        showarrow=False,
        font={"size": 12, "color": "#555"},
    )
    _layout(fig, "", 520)
    fig.update_layout(title=None, margin={"t": 20, "b": 50, "l": 20, "r": 20})
    return fig


@_degrades
def dropout_sankey(con: duckdb.DuckDBPyConnection) -> go.Figure:
    """What the people who dropped out of the stage with the most drop-offs did next: the
    ``paths`` rows (analyses.paths, direction ``dropped``) of that stage."""
    columns(con, "paths")
    worst = con.execute(
        "SELECT stage, dropped FROM stage_funnel WHERE segment = 'all' AND stage IN "
        "(SELECT anchor FROM paths WHERE direction = 'dropped') ORDER BY dropped DESC LIMIT 1"
    ).fetchall()
    if not worst:
        raise MissingTable("No stage has people who dropped out yet.")
    stage, dropped = worst[0]
    frame = con.execute(
        "SELECT path, people FROM paths WHERE anchor = ? AND direction = 'dropped' "
        "ORDER BY people DESC",
        [stage],
    ).df()
    rows = [(str(p).split(" → "), int(n)) for p, n in zip(frame.path, frame.people, strict=True)]
    shown = int(frame.people.sum())
    note = (
        f"{int(dropped):,} people dropped out of {label(stage)}; the {len(rows)} most frequent "
        f"paths after entering it cover {shown:,} of them (repeats collapsed)."
    )
    return _sankey(rows, note)


# ------------------------------------------------------------------ journey grid


def _names(values: object, limit: int = 2) -> str:
    items = [str(v) for v in (values if isinstance(values, list | tuple | np.ndarray) else [])]
    more = f" +{len(items) - limit}" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


@_degrades
def journey_grid(con: duckdb.DuckDBPyConnection) -> go.Figure:
    """The journey map as the practice draws it, from ``journey_grid``: designed stages as
    columns (with their drop-off), channels as rows; each cell the people touched there and
    its main customer and company touchpoints; hover for owners and follow-up waits."""
    grid = query(con, "journey_grid", "SELECT * FROM {t} ORDER BY position, channel")
    if grid.empty or grid.people.sum() == 0:
        raise MissingTable("The journey_grid table has no touchpoints yet.")
    stages = grid.drop_duplicates("position").sort_values("position")
    columns_ = [
        wrap(f"{s} ({'–' if pd.isna(d) else f'{d:.0%} drop'})", 18)
        for s, d in zip(stages.stage, stages.stage_drop_off_rate, strict=True)
    ]
    channels = [
        c for c in grid.channel.drop_duplicates() if grid[grid.channel == c].people.sum() > 0
    ]
    z, text, hover = [], [], []
    for channel in channels:
        row_z, row_t, row_h = [], [], []
        for pos in stages.position:
            cell = grid[(grid.channel == channel) & (grid.position == pos)]
            c = cell.iloc[0] if len(cell) else None
            people = int(c.people) if c is not None else 0
            row_z.append(people if people else None)
            row_t.append(
                f"<b>{people:,}</b><br>{short(_names(c.customer_activities, 1), 22)}"
                f"<br><i>{short(_names(c.company_activities, 1), 22)}</i>"
                if people and c is not None
                else ""
            )
            waits = (
                ", ".join(
                    f"{label(r)} {duration(w)}"
                    for r, w in zip(c.followup_rules, c.followup_median_wait_s, strict=False)
                )
                if c is not None and len(c.followup_rules)
                else "–"
            )
            row_h.append(
                [
                    int(c.events) if c is not None else 0,
                    label(_names(c.owners, 3)) if c is not None else "–",
                    label(_names(c.customer_activities, 6)) if c is not None else "–",
                    label(_names(c.company_activities, 6)) if c is not None else "–",
                    waits,
                ]
            )
        z.append(row_z)
        text.append(row_t)
        hover.append(row_h)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=columns_,
            y=[label(c) for c in channels],
            text=text,
            texttemplate="%{text}",
            textfont={"size": 10},
            customdata=hover,
            colorscale=[[0, "#eef6f5"], [1, "#2a9d8f"]],
            showscale=False,
            xgap=3,
            ygap=3,
            hovertemplate="%{y} · %{x}<br>%{z:,} people, %{customdata[0]:,} touchpoints"
            "<br>customer: %{customdata[2]}<br>company: %{customdata[3]}"
            "<br>owners: %{customdata[1]}<br>follow-ups (median wait): %{customdata[4]}"
            "<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(side="top")
    _layout(fig, "", 120 + 95 * len(channels))
    fig.update_layout(title=None, margin={"t": 70, "l": 90, "r": 20, "b": 20})
    return fig


# ------------------------------------------------------------------ tables


def table(
    frame: pd.DataFrame, title: str = "", formats: Mapping[str, str] | None = None
) -> go.Figure:
    """A readable table of a small frame (strings labelled, numbers formatted): columns as wide
    as their text needs, rows as tall as their longest wrapped cell, so nothing is cut."""
    formats = formats or {}
    cells: list[list[str]] = []
    for column in frame.columns:
        fmt = formats.get(str(column))
        values: Iterable[object] = frame[column]
        if fmt:
            cells.append(["–" if pd.isna(v) else format(v, fmt) for v in values])
        else:
            cells.append(["–" if v is None else label(v) for v in values])
    needs = [
        min(max([len(str(c))] + [len(v) for v in col]), 70)
        for c, col in zip(frame.columns, cells, strict=True)
    ]
    widths = [max(n, 10) for n in needs]
    page_chars = 150  # about what a line of the page holds at this font size
    per_line = [max(w * page_chars / sum(widths), 4) for w in widths]
    lines = [
        max(math.ceil(len(col[r]) / n) for col, n in zip(cells, per_line, strict=True))
        for r in range(len(frame))
    ]
    fig = go.Figure(
        go.Table(
            columnwidth=widths,
            header={
                "values": [f"<b>{label(c)}</b>" for c in frame.columns],
                "fill_color": "#264653",
                "font": {"color": "white", "size": 13},
                "align": "left",
                "height": 30,
            },
            cells={
                "values": cells,
                "align": "left",
                "fill_color": [["#ffffff", "#f3f5f6"] * (len(frame) // 2 + 1)],
                "font": {"size": 13},
                "height": 28,
            },
        )
    )
    _layout(fig, title, 80 + 30 + sum(8 + 20 * n for n in lines) + (40 if title else 0))
    fig.update_layout(margin={"t": 50 if title else 10, "b": 10, "l": 10, "r": 10})
    return fig


@_degrades
def variants_table(data: Data, top: int = 15) -> go.Figure:
    """The ``top`` most frequent variants: the sequence, people, share, median duration."""
    frame = query(
        data,
        "variants",
        "SELECT variant, cases, share, median_duration_s FROM {t} "
        "ORDER BY cases DESC, variant LIMIT ?",
        [int(top)],
    )
    if frame.empty:
        raise MissingTable("The variants table has no journeys yet.")
    shown = pd.DataFrame(
        {
            "journey (activities in order)": frame.variant,
            "people": frame.cases,
            "share": frame.share,
            "median duration": [duration(s) for s in frame.median_duration_s],
        }
    )
    fig = table(shown, "", {"people": ",", "share": ".1%"})
    fig.update_traces(columnwidth=[7, 1, 1, 1.4])
    rows = sum(1 + len(str(v)) // 110 for v in frame.variant)
    fig.update_layout(height=60 + 30 * (rows + 1))
    return fig
