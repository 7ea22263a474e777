"""Every failure of the CLI is one line starting with ``journeymine:``, exit code 1, naming the
file or key and what to do; never a traceback."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import duckdb
import pytest

from journeymine import cli, warehouse
from journeymine.cli import main
from journeymine.ingest.import_log import load_event_log
from journeymine.spec import load_spec
from tests.fixtures import SAMPLE_JOURNEY as SPEC
from tests.ingest.test_import_log import log_table

SAMPLE_STAGES = ", ".join(sorted(s.name for s in load_spec(SPEC).stages))
SEGMENTS = re.search(r"segments = \[\n.*?\n\]\n", SPEC.read_text(), re.S).group(0)  # type: ignore[union-attr]


@pytest.fixture
def sample(sample_copy: Path) -> Path:
    """The bundled sample, loaded and analysed: a copy, since a report that failed to refuse
    its input would write into it."""
    return sample_copy


def read_only_folder(tmp_path: Path) -> Path:
    """A folder no one may write into; sysfs when we run as root (root ignores modes)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    return folder if os.geteuid() != 0 else Path("/sys/journeymine-out")


def spec_with(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def write(path: Path, data: str | bytes) -> Path:
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)
    return path


# Each case: (id, argv from (sample warehouse, tmp_path), what the line must name).
Case = tuple[str, Callable[[Path, Path], list[str]], tuple[str, ...]]


def _report(db: Path | str, spec: Path | str, out: Path | str) -> list[str]:
    return ["report", "--warehouse", str(db), "--journey", str(spec), "--out", str(out)]


