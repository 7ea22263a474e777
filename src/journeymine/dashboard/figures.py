"""Dashboard figures: each function takes an open warehouse (or the table as a DataFrame) and
returns a Plotly figure, in a notebook or in the exported dashboard.

The figures live in ``dashboard/sections/`` (one module per section of the page), the shared
colours, escaping and styling in ``dashboard/style.py``, the table reading in
``dashboard/reading.py``; this module gathers them under one name, and :func:`figure` draws
any of them by its section's name.

* Everything is aggregated in DuckDB SQL first, so a 10M-event warehouse still makes a figure
  of a few kilobytes.
* Every string that came from the data goes through :func:`label` (email addresses masked,
  HTML special characters escaped) and is passed as data (``customdata``/``text``), never
  pasted into a hover template. Raw attributes and person ids are never read.
* Only the DESIGN §3.2 columns are required; richer columns (``position``, ``excluded``,
  ``sla_s``, ``owner``, ``activities``) are used when a table has them.
* A missing or empty table gives a figure that says so (see :func:`missing_reason`) instead of
  an exception.
"""

from __future__ import annotations

from journeymine.dashboard.reading import Data, MissingTable, columns, query
from journeymine.dashboard.sections import (
    FIGURES,
    conformance_table,
    conversion_by_segment,
    cost_of_waiting,
    drift_table,
    drivers_table,
    dropout_sankey,
    feelings_table,
    figure,
    followup_latency,
    journey_grid,
    journey_map,
    kpi_header,
    opportunities_table,
    paths_sankey,
    retention_table,
    stage_funnel,
    time_to_convert,
    variants_table,
)
from journeymine.dashboard.sections.followups import BUCKET_LABELS, OWNER_STATUSES
from journeymine.dashboard.sections.headline import UNIT_FORMATS, UNIT_SUFFIX, kpi_numbers
from journeymine.dashboard.style import (
    FONT,
    SEGMENT_COLOURS,
    STATUS_COLOURS,
    STATUS_NAMES,
    WAIT_SCALE,
    duration,
    label,
    missing_figure,
    missing_reason,
    short,
    wrap,
)
from journeymine.dashboard.tables import table
from journeymine.privacy import EMAIL, EMAIL_MASK

__all__ = [
    "BUCKET_LABELS",
    "EMAIL",
    "EMAIL_MASK",
    "FIGURES",
    "FONT",
    "OWNER_STATUSES",
    "SEGMENT_COLOURS",
    "STATUS_COLOURS",
    "STATUS_NAMES",
    "UNIT_FORMATS",
    "UNIT_SUFFIX",
    "WAIT_SCALE",
    "Data",
    "MissingTable",
    "columns",
    "conformance_table",
    "conversion_by_segment",
    "cost_of_waiting",
    "drift_table",
    "drivers_table",
    "dropout_sankey",
    "duration",
    "feelings_table",
    "figure",
    "followup_latency",
    "journey_grid",
    "journey_map",
    "kpi_header",
    "kpi_numbers",
    "label",
    "missing_figure",
    "missing_reason",
    "opportunities_table",
    "paths_sankey",
    "query",
    "retention_table",
    "short",
    "stage_funnel",
    "table",
    "time_to_convert",
    "variants_table",
    "wrap",
]
