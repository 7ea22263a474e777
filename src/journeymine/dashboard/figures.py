"""Dashboard figures: each function takes an open warehouse and returns a Plotly figure.

Everything is aggregated in DuckDB first, so a 10M-event warehouse still makes a small figure.
Strings that came from the data are passed through :func:`label` (HTML-escaped, emails hidden)
before they reach a figure, because Plotly renders a subset of HTML in labels.
"""

from __future__ import annotations

import html
import re
from collections import defaultdict

import duckdb
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from journeymine.summary import headline_figures
from journeymine.warehouse import table_exists

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
STATUS_COLOURS = {
    "converted": "#2a9d8f",
    "dropped": "#e76f51",
    "open": "#b8c4cc",
    "excluded": "#e9c46a",
    "final": "#264653",
}
FONT = {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 13}


def label(value: object) -> str:
    """A data string made safe for a figure: emails hidden, HTML special characters escaped."""
    return html.escape(EMAIL.sub("[email hidden]", str(value)), quote=False)


def _layout(fig: go.Figure, title: str, height: int = 420) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.01},
        height=height,
        font=FONT,
        margin={"l": 60, "r": 30, "t": 60, "b": 50},
        plot_bgcolor="white",
        legend={"orientation": "h", "y": -0.15},
    )
    fig.update_xaxes(gridcolor="#eee")
    fig.update_yaxes(gridcolor="#eee")
    return fig


def _hours(seconds: float) -> str:
    if seconds is None or pd.isna(seconds):
        return "–"
    return f"{seconds / 3600:.1f} h" if seconds < 2 * 86400 else f"{seconds / 86400:.1f} d"


def kpi_header(con: duckdb.DuckDBPyConnection) -> go.Figure:
    """Headline numbers with their change since the previous run."""
    now = headline_figures(con)
    previous: dict[str, float] = {}
    if table_exists(con, "run_history"):
        row = con.execute(
            "SELECT figures FROM run_history ORDER BY finished_at DESC LIMIT 1"
        ).fetchall()
        previous = (
            pd.read_json(pd.io.common.StringIO(row[0][0]), typ="series").to_dict() if row else {}
        )
    if table_exists(con, "stage_funnel"):
        rows = con.execute(
            "SELECT first(entered ORDER BY position), last(entered ORDER BY position) "
            "FROM stage_funnel WHERE segment = 'all'"
        ).fetchall()
        if rows and rows[0][0]:
            now["reached the last stage"] = rows[0][1] / rows[0][0]
    shown = [
        ("persons", ",.0f"),
        ("journeys started", ",.0f"),
        ("reached the last stage", ".1%"),
        ("median follow-up latency (h)", ",.1f"),
        ("SLA breach rate", ".1%"),
    ]
    fig = go.Figure()
    items = [(name, fmt) for name, fmt in shown if name in now]
    for i, (name, fmt) in enumerate(items):
        delta = {"reference": previous[name], "valueformat": fmt} if name in previous else None
        fig.add_trace(
            go.Indicator(
                mode="number+delta" if delta else "number",
                value=now[name],
                delta=delta,
                number={"valueformat": fmt},
                title={"text": name, "font": {"size": 13}},
                domain={"row": 0, "column": i},
            )
        )
    fig.update_layout(
        grid={"rows": 1, "columns": max(len(items), 1)},
        height=170,
        font=FONT,
        margin={"l": 20, "r": 20, "t": 30, "b": 10},
    )
    return fig


def stage_funnel(con: duckdb.DuckDBPyConnection) -> go.Figure:
    """Entered stages split into converted / dropped / open, overall."""
    frame = con.execute(
        "SELECT stage, converted, dropped, open, excluded, "
        "entered - converted - dropped - open - excluded AS final "
        "FROM stage_funnel WHERE segment = 'all' ORDER BY position"
    ).df()
    names = {"final": "reached the last stage"}
    stages = [label(s) for s in frame.stage]
    fig = go.Figure()
    for status, colour in STATUS_COLOURS.items():
        if status != "converted" and not frame[status].any():
            continue  # no empty legend entries (e.g. no exclusion steps in the spec)
        fig.add_trace(
            go.Bar(
                y=stages,
                x=frame[status],
                name=names.get(status, status),
                orientation="h",
                marker_color=colour,
                hovertemplate="%{y}: %{x:,} " + names.get(status, status) + "<extra></extra>",
            )
        )
    fig.update_layout(barmode="stack", yaxis={"autorange": "reversed"})
    fig.update_xaxes(title="people who entered the stage")
    return _layout(fig, "Who enters each stage, and what happens next", 380)


