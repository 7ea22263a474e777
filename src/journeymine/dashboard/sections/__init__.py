"""The dashboard's figures, one module per section, and the registry of figures by name.

The names are the page's section anchors (``dashboard.html#funnel``), so a figure seen on the
page is drawn in a notebook with ``figure("funnel", wh.con)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go

from journeymine.dashboard.sections.conformance import conformance_table
from journeymine.dashboard.sections.drift import drift_table
from journeymine.dashboard.sections.drivers import drivers_table
from journeymine.dashboard.sections.feelings import feelings_table
from journeymine.dashboard.sections.followups import cost_of_waiting, followup_latency
from journeymine.dashboard.sections.funnel import (
    conversion_by_segment,
    stage_funnel,
    time_to_convert,
)
from journeymine.dashboard.sections.grid import journey_grid
from journeymine.dashboard.sections.headline import kpi_header
from journeymine.dashboard.sections.map import journey_map
from journeymine.dashboard.sections.opportunities import opportunities_table
from journeymine.dashboard.sections.paths import dropout_sankey, paths_sankey
from journeymine.dashboard.sections.retention import retention_table
from journeymine.dashboard.sections.variants import variants_table
from journeymine.errors import UsageError

FIGURES: dict[str, Callable[..., go.Figure]] = {
    "opportunities": opportunities_table,
    "grid": journey_grid,
    "kpis": kpi_header,
    "funnel": stage_funnel,
    "convert": time_to_convert,
    "segments": conversion_by_segment,
    "followups": followup_latency,
    "waiting": cost_of_waiting,
    "map": journey_map,
    "paths": paths_sankey,
    "variants": variants_table,
    "conformance": conformance_table,
    "drivers": drivers_table,
    "feelings": feelings_table,
    "retention": retention_table,
    "dropout": dropout_sankey,
    "drift": drift_table,
}


def figure(name: str, data: Any, **options: Any) -> go.Figure:
    """The dashboard figure ``name`` (a key of :data:`FIGURES`, the page's section anchor) of
    ``data`` (an open warehouse, or the table as a DataFrame where the figure accepts one)."""
    if name not in FIGURES:
        raise UsageError(f"No dashboard figure {name!r}; the figures are {sorted(FIGURES)}.")
    return FIGURES[name](data, **options)
