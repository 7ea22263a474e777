"""The journey dashboard: Plotly figures for notebooks and one self-contained HTML export."""

from __future__ import annotations

from journeymine.dashboard import figures
from journeymine.dashboard.layout import GraphLayout, layered_layout
from journeymine.dashboard.page import export_dashboard, export_report

__all__ = ["GraphLayout", "export_dashboard", "export_report", "figures", "layered_layout"]