def conversion_by_segment(
    con: duckdb.DuckDBPyConnection, attribute: str | None = None
) -> go.Figure:
    """Conversion rate to the next stage per segment value, with 95% Wilson intervals.

    People without a value for the attribute are left out: they are mostly people who never
    got far enough to tell us (the value comes with signing up), which would read as a drop.
    """
    where = (
        "segment <> 'all'"
        if attribute is None
        else f"segment LIKE '{attribute.replace(chr(39), '')}=%'"
    )
    frame = con.execute(
        "SELECT segment, stage, position, conversion_rate, conversion_ci_low, "
        "conversion_ci_high, converted + dropped AS decided FROM stage_funnel "
        f"WHERE {where} AND conversion_rate IS NOT NULL AND segment NOT LIKE '%=(none)' "
        f"AND converted + dropped >= 20 ORDER BY position, segment"
    ).df()
    fig = go.Figure()
    for segment, part in frame.groupby("segment", sort=True):
        fig.add_trace(
            go.Bar(
                x=[label(s) for s in part.stage],
                y=part.conversion_rate,
                name=label(segment),
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": part.conversion_ci_high - part.conversion_rate,
                    "arrayminus": part.conversion_rate - part.conversion_ci_low,
                },
                customdata=part.decided,
                hovertemplate="%{x}<br>%{y:.1%} of %{customdata:,} decided"
                "<extra>" + label(segment) + "</extra>",
            )
        )
    attributes = sorted({seg.split("=", 1)[0] for seg in frame.segment.unique()})
    if len(attributes) > 1:  # an in-page filter: one attribute at a time, no server needed
        keys = [seg.split("=", 1)[0] for seg, _ in frame.groupby("segment", sort=True)]
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
                    "y": 1.16,
                }
            ]
        )
    fig.update_yaxes(tickformat=".0%", title="converted to the next stage", range=[0, 1])
    fig.update_layout(barmode="group")
    return _layout(fig, "Conversion to the next stage by segment (95% intervals)", 440)


def followup_latency(con: duckdb.DuckDBPyConnection) -> go.Figure:
    """Median and p90 follow-up latency per rule and owner, with each rule's SLA."""
    frame = con.execute(
        """
        SELECT rule, coalesce(owner_name, owner, '(none)') AS owner, count(*) AS triggers,
               median(latency_s) AS median_s, quantile_cont(latency_s, 0.9) AS p90_s,
               avg(sla_breached::INT) FILTER (WHERE status <> 'open') AS breach_rate,
               max(sla_s) AS sla_s
        FROM followups WHERE status = 'answered' OR status = 'unanswered'
        GROUP BY ALL HAVING count(*) >= 5 ORDER BY rule, median_s
        """
    ).df()
    fig = go.Figure()
    names = [f"{label(r)} · {label(o)}" for r, o in zip(frame.rule, frame.owner, strict=True)]
    fig.add_trace(
        go.Bar(
            y=names,
            x=frame.median_s / 3600,
            orientation="h",
            name="median",
            marker_color="#264653",
            customdata=np.stack([frame.triggers, frame.breach_rate.fillna(0)], axis=1),
            hovertemplate="%{y}<br>median %{x:.1f} h · %{customdata[0]:,} triggers · "
            "%{customdata[1]:.0%} breached SLA<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            y=names,
            x=frame.p90_s / 3600,
            mode="markers",
            name="p90",
            marker={"symbol": "line-ns-open", "size": 16, "color": "#e76f51"},
            hovertemplate="%{y}<br>p90 %{x:.1f} h<extra></extra>",
        )
    )
    for rule, part in frame.groupby("rule"):
        fig.add_vline(
            x=part.sla_s.iloc[0] / 3600,
            line_dash="dash",
            line_color="#999",
            annotation_text=f"SLA {label(rule)}",
            annotation_position="top",
        )
    fig.update_xaxes(title="hours from the customer's action to the company's response")
    fig.update_layout(yaxis={"autorange": "reversed"})
    return _layout(fig, "How long customers wait for us, by rule and owner", 120 + 32 * len(frame))


