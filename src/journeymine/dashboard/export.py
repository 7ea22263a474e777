"""One self-contained HTML dashboard: plotly.js embedded once, no network, safe to share.

Safe to share means: every data string is HTML-escaped in the page text and in the figure
labels, the figure JSON cannot close its ``<script>`` (``<``, ``>`` and ``&`` are written as
``\\u003c``-style escapes), and anything that looks like an email address is replaced.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from journeymine.dashboard import figures
from journeymine.spec import JourneySpec
from journeymine.warehouse import table_exists

log = logging.getLogger(__name__)

CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 0; color: #222;
       background: #f4f6f7; }
header { background: #264653; color: white; padding: 18px 32px; }
header h1 { margin: 0; font-size: 24px; } header p { margin: 4px 0 0; opacity: .85; }
main { max-width: 1200px; margin: 0 auto; padding: 12px 24px 48px; }
section { background: white; border-radius: 8px; padding: 12px 20px 8px; margin: 16px 0;
          box-shadow: 0 1px 3px rgba(0,0,0,.08); }
section h2 { margin: 8px 0 2px; font-size: 19px; } section p.why { margin: 0 0 6px; color: #555; }
.missing { color: #8a6d3b; font-style: italic; }
nav a { color: white; margin-right: 14px; font-size: 14px; }
"""

Section = tuple[str, str, str, Callable[[], go.Figure] | None]


def _safe_json(fig: go.Figure) -> str:
    text = fig.to_json()
    text = figures.EMAIL.sub("[email hidden]", text)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _sections(con: duckdb.DuckDBPyConnection, spec: JourneySpec | None) -> list[Section]:
    """(anchor, heading, one-line explanation, figure builder or None if its table is missing)."""

    def need(*tables: str) -> bool:
        return all(table_exists(con, t) for t in tables)

    def waiting() -> go.Figure:  # the spec names which stage a slow follow-up may cost
        from journeymine.analyses.followups import cost_of_waiting

        rule, target, window = _cost_inputs(spec)
        frame = con.execute("SELECT * FROM followups").df()
        return figures.cost_of_waiting(
            cost_of_waiting(con, frame, rule, target, window), " or ".join(target)
        )

    def variants() -> go.Figure:
        frame = con.execute(
            "SELECT variant, cases, share, median_duration_s / 86400 AS median_days "
            "FROM variants ORDER BY cases DESC LIMIT 15"
        ).df()
        return figures.table(
            frame,
            "The 15 most frequent journeys",
            {"cases": ",", "share": ".1%", "median_days": ".1f"},
        )

    def deviations() -> go.Figure:
        frame = con.execute(
            "SELECT deviation, cases, share, completion_rate, "
            "median_duration_s / 86400 AS median_days "
            "FROM conformance_summary ORDER BY cases DESC LIMIT 14"
        ).df()
        return figures.table(
            frame,
            "Designed vs actual journey",
            {"cases": ",", "share": ".1%", "completion_rate": ".1%", "median_days": ".1f"},
        )

    def driver_table() -> go.Figure:
        frame = con.execute(
            "SELECT stage AS \"leaving stage\", CASE outcome WHEN 'speed' THEN 'converted fast' "
            "ELSE 'converted' END AS outcome, replace(replace(feature, 'did: ', 'did '), "
            "'segment: ', '') AS \"people who…\", people, rate_with AS \"rate with\", "
            'rate_without AS "rate without", lift, ci_low, ci_high FROM drivers d '
            "JOIN (SELECT DISTINCT stage, position FROM stage_funnel) f USING (stage) "
            "WHERE finding QUALIFY row_number() OVER (PARTITION BY stage, outcome "
            "ORDER BY p_value) <= 3 ORDER BY position, outcome, p_value"
        ).df()
        fmts = {
            "people": ",",
            "rate with": ".0%",
            "rate without": ".0%",
            "lift": ".2f",
            "ci_low": ".0%",
            "ci_high": ".0%",
        }
        return figures.table(
            frame, "The strongest findings per stage (significant at 5% false-discovery rate)", fmts
        )

    def drift_table() -> go.Figure:
        frame = con.execute(
            "SELECT stage, decided_before, rate_before, decided_after, rate_after, p_value "
            "FROM drift_stages WHERE decided_before + decided_after > 0 ORDER BY stage"
        ).df()
        fmts = {
            "decided_before": ",",
            "decided_after": ",",
            "rate_before": ".1%",
            "rate_after": ".1%",
            "p_value": ".3f",
        }
        return figures.table(frame, "Stage conversion: the last 30 days vs the 30 before", fmts)

    def pick(ok: bool, build: Callable[[], go.Figure]) -> Callable[[], go.Figure] | None:
        return build if ok else None

    return [
        (
            "kpis",
            "At a glance",
            "Tonight's headline figures; the small number is the change since the last run.",
            pick(need("persons"), lambda: figures.kpi_header(con)),
        ),
        (
            "funnel",
            "Where people drop off",
            "People still inside a stage's time window are 'open', never counted as drop-offs.",
            pick(need("stage_funnel"), lambda: figures.stage_funnel(con)),
        ),
        (
            "segments",
            "Which segments drop off",
            "Conversion to the next stage per segment, with 95% "
            "intervals; segments with fewer than 20 decided people are left out.",
            pick(need("stage_funnel"), lambda: figures.conversion_by_segment(con)),
        ),
        (
            "followups",
            "Where we keep customers waiting",
            "Time from a customer's action to our first "
            "response, by rule and owner; the dashed line is the rule's SLA.",
            pick(need("followups"), lambda: figures.followup_latency(con)),
        ),
        (
            "waiting",
            "What the waiting costs",
            "Share of people reaching the next step by how long "
            "they waited for the first follow-up.",
            pick(
                need("followups")
                and spec is not None
                and any(r.converts_to for r in spec.followups),
                waiting,
            ),
        ),
        (
            "map",
            "The journey map",
            "What people actually do next, with how long they wait between steps.",
            pick(need("event_log", "dfg"), lambda: figures.journey_map(con)),
        ),
        (
            "paths",
            "First steps",
            "How journeys begin.",
            pick(need("variants"), lambda: figures.paths_sankey(con)),
        ),
        (
            "conformance",
            "Designed vs actual",
            "How real journeys deviate from the journey in the spec.",
            pick(need("conformance_summary"), deviations),
        ),
        (
            "drivers",
            "What drives drop-off",
            "Touchpoints and segments associated with converting out of a stage: rate with vs "
            "without, lift over the base rate, 95% interval; only findings that survive "
            "false-discovery control.",
            pick(need("drivers"), driver_table),
        ),
        (
            "drift",
            "What changed",
            "Conversion per stage in the last 30 days against the 30 days before.",
            pick(need("drift_stages"), drift_table),
        ),
        (
            "variants",
            "Most frequent journeys",
            "Exact sequences of activities and how many people took each.",
            pick(need("variants"), variants),
        ),
    ]


