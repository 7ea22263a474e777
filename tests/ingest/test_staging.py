"""Staging streams each file to Parquet parts: bounded memory, and a crash mid-way costs nothing."""

from __future__ import annotations

import gc
import gzip
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import pytest

from journeymine.ingest import load, stage
from journeymine.ingest.sources._common import RawRow
from tests.ingest import fake_source
from tests.ingest.test_load import count, manifest

pytestmark = pytest.mark.usefixtures("fake_parser")

Landing = Callable[[str, str], Path]


def lines(n: int, start: int = 0) -> str:
    """``n`` distinct records for user u1, one second apart."""
    return "".join(
        f"m{i},{1785000000 + i},user_id,u1,web.step{i}\n" for i in range(start, start + n)
    )


def test_a_file_larger_than_a_batch_is_written_in_parts_and_loads_whole(
    tmp_path: Path, landing: Landing, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stage, "BATCH_ROWS", 3)
    root = landing("big.txt", lines(7) + "broken\n" + lines(1, start=2))  # 9 rows: 1 bad, 1 dup
    files = load.find_landing_files(root)
    staged = load.stage_files(files, tmp_path / "stage")
    parts = sorted(p.name for p in (tmp_path / "stage" / "rows").glob("0*.parquet"))
    assert parts == ["0000000-00000.parquet", "0000000-00001.parquet", "0000000-00002.parquet"]
    with duckdb.connect() as con:
        per_part = con.execute(
            "SELECT count(*) FROM read_parquet(?, filename = true) GROUP BY filename ORDER BY 1",
            [str(tmp_path / "stage" / "rows" / "*.parquet")],
        ).fetchall()
    assert sorted(n for (n,) in per_part) == [2, 3, 3]  # 8 accepted rows, 3 per batch
    assert staged.files == ["segment/big.txt"] and staged.errors == []
    db = tmp_path / "w.duckdb"
    report = load.load_landing(db, root)
    assert manifest(db) == {"segment/big.txt": (9, 7, 1, 1)}
    assert report.touchpoints == 7
    assert count(db, "SELECT count(DISTINCT activity) FROM touchpoints") == 7


def test_events_are_numbered_in_load_order_across_parts_records_and_runs(
    tmp_path: Path, landing: Landing, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``seq`` is a file's start plus the event's place in it: files in load order, then lines,
    then a record's events in order, duplicates included, rejects skipped, a next run after."""
    parse_row = fake_source._row

    def steps(line: int, text: str) -> RawRow:  # "web.a+web.b": one event per step
        row = parse_row(line, text)
        first = row.events[0]
        row.events[:] = [
            first._replace(event_key=f"{first.event_key}.{n}", activity=step)
            for n, step in enumerate(first.activity.split("+"))
        ]
        return row

    monkeypatch.setattr(fake_source, "_row", steps)
    monkeypatch.setattr(stage, "BATCH_ROWS", 2)  # a.txt spans three parts
    a = ["k1,1785000000,user_id,u1,web.a+web.b", "k2,1785000001,user_id,u1,web.c", "broken"]
    a += ["k3,1785000002,user_id,u2,web.d+web.e+web.f", "k1,1785000003,user_id,u1,web.x+web.y"]
    landing("a.txt", "\n".join(a) + "\n")
    root = landing("b.txt", "k4,1785000004,user_id,u3,web.g+web.h\n")
    db = tmp_path / "w.duckdb"
    load.load_landing(db, root)
    load.load_landing(db, landing("c.txt", "k5,1785000005,user_id,u4,web.i+web.j\n"))
    with duckdb.connect(str(db), read_only=True) as con:
        numbered = con.execute(
            "SELECT seq, file, line, activity FROM (FROM raw_events UNION ALL FROM dup_events) "
            "ORDER BY seq"
        ).fetchall()
    expected = [
        ("a.txt", 1, "web.a"), ("a.txt", 1, "web.b"), ("a.txt", 2, "web.c"),
        ("a.txt", 4, "web.d"), ("a.txt", 4, "web.e"), ("a.txt", 4, "web.f"),
        ("a.txt", 5, "web.x"), ("a.txt", 5, "web.y"),  # k1 again: a duplicate, still numbered
        ("b.txt", 1, "web.g"), ("b.txt", 1, "web.h"),
        ("c.txt", 1, "web.i"), ("c.txt", 1, "web.j"),  # the next run goes on from 10
    ]  # fmt: skip
    assert numbered == [
        (seq, f"segment/{file}", line, act) for seq, (file, line, act) in enumerate(expected, 1)
    ]


def test_a_crash_between_batches_leaves_the_warehouse_and_the_next_run_cleans_up(
    tmp_path: Path, landing: Landing
) -> None:
    root = landing("a.txt", lines(2))
    db = tmp_path / "w.duckdb"
    load.load_landing(db, root)
    landing("b.txt", lines(10, start=100))
    # The child stages b.txt in batches of 3 rows and dies (no clean-up at all) after the
    # second part is written: half a file on disk in staging, nothing in the warehouse.
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(Path.cwd())!r})
        from journeymine.ingest import load, stage
        from tests.ingest import fake_source
        stage.parser_for = lambda source: fake_source.parse_file
        stage.BATCH_ROWS = 3
        flush, calls = stage._Parts.flush, []
        def dying_flush(self):
            calls.append(1)
            if len(calls) == 3:
                os._exit(9)
            flush(self)
        stage._Parts.flush = dying_flush
        load.load_landing({str(db)!r}, {str(root)!r})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], env=os.environ.copy(), check=False)
    assert proc.returncode == 9
    staging = load.staging_root(db)
    left = list(staging.iterdir())
    assert len(left) == 1 and len(list((left[0] / "rows").glob("0*.parquet"))) == 2
    assert not (left[0] / "files.parquet").exists()
    assert manifest(db) == {"segment/a.txt": (2, 2, 0, 0)}
    assert count(db, "SELECT count(*) FROM raw_rows") == 2
    report = load.load_landing(db, root)
    assert [f.file for f in report.files] == ["segment/b.txt"]
    assert manifest(db)["segment/b.txt"] == (10, 10, 0, 0)
    assert list(staging.iterdir()) == []  # the killed run's folder and this run's are gone


