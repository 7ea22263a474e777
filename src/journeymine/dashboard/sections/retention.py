"""Who stays: the ``retention`` table, monthly cohorts of the retention stage."""

from __future__ import annotations

import plotly.graph_objects as go

from journeymine.dashboard.reading import Data, degrades, stored_table


@degrades
def retention_table(data: Data) -> go.Figure:
    """Per cohort and later period: cohort size, people at risk, still active and the rate
    (periods not observable yet are not in the table)."""
    return stored_table(
        data,
        "retention",
        "SELECT strftime(cohort, '%Y-%m') AS cohort, period, cohort_size, at_risk, "
        "active, rate FROM {t} ORDER BY cohort, period",
        {"cohort_size": ",", "at_risk": ",", "active": ",", "rate": ".1%"},
    )
