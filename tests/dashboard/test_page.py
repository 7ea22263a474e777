"""The exported file: one page, plotly.js once, sections in reading order, safe to share, and
really drawn by headless Chromium."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import duckdb
import pytest

from journeymine.dashboard import export_dashboard, export_report
from journeymine.dashboard.page import SECTIONS
from journeymine.dashboard.sections import figure
from journeymine.privacy import EMAIL
from tests.dashboard.conftest import (
    EMAIL_OWNER,
    IMG,
    SCRIPT,
    TITLE_PAYLOAD,
    TITLE_SCRIPT,
    Warehouse,
)

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRAWN = ["kpis", "funnel", "segments", "followups", "map", "paths", "variants"]
TITLE = "Journeys <b>weekly</b>"


@pytest.fixture(scope="module")
def page(warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_dashboard(
        warehouse.path, tmp_path_factory.mktemp("out") / "dashboard.html", title=TITLE
    )


def test_one_file_plotly_once_sections_in_reading_order(page: Path) -> None:
    text = page.read_text()
    assert "<script src" not in text and "cdn.plot.ly" not in text.split("</head>", 1)[1]
    assert text.count("plotly.js v") <= 2 and text.count("Plotly.newPlot(") == len(DRAWN)
    assert text.count("</script>") == 2  # the library in the head, the figures at the end
    anchors = re.findall(r'<section id="(\w+)">', text)
    assert anchors[:11] == [
        "opportunities",
        "grid",
        "kpis",
        "funnel",
        "convert",
        "segments",
        "followups",
        "waiting",
        "map",
        "paths",
        "variants",
    ]
    for anchor in DRAWN:
        assert f'<div id="fig-{anchor}" class="figure">' in text
    # Missing or undecidable sections say so in words.
    notes = re.findall(r'<p class="missing">([^<]*)</p>', text)
    assert "Needs a follow-up rule with converts_to in the journey spec." in notes
    assert any("conformance_summary" in n for n in notes) and any("drivers" in n for n in notes)
    assert "max-width" in text and '<p class="why">' in text


def test_no_email_address_anywhere_in_the_file(page: Path) -> None:
    text = page.read_text()
    assert EMAIL.findall(text) == []
    assert EMAIL_OWNER not in text and "example.com" not in text


def test_hostile_strings_never_appear_raw(page: Path) -> None:
    text = page.read_text()
    for payload in (SCRIPT, IMG, TITLE_PAYLOAD, TITLE_SCRIPT, "<img", "onerror=alert(1)>", TITLE):
        assert payload not in text, payload
    assert "<title>Journeys &lt;b&gt;weekly&lt;/b&gt;</title>" in text
    # Inside the figure JSON: HTML-escaped for Plotly, then "&" written as \u0026.
    assert "\\u0026lt;script\\u0026gt;alert(1)\\u0026lt;" in text
    assert "utm_source" in text and "jane.doe" not in text  # segment name yes, attributes no


def test_a_warehouse_without_tables_still_exports(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "empty.duckdb"))
    path = export_dashboard(con, tmp_path / "d.html")
    text = path.read_text()
    assert "Plotly.newPlot(" not in text
    assert text.count('<p class="missing">') == 17  # every section says what it lacks
    assert "The warehouse has no stage_funnel table yet." in text


# Every name a section shows from the analyses' tables, (table, column, rows): the same payload
# appended everywhere, so stages still match across tables and every section is still drawn.
NAMES = [
    ("opportunities", "title", "true"),
    ("journey_grid", "stage", "true"),
    ("journey_grid", "channel", "true"),
    ("journey_grid", "customer_activities", "true"),
    ("journey_grid", "company_activities", "true"),
    ("journey_grid", "owners", "true"),
    ("journey_grid", "followup_rules", "true"),
    ("headlines", "label", "true"),
    ("stage_funnel", "stage", "true"),
    ("stage_funnel", "segment", "segment <> 'all'"),
    ("stage_entries", "stage", "true"),
    ("followups", "rule", "true"),
    ("followups", "owner_name", "true"),
    ("cost_of_waiting", "target", "true"),
    ("map_nodes", "node", "true"),
    ("map_nodes", "label", "true"),
    ("map_edges", "source", "true"),
    ("map_edges", "target", "true"),
    ("variants", "variant", "true"),
    ("variants", "activities", "true"),
    ("conformance_summary", "deviation", "true"),
    ("drivers", "stage", "true"),
    ("drivers", "feature", "true"),
    ("feelings", "stage", "true"),
    ("paths", "anchor", "true"),
    ("paths", "path", "true"),
    ("drift_stages", "stage", "true"),
]
PAYLOAD = f" {SCRIPT} {IMG} eve.smith@evil.io"


@pytest.mark.slow
def test_every_section_escapes_the_names_it_shows(sample_dashboard: Path, tmp_path: Path) -> None:
    db = tmp_path / "hostile.duckdb"
    shutil.copy(sample_dashboard.parent / "warehouse.duckdb", db)
    con = duckdb.connect(str(db))
    for table, column, rows in NAMES:
        (kind,) = con.execute(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_name = ? AND column_name = ?",
            [table, column],
        ).fetchall()[0]
        new = (
            f"list_transform({column}, lambda v: v || $p)"
            if kind.endswith("[]")
            else f"{column} || $p"
        )
        con.execute(f"UPDATE {table} SET {column} = {new} WHERE {rows}", {"p": PAYLOAD})
    con.close()
    text = export_report(db, ROOT / "data" / "sample" / "journey.toml", tmp_path).read_text()
    # Every section still drawn, so every one of them had the payload to escape.
    assert "Could not draw" not in text and 'class="missing"' not in text
    assert len(re.findall(r'<div id="fig-\w+" class="figure">', text)) == 17
    for raw in (SCRIPT, IMG, "<img", "evil.io", "eve.smith"):
        assert raw not in text, raw
    assert EMAIL.findall(text) == []
    # Each section showing names shows the payload, escaped (retention and the cost of waiting
    # show no stored names: cohorts, numbers, and the spec's own rule and stage).
    scripts = dict(re.findall(r"var f = (.*?); Plotly.newPlot\('fig-(\w+)'", text))
    shown = {a for j, a in scripts.items() if "\\u0026lt;script\\u0026gt;alert(1)" in j}
    assert shown == {s.anchor for s in SECTIONS} - {"retention", "waiting"}


def chromium(url: str, *args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=5000",
            *args,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.mark.slow
def test_renders_in_chromium(page: Path, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    shot.unlink(missing_ok=True)
    run = chromium(page.as_uri(), "--window-size=1400,3000", f"--screenshot={shot}", tmp=tmp_path)
    assert shot.exists() and shot.stat().st_size > 50_000, run.stderr[-2000:]
    errors = [
        line for line in run.stderr.splitlines() if "Uncaught" in line or "ERROR:CONSOLE" in line
    ]
    assert errors == []
    dump = chromium(page.as_uri(), "--dump-dom", tmp=tmp_path)
    dom = dump.stdout
    errors = [
        line for line in dump.stderr.splitlines() if "Uncaught" in line or "ERROR:CONSOLE" in line
    ]
    assert errors == []
    # Every figure container holds a drawn plot.
    chunks = dom.split('<div id="fig-')[1:]
    drawn = [
        c.split('"', 1)[0] for c in chunks if 'class="main-svg"' in c.split("</section>", 1)[0]
    ]
    assert drawn == DRAWN
    assert dom.count('class="main-svg"') >= len(DRAWN)
    # No injected script ran: the title is ours, hostile strings are shown as text.
    head = dom.split("<body", 1)[0]
    assert "<title>Journeys &lt;b&gt;weekly&lt;/b&gt;</title>" in head and "pwned" not in head
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert "<img src=" not in dom and EMAIL.findall(dom.split("</head>", 1)[1]) == []


# Run in the page once its figures are drawn: for every table (plotly.js draws them in SVG),
# the box of each cell and of its text, the card (section) holding it, and the box between
# them that scrolls sideways, if any. The result is left in <pre id="jm-measure"> for
# --dump-dom to read.
MEASURE = """<script>
window.addEventListener('load', function () { setTimeout(function () {
  function box(el) { var r = el.getBoundingClientRect(); return [r.left, r.right, r.top, r.bottom]; }
  var out = [];
  document.querySelectorAll('section').forEach(function (card) {
    card.querySelectorAll('g.table').forEach(function (table) {
      var pad = getComputedStyle(card), outer = card.getBoundingClientRect();
      var scroller = null;
      for (var el = table.closest('div'); el !== card; el = el.parentElement) {
        var o = getComputedStyle(el).overflowX;
        if (o === 'auto' || o === 'scroll') scroller = [el.clientWidth, el.scrollWidth];
      }
      var cells = [];
      table.querySelectorAll('g.y-column').forEach(function (column, c) {
        column.querySelectorAll('g.column-cell').forEach(function (cell) {
          cells.push({column: c, header: cell.closest('g.column-block').id === 'header',
                      text: cell.textContent, cell: box(cell.querySelector('rect')),
                      ink: box(cell.querySelector('text'))});
        });
      });
      out.push({card: card.id, width: card.clientWidth, scroller: scroller,
                toolbar: card.querySelectorAll('.modebar-btn').length,
                inner: [outer.left + parseFloat(pad.paddingLeft),
                        outer.right - parseFloat(pad.paddingRight)],
                svg: box(table.closest('svg')), cells: cells});
    });
  });
  var pre = document.createElement('pre');
  pre.id = 'jm-measure';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
}, 1000); });
</script>"""
TABLES = ["opportunities", "variants", "conformance", "drivers", "feelings", "retention", "drift"]
# The two best-ranked fixes of the 100M-row end-to-end run (benchmarks/README), whose
# seven-digit people and six-digit gains did not fit their columns.
BIG_FIXES = [
    (1, 1_861_769, 603_123.4, 602_972.8, 603_273.5, False),
    (2, 3_104_295, -11_392.5, -33_273.3, 9_369.0, True),
]


def measure_tables(page: Path, width: int, tmp: Path) -> list[dict[str, Any]]:
    """Every table of ``page`` as drawn by headless Chromium in a ``width`` px wide window."""
    probe = tmp / f"probe-{width}.html"
    probe.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
    run = chromium(probe.as_uri(), f"--window-size={width},768", "--dump-dom", tmp=tmp)
    found = re.search(r'<pre id="jm-measure">(.*?)</pre>', run.stdout, re.S)
    assert found is not None, run.stderr[-2000:]
    return list(json.loads(html.unescape(found.group(1))))


def assert_readable(table: dict[str, Any], rows: int, columns: int) -> None:
    """No text cut by its cell, every row and column drawn, and the table inside its card
    unless a box inside the card scrolls sideways."""
    cells = table["cells"]
    assert table["toolbar"] == 0, table["card"]  # Plotly's tool bar would cover a header
    assert sum(c["header"] for c in cells) == columns, table["card"]
    assert len(cells) == columns * (rows + 1), table["card"]
    for c in cells:
        left, right, _, bottom = c["cell"]
        assert bottom <= table["svg"][3] + 0.5, (table["card"], c["text"])  # no row hidden
        if c["text"]:
            ink_left, ink_right, _, _ = c["ink"]
            assert left <= ink_left and ink_right <= right + 0.5, (table["card"], c)
    widest = max(c["cell"][1] for c in cells)
    scroller = table["scroller"]
    if widest > table["inner"][1] + 0.5:
        assert scroller is not None and scroller[0] <= table["width"], table["card"]
        assert scroller[1] > scroller[0], table["card"]


@pytest.mark.slow
def test_every_table_can_be_read_in_its_card(sample_copy: Path, tmp_path: Path) -> None:
    con = duckdb.connect(str(sample_copy))
    for rank, people, gain, low, high, uncertain in BIG_FIXES:
        con.execute(
            "UPDATE opportunities SET people = ?, gain = ?, gain_low = ?, gain_high = ?, "
            "uncertain = ? WHERE rank = ?",
            [people, gain, low, high, uncertain, rank],
        )
    shown = {
        name: (len(fig.data[0].cells.values[0]), len(fig.data[0].cells.values))
        for name in TABLES
        for fig in [figure(name, con)]
    }
    con.close()
    page = export_report(sample_copy, ROOT / "data" / "sample" / "journey.toml", tmp_path)
    at_1024 = {t["card"]: t for t in measure_tables(page, 1024, tmp_path)}
    assert sorted(at_1024) == sorted(TABLES)
    for name, table in at_1024.items():
        assert_readable(table, *shown[name])
    # On a laptop's 1024 px the gain columns are in the card, whole, without scrolling.
    opportunities = at_1024["opportunities"]
    left, right = opportunities["inner"]
    gains = [c for c in opportunities["cells"] if c["column"] in (3, 4, 5)]
    assert [c["text"] for c in gains if c["header"]] == ["gain", "gain_low", "gain_high"]
    assert {"603,123.4", "-33,273.3", "9,369.0"} <= {c["text"] for c in gains}
    for c in gains:
        assert left <= c["cell"][0] and c["cell"][1] <= right and c["ink"][1] <= right
    # Narrower still, the wide tables scroll inside their card rather than cut a column.
    at_800 = {t["card"]: t for t in measure_tables(page, 800, tmp_path)}
    for name, table in at_800.items():
        assert_readable(table, *shown[name])
    assert at_800["opportunities"]["scroller"][1] > at_800["opportunities"]["scroller"][0]