def cost_of_waiting(frame: pd.DataFrame, target: str) -> go.Figure:
    """Conversion by follow-up latency bucket (a frame from analyses.followups.cost_of_waiting)."""
    fig = go.Figure(
        go.Bar(
            x=frame.bucket,
            y=frame.conversion_rate,
            marker_color="#2a9d8f",
            customdata=frame.people,
            error_y={
                "type": "data",
                "symmetric": False,
                "array": frame.ci_high - frame.conversion_rate,
                "arrayminus": frame.conversion_rate - frame.ci_low,
            },
            hovertemplate="waited %{x}: %{y:.1%} of %{customdata:,} people<extra></extra>",
        )
    )
    fig.update_yaxes(tickformat=".0%", range=[0, 1], title=f"reached {label(target)}")
    fig.update_xaxes(title="time to the first follow-up")
    return _layout(fig, "What waiting costs: conversion by follow-up latency (95% intervals)", 380)


def _layers(con: duckdb.DuckDBPyConnection, activities: list[str]) -> dict[str, int]:
    """Left-to-right layers: activities ordered by the median step at which people first do
    them (a robust order even with loops), ties sharing a layer."""
    rows = con.execute(
        """
        WITH ranked AS (
            SELECT case_key, activity::VARCHAR AS activity,
                   row_number() OVER (PARTITION BY case_key ORDER BY ts, seq) AS step
            FROM event_log
        ), firsts AS (SELECT case_key, activity, min(step) AS step FROM ranked GROUP BY ALL)
        SELECT activity, round(median(step)) AS step FROM firsts GROUP BY 1
        """
    ).fetchall()
    steps = {a: s for a, s in rows if a in activities}
    order = sorted(set(steps.values()))
    return {a: order.index(s) for a, s in steps.items()}


