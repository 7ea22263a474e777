"""Headline figures of a run, kept per run in ``run_history``, and their markdown summary.

The nightly flow publishes the markdown as a Prefect artifact; each figure is shown with its
change since the previous run, so a reader sees at once what moved overnight.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import duckdb

from journeymine.load import LoadReport
from journeymine.warehouse import table_exists

HISTORY = """
CREATE TABLE IF NOT EXISTS run_history (
    run_id VARCHAR, finished_at TIMESTAMPTZ, figures JSON
)
"""

# (label, SQL returning one number, format). Missing tables just leave the figure out.
HEADLINES: list[tuple[str, str, str, str]] = [
    ("persons", "persons", "SELECT count(*) FROM persons WHERE events > 0", "{:,.0f}"),
    ("touchpoints", "touchpoints", "SELECT count(*) FROM touchpoints", "{:,.0f}"),
    (
        "journeys started",
        "stage_funnel",
        "SELECT max(entered) FROM stage_funnel WHERE segment = 'all'",
        "{:,.0f}",
    ),
    (
        "median follow-up latency (h)",
        "followups",
        "SELECT median(latency_s) / 3600 FROM followups WHERE status = 'answered'",
        "{:,.1f}",
    ),
    (
        "SLA breach rate",
        "followups",
        "SELECT avg(sla_breached::INT) FROM followups WHERE status <> 'open'",
        "{:.1%}",
    ),
]


def headline_figures(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    figures: dict[str, float] = {}
    for label, table, sql, _ in HEADLINES:
        if table_exists(con, table):
            row = con.execute(sql).fetchone()
            if row and row[0] is not None:
                figures[label] = float(row[0])
    return figures


def record_run(
    con: duckdb.DuckDBPyConnection, run_id: str
) -> tuple[dict[str, float], dict[str, float]]:
    """Store this run's headline figures; return them with the previous run's."""
    con.execute(HISTORY)
    previous_row = con.execute(
        "SELECT figures FROM run_history ORDER BY finished_at DESC LIMIT 1"
    ).fetchone()
    previous: dict[str, float] = json.loads(previous_row[0]) if previous_row else {}
    figures = headline_figures(con)
    con.execute(
        "INSERT INTO run_history VALUES (?, ?, ?)",
        [run_id, datetime.now(UTC), json.dumps(figures)],
    )
    return figures, previous


def markdown_summary(
    report: LoadReport, figures: dict[str, float], previous: dict[str, float]
) -> str:
    """A short markdown report of one run: row accounting per source, then headline figures."""
    lines = [f"# journeymine nightly run `{report.run_id}`", ""]
    lines += [
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
    lines += [
        "",
        f"Files already loaded and unchanged: {report.skipped_files}. "
        f"New identity merges: {report.new_merges}.",
        "",
    ]
    lines += ["| figure | tonight | change since last run |", "|---|---:|---:|"]
    formats = {label: fmt for label, _, _, fmt in HEADLINES}
    for label, value in figures.items():
        fmt = formats[label]
        before = previous.get(label)
        change = (
            "–" if before is None else ("+" if value >= before else "") + fmt.format(value - before)
        )
        lines.append(f"| {label} | {fmt.format(value)} | {change} |")
    for error in report.errors:
        lines.append(f"\n**Not loaded:** {error}")
    return "\n".join(lines) + "\n"


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