def _truncated(db: Path, tmp: Path) -> Path:
    data = db.read_bytes()
    return write(tmp / "truncated.duckdb", data[: len(data) // 3])


def _empty_warehouse(tmp: Path) -> Path:
    warehouse.connect(tmp / "empty.duckdb").close()  # schema only, nothing loaded
    return tmp / "empty.duckdb"


def _no_deals(tmp: Path) -> Path:
    load_event_log(tmp / "log.duckdb", log_table(), "helpdesk.csv")
    return tmp / "log.duckdb"


def _spec(tmp: Path, old: str, new: str) -> Path:
    return write(tmp / "journey.toml", spec_with(SPEC.read_text(), old, new))


STAGE = '[[stages]]\nname = "a"\nactivities = ["register"]\n'
CASES: list[Case] = [
    (
        "read-only out folder",
        lambda db, t: _report(db, SPEC, read_only_folder(t)),
        ("--out", "cannot write there", "choose a folder you can write to"),
    ),
    (
        "truncated warehouse",
        lambda db, t: _report(_truncated(db, t), SPEC, t / "out"),
        ("truncated.duckdb: not a readable warehouse", "rebuild it"),
    ),
    (
        "binary warehouse",
        lambda db, t: _report(write(t / "junk.duckdb", os.urandom(5000)), SPEC, t / "out"),
        ("junk.duckdb: not a readable warehouse", "not a valid DuckDB database"),
    ),
    (
        "empty warehouse",
        lambda db, t: _report(_empty_warehouse(t), SPEC, t / "out"),
        ("empty.duckdb: the warehouse is empty", "journeymine load"),
    ),
    (
        "empty spec",
        lambda db, t: _report(db, write(t / "j.toml", ""), t / "out"),
        ("j.toml: the journey spec is empty",),
    ),
    (
        "binary spec",
        lambda db, t: _report(db, write(t / "j.toml", bytes(range(256))), t / "out"),
        ("j.toml: not UTF-8 text",),
    ),
    (
        "directory spec",
        lambda db, t: _report(db, t, t / "out"),
        ("{tmp}: is a folder; pass the journey spec file",),
    ),
    (
        "sla overflows",
        lambda db, t: _report(db, _spec(t, 'sla = "4h"', 'sla = "99999999999d"'), t / "out"),
        ("journey.toml: followups[0].sla", "'99999999999d' is longer than"),
    ),
    (
        "timezone a number",
        lambda db, t: _report(
            db, _spec(t, 'timezone = "Europe/Berlin"', "timezone = 5"), t / "out"
        ),
        ("journey.toml: calendar.timezone", "time zone name"),
    ),
    (
        "hours a number",
        lambda db, t: _report(db, _spec(t, 'hours = "09:00-17:00"', "hours = 9"), t / "out"),
        ("journey.toml: calendar.hours", "'09:00-17:00'"),
    ),
    (
        "segments a string",
        lambda db, t: _report(
            db,
            _spec(t, SEGMENTS, 'segments = "company_size"\n'),
            t / "out",
        ),
        ("journey.toml: segments: expected a list", "'company_size'"),
    ),
    (
        "no stages",
        lambda db, t: _report(db, write(t / "j.toml", "stages = []\n"), t / "out"),
        ("j.toml: stages = [] declares no stage",),
    ),
    (
        "deal case without deals",
        lambda db, t: _report(
            _no_deals(t), write(t / "j.toml", 'case = "deal"\n' + STAGE), t / "out"
        ),
        ("log.duckdb: journey spec key case = 'deal'", "deal_id", "case = 'person'"),
    ),
    (
        "spec matching nothing",
        lambda db, t: _report(
            _no_deals(t), write(t / "j.toml", STAGE.replace("register", "web.*")), t / "out"
        ),
        ("j.toml: stages: no pattern matches any activity", "include register, triage"),
    ),
    (
        "export into a missing folder",
        lambda db, t: ["export", str(t / "missing" / "x.xes"), "--warehouse", str(db)],
        ("missing: no such folder; create it",),
    ),
    (
        "import-log missing file",
        lambda db, t: ["import-log", str(t / "none.xes"), "--warehouse", str(t / "w.duckdb")],
        ("none.xes: no such file; pass the event log file",),
    ),
    (
        "people unknown stage",
        lambda db, t: ["people", "nowhere", "--warehouse", str(db)],
        (f"unknown stage 'nowhere'; the stages are: {SAMPLE_STAGES}",),
    ),
    (
        "people unknown status",
        lambda db, t: ["people", "trial", "--status", "lost", "--warehouse", str(db)],
        (
            "journeymine: people: argument --status: invalid choice: 'lost'",
            "'converted', 'dropped', 'open', 'excluded', 'final'",
            "see `journeymine people --help`",
        ),
    ),
    (
        "people unknown segment",
        lambda db, t: ["people", "trial", "--segment", "size=huge", "--warehouse", str(db)],
        ("unknown segment 'size=huge'", "company_size=1-10", "utm_source=google"),
    ),
    (
        "explain unknown person",
        lambda db, t: ["explain-person", "987654321", "--warehouse", str(db)],
        ("no person 987654321; person ids run from 1 to ",),
    ),
]


@pytest.mark.parametrize(("argv", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_failure_is_one_line_naming_what_to_fix(
    sample: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: Callable[[Path, Path], list[str]],
    expected: tuple[str, ...],
) -> None:
    code = main(argv(sample, tmp_path))
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("journeymine: ") and err.count("\n") == 1, err
    for text in expected:
        assert text.format(tmp=tmp_path) in err, (text, err)
    assert not (tmp_path / "out" / "dashboard.html").exists()  # no report from bad input


def test_unknown_person_names_the_real_range(
    sample: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with duckdb.connect(str(sample), read_only=True) as con:
        low, high = con.execute("SELECT min(person_id), max(person_id) FROM persons").fetchone()
    assert main(["explain-person", str(high + 1), "--warehouse", str(sample)]) == 1
    assert f"person ids run from {low} to {high}\n" in capsys.readouterr().err


def test_a_failing_subprocess_prints_no_traceback(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "journeymine", "report", "--journey", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert run.returncode == 1
    assert (
        run.stderr == f"journeymine: {tmp_path}: is a folder; pass the journey spec file (TOML)\n"
    )


def test_version_comes_from_the_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    # In process: the entry point is run by the subprocess test above.
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"journeymine {version('journeymine')}\n"


def test_a_bad_argument_is_one_line_with_exit_code_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--no-such-option"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "journeymine: unrecognized arguments: --no-such-option; see `journeymine --help`\n"
    )


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            OSError(errno.ENOSPC, "No space left on device", "/data/w.duckdb"),
            "/data/w.duckdb: No space left on device; free some space or choose another disk",
        ),
        (
            PermissionError(errno.EACCES, "Permission denied", "/data/out/dashboard.html"),
            "/data/out/dashboard.html: Permission denied; check the permissions or choose",
        ),
        (
            duckdb.IOException("IO Error: could not read block 7\nLINE 1: ..."),
            "the warehouse refused the work: IO Error: could not read block 7 LINE 1: ...; "
            "check the --warehouse file",
        ),
        (KeyError("x"), "unexpected KeyError: 'x'; rerun with -v and report it"),
    ],
)
def test_other_failures_say_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: Exception,
    expected: str,
) -> None:
    """Failures we do not raise ourselves (a full disk, a broken file mid-query, a bug) are
    still one line, naming the file when the system names it."""

    def fail(args: object) -> int:
        raise error

    monkeypatch.setattr(cli, "cmd_export", fail)
    assert main(["export", "x.xes"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("journeymine: " + expected) and err.count("\n") == 1, err
