"""How customers feel along the journey: the ``feelings`` table (sentiment, NPS, CSAT)."""

from __future__ import annotations

import plotly.graph_objects as go

from journeymine.dashboard.reading import Data, degrades, stored_table


@degrades
def feelings_table(data: Data) -> go.Figure:
    """Per stage, all sources together: voices, mean sentiment with its 95% interval, the
    negative share, NPS and CSAT, each score beside how many answers it comes from (a CSAT of
    0 from two ratings is not a CSAT of 0 from two hundred)."""
    return stored_table(
        data,
        "feelings",
        "SELECT stage, voices, sentiment_mean, sentiment_ci_low, sentiment_ci_high, "
        "negative_share, nps, nps_answers, csat, csat_answers FROM {t} "
        "WHERE source = 'all' ORDER BY position",
        {
            "voices": ",",
            "sentiment_mean": ".2f",
            "sentiment_ci_low": ".2f",
            "sentiment_ci_high": ".2f",
            "negative_share": ".0%",
            "nps": ".0f",
            "nps_answers": ",",
            "csat": ".0f",
            "csat_answers": ",",
        },
    )