def _cost_inputs(spec: JourneySpec | None) -> tuple[str, tuple[str, ...], timedelta]:
    """The first follow-up rule with a ``converts_to`` stage: its name, the stage's activities
    and window."""
    assert spec is not None
    rule = next(r for r in spec.followups if r.converts_to)
    stage = next(s for s in spec.stages if s.name == rule.converts_to)
    return rule.name, stage.activities, stage.window or spec.window


def export_dashboard(
    con: duckdb.DuckDBPyConnection,
    out_path: str | Path,
    *,
    spec: JourneySpec | None = None,
    title: str = "Customer journeys",
) -> Path:
    """Write the dashboard HTML file; return its path."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    parts, scripts, nav = [], [], []
    for anchor, heading, why, build in _sections(con, spec):
        nav.append(f'<a href="#{anchor}">{html.escape(heading)}</a>')
        body = '<p class="missing">Not computed yet for this warehouse.</p>'
        if build is not None:
            try:
                fig = build()
                body = f'<div id="fig-{anchor}" class="figure"></div>'
                config = "{responsive: true, displaylogo: false}"
                scripts.append(
                    f"(function () {{ var f = {_safe_json(fig)}; "
                    f"Plotly.newPlot('fig-{anchor}', f.data, f.layout, {config}); }})();"
                )
            except Exception as exc:  # one broken section must not lose the whole dashboard
                log.exception("dashboard section %s failed", anchor)
                body = (
                    f'<p class="missing">Could not draw this section: {html.escape(str(exc))}</p>'
                )
        parts.append(
            f'<section id="{anchor}"><h2>{html.escape(heading)}</h2>'
            f'<p class="why">{html.escape(why)}</p>{body}</section>'
        )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    name = html.escape(figures.EMAIL.sub("[email hidden]", spec.name if spec else title))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title><style>{CSS}</style>
<script>{get_plotlyjs()}</script></head>
<body><header><h1>{html.escape(title)}</h1><p>{name} · built {stamp} by journeymine</p>
<nav>{"".join(nav)}</nav></header>
<main>{"".join(parts)}</main>
<script>{"".join(scripts)}</script>
</body></html>
"""
    out_path.write_text(page, encoding="utf-8")
    return out_path


def export_report(warehouse_path: str | Path, journey: str | Path | None, out: str | Path) -> Path:
    """Open a warehouse read-only and write ``<out>/dashboard.html``."""
    from journeymine.spec import load_spec
    from journeymine.warehouse import connect

    spec = load_spec(journey) if journey else None
    con = connect(warehouse_path, read_only=True)
    try:
        return export_dashboard(
            con, Path(out) / "dashboard.html", spec=spec, title="Customer journeys"
        )
    finally:
        con.close()
