"""Where people drop off: the stage funnel (``stage_funnel``), conversion per segment, and how
long converting out of each stage takes (Kaplan–Meier over ``stage_entries``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from journeymine.analyses.funnel import time_to_convert_curve
from journeymine.analyses.headlines import read_headlines
from journeymine.dashboard.reading import (
    Data,
    MissingTable,
    columns,
    degrades,
    exists,
    outcome_steps,
    query,
)
from journeymine.dashboard.style import (
    STAGE_COLOURS,
    STATUS_COLOURS,
    STATUS_NAMES,
    WAIT_TICKS_H,
    duration,
    label,
    style,
)


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
    # Before an outcome stage the journey's goal is reached: drawn as its last stage, and the
    # outcome (churned) is left to "Who stays".
    outcomes, last = outcome_steps(data)
    frame = frame[~frame.stage.isin(outcomes)].copy()
    ends = frame.stage.isin(last)
    frame.loc[ends, ["converted", "dropped", "open"]] = 0
    frame.loc[ends, ["conversion_rate", "conversion_ci_low", "conversion_ci_high"]] = np.nan
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


def _status_bars(fig: go.Figure, frame: pd.DataFrame, y: list[Any]) -> None:
    """Left panel: one stacked bar per status, people who entered the stage."""
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


def _rate_markers(fig: go.Figure, frame: pd.DataFrame, y: list[Any]) -> None:
    """Right panel: the conversion rate with its 95% Wilson interval."""
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


@degrades
def stage_funnel(data: Data, segments: Sequence[str] | None = None) -> go.Figure:
    """Entered / converted / dropped / open per stage (left) and the conversion rate with its
    95% Wilson interval (right); several ``segments`` are shown side by side per stage.

    Default: the ``all`` segment when the table has it, else up to four segments.
    """
    frame, chosen = _funnel_frame(data, segments)
    y: list[Any] = (
        [[label(s) for s in frame.stage], [label(s) for s in frame.segment]]
        if len(chosen) > 1
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
    _status_bars(fig, frame, y)
    _rate_markers(fig, frame, y)
    fig.update_layout(barmode="stack")
    fig.update_yaxes(autorange="reversed", row=1, col=1)
    fig.update_xaxes(title_text="people", row=1, col=1)
    fig.update_xaxes(title_text="converted", tickformat=".0%", range=[0, 1.02], row=1, col=2)
    rows = len(frame)
    style(fig, "", 230 + 38 * rows)
    fig.update_layout(
        title=None,
        margin={"t": 40, "b": 40},
        legend={"y": -0.5 if rows < 4 else -0.25},
    )
    return fig


def _attribute_buttons(fig: go.Figure, keys: list[str]) -> None:
    """An in-page filter: one attribute at a time, no server needed."""
    attributes = list(dict.fromkeys(keys))  # in the spec's order
    if len(attributes) < 2:
        return
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


@degrades
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
    _, last = outcome_steps(data)
    frame = frame[~frame.stage.isin(last)]  # converting out of it is cancelling
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
    _attribute_buttons(fig, keys)
    fig.update_yaxes(tickformat=".0%", title="converted to the next stage", range=[0, 1])
    stages = frame.sort_values("stage_order", kind="stable").stage.drop_duplicates()
    fig.update_xaxes(categoryorder="array", categoryarray=[label(s) for s in stages])
    fig.update_layout(barmode="group")
    style(fig, "", 440)
    fig.update_layout(title=None, margin={"t": 80})
    return fig


# ------------------------------------------------------------------ time to convert

FLOOR_S = 60.0  # the axis is logarithmic: a conversion within a minute is drawn at one
# Most steps drawn per curve: a big warehouse has a step per distinct conversion time, which
# would make the page megabytes heavy for no visible difference.
MAX_STEPS = 400
# One stage's entries as the curve reads them, the statuses it counts only (excluded people
# are left out by the curve anyway), the status as a category: millions of entries arrive one
# stage at a time, a byte a status, instead of the whole table at once.
STAGE_ENTRIES = (
    "SELECT status::ENUM('converted', 'dropped', 'open') AS status, entered_at, "
    "time_to_convert_s, window_s FROM {t} "
    "WHERE stage = ? AND status IN ('converted', 'dropped', 'open')"
)


def _cutoff(data: Data) -> datetime | None:
    """The data cut-off when the headlines have it, else the latest time in the entries (as
    :func:`time_to_convert_curve` takes it from the whole table)."""
    if isinstance(data, duckdb.DuckDBPyConnection) and exists(data, "headlines"):
        stored = read_headlines(data).set_index("key")
        if "cutoff" in stored.index:
            return pd.Timestamp(float(stored.loc["cutoff", "value"]), unit="s", tz="UTC")
    latest = query(
        data, "stage_entries", "SELECT max(entered_at) AS a, max(converted_at) AS b FROM {t}"
    )
    return pd.concat([latest.a, latest.b]).max()


def _converting_stages(data: Data) -> list[tuple[str, int]]:
    """The stages anyone converted out of, by position: (stage, first position); not one just
    before an outcome stage (converting there is cancelling: ``reading.outcome_steps``)."""
    found = query(
        data,
        "stage_entries",
        "SELECT stage, min(pos) AS pos FROM {t} "
        "WHERE status = 'converted' GROUP BY stage ORDER BY pos, stage",
    )
    if found.empty and query(data, "stage_entries", "SELECT 1 FROM {t} LIMIT 1").empty:
        raise MissingTable("The stage_entries table has no rows yet.")
    _, last = outcome_steps(data)
    return [(str(s), int(p)) for s, p in zip(found.stage, found.pos, strict=True) if s not in last]


def _stage_entries(data: Data, stage: str) -> pd.DataFrame:
    """The entries of ``stage`` the curve counts, with the columns it reads."""
    frame = query(data, "stage_entries", STAGE_ENTRIES, [stage])
    frame.insert(0, "stage", pd.Categorical.from_codes(np.zeros(len(frame), np.int8), [stage]))
    return frame


def _thin(curve: pd.DataFrame) -> pd.DataFrame:
    """At most about :data:`MAX_STEPS` steps of ``curve``: the last step at or before each of
    that many times spaced evenly on the log axis (first and last step always kept), so every
    point drawn is a true value of the curve."""
    if len(curve) <= MAX_STEPS:
        return curve
    times = curve.time_s.clip(lower=FLOOR_S).to_numpy(dtype=float)
    grid = np.geomspace(times[0], times[-1], MAX_STEPS)
    return curve.iloc[np.unique(np.searchsorted(times, grid, side="right") - 1)]


def _curve_trace(curve: pd.DataFrame, last_s: float, stage: str, position: int) -> go.Scatter:
    """One stage's step curve: 0 until the first conversion, then the Kaplan–Meier share
    converted, held until the longest time anyone of the stage was followed."""
    curve = _thin(curve)
    times = [max(float(t), FLOOR_S) for t in curve.time_s]
    xs = [times[0], *times, max(last_s, times[-1])]
    ys = [0.0, *curve.converted.astype(float), float(curve.converted.iloc[-1])]
    risk = curve.at_risk.astype(int).tolist()
    at_risk = [risk[0], *risk, risk[-1] - int(curve.events.iloc[-1])]
    return go.Scatter(
        x=[x / 3600 for x in xs],
        y=ys,
        mode="lines",
        line={"shape": "hv", "width": 2.5, "color": STAGE_COLOURS[position % len(STAGE_COLOURS)]},
        name=f"{position + 1}. {label(stage)}",
        customdata=[[duration(x), n] for x, n in zip(xs, at_risk, strict=True)],
        hovertemplate="%{y:.1%} converted within %{customdata[0]}<br>%{customdata[1]:,} "
        "still followed and undecided<extra>" + label(stage) + "</extra>",
    )


@degrades
def time_to_convert(data: Data, cutoff: datetime | None = None) -> go.Figure:
    """How long converting out of each stage takes: the Kaplan–Meier share converted by time
    since entering (``analyses.funnel.time_to_convert_curve``), one curve per stage that anyone
    converted out of. People still open count only for as long as they have been followed
    (cut-off - entered), dropped people for their whole window, so recent entrants do not pull
    a curve down. ``cutoff`` defaults to the headlines' data cut-off."""
    fig = go.Figure()
    cutoff = cutoff or _cutoff(data)
    for stage, position in _converting_stages(data):
        entries = _stage_entries(data, stage)
        curve = time_to_convert_curve(entries, stage, cutoff)
        # Dropped people were followed for their whole window, nobody longer: hold the curve
        # flat to there; without any, it ends at its last conversion.
        dropped = entries[entries.status == "dropped"]
        last = float(np.nan_to_num(dropped.window_s.max()))
        fig.add_trace(_curve_trace(curve, last, stage, position))
        del entries, dropped  # one stage's entries in memory at a time
    if not fig.data:
        raise MissingTable("Nobody has converted out of a stage of stage_entries yet.")
    ticks = [t for t in WAIT_TICKS_H if t <= 24 * 30] + [24 * 90]
    fig.update_xaxes(
        type="log",
        tickvals=ticks,
        ticktext=[duration(t * 3600) for t in ticks],
        title_text="time since entering the stage (log scale)",
    )
    fig.update_yaxes(tickformat=".0%", range=[0, 1.02], title_text="converted to the next stage")
    style(fig, "", 460)
    fig.update_layout(title=None, margin={"t": 30}, hovermode="closest")
    return fig
