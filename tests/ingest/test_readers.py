"""An analyst's open read-only connection in another process never makes the night fail."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from journeymine import warehouse
from journeymine.ingest import load
from tests.ingest.test_load import count

pytestmark = pytest.mark.usefixtures("fake_parser")

Landing = Callable[[str, str], Path]

READER = textwrap.dedent(
    """
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    query = "SELECT count(*) FROM touchpoints"
    print(con.execute(query).fetchone()[0], flush=True)
    sys.stdin.readline()  # hold the connection open until told to look again
    print(con.execute(query).fetchone()[0], flush=True)
    """
)


def test_a_load_succeeds_while_another_process_holds_a_reader(
    tmp_path: Path, landing: Landing
) -> None:
    root = landing("a.txt", "m1,1785000000,user_id,u1,web.one\n")
    db = tmp_path / "w.duckdb"
    load.load_landing(db, root)
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None and reader.stdin is not None
        assert reader.stdout.readline().strip() == "1"  # the reader is open now
        landing("b.txt", "m2,1785000100,user_id,u1,web.two\n")
        report = load.load_landing(db, root)
        assert [f.file for f in report.files] == ["segment/b.txt"]
        assert count(db, "SELECT count(*) FROM touchpoints") == 2  # a new reader sees the load
        reader.stdin.write("again\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == "1"  # the old one keeps its complete state
    finally:
        reader.kill()
        reader.communicate()  # reaps it and closes its pipes
    with duckdb.connect(str(db)) as con:  # the published file is a whole warehouse, writable
        assert con.execute("SELECT count(*) FROM load_manifest").fetchone() == (2,)


def test_a_failed_transaction_publishes_nothing_and_leaves_no_copy(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    with warehouse.transaction(db) as con:
        con.execute("CREATE TABLE notes (n INTEGER)")
        con.execute("INSERT INTO notes VALUES (1)")
    with pytest.raises(RuntimeError, match="half way"), warehouse.transaction(db) as con:
        con.execute("INSERT INTO notes VALUES (2)")
        raise RuntimeError("half way")
    assert count(db, "SELECT sum(n) FROM notes") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.duckdb", "w.duckdb.lock"]
