"""Headline figures of a run, kept per run in ``run_history``, and their markdown summary.

The figures are defined once in ``analyses.headlines``; the nightly flow publishes the markdown
as a Prefect artifact, each figure with its change since the previous run.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd

from journeymine.analyses.headlines import format_value, previous_figures, read_headlines
from journeymine.ingest.load import LoadReport
from journeymine.privacy import label
from journeymine.warehouse import table_exists


def run_figures(con: duckdb.DuckDBPyConnection) -> tuple[pd.DataFrame, dict[str, float]]:
    """Tonight's headline figures (``analyses.headlines``) and the previous run's."""
    return read_headlines(con), previous_figures(con)


def markdown_summary(
    report: LoadReport,
    figures: pd.DataFrame,
    previous: dict[str, float],
    alerts: pd.DataFrame | None = None,
    identity: dict[str, Any] | None = None,
) -> str:
    """A short markdown report of one run: fired alerts first (``analyses.alerts``), then row
    accounting per source, then headline figures."""
    lines = [f"# journeymine nightly run `{report.run_id}`", ""]
    lines += alert_lines(alerts)
    lines += _source_lines(report)
    lines += _figure_lines(figures, previous)
    if identity:
        lines += identity_lines(identity)
    lines += _problem_lines(report)
    return "\n".join(lines) + "\n"


def _source_lines(report: LoadReport) -> list[str]:
    """Row accounting per source (files, rows read, loaded, duplicates, quarantined) as a
    markdown table, then the skipped files and the new identity merges."""
    lines = [
        "| source | files | rows read | loaded | duplicates | quarantined |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    by_source: dict[str, list[int]] = {}
    for f in report.files:
        acc = by_source.setdefault(f.source, [0, 0, 0, 0, 0])
        for i, n in enumerate((1, f.rows_read, f.rows_loaded, f.duplicates, f.quarantined)):
            acc[i] += n
    for source, acc in sorted(by_source.items()):
        lines.append(f"| {source} | " + " | ".join(f"{v:,}" for v in acc) + " |")
    if not by_source:
        lines.append("| (no new files) | 0 | 0 | 0 | 0 | 0 |")
    return lines + [
        "",
        f"Files already loaded and unchanged: {report.skipped_files}. "
        f"New identity merges: {report.new_merges}.",
        "",
    ]


def _figure_lines(figures: pd.DataFrame, previous: dict[str, float]) -> list[str]:
    """The data's period, then each headline figure with its change since the previous run."""
    lines = []
    period = figures.set_index("key").value.to_dict()
    if "first_event" in period:
        lines += [
            f"Data from {format_value(period['first_event'], 'time')} to the cut-off "
            f"{format_value(period['cutoff'], 'time')}.",
            "",
        ]
    lines += ["| figure | tonight | change since last run |", "|---|---:|---:|"]
    for row in figures[figures.unit != "time"].itertuples():
        before = previous.get(row.key)
        change = "–"
        if before is not None:
            sign = "+" if row.value >= before else "-"
            change = sign + format_value(abs(row.value - before), row.unit)
        lines.append(f"| {row.label} | {format_value(row.value, row.unit)} | {change} |")
    return lines


def _problem_lines(report: LoadReport) -> list[str]:
    """What was not loaded: files that failed, folders of no source we read, and files gone
    from the landing folder."""
    lines = [f"\n**Not loaded:** {_safe(error)}" for error in report.errors]
    for folder in report.unknown_folders:
        lines.append(f"\n**Not a source we read:** `{_safe(folder)}/` (a typo, or a vendor "
                     "journeymine does not read yet); its files were not loaded.")  # fmt: skip
    if report.gone_files:
        gone = ", ".join(_safe(f) for f in report.gone_files[:20])
        more = f" and {len(report.gone_files) - 20} more" if len(report.gone_files) > 20 else ""
        lines.append(f"\n**Gone from the landing folder** (their rows stay loaded): {gone}{more}")
    return lines


SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


def alert_lines(alerts: pd.DataFrame | None) -> list[str]:
    """Fired alerts, most severe first, then the alerts that could not be evaluated (a broken
    alert must not pass for a quiet night)."""
    if alerts is None or alerts.empty:
        return []
    lines: list[str] = []
    fired = alerts[alerts.fired.astype(bool)]
    fired = fired.sort_values("severity", key=lambda s: s.map(SEVERITY_ORDER), kind="stable")
    if len(fired):
        lines += [f"## Alerts fired ({len(fired)})", ""]
        lines += [
            f"- **{r.severity}** `{_safe(r.name)}`: {_safe(r.message)}" for r in fired.itertuples()
        ]
        lines.append("")
    unknown = alerts[~alerts.evaluated.astype(bool)]
    if len(unknown):
        lines += [f"**Alerts not evaluated ({len(unknown)}):**", ""]
        lines += [f"- `{_safe(r.name)}`: {_safe(r.message)}" for r in unknown.itertuples()]
        lines.append("")
    return lines


def _safe(text: str) -> str:
    """File names and error texts come from outside: emails masked, markup and table pipes
    escaped before they reach the rendered markdown."""
    return label(text).replace("|", "\\|").replace("\n", " ")


def funnel_rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, object]]:
    """The overall stage funnel as plain rows (for a Prefect table artifact)."""
    if not table_exists(con, "stage_funnel"):
        return []
    frame = con.execute(
        "SELECT stage, entered, converted, dropped, open, round(conversion_rate, 4) AS "
        "conversion_rate FROM stage_funnel WHERE segment = 'all' ORDER BY position"
    ).df()
    return [
        {k: (None if v != v else v) for k, v in row.items()} for row in frame.to_dict("records")
    ]


def identity_lines(quality: dict[str, Any]) -> list[str]:
    """The identity quality figures (``identity.identity_quality``) as markdown lines."""
    refusals = quality.get("refusals_by_rule", {}).get("person", {})
    kept = ", ".join(f"{n:,} by {_safe(rule)}" for rule, n in sorted(refusals.items())) or "none"
    lines = [
        "",
        f"Identity: {quality.get('persons', 0):,} persons, {quality.get('accounts', 0):,} "
        f"accounts; {quality.get('person_merges', 0):,} person and "
        f"{quality.get('account_merges', 0):,} account merges recorded; pairs kept apart: "
        f"{kept}; touchpoints on anonymous-only persons: "
        f"{quality.get('anonymous_only_touchpoint_share', 0.0):.1%}.",
    ]
    lines += [f"\n**Identity warning:** {_safe(w)}" for w in quality.get("warnings", [])]
    return lines


def opportunities_markdown(con: duckdb.DuckDBPyConnection, top: int = 10) -> str:
    """The ranked opportunities (``analyses.opportunities``) as markdown: the CLI's output and
    a Prefect artifact. Ids and methods stay in the table; here, what to do and its gain."""
    if not table_exists(con, "opportunities"):
        return "No opportunities yet: run `journeymine report` first.\n"
    frame = con.execute(
        "SELECT rank, title, gain, gain_low, gain_high, unit, note FROM opportunities "
        "ORDER BY rank LIMIT ?",
        [top],
    ).df()
    lines = [
        "# What to fix first",
        "",
        "| # | opportunity | gain | 95% | unit |",
        "|---:|---|---:|---|---|",
    ]
    for r in frame.itertuples():
        note = f" ({_safe(r.note)})" if r.note else ""
        lines.append(
            f"| {r.rank} | {_safe(r.title)}{note} | {r.gain:,.1f} | "
            f"{r.gain_low:,.1f} to {r.gain_high:,.1f} | {_safe(r.unit)} |"
        )
    if frame.empty:
        lines.append("| – | nothing stands out in this data | – | – | – |")
    return "\n".join(lines) + "\n"
