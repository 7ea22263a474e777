"""The journey dashboard: Plotly figures for notebooks and one self-contained HTML export."""

from __future__ import annotations

from journeymine.dashboard.export import export_dashboard, export_report

__all__ = ["export_dashboard", "export_report"]
