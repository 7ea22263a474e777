"""What changed: the ``drift_stages`` table, conversion in the last 30 days against before."""

from __future__ import annotations

import plotly.graph_objects as go

from journeymine.dashboard.reading import Data, degrades, outcome_steps, stored_table
from journeymine.sql import literal


@degrades
def drift_table(data: Data) -> go.Figure:
    """Per stage with decided people: decided and conversion rate before and after, p value;
    not a stage just before an outcome (``reading.outcome_steps``: its "conversion" is
    cancelling)."""
    _, last = outcome_steps(data)
    before_outcomes = "[" + ", ".join(literal(stage) for stage in sorted(last)) + "]::VARCHAR[]"
    return stored_table(
        data,
        "drift_stages",
        "SELECT stage, decided_before, rate_before, decided_after, rate_after, p_value "
        "FROM {t} WHERE decided_before + decided_after > 0 "
        f"AND NOT list_contains({before_outcomes}, stage) ORDER BY stage",
        {
            "decided_before": ",",
            "decided_after": ",",
            "rate_before": ".1%",
            "rate_after": ".1%",
            "p_value": ".3f",
        },
    )
