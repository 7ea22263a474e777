"""At a glance: the headline figures of ``analyses.headlines`` (the same figures as the run
summary), each with its change since the previous analysis run."""

from __future__ import annotations

import duckdb
import pandas as pd
import plotly.graph_objects as go

from journeymine.analyses.headlines import previous_figures, read_headlines
from journeymine.dashboard.reading import MissingTable, degrades
from journeymine.dashboard.style import FONT, wrap

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


@degrades
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
