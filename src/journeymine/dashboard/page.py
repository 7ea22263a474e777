"""One self-contained HTML dashboard: plotly.js embedded once, no network, safe to share.

Safe to share means:

* every string from the data is HTML-escaped in the page text and in figure labels
  (:func:`style.label`), and passed to Plotly as data, never as markup or template;
* the figure JSON cannot leave its ``<script>``: ``<``, ``>``, ``&`` and the JS line
  separators are written as ``\\uXXXX`` escapes, which JSON reads back unchanged;
* anything that looks like an email address is masked, in labels, in the figure JSON, in the
  page text and even in plotly.js's own licence comments, so a scan of the file finds none;
* raw attributes and person ids are never read.

Sections come in reading order (:data:`SECTIONS`): what to fix first, the stage-by-channel
grid, headline figures, funnel, time to convert, segments, follow-ups, journey map, paths,
variants, then conformance, drivers, feelings, retention, drop-out paths and drift when the
warehouse has them. Each section draws the figure of its name
(``sections.FIGURES``). A section whose table is missing says so in plain text; a section
that fails to draw says so too and the rest of the dashboard is still written.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from journeymine.analyses.headlines import data_period
from journeymine.dashboard.sections import figure
from journeymine.dashboard.style import missing_figure, missing_reason
from journeymine.dashboard.tables import min_width
from journeymine.privacy import EMAIL, scrub
from journeymine.spec import JourneySpec

log = logging.getLogger(__name__)

CSS = """
* { box-sizing: border-box; }
/* The scrollbar's room is kept from the start: figures are sized when drawn, and one that
   appeared as the page grew would leave the first ones 15 px wider than their card. */
html { overflow-y: scroll; }
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 0; color: #222;
       background: #f1f3f4; line-height: 1.45; }
