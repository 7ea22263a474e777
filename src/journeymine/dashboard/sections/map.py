"""The journey map: what people actually do next, laid out in layers left to right
(``dashboard.layout``), from the analysis's ``map_nodes`` / ``map_edges`` or from ``dfg``."""

from __future__ import annotations

import math
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from journeymine.dashboard.layout import GraphLayout, layered_layout
from journeymine.dashboard.reading import Data, MissingTable, degrades, exists, query
from journeymine.dashboard.style import WAIT_SCALE, duration, label, style, wrap

Point = tuple[float, float]
Path = tuple[list[float], list[float]]  # the x and y of a drawn edge

# The map's drawing area on the dashboard page, in pixels (the page's 1,180 px column less its
# paddings, the figure's margins and the colour bar), and the average width of a character of
# the 12 px label font: the labels are wrapped to fit the room between the layers.
DRAWN_WIDTH_PX = 900
CHAR_PX = 7.0
NOTE_CHARS = 125  # a line of the note under the map (plotly does not wrap an annotation)
X_PAD = 0.9  # room left of the first layer and right of the last, in layers
UNIT_PX = 150  # the height of one step between two nodes of a layer
LABEL_ROOM = 0.45  # a label of three lines and its node's marker, in steps


def label_chars(layers: int) -> int:
    """Characters per line of a node's label. Labels of neighbouring layers sit on opposite
    sides of their nodes (:func:`label_above`), so a label may take two layers' room, less a gap;
    8 to 18 characters."""
    per_layer = DRAWN_WIDTH_PX / (max(layers - 1, 0) + 2 * X_PAD)
    return int(min(18, max(8, (2 * per_layer - 12) // CHAR_PX)))


def label_above(layer: int) -> bool:
    """A node's label goes above it on even layers, below on odd ones: two level nodes of
    neighbouring layers never put their labels on the same side."""
    return layer % 2 == 0


def _bezier(start: Point, control: Point, end: Point, stop: float) -> Path:
    ts = np.linspace(0.0, stop, 14)
    xs = (1 - ts) ** 2 * start[0] + 2 * (1 - ts) * ts * control[0] + ts**2 * end[0]
    ys = (1 - ts) ** 2 * start[1] + 2 * (1 - ts) * ts * control[1] + ts**2 * end[1]
    return xs.round(4).tolist(), ys.round(4).tolist()


def _edge_path(a: Point, b: Point, back: bool, k: int) -> Path:
    if a == b:  # a self-loop: a small teardrop on the side away from the node's label
        side = -1 if label_above(round(a[0])) else 1
        angles = np.linspace(-0.35 * math.pi, 1.35 * math.pi, 16)
        xs = a[0] + 0.16 * np.cos(angles + math.pi / 2) * 1.2
        ys = a[1] + side * (0.22 + 0.2 * np.sin(angles + math.pi / 2))
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


MapFrames = tuple[pd.DataFrame, pd.DataFrame, list[str], dict[str, Any]]  # note: its sentences
KEY = "Line width and number: how often; colour: median wait; arcs below go back."


def _analysed_map(con: duckdb.DuckDBPyConnection) -> MapFrames:
    """The analysis's map: the designed stages and follow-up steps always drawn."""
    nodes = con.execute("SELECT * FROM map_nodes").df()
    edges = con.execute("SELECT * FROM map_edges ORDER BY frequency DESC, source, target").df()
    if edges.empty:
        raise MissingTable("The map_edges table has no edges yet.")
    kept = edges[edges.shown].reset_index(drop=True)
    nodes = nodes[nodes.node.isin(set(kept.source) | set(kept.target))]
    nodes = nodes.assign(size=nodes.events.astype(float))
    share = float(edges.hidden_people_share.iloc[0])
    folded = nodes[nodes.kind == "group"].label.tolist()
    note = [
        f"The designed stages and the follow-up steps are always drawn; {len(kept)} of "
        f"{len(edges)} steps shown. Hidden steps touch {share:.1%} of people.",
        *([f"Folded: {', '.join(map(str, folded))}."] if folded else []),
        KEY,
    ]
    meta = {"hidden": {"edges": len(edges) - len(kept), "people_share": share}}
    return nodes, kept, note, meta


def _dfg_map(data: Data, max_activities: int, max_edges: int) -> MapFrames:
    """The most frequent activities of ``dfg`` and the most frequent edges between them."""
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
    note = [
        f"Showing the {len(kept)} most frequent steps between the {len(shown)} most frequent "
        f"activities. Hidden: {hidden_acts} activities, {hidden_edges} steps "
        f"({hidden_share:.1%} of all steps).",
        KEY,
    ]
    return nodes, kept, note, {"hidden": {"activities": hidden_acts, "edges": hidden_edges}}


def _map_frames(data: Data, max_activities: int, max_edges: int) -> MapFrames:
    """(nodes: node, label, size, kind; shown edges; the note's sentences; meta) — from the
    analysis's ``map_nodes`` / ``map_edges`` (the designed stages always drawn), else from
    ``dfg``."""
    if isinstance(data, duckdb.DuckDBPyConnection) and exists(data, "map_edges"):
        return _analysed_map(data)
    return _dfg_map(data, max_activities, max_edges)


def _wait_shades(kept: pd.DataFrame) -> tuple[list[str], float, float]:
    """Each edge's colour for its median wait (log hours), and the scale's ends."""
    hours = (kept.wait_median_s.astype(float).fillna(0) / 3600).clip(lower=1 / 60)
    logs = np.log10(hours)
    lo, hi = float(logs.min()), float(logs.max())
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    shade = ((logs - lo) / (hi - lo)).clip(0, 1)
    return sample_colorscale(WAIT_SCALE, shade.tolist()), lo, hi


def _edge_traces(
    fig: go.Figure, kept: pd.DataFrame, names: dict[str, str], layout: GraphLayout
) -> tuple[float, float]:
    """One curved arrow per edge, width by frequency; returns the colour scale's ends."""
    colours, lo, hi = _wait_shades(kept)
    top = float(kept.frequency.max())
    pos = layout.positions
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
    return lo, hi


def _count_trace(kept: pd.DataFrame, layout: GraphLayout) -> go.Scatter:
    """The frequency written at the middle of each edge."""
    pos = layout.positions
    middles = [
        _edge_path(pos[e.source], pos[e.target], (e.source, e.target) in layout.back_edges, k)
        for k, e in enumerate(kept.itertuples())
    ]
    return go.Scatter(
        x=[xs[len(xs) // 2] for xs, _ in middles],
        y=[ys[len(ys) // 2] for _, ys in middles],
        mode="text",
        text=[f"{int(f):,}" for f in kept.frequency],
        textfont={"size": 10, "color": "#333"},
        showlegend=False,
        hoverinfo="skip",
        name="counts",
    )


def _node_trace(nodes: pd.DataFrame, kept: pd.DataFrame, layout: GraphLayout) -> go.Scatter:
    """The activities, sized by how often they occur; labels above or below by layer
    (:func:`label_above`), wrapped to the room between layers (:func:`label_chars`)."""
    names = dict(zip(nodes.node, nodes.label, strict=True))
    size = dict(zip(nodes.node, nodes["size"], strict=True))
    incoming = kept.groupby("target").frequency.sum()
    outgoing = kept.groupby("source").frequency.sum()
    pos, layer = layout.positions, layout.layers
    order = sorted(set(kept.source) | set(kept.target), key=lambda a: (pos[a][0], -pos[a][1]))
    biggest = max(float(size[a]) for a in order)
    chars = label_chars(layout.width)
    return go.Scatter(
        x=[pos[a][0] for a in order],
        y=[pos[a][1] for a in order],
        mode="markers+text",
        text=[wrap(names.get(a, a), chars) for a in order],
        textposition=["top center" if label_above(layer[a]) else "bottom center" for a in order],
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


def _colour_key(lo: float, hi: float) -> go.Scatter:
    """The colour key: an invisible trace that only carries the colour bar."""
    ticks = [v for v in (1 / 60, 0.25, 1, 4, 24, 72, 24 * 7, 24 * 30) if lo <= math.log10(v) <= hi]
    return go.Scatter(
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


@degrades
def journey_map(data: Data, max_activities: int = 14, max_edges: int = 30) -> go.Figure:
    """The journey map, laid out in layers left to right.

    From the analysis's ``map_nodes`` / ``map_edges`` (``mining.journey_map``: every designed
    stage's and follow-up rule's activity is a node, the rest folded into groups), else the
    ``max_activities`` most frequent activities of ``dfg`` and the ``max_edges`` most frequent
    edges between them. A note says what was hidden. Line width and the number on a line are
    the edge's frequency, colour its median wait; arcs below the nodes go back in the journey.
    """
    nodes, kept, note, meta = _map_frames(data, max_activities, max_edges)
    layout = layered_layout(
        zip(kept.source, kept.target, kept.frequency.astype(float), strict=True)
    )
    pos = layout.positions
    fig = go.Figure()
    lo, hi = _edge_traces(fig, kept, dict(zip(nodes.node, nodes.label, strict=True)), layout)
    fig.add_trace(_count_trace(kept, layout))
    fig.add_trace(_node_trace(nodes, kept, layout))
    fig.add_trace(_colour_key(lo, hi))
    text = "<br>".join(wrap(sentence, NOTE_CHARS) for sentence in note)  # escaped once, here
    fig.add_annotation(
        text=text,
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
    fig.update_xaxes(visible=False, range=[-X_PAD, widest + X_PAD])  # room for whole labels
    # As high as what is drawn (nodes with their labels, arcs, loops), at UNIT_PX a layer's
    # step, and the note below it.
    ys = [p[1] for p in pos.values()]
    drawn = [y for t in fig.data if t.mode == "lines+markers" for y in t.y]
    low = min([*drawn, *(y - LABEL_ROOM for y in ys)])
    high = max([*drawn, *(y + LABEL_ROOM for y in ys)])
    fig.update_yaxes(visible=False, range=[low, high])
    bottom = 24 + 16 * (text.count("<br>") + 1)
    style(fig, "", max(320, round(20 + bottom + UNIT_PX * (high - low))))
    fig.update_layout(
        title=None, margin={"t": 20, "b": bottom, "l": 30, "r": 30}, hovermode="closest"
    )
    fig.update_layout(meta=meta)
    return fig
