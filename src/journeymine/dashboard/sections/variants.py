"""Most frequent journeys: the ``variants`` table, exact sequences of activities."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from journeymine.dashboard.reading import Data, MissingTable, degrades, query
from journeymine.dashboard.style import duration
from journeymine.dashboard.tables import table


@degrades
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
    return table(shown, "", {"people": ",", "share": ".1%"})
