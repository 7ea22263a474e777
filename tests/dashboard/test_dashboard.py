"""The exported dashboard: renders every figure in real Chromium, runs no injected script,
and shows no email address."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from journeymine.analyse import analyse_warehouse
from journeymine.dashboard import export_report
from journeymine.dashboard.figures import EMAIL, label
from journeymine.load import load_landing
from journeymine.load_log import load_event_log

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HOSTILE = "<img src=x onerror=\"document.title='pwned'\">"
SECTIONS = (
    "kpis",
    "funnel",
    "segments",
    "followups",
    "waiting",
    "map",
    "paths",
    "conformance",
    "drivers",
    "drift",
    "variants",
)


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
            "--virtual-time-budget=10000",
            *args,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture(scope="module")
def sample_dashboard(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dash")
    db = out / "w.duckdb"
    load_landing(db, ROOT / "data" / "sample" / "landing")
    analyse_warehouse(db, ROOT / "data" / "sample" / "journey.toml", out)
    return export_report(db, ROOT / "data" / "sample" / "journey.toml", out)


def test_one_file_with_plotly_inline_and_every_section(sample_dashboard: Path) -> None:
    text = sample_dashboard.read_text()
    assert text.count("<script src=") == 0 and "cdn.plot.ly" not in text.split("</head>")[1]
    for section in SECTIONS:
        assert f'id="fig-{section}"' in text, section
    assert "Not computed yet" not in text and "Could not draw" not in text


def test_no_email_address_anywhere(sample_dashboard: Path) -> None:
    body = sample_dashboard.read_text().split("</head>", 1)[1]  # plotly.js itself is not data
    assert EMAIL.findall(body) == []


def test_labels_escape_markup_and_hide_emails() -> None:
    assert label("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert label("call jane.doe@acme.io") == "call [email hidden]"


@pytest.mark.slow
def test_renders_in_chromium_without_console_errors(sample_dashboard: Path, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    run = chromium(
        sample_dashboard.as_uri(), "--window-size=1400,5200", f"--screenshot={shot}", tmp=tmp_path
    )
    assert shot.exists() and shot.stat().st_size > 50_000
    console = [line for line in run.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == []
    dom = chromium(sample_dashboard.as_uri(), "--dump-dom", tmp=tmp_path).stdout
    rendered = re.findall(r'<div id="fig-(\w+)" class="figure[^"]*js-plotly-plot', dom)
    assert sorted(rendered) == sorted(SECTIONS)
    assert dom.count('class="main-svg"') >= len(SECTIONS)


@pytest.mark.slow
def test_hostile_strings_do_not_run(tmp_path: Path) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        (f"c{c}", act, start + timedelta(hours=c * 10 + i), i, "jane.doe@acme.io")
        for c in range(30)
        for i, act in enumerate(["open", HOSTILE, "<script>alert(1)</script>"])
    ]
    table = pa.table(
        {
            "case_id": [r[0] for r in rows],
            "activity": [r[1] for r in rows],
            "ts": [r[2] for r in rows],
            "seq": list(range(len(rows))),
            "resource": [r[4] for r in rows],
        }
    )
    db = tmp_path / "w.duckdb"
    load_event_log(db, table, "hostile.csv")
    spec = tmp_path / "j.toml"
    spec.write_text(
        'name = "hostile <b>x</b>"\n[[stages]]\nname = "open"\nactivities = ["open"]\n'
        '[[stages]]\nname = "next"\nactivities = ["<img*"]\n'
    )
    analyse_warehouse(db, spec, tmp_path)
    path = export_report(db, spec, tmp_path)
    text = path.read_text()
    assert HOSTILE not in text and "<script>alert(1)</script>" not in text
    assert EMAIL.findall(text.split("</head>", 1)[1]) == []
    dom = chromium(path.as_uri(), "--dump-dom", tmp=tmp_path).stdout
    assert "<title>Customer journeys</title>" in dom and "pwned" not in dom.split("<body")[0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom  # shown as text in the map


def test_figures_carry_the_table_values(sample_dashboard: Path) -> None:
    from journeymine.dashboard import figures
    from journeymine.warehouse import connect

    con = connect(sample_dashboard.parent / "w.duckdb", read_only=True)
    funnel = con.execute(
        "SELECT stage, converted, dropped, open FROM stage_funnel WHERE segment = 'all' ORDER BY position"
    ).df()
    fig = figures.stage_funnel(con)
    bars = {trace.name: list(trace.x) for trace in fig.data}
    for status in ("converted", "dropped", "open"):
        assert bars[status] == funnel[status].tolist()
    latency = figures.followup_latency(con)
    medians = con.execute(
        "SELECT median(latency_s) / 3600 FROM followups WHERE rule = 'demo_request' AND status = 'answered' "
        "GROUP BY owner ORDER BY 1"
    ).fetchall()
    shown = sorted(
        x
        for y, x in zip(latency.data[0].y, latency.data[0].x, strict=True)
        if y.startswith("demo_request")
    )
    assert shown == pytest.approx([m for (m,) in medians])


def test_segment_chart_filters_one_attribute_at_a_time(sample_dashboard: Path) -> None:
    from journeymine.dashboard import figures
    from journeymine.warehouse import connect

    fig = figures.conversion_by_segment(
        connect(sample_dashboard.parent / "w.duckdb", read_only=True)
    )
    buttons = fig.layout.updatemenus[0].buttons
    assert [b.label for b in buttons] == ["company_size", "utm_source"]
    shown = [t.name for t in fig.data if t.visible]
    assert shown and all(name.startswith("company_size=") for name in shown)
    assert not any(name.endswith("(none)") for name in (t.name for t in fig.data))
