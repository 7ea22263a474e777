"""Designed vs actual: the ``conformance_summary`` table, deviations from the spec's journey."""

from __future__ import annotations

import plotly.graph_objects as go

from journeymine.dashboard.reading import Data, degrades, stored_table


@degrades
def conformance_table(data: Data) -> go.Figure:
    """The most frequent deviations (drop-off last) with their share, completion rate and
    median duration in days."""
    return stored_table(
        data,
        "conformance_summary",
        "SELECT deviation, kind, cases AS people, share, completion_rate, "
        "median_duration_s / 86400 AS median_days FROM {t} "
        "ORDER BY kind = 'drop-off', cases DESC LIMIT 14",
        {"people": ",", "share": ".1%", "completion_rate": ".1%", "median_days": ".1f"},
    )
