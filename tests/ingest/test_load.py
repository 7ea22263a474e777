"""The loader's promises, on a tiny fake source: nothing lost, nothing twice, all or nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import date
from pathlib import Path

import duckdb
import pytest

from journeymine import warehouse
from journeymine.canonical import touchpoints
from journeymine.ingest import load, stage

pytestmark = pytest.mark.usefixtures("fake_parser")

A = """\
k1,1785000000,anonymous_id,a1,web.page_view:/,user_id,u1
k2,1785000100,user_id,u1,web.signed_up
k2,1785000100,user_id,u1,web.signed_up
not-a-record
k4,1785000000000,user_id,u1,web.too_late
"""
B = """\
k2,1785000100,user_id,u1,web.signed_up
k3,1785000200,anonymous_id,a2,web.page_view:/pricing
"""

Landing = Callable[[str, str], Path]


def loaded_a(tmp_path: Path, landing: Landing) -> tuple[Path, Path]:
    """A warehouse that loaded landing ``a.txt`` (:data:`A`): (landing root, warehouse)."""
    root = landing("a.txt", A)
    db = tmp_path / "w.duckdb"
    load.load_landing(db, root)
    return root, db


def manifest(db: Path) -> dict[str, tuple[int, int, int, int]]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT file, rows_read, rows_loaded, duplicates, quarantined FROM load_manifest"
        ).fetchall()
    return {f: tuple(r) for f, *r in rows}


def count(db: Path, sql: str) -> int:
    with duckdb.connect(str(db), read_only=True) as con:
        return int(con.execute(sql).fetchone()[0])  # type: ignore[index]


def load_killed_in(step: str, db: Path, root: Path) -> int:
    """Load ``root`` into ``db`` in a child process killed (``os._exit``: no clean-up at all)
    when it calls ``step`` (``module.function`` of journeymine.canonical); its exit code."""
    module, function = step.split(".")
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(Path.cwd())!r})
        from journeymine.ingest import load, stage
        from journeymine.canonical import {module}
        from tests.ingest import fake_source
        stage.parser_for = lambda source: fake_source.parse_file
        {module}.{function} = lambda *a, **k: os._exit(9)
        load.load_landing({str(db)!r}, {str(root)!r})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], env=os.environ.copy(), check=False)
    return proc.returncode


def test_every_row_is_accounted_for(tmp_path: Path, landing: Landing) -> None:
    landing("a.txt", A)
    root = landing("b.txt", B)
    db = tmp_path / "w.duckdb"
    report = load.load_landing(db, root)
    assert manifest(db) == {"segment/a.txt": (5, 2, 1, 2), "segment/b.txt": (2, 1, 1, 0)}
    for read, loaded, dups, quarantined in manifest(db).values():
        assert read == loaded + dups + quarantined
    assert report.totals() == {
        "rows_read": 7,
        "rows_loaded": 3,
        "duplicates": 2,
        "quarantined": 2,
    }
    with duckdb.connect(str(db), read_only=True) as con:
        reasons = con.execute("SELECT line, reason FROM quarantine ORDER BY line").fetchall()
    assert reasons[0] == (4, "missing key")
    assert reasons[1][0] == 5 and "absurd unix seconds" in reasons[1][1]
    assert count(db, "SELECT count(*) FROM touchpoints") == 3


def test_second_load_of_the_same_folder_adds_nothing(tmp_path: Path, landing: Landing) -> None:
    root, db = loaded_a(tmp_path, landing)
    before = (
        count(db, "SELECT count(*) FROM raw_rows"),
        count(db, "SELECT count(*) FROM quarantine"),
    )
    again = load.load_landing(db, root)
    assert again.files == [] and again.skipped_files == 1
    after = count(db, "SELECT count(*) FROM raw_rows"), count(db, "SELECT count(*) FROM quarantine")
    assert before == after


def test_changed_file_replaces_its_previous_version(tmp_path: Path, landing: Landing) -> None:
    root, db = loaded_a(tmp_path, landing)
    landing("a.txt", A.replace("not-a-record\n", "k5,1785000300,user_id,u1,web.logged_in\n"))
    load.load_landing(db, root)
    assert manifest(db) == {"segment/a.txt": (5, 3, 1, 1)}
    assert count(db, "SELECT count(*) FROM quarantine") == 1
    assert count(db, "SELECT count(*) FROM touchpoints") == 3


def test_late_file_is_loaded_and_deduplicated(tmp_path: Path, landing: Landing) -> None:
    root, db = loaded_a(tmp_path, landing)
    landing("late/b.txt", B)
    report = load.load_landing(db, root)
    assert [(f.file, f.rows_loaded, f.duplicates) for f in report.files] == [
        ("segment/late/b.txt", 1, 1)
    ]


def test_equal_timestamps_keep_file_order(tmp_path: Path, landing: Landing) -> None:
    root = landing("a.txt", "x2,1785000000,user_id,u9,second\nx1,1785000000,user_id,u9,first\n")
    db = tmp_path / "w.duckdb"
    load.load_landing(db, root)
    with duckdb.connect(str(db), read_only=True) as con:
        order = con.execute("SELECT activity FROM touchpoints ORDER BY occurred_at, seq").fetchall()
    assert order == [("second",), ("first",)]


def test_failure_mid_load_leaves_the_warehouse_as_it_was(
    tmp_path: Path, landing: Landing, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, db = loaded_a(tmp_path, landing)
    landing("b.txt", B)

    def boom(con: duckdb.DuckDBPyConnection, fixups: object = ()) -> int:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(touchpoints, "build", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        load.load_landing(db, root)
    assert set(manifest(db)) == {"segment/a.txt"}
    assert count(db, "SELECT count(*) FROM raw_rows") == 2
    monkeypatch.undo()
    monkeypatch.setattr(
        stage,
        "parser_for",
        lambda source: __import__("tests.ingest.fake_source", fromlist=["x"]).parse_file,
    )
    load.load_landing(db, root)
    assert set(manifest(db)) == {"segment/a.txt", "segment/b.txt"}


def test_killed_process_mid_load_leaves_the_warehouse_as_it_was(
    tmp_path: Path, landing: Landing
) -> None:
    root, db = loaded_a(tmp_path, landing)
    landing("b.txt", B)
    # The child loads b.txt and is killed after the raw rows are written, inside the
    # transaction, before identity stitching.
    assert load_killed_in("identity.stitch", db, root) == 9
    assert set(manifest(db)) == {"segment/a.txt"}
    assert count(db, "SELECT count(*) FROM raw_rows WHERE file = 'segment/b.txt'") == 0
    load.load_landing(db, root)  # the next run completes it
    assert set(manifest(db)) == {"segment/a.txt", "segment/b.txt"}


def test_a_second_writer_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    script = (
        f"from journeymine import warehouse\nwith warehouse.writer_lock({str(db)!r}):\n    pass"
    )
    with warehouse.writer_lock(db):
        with warehouse.writer_lock(db):  # re-entrant within one process
            pass
        other = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert other.returncode == 1
    assert "another journeymine run is writing this warehouse" in other.stderr
    assert f"pid {os.getpid()}" in other.stderr


def test_backfill_and_reload_recent_days_are_selections(tmp_path: Path, landing: Landing) -> None:
    for day, key in (("01", "a"), ("02", "b"), ("03", "c")):
        root = landing(f"2026/08/{day}/{key}.txt", f"{key}1,178500{day}000,user_id,u{key},web.x\n")
    db = tmp_path / "w.duckdb"
    load.load_landing(db, root)
    before = (
        count(db, "SELECT count(*) FROM raw_rows"),
        count(db, "SELECT count(*) FROM touchpoints"),
    )
    recent = load.load_landing(db, root, selection=load.Selection(reload_days=2))
    assert [f.file for f in recent.files] == [
        "segment/2026/08/02/b.txt",
        "segment/2026/08/03/c.txt",
    ]
    backfill = load.load_landing(
        db,
        root,
        selection=load.Selection(since=date(2026, 8, 1), until=date(2026, 8, 1), force=True),
    )
    assert [f.file for f in backfill.files] == ["segment/2026/08/01/a.txt"]
    after = (
        count(db, "SELECT count(*) FROM raw_rows"),
        count(db, "SELECT count(*) FROM touchpoints"),
    )
    assert before == after  # reloading is idempotent
    assert load.file_date("ga4/events_20260803.json") == date(2026, 8, 3)
    assert load.file_date("salesforce/export-2026-10-31/Lead.csv") == date(2026, 10, 31)
    assert load.file_date("stripe/list.json") is None


def test_the_plan_is_plain_data_and_skips_what_is_loaded(tmp_path: Path, landing: Landing) -> None:
    """``journeymine load`` and the nightly flow share one plan: JSON in, JSON out, and the
    files it names come back as the same LandingFiles in the same order."""
    import json

    root = landing("a.txt", A)
    landing("b.txt", B)
    (root / "not-a-source").mkdir()
    fresh = load.plan_load(None, root)
    assert json.loads(json.dumps(fresh)) == fresh
    files = load.planned_files(json.loads(json.dumps(fresh)))
    scan = load.scan_landing(root)
    assert files == scan.files  # same paths, same sha256, same order
    assert fresh["skipped"] == 0 and fresh["unknown_folders"] == ["not-a-source"]
    db = tmp_path / "w.duckdb"
    load.load_landing(db, root)
    (root / "segment" / "a.txt").unlink()
    landing("c.txt", B)
    with duckdb.connect(str(db), read_only=True) as con:
        night = load.plan_load(con, root)
    assert night["files"] == {
        "segment": [["segment/c.txt", load.sha256_of(root / "segment/c.txt")]]
    }
    assert night["skipped"] == 1 and night["gone_files"] == ["segment/a.txt"]
    report = load.report_of(night, "r1", ["segment/x: broken"])
    assert (report.skipped_files, report.gone_files, report.errors) == (
        1,
        ["segment/a.txt"],
        ["segment/x: broken"],
    )


def test_duplicates_match_a_reference_over_two_nights(tmp_path: Path, landing: Landing) -> None:
    """Which copy of a record is loaded and which is a duplicate, and the order events are
    numbered in, against a plain Python walk of the files in load order: a record is loaded
    the first time its key is seen (earlier nights first, then files by path, then lines)."""
    import random

    rng = random.Random(11)
    db = tmp_path / "w.duckdb"
    seen: set[str] = set()
    expected: dict[tuple[str, int], bool] = {}  # (file, line) -> is a duplicate
    order: list[tuple[str, int]] = []  # every row, loaded or not, in load order
    for night in range(2):
        nightly = {}
        for n in range(4):
            keys = [f"k{rng.randrange(40)}" for _ in range(rng.randrange(0, 12))]
            lines = "".join(f"{k},{1785000000 + i},user_id,u{k},act\n" for i, k in enumerate(keys))
            nightly[f"segment/n{night}/f{n}.txt"] = keys
            root = landing(f"n{night}/f{n}.txt", lines)
        for file in sorted(nightly):
            for line, key in enumerate(nightly[file], start=1):
                expected[(file, line)] = key in seen
                order.append((file, line))
                seen.add(key)
        load.load_landing(db, root)
    with duckdb.connect(str(db), read_only=True) as con:
        placed = {
            (f, ln): kind == "dup"
            for kind in ("raw", "dup")
            for f, ln in con.execute(f"SELECT file, line FROM {kind}_rows").fetchall()
        }
        numbered = con.execute(
            "SELECT file, line FROM (FROM raw_events UNION ALL FROM dup_events) ORDER BY seq"
        ).fetchall()
        counts = con.execute(
            "SELECT sum(rows_loaded), sum(duplicates) FROM load_manifest"
        ).fetchall()
    assert placed == expected
    assert numbered == order
    dups = sum(expected.values())
    assert counts == [(len(expected) - dups, dups)]
    assert 0 < dups < len(expected)  # the draw holds both kinds (else the test proves little)


def test_each_phase_commits_in_the_working_copy_and_a_kill_after_them_changes_nothing(
    tmp_path: Path, landing: Landing, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, db = loaded_a(tmp_path, landing)
    landing("b.txt", B)
    seen: list[tuple[int, int]] = []
    build = touchpoints.build

    def build_and_look(con: duckdb.DuckDBPyConnection, fixups: object = ()) -> int:
        # another transaction on the same working copy sees only what was committed
        with con.cursor() as other:
            rows = other.execute(
                "SELECT (SELECT count(*) FROM raw_rows WHERE file = 'segment/b.txt'),"
                " (SELECT count(*) FROM identity_nodes WHERE node_id = 'a2')"
            ).fetchall()
        seen.append(rows[0])
        return build(con, fixups)  # type: ignore[arg-type]

    monkeypatch.setattr(touchpoints, "build", build_and_look)
    load.load_landing(db, root)
    assert seen == [(1, 1)]  # the rows loaded and the stitch committed before the rebuild
    assert count(db, "SELECT count(*) FROM touchpoints WHERE person_id IS NULL") == 0

    # A process killed in the rebuild, after those commits, leaves the published file as it was.
    landing("c.txt", "k5,1785000300,anonymous_id,a3,web.page_view:/docs\n")
    assert load_killed_in("touchpoints.build", db, root) == 9
    assert set(manifest(db)) == {"segment/a.txt", "segment/b.txt"}
    assert count(db, "SELECT count(*) FROM identity_nodes WHERE node_id = 'a3'") == 0
    load.load_landing(db, root)  # the next run completes it
    assert count(db, "SELECT count(*) FROM touchpoints WHERE file = 'segment/c.txt'") == 1
