"""What goes with dropping off: the ``drivers`` findings (landmark design, FDR-controlled)."""

from __future__ import annotations

import plotly.graph_objects as go

from journeymine.dashboard.reading import Data, degrades, stored_table


@degrades
def drivers_table(data: Data) -> go.Figure:
    """The findings that survive false-discovery control, most significant first: the rate
    with and without the feature, lift and its interval, the horizon in hours."""
    return stored_table(
        data,
        "drivers",
        "SELECT stage AS \"leaving stage\", outcome, replace(replace(feature, 'did: ', "
        "'did '), 'segment: ', '') AS \"people who…\", people, "
        'rate_with AS converted, rate_without AS "converted without", lift, ci_low, '
        'ci_high, horizon_s / 3600 AS "horizon (h)" FROM {t} '
        "WHERE finding ORDER BY p_value LIMIT 14",
        {
            "people": ",",
            "converted": ".0%",
            "converted without": ".0%",
            "lift": ".2f",
            "ci_low": ".0%",
            "ci_high": ".0%",
            "horizon (h)": ".0f",
        },
    )