def journey_map(
    con: duckdb.DuckDBPyConnection, max_activities: int = 14, max_edges: int = 30
) -> go.Figure:
    """The simplified directly-follows map: width = frequency, colour = median wait."""
    from journeymine.mining.discovery import simplify_dfg

    kept, hidden = simplify_dfg(
        con, "event_log", max_activities=max_activities, max_edges=max_edges
    )
    shown = sorted(set(kept.source_activity) | set(kept.target_activity))
    layer = _layers(con, shown)
    by_layer: dict[int, list[str]] = defaultdict(list)
    for activity, k in sorted(layer.items(), key=lambda x: (x[1], x[0])):
        by_layer[k].append(activity)
    pos = {
        a: (k, i - (len(acts) - 1) / 2) for k, acts in by_layer.items() for i, a in enumerate(acts)
    }
    fig = go.Figure()
    top = kept.frequency.max() if len(kept) else 1
    waits = np.log1p(kept.wait_median_s.fillna(0))
    span = (waits.max() - waits.min()) or 1.0
    for e, w in zip(kept.itertuples(), waits, strict=True):
        (x0, y0), (x1, y1) = pos[e.source_activity], pos[e.target_activity]
        bend = 0.25 if x1 <= x0 else 0.0  # back and self edges curve so they stay visible
        xs, ys = [x0, (x0 + x1) / 2, x1], [y0, (y0 + y1) / 2 + bend + (0.3 if x0 == x1 else 0), y1]
        shade = (w - waits.min()) / span
        colour = f"rgb({int(40 + 190 * shade)},{int(150 - 60 * shade)},{int(140 - 90 * shade)})"
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                line={"width": 1 + 9 * e.frequency / top, "color": colour, "shape": "spline"},
                opacity=0.75,
                showlegend=False,
                hovertemplate=(
                    f"{label(e.source_activity)} → {label(e.target_activity)}<br>"
                    f"{e.frequency:,} times, {e.cases:,} people<br>median wait "
                    f"{_hours(e.wait_median_s)}, p90 {_hours(e.wait_p90_s)}<extra></extra>"
                ),
            )
        )
    counts = dict(
        con.execute("SELECT activity::VARCHAR, count(*) FROM event_log GROUP BY 1").fetchall()
    )
    fig.add_trace(
        go.Scatter(
            x=[p[0] for p in pos.values()],
            y=[p[1] for p in pos.values()],
            mode="markers+text",
            text=[label(a) for a in pos],
            textposition="top center",
            showlegend=False,
            marker={"size": 14, "color": "#264653"},
            customdata=[counts.get(a, 0) for a in pos],
            hovertemplate="%{text}: %{customdata:,} events<extra></extra>",
        )
    )
    widest = max((p[0] for p in pos.values()), default=0)
    fig.update_xaxes(visible=False, range=[-0.8, widest + 0.8])
    fig.update_yaxes(visible=False)
    note = (
        f"Showing {len(kept)} most frequent paths between the {len(pos)} most frequent activities. "
        f"Hidden: {hidden['activities']} activities, {hidden['edges']} paths, "
        f"{hidden['events_share']:.1%} of events; {hidden['cases_share']:.1%} of people pass "
        "through something hidden.<br>Line width: how often; colour: median wait "
        "(green short, red long)."
    )
    fig.add_annotation(
        text=note,
        xref="paper",
        yref="paper",
        x=0,
        y=-0.08,
        showarrow=False,
        align="left",
        font={"size": 12, "color": "#555"},
    )
    return _layout(fig, "The journey map: what people actually do next", 560)


def paths_sankey(
    con: duckdb.DuckDBPyConnection, steps: int = 4, top_variants: int = 200
) -> go.Figure:
    """The first ``steps`` steps of journeys, from the most frequent variants."""
    frame = con.execute(
        f"SELECT activities[1:{steps}] AS head, sum(cases) AS cases FROM "
        f"(SELECT * FROM variants ORDER BY cases DESC LIMIT {top_variants}) GROUP BY 1"
    ).df()
    nodes: dict[tuple[int, str], int] = {}
    links: dict[tuple[int, int], int] = defaultdict(int)
    for head, cases in zip(frame["head"], frame.cases, strict=True):
        for k in range(len(head) - 1):
            a = nodes.setdefault((k, head[k]), len(nodes))
            b = nodes.setdefault((k + 1, head[k + 1]), len(nodes))
            links[(a, b)] += int(cases)
    names = [f"{k + 1}. {label(a)}" for (k, a) in nodes]
    fig = go.Figure(
        go.Sankey(
            node={"label": names, "pad": 12, "color": "#264653"},
            link={
                "source": [a for a, _ in links],
                "target": [b for _, b in links],
                "value": list(links.values()),
                "color": "rgba(42,157,143,0.35)",
            },
        )
    )
    return _layout(fig, f"The first {steps} steps people take", 520)


def table(frame: pd.DataFrame, title: str, formats: dict[str, str] | None = None) -> go.Figure:
    """A readable table of a small frame (strings labelled, numbers formatted)."""
    formats = formats or {}
    cells = []
    for column in frame.columns:
        values = frame[column]
        fmt = formats.get(column)
        if fmt:
            cells.append([("–" if pd.isna(v) else format(v, fmt)) for v in values])
        else:
            cells.append([label(v) for v in values])
    fig = go.Figure(
        go.Table(
            header={
                "values": [label(c) for c in frame.columns],
                "fill_color": "#264653",
                "font": {"color": "white"},
                "align": "left",
            },
            cells={"values": cells, "align": "left", "fill_color": "#f7f7f7"},
        )
    )
    return _layout(fig, title, 80 + 28 * (len(frame) + 1))
