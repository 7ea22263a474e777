"""The journey dashboard: Plotly figures for notebooks and one self-contained HTML export."""

from __future__ import annotations

from journeymine.dashboard import figures
from journeymine.dashboard.export import export_dashboard, export_report
from journeymine.dashboard.layout import GraphLayout, layered_layout

__all__ = ["GraphLayout", "export_dashboard", "export_report", "figures", "layered_layout"]
