"""The exported file: one page, plotly.js once, sections in reading order, safe to share, and
really drawn by headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

from journeymine.dashboard import export_dashboard, export_report
from journeymine.dashboard.page import SECTIONS
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
