"""No SQL injection: a hostile segment name is refused at the spec, CLI and API boundary (or
treated as data further in), and no file is written; quotes in paths are data."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import duckdb
import pytest

import journeymine as jm
from journeymine.analyses.drivers import drivers
from journeymine.analyses.funnel import segment_values
from journeymine.cli import main
from journeymine.errors import SpecError, UsageError
from journeymine.spec import load_spec
from tests.fixtures import SAMPLE_JOURNEY as SPEC

EVIL = "x') TO 'evil.csv'; --"
EVIL_SEGMENT = f"{EVIL}=1"


@pytest.fixture
def sample(sample_warehouse: Path) -> Path:
    """The session's sample warehouse; these tests only read it."""
    return sample_warehouse


def evil_files(*folders: Path) -> list[Path]:
    return [p for folder in folders for p in folder.rglob("evil*")]


def evil_spec(tmp_path: Path) -> Path:
    text = SPEC.read_text().replace('    "utm_source",\n', f'    "{EVIL}",\n', 1)
    assert EVIL in text
    (tmp_path / "journey.toml").write_text(text)
    return tmp_path / "journey.toml"


def test_a_hostile_segment_in_the_spec_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"journey.toml: segments\[1\]: segment attribute"):
        load_spec(evil_spec(tmp_path))