header { background: #264653; color: white; padding: 20px 0 14px; }
header .inner, main { max-width: 1180px; margin: 0 auto; padding: 0 24px; }
header h1 { margin: 0; font-size: 26px; font-weight: 600; }
header p { margin: 4px 0 10px; opacity: .85; font-size: 14px; }
nav a { color: white; margin-right: 16px; font-size: 14px; text-decoration: none;
        border-bottom: 1px solid rgba(255,255,255,.4); }
main { padding-top: 8px; padding-bottom: 48px; }
section { background: white; border-radius: 8px; padding: 16px 22px 10px; margin: 18px 0;
          box-shadow: 0 1px 3px rgba(0,0,0,.08); }
section h2 { margin: 0 0 2px; font-size: 20px; font-weight: 600; }
section p.why { margin: 0 0 8px; color: #555; font-size: 15px; }
/* A table never drawn narrower than its text needs (tables.min_width): on a narrow window
   it scrolls sideways inside its card instead of spilling out of it or cutting columns. */
.scroll { overflow-x: auto; overflow-y: hidden; }
.missing { color: #8a6d3b; background: #fcf8e3; padding: 10px 14px; border-radius: 6px; }
footer { color: #777; font-size: 13px; text-align: center; padding: 0 0 24px; }
"""


@dataclass(frozen=True)
class Section:
    """A section of the page: its anchor (also the name of its figure in ``FIGURES``), its
    heading and the sentence that says what it shows."""

    anchor: str
    heading: str
    why: str


# The sections in reading order; each draws ``figure(anchor, ...)``.
SECTIONS = [
    Section(
        "opportunities",
        "What to fix first",
        "Concrete fixes ranked by what they would gain a month, with a 95% interval; "
        "estimates from associations in your data (adjusted for the segment mix where the "
        "data allows), not proven causes. Uncertain ones (interval includes zero) come last; "
        "'overlaps #k': the fix shares people with fix k for the same gain, so the two gains "
        "do not add up.",
    ),
    Section(
        "grid",
        "The journey, stage by channel",
        "Each designed stage (with its drop-off) by channel: how many people were touched "
        "there, the main customer actions and (in italics) our own; hover for the owning "
        "reps and follow-up waits. A touchpoint belongs to the stage the person was in.",
    ),
    Section(
        "kpis",
        "At a glance",
        "Tonight's headline figures; the small coloured number is the change since the "
        "last run (green is better, red is worse). Waits are in the unit their SLA is "
        "judged in.",
    ),
    Section(
        "funnel",
        "Where people drop off",
        "For each stage of the designed journey: who moved on, who dropped out, and who is "
        "still inside the stage's time window ('open', never counted as a drop-off).",
    ),
    Section(
        "convert",
        "How long converting takes",
        "Share of the people who entered a stage that moved on to the next, by time since "
        "entering (Kaplan–Meier). People still open count only for as long as we have "
        "watched them and those who dropped out for their whole window, so recent "
        "entrants do not pull a curve down.",
    ),
    Section(
        "segments",
        "Which segments drop off",
        "Conversion to the next stage per segment, with 95% intervals; pick the attribute "
        "with the buttons. A person's segment at a stage is the value known when they "
        "entered it; '(unknown)' is everyone without one yet. Segments with fewer than 20 "
        "decided people are left out.",
    ),
    Section(
        "followups",
        "Where we keep customers waiting",
        "Time from a customer's action to our first reply, per rule against its SLA (red "
        "mark), and per owner.",
    ),
    Section(
        "waiting",
        "What the waiting costs",
        "Share of people who reached the next stage, by how long they waited for our first "
        "reply; bars show 95% intervals.",
    ),
    Section(
        "map",
        "The journey map",
        "What people actually do next, left to right: thicker lines are more frequent, "
        "redder lines mean a longer wait. Hover for counts and waits.",
    ),
    Section(
        "paths",
        "How journeys begin",
        "The first four steps of every journey; each band is a group of people.",
    ),
    Section(
        "variants",
        "Most frequent journeys",
        "Exact sequences of activities, and how many people took each one.",
    ),
    Section(
        "conformance",
        "Designed vs actual",
        "How real journeys deviate from the journey in the spec, and what it does to "
        "completion. Shares are among the journeys that can be judged: those that reached "
        "the last stage or left the designed order; journeys that stopped early on the path "
        "are drop-off (see the funnel), not 'conforming'.",
    ),
    Section(
        "drivers",
        "What goes with dropping off",
        "Touchpoints, owners and segments associated with leaving a stage converted "
        "(outcome 'conversion') or converting fast ('speed'). Landmark design: everyone is "
        "compared over the same first stretch after entering the stage (the horizon, by "
        "default the median time to convert) and must still be undecided at its end, so "
        "nobody is credited with what they received later; the stage's own markers and "
        "outcome activities are never features. Only findings that survive false-discovery "
        "control; associations, not proven causes.",
    ),
    Section(
        "feelings",
        "How customers feel along the journey",
        "Support messages and survey answers by the stage the person was in when they "
        "spoke: mean sentiment (VADER, -1..1) with a 95% interval, NPS and CSAT.",
    ),
    Section(
        "retention",
        "Who stays",
        "Per monthly cohort of the retention stage: the share still active in each later "
        "period. Periods not observable yet are left out, never shown as zero.",
    ),
    Section(
        "dropout",
        "Where people go when they drop out",
        "For the stage that loses most people: what they did after entering it.",
    ),
    Section(
        "drift",
        "What changed",
        "Conversion per stage in the last 30 days against the 30 days before.",
    ),
]


def safe_json(fig: go.Figure) -> str:
    """The figure as JSON that can sit inside ``<script>`` without closing it, emails masked."""
    text = scrub(fig.to_json())
    for char, escape in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escape)
    return text


def _plotly_js() -> str:
    """plotly.js, inline. Its licence comments name an author by email address: masked like
    any other (the attribution stays), so a scan of the file finds no address at all."""
    js = get_plotlyjs()
    js = EMAIL.sub(lambda m: m.group(0).replace("@", " (at) "), js)
    return js.replace("</script", "<\\/script")


def _waiting(con: duckdb.DuckDBPyConnection, spec: JourneySpec | None) -> go.Figure:
    """The cost of waiting for the first follow-up rule with a ``converts_to`` stage: that
    stage's activities, window and name."""
    if spec is None:
        return missing_figure("Needs a follow-up rule with converts_to in the journey spec.")
    for rule in spec.followups:
        stage = next((s for s in spec.stages if s.name == rule.converts_to), None)
        if stage is not None:
            return figure(
                "waiting",
                con,
                rule=rule.name,
                target_activities=stage.activities,
                window=stage.window or spec.window,
                target=stage.name,
            )
    return missing_figure("Needs a follow-up rule with converts_to in the journey spec.")


def _draw(section: Section, con: duckdb.DuckDBPyConnection, spec: JourneySpec | None) -> go.Figure:
    if section.anchor == "waiting":  # the one figure that needs the journey spec
        return _waiting(con, spec)
    return figure(section.anchor, con)


def _figure_div(anchor: str, fig: go.Figure) -> str:
    """The element the figure is drawn into; a table that needs a minimum width gets it, in
    a box that scrolls sideways when the card is narrower."""
    div = f'<div id="fig-{anchor}" class="figure"></div>'
    width = min_width(fig)
    if width is None:
        return div
    return f'<div class="scroll"><div style="min-width: {width:d}px">{div}</div></div>'


def _config(fig: go.Figure) -> str:
    """plotly.js options: resize with the page; a table has no tool bar, which would cover
    its last column's header and offers nothing a table needs (zoom, pan)."""
    bar = ', "displayModeBar": false' if min_width(fig) is not None else ""
    return f'{{"responsive": true, "displaylogo": false{bar}}}'


def _render(
    con: duckdb.DuckDBPyConnection, spec: JourneySpec | None
) -> tuple[list[str], list[str], list[str]]:
    parts, scripts, nav = [], [], []
    for section in SECTIONS:
        nav.append(f'<a href="#{section.anchor}">{html.escape(section.heading)}</a>')
        try:
            fig = _draw(section, con, spec)
            reason = missing_reason(fig)
            if reason is not None:
                body = f'<p class="missing">{html.escape(scrub(reason))}</p>'
            else:
                body = _figure_div(section.anchor, fig)
                scripts.append(
                    f"(function () {{ var f = {safe_json(fig)}; Plotly.newPlot("
                    f"'fig-{section.anchor}', f.data, f.layout, {_config(fig)}); }})();"
                )
        except Exception as exc:  # one broken section must not lose the whole dashboard
            log.exception("dashboard section %s failed", section.anchor)
            reason = html.escape(scrub(f"{type(exc).__name__}: {exc}"[:300]))
            body = f'<p class="missing">Could not draw this section ({reason}).</p>'
        parts.append(
            f'<section id="{section.anchor}"><h2>{html.escape(section.heading)}</h2>'
            f'<p class="why">{html.escape(section.why)}</p>{body}</section>'
        )
    return parts, scripts, nav


def export_dashboard(
    con_or_path: duckdb.DuckDBPyConnection | str | Path,
    out_path: str | Path,
    *,
    spec: JourneySpec | None = None,
    title: str = "Customer journeys",
) -> Path:
    """Write the dashboard as one self-contained HTML file; return its path.

    ``con_or_path`` is an open warehouse connection or the path of a warehouse file (opened
    read-only). ``spec`` (optional) names the journey and says which stage a slow follow-up
    may cost; without it that one section says so.
    """
    if not isinstance(con_or_path, duckdb.DuckDBPyConnection):
        from journeymine.warehouse import connect

        con = connect(con_or_path, read_only=True)
        try:
            return export_dashboard(con, out_path, spec=spec, title=title)
        finally:
            con.close()
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    parts, scripts, nav = _render(con_or_path, spec)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    safe_title = html.escape(scrub(title))
    journey = f"{html.escape(scrub(spec.name))} · " if spec is not None else ""
    period = data_period(con_or_path)
    if period is not None:
        journey += f"data {period[0]} to the cut-off {period[1]} · "
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{safe_title}</title><style>{CSS}</style>
<script>{_plotly_js()}</script></head>
<body><header><div class="inner"><h1>{safe_title}</h1>
<p>{journey}built {stamp} by journeymine · works offline; hover any chart for details</p>
<nav>{"".join(nav)}</nav></div></header>
<main>{"".join(parts)}</main>
<footer>Email addresses and raw event attributes are never included in this file.</footer>
<script>{"".join(scripts)}</script>
</body></html>
"""
    out.write_text(page, encoding="utf-8")
    return out


def export_report(warehouse_path: str | Path, journey: str | Path | None, out: str | Path) -> Path:
    """Open a warehouse read-only and write ``<out>/dashboard.html``."""
    from journeymine.spec import load_spec

    spec = load_spec(journey) if journey else None
    return export_dashboard(warehouse_path, Path(out) / "dashboard.html", spec=spec)