def load_folder(db: Path, folder: Path) -> tuple[list[load.FileReport], list[tuple[str, int]]]:
    with duckdb.connect(str(db)) as con:
        load.warehouse.ensure_schema(con)
        reports = load.load_staged(con, [folder], "run1")
        events = con.execute("SELECT file, line FROM raw_events ORDER BY seq").fetchall()
    return reports, events


def test_files_parsed_in_parallel_load_in_landing_order(
    tmp_path: Path, landing: Landing, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(6):  # same key m0 in every file: the first file in path order must win it
        root = landing(f"d{i}.txt", lines(1) + lines(3, start=10 * (i + 1)))
    files = load.find_landing_files(root)
    together = load.stage_files(files, tmp_path / "together", workers=1)
    monkeypatch.setattr(stage, "CHUNK_BYTES", 1)  # one file per task, two processes
    seen: list[tuple[int, int, str]] = []
    apart = load.stage_files(files, tmp_path / "apart", lambda *done: seen.append(done), workers=2)
    assert sorted(done for done, _, _ in seen) == [1, 2, 3, 4, 5, 6]  # in any order
    assert {total for _, total, _ in seen} == {6}
    assert sorted(file for *_, file in seen) == [f"segment/d{i}.txt" for i in range(6)]
    assert len(list((tmp_path / "together" / "rows").glob("0*"))) == 1  # small files share
    assert len(list((tmp_path / "apart" / "rows").glob("0*"))) == 6
    assert apart.files == together.files == [f"segment/d{i}.txt" for i in range(6)]
    reports, events = load_folder(tmp_path / "apart.duckdb", apart.folder)
    assert [(r.file, r.rows_loaded, r.duplicates) for r in reports] == [
        ("segment/d0.txt", 4, 0),
        *((f"segment/d{i}.txt", 3, 1) for i in range(1, 6)),
    ]
    expected = [("segment/d0.txt", 1)] + [
        (f"segment/d{i}.txt", line) for i in range(6) for line in (2, 3, 4)
    ]
    assert events == sorted(expected)
    assert load_folder(tmp_path / "together.duckdb", together.folder) == (reports, events)


def test_parallel_staging_from_a_thread_starts_clean_workers(
    tmp_path: Path, landing: Landing, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(3):
        root = landing(f"t{i}.txt", lines(2, start=10 * i))
    files = load.find_landing_files(root)
    monkeypatch.setattr(stage, "CHUNK_BYTES", 1)
    with ThreadPoolExecutor(1) as threads:  # as under Prefect: workers come from a forkserver
        staged = threads.submit(load.stage_files, files, tmp_path / "s", workers=2).result()
    assert staged.files == ["segment/t0.txt", "segment/t1.txt", "segment/t2.txt"]
    reports, events = load_folder(tmp_path / "w.duckdb", staged.folder)
    assert [r.rows_loaded for r in reports] == [2, 2, 2]
    assert events == [(f"segment/t{i}.txt", line) for i in range(3) for line in (1, 2)]


def test_parsing_runs_without_the_cyclic_collector_which_comes_back_after(
    tmp_path: Path, landing: Landing, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = landing("g.txt", lines(3))
    files = load.find_landing_files(root)
    seen: list[bool] = []
    parse_one = stage.stage_one

    def watched(*args: Any, **kwargs: Any) -> int | str:
        seen.append(gc.isenabled())
        return parse_one(*args, **kwargs)

    monkeypatch.setattr(stage, "stage_one", watched)
    assert gc.isenabled()
    staged = load.stage_files(files, tmp_path / "ok", workers=1)
    assert staged.files == ["segment/g.txt"] and seen == [False] and gc.isenabled()

    def broken(*args: Any, **kwargs: Any) -> int | str:
        raise MemoryError  # not a record's fault: it escapes staging

    monkeypatch.setattr(stage, "stage_one", broken)
    with pytest.raises(MemoryError):
        load.stage_files(files, tmp_path / "broken", workers=1)
    assert gc.isenabled()  # back on after a failure too
    gc.disable()  # and left off when the caller had turned it off
    try:
        with stage.gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_chunks_count_what_a_parser_reads_and_go_out_largest_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = lines(50).encode()
    (tmp_path / "small.txt").write_bytes(text[:100])
    (tmp_path / "middle.txt").write_bytes(text[:1000])
    (tmp_path / "big.txt.gz").write_bytes(gzip.compress(text, mtime=0))
    assert (tmp_path / "big.txt.gz").stat().st_size < 1000 < len(text)  # compresses well
    assert stage.input_bytes(tmp_path / "big.txt.gz") == len(text)  # what the parser reads
    assert stage.input_bytes(tmp_path / "middle.txt") == 1000
    assert stage.input_bytes(tmp_path / "gone.txt") == 0
    names = ["small.txt", "middle.txt", "big.txt.gz"]
    files = [load.LandingFile("segment", tmp_path / n, f"segment/{n}", "") for n in names]
    jobs = [(order, stage.parser_for("segment"), f) for order, f in enumerate(files)]
    chunks = stage._chunks(jobs)  # 8 MB each: all three in one chunk, in load order
    assert [[order for order, _, _ in chunk] for chunk in chunks] == [[0, 1, 2]]
    monkeypatch.setattr(stage, "CHUNK_BYTES", 1)  # one file per chunk: the biggest goes first
    assert [[order for order, _, _ in chunk] for chunk in stage._chunks(jobs)] == [[2], [1], [0]]


def test_files_sharing_parts_keep_their_own_name_on_every_row(
    tmp_path: Path, landing: Landing, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stage, "BATCH_ROWS", 3)  # files cross parts, parts hold several files
    sizes = {"a.txt": 2, "b.txt": 5, "c.txt": 1, "d.txt": 4}
    for name, n in sizes.items():
        root = landing(name, lines(n, start=100 * len(name + str(n))) + "broken\n")
    staged = load.stage_files(load.find_landing_files(root), tmp_path / "s", workers=1)
    assert len(list((tmp_path / "s" / "rows").glob("0*.parquet"))) == 4  # 12 rows, 3 a part
    with duckdb.connect() as con:
        for table in ("rows", "events", "rejected"):
            found = con.execute(
                "SELECT source, file, line FROM read_parquet(?) ORDER BY ALL",
                [str(tmp_path / "s" / table / "*.parquet")],
            ).fetchall()
            if table == "rejected":  # the last line of each file
                expected = [("segment", f"segment/{f}", n + 1) for f, n in sizes.items()]
            else:
                expected = [
                    ("segment", f"segment/{f}", line)
                    for f, n in sizes.items()
                    for line in range(1, n + 1)
                ]
            assert found == expected, table
    assert staged.files == [f"segment/{f}" for f in sizes]
