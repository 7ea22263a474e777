"""Every funnel figure can be traced to its people; every CLI command answers --help and is
documented."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import journeymine as jm
from journeymine.cli import build_parser, main
from tests.fixtures import DOCS, HELPDESK_LOG


def test_people_behind_each_funnel_cell(sample_warehouse: Path) -> None:
    with jm.open_warehouse(sample_warehouse) as wh:
        funnel = wh.view("stage_funnel")
        for row in funnel[funnel.segment.isin(["all", "company_size=1-10"])].itertuples():
            segment = None if row.segment == "all" else row.segment
            for status in ("converted", "dropped", "open"):
                people = wh.people(row.stage, status, segment)
                assert len(people) == getattr(row, status), (row.segment, row.stage, status)
        journeys = wh.journeys(wh.people("demo_held", "dropped").person_id.head(3).tolist())
        assert all("crm.meeting:demo" in acts for acts in journeys.activities)


def test_cli_people_prints_the_journeys(
    sample_warehouse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """In process, as the help test below (the bad-input test runs ``python -m journeymine``)."""
    argv = ["people", "trial", "--status", "converted", "--limit", "2"]
    assert main([*argv, "--warehouse", str(sample_warehouse)]) == 0
    out = capsys.readouterr().out
    assert "persons at stage 'trial' with status 'converted'" in out
    assert out.count("\nperson ") == 2 and "billing.invoice_paid" in out


def test_every_command_has_help_and_is_documented(capsys) -> None:  # type: ignore[no-untyped-def]
    """In process: one interpreter start per command cost seconds; the entry point itself
    (``python -m journeymine``) is run by the bad-input test below."""
    from journeymine.cli import main

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    docs = (DOCS / "cli.md").read_text()
    for name in commands:
        returncode = main([name, "--help"])
        stdout = capsys.readouterr().out
        assert returncode == 0 and "usage: journeymine" in stdout, name
        assert f"journeymine {name}" in docs, f"{name} is not in docs/cli.md"


def test_bad_input_gives_a_clear_error_and_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "journeymine",
            "report",
            "--warehouse",
            str(tmp_path / "none.duckdb"),
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1 and "journeymine:" in run.stderr
    # The entry point is proven above; the loader's error is checked in process.
    bad = tmp_path / "landing" / "stripe"
    bad.mkdir(parents=True)
    (bad / "x.jsonl").write_text("not json\nstill not\n")
    argv = [
        "load",
        "--landing",
        str(tmp_path / "landing"),
        "--warehouse",
        str(tmp_path / "w.duckdb"),
    ]
    assert main(argv) == 1 and "stripe/x.jsonl" in capsys.readouterr().err


@pytest.mark.slow  # end to end: parses the 21,000-event help-desk XES, reports, draws the page
def test_report_on_an_imported_log_without_a_journey(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import duckdb

    from journeymine.cli import main

    db, out = tmp_path / "h.duckdb", tmp_path / "out"
    log = HELPDESK_LOG
    assert main(["import-log", str(log), "--warehouse", str(db)]) == 0
    assert main(["report", "--warehouse", str(db), "--no-journey", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "4,580 cases" in printed.out and "no stages in the journey spec" in printed.err
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM dfg").fetchone()[0] > 0
        assert not con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'stage_funnel'"
        ).fetchone()[0]
    assert (out / "dashboard.html").exists()
