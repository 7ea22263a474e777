"""What to fix first: the ``opportunities`` table, fixes ranked by their monthly gain."""

from __future__ import annotations

import plotly.graph_objects as go

from journeymine.dashboard.reading import Data, degrades, stored_table


@degrades
def opportunities_table(data: Data) -> go.Figure:
    """The twelve best-ranked fixes with their gain and its 95% interval; the note says which
    are uncertain (interval includes zero) and which overlap a better-ranked one."""
    return stored_table(
        data,
        "opportunities",
        "SELECT rank, title, people, gain, gain_low, gain_high, unit, note FROM {t} "
        "ORDER BY rank LIMIT 12",
        {"people": ",", "gain": ",.1f", "gain_low": ",.1f", "gain_high": ",.1f"},
    )