def test_report_with_a_hostile_spec_writes_nothing(
    sample: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "w.duckdb"
    shutil.copy(sample, db)
    before = db.read_bytes()
    argv = ["report", "--warehouse", str(db), "--journey", str(evil_spec(tmp_path))]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 1
    assert "is not a plain name" in capsys.readouterr().err
    assert evil_files(tmp_path, sample.parent) == []
    assert db.read_bytes() == before and not (tmp_path / "out").exists()


def test_people_with_a_hostile_segment_is_refused(
    sample: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["people", "trial", "--segment", EVIL_SEGMENT, "--warehouse", str(sample)]) == 1
    assert f"unknown segment {EVIL_SEGMENT!r}" in capsys.readouterr().err
    with jm.open_warehouse(sample) as wh, pytest.raises(UsageError, match="the segments are"):
        wh.people("trial", "converted", EVIL_SEGMENT)
    assert evil_files(tmp_path, sample.parent) == []


def test_past_the_boundary_a_hostile_name_is_data(
    sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The analyses quote what they splice, so even an unchecked name writes no file."""
    monkeypatch.chdir(tmp_path)
    with duckdb.connect(str(sample), read_only=True) as con:
        values = segment_values(con, (EVIL,))
        persons = con.execute("SELECT count(*) FROM persons").fetchone()
        drivers(con, "trial", (EVIL,))
    assert persons is not None and len(values) == persons[0]
    assert values[EVIL].isna().all()  # no touchpoint carries such an attribute
    assert evil_files(tmp_path, sample.parent) == []


def test_quotes_in_the_warehouse_path_are_data(
    sample: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / 'o\'brien "x"'
    folder.mkdir()
    db = folder / "w'h.duckdb"
    shutil.copy(sample, db)
    with jm.open_warehouse(sample) as wh:
        converted = len(wh.people("trial", "converted"))
    assert main(["people", "trial", "--status", "converted", "--warehouse", str(db)]) == 0
    assert f"{converted:,} persons at stage 'trial'" in capsys.readouterr().out
    assert main(["explain-person", "1", "--warehouse", str(db)]) == 0
    ocel = folder / "j'ourneys.sqlite"
    assert main(["export", str(ocel), "--format", "ocel", "--warehouse", str(db)]) == 0
    with sqlite3.connect(ocel) as out, duckdb.connect(str(sample), read_only=True) as con:
        events = out.execute("SELECT count(*) FROM event").fetchone()
        expected = con.execute("SELECT count(*) FROM touchpoints").fetchone()
    assert events == expected


@pytest.mark.parametrize(
    "statement",
    [
        "COPY (SELECT * FROM persons) TO 'evil.csv'",
        "SELECT * FROM read_csv('evil-source.csv')",
        "ATTACH 'evil.duckdb'",
        "SET enable_external_access = true",
    ],
)
def test_the_notebook_connection_cannot_touch_files(
    sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, statement: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evil-source.csv").write_text("a\n1\n")
    with jm.open_warehouse(sample) as wh:
        with pytest.raises((duckdb.PermissionException, duckdb.InvalidInputException)):
            wh.sql(statement)
        assert len(wh.sql("SELECT * FROM persons")) > 0  # reading the warehouse still works
    assert [p.name for p in evil_files(tmp_path, sample.parent)] == ["evil-source.csv"]


ACTIVITIES = ["web.page_view:/", "crm.call_completed", "it's", EVIL, "web.signed_up", None]
PATTERNS = [
    (),
    ("web.*",),
    ("crm.call_*", "*'s"),
    (EVIL,),
    ("x') OR true; --",),
    ("web.page_view:[/]",),
]


@pytest.mark.parametrize("patterns", PATTERNS)
def test_glob_builders_match_as_fnmatch_and_quotes_are_data(patterns: tuple[str, ...]) -> None:
    """The literal and the bound-list glob conditions agree with Python's fnmatch (the spec's
    own check), hostile patterns included; NULL activities match nothing."""
    import fnmatch

    from journeymine.sql import glob_any, glob_bound, glob_param

    con = duckdb.connect()
    con.execute("CREATE TABLE a AS SELECT unnest($v::VARCHAR[]) AS activity", {"v": ACTIVITIES})
    expected = sorted(
        a for a in ACTIVITIES if a is not None and any(fnmatch.fnmatchcase(a, p) for p in patterns)
    )
    by_literal = con.execute(
        f"SELECT activity FROM a WHERE {glob_any('activity', patterns)}"
    ).fetchall()
    by_param = con.execute(
        f"SELECT activity FROM a WHERE {glob_param('activity', 'p')}", {"p": list(patterns)}
    ).fetchall()
    assert sorted(r[0] for r in by_literal) == expected
    assert sorted(r[0] for r in by_param) == expected
    params: dict[str, object] = {}  # glob_bound binds only what the statement uses
    condition = glob_bound("activity", "p", patterns, params)
    by_bound = con.execute(f"SELECT activity FROM a WHERE {condition}", params).fetchall()
    assert sorted(r[0] for r in by_bound) == expected
    assert params == ({"p": list(patterns)} if patterns else {})


def test_first_and_last_touch_values_and_the_cutoff_by_hand() -> None:
    """touch_value picks by (occurred_at, seq) among rows carrying the key (a hostile key is
    data); data_cutoff is the latest time."""
    from datetime import UTC, datetime

    from journeymine.sql import data_cutoff, literal, touch_value

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        "CREATE TABLE t AS SELECT * FROM (VALUES "
        "(1, TIMESTAMPTZ '2026-01-02 00:00+00', 2, '{\"plan\": \"pro\"}'::JSON), "
        "(1, TIMESTAMPTZ '2026-01-02 00:00+00', 1, '{\"plan\": \"free\"}'::JSON), "
        "(1, TIMESTAMPTZ '2026-01-01 00:00+00', 3, '{}'::JSON), "
        "(1, TIMESTAMPTZ '2026-01-03 00:00+00', 4, '{\"other\": 1}'::JSON)"
        ") v(person_id, occurred_at, seq, attributes)"
    )
    first, last, evil = con.execute(
        f"SELECT {touch_value('first', literal('plan'))}, {touch_value('last', '$key')}, "
        f"{touch_value('first', literal(EVIL))} FROM t",
        {"key": "plan"},
    ).fetchall()[0]
    assert (first, last, evil) == ("free", "pro", None)
    assert data_cutoff(con, "t", "occurred_at") == datetime(2026, 1, 3, tzinfo=UTC)
    with pytest.raises(ValueError, match="first' or 'last"):
        touch_value("middle", literal("plan"))
