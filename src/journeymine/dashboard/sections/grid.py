"""The journey as the practice draws it: designed stages by channel, from ``journey_grid``."""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from journeymine.dashboard.reading import MissingTable, degrades, query
from journeymine.dashboard.style import duration, label, short, style, wrap


def _names(values: object, limit: int = 2) -> str:
    items = [str(v) for v in (values if isinstance(values, list | tuple | np.ndarray) else [])]
    more = f" +{len(items) - limit}" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _cell(c: Any) -> tuple[int | None, str, list[Any]]:
    """One cell (a ``journey_grid`` row, or None where nobody was touched): people, the text
    written in it and its hover details."""
    people = int(c.people) if c is not None else 0
    text = (
        f"<b>{people:,}</b><br>{short(_names(c.customer_activities, 1), 22)}"
        f"<br><i>{short(_names(c.company_activities, 1), 22)}</i>"
        if people and c is not None
        else ""
    )
    if c is None:
        return None, text, [0, "–", "–", "–", "–"]
    waits = (
        ", ".join(
            f"{label(r)} {duration(w)}"
            for r, w in zip(c.followup_rules, c.followup_median_wait_s, strict=False)
        )
        if len(c.followup_rules)
        else "–"
    )
    hover = [
        int(c.events),
        label(_names(c.owners, 3)),
        label(_names(c.customer_activities, 6)),
        label(_names(c.company_activities, 6)),
        waits,
    ]
    return people if people else None, text, hover


def _cells(
    grid: pd.DataFrame, channels: list[str], positions: pd.Series
) -> tuple[list[list[Any]], list[list[str]], list[list[Any]]]:
    """The heatmap's values, texts and hovers: channels as rows, stages as columns."""
    z, text, hover = [], [], []
    for channel in channels:
        row = [grid[(grid.channel == channel) & (grid.position == pos)] for pos in positions]
        cells = [_cell(c.iloc[0] if len(c) else None) for c in row]
        z.append([c[0] for c in cells])
        text.append([c[1] for c in cells])
        hover.append([c[2] for c in cells])
    return z, text, hover


@degrades
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
    z, text, hover = _cells(grid, channels, stages.position)
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
    style(fig, "", 120 + 95 * len(channels))
    fig.update_layout(title=None, margin={"t": 70, "l": 90, "r": 20, "b": 20})
    return fig
