"""What every dashboard figure shares: colours, the font, escaping and masking of data strings,
readable waits, the common figure styling and the "nothing to draw" placeholder (tables are
in :mod:`journeymine.dashboard.tables`).

Every string that came from the data goes through :func:`label` (email addresses masked, HTML
special characters escaped: Plotly renders a subset of HTML in labels and hovers) and is passed
as data (``customdata``/``text``), never pasted into a hover template.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from journeymine.privacy import label, scrub

STATUS_COLOURS = {
    "converted": "#2a9d8f",
    "dropped": "#e76f51",
    "open": "#b8c4cc",
    "excluded": "#e9c46a",
    "final": "#264653",
}
STATUS_NAMES = {"final": "reached the last stage"}
SEGMENT_COLOURS = ["#264653", "#e76f51", "#2a9d8f", "#8d6cab", "#e9c46a", "#6c757d"]
# One line per stage: a journey has more stages than there are segment colours.
STAGE_COLOURS = [*SEGMENT_COLOURS, "#f4a261", "#457b9d", "#9b2226", "#90be6d"]
WAIT_SCALE = [[0.0, "#2a9d8f"], [0.5, "#e9c46a"], [1.0, "#d62828"]]
FONT = {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 13, "color": "#222"}
# Tick marks of the log-scaled wait axes (hours), labelled with duration().
WAIT_TICKS_H = [1 / 60, 0.25, 1, 4, 8, 24, 48, 24 * 7, 24 * 30]


def short(value: object, limit: int = 34) -> str:
    """:func:`label` of a long name cut to ``limit`` characters (the hover shows it whole)."""
    text = scrub(str(value))
    return label(text if len(text) <= limit else text[: limit - 1] + "…")


def wrap(value: object, width: int = 22) -> str:
    """:func:`label` of a name broken into lines of about ``width`` characters, never cut."""
    words = re.split(r"(?<=[ ._:/-])", scrub(str(value)))
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


def style(fig: go.Figure, title: str, height: int = 420) -> go.Figure:
    """The house style: font, white plot, light grid, legend below, the segment colours."""
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
