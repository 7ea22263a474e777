"""Nothing is lost silently: replaced duplicates, deleted files, unreadable paths, stray folders."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from journeymine.ingest import load
from tests.ingest.test_load import count, manifest

pytestmark = pytest.mark.usefixtures("fake_parser")

Landing = Callable[[str, str], Path]
M1 = "m1,1785000000,user_id,u1,web.shared_message\n"
M2 = "m2,1785000100,user_id,u1,web.only_in_a\n"
M3 = "m3,1785000200,user_id,u2,web.only_in_b\n"


def activities(db: Path) -> list[str]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT activity FROM touchpoints ORDER BY activity").fetchall()
    return [a for (a,) in rows]


def test_a_record_stays_loaded_while_any_loaded_file_still_holds_it(
    tmp_path: Path, landing: Landing
) -> None:
    landing("a.txt", M1 + M2)
    root = landing("b.txt", M1 + M3)
    db = tmp_path / "w.duckdb"
    load.load_landing(db, root)
    assert manifest(db) == {"segment/a.txt": (2, 2, 0, 0), "segment/b.txt": (2, 1, 1, 0)}
    landing("a.txt", M2)  # the loaded copy of m1 leaves a.txt; b.txt still holds m1
    load.load_landing(db, root)
    assert activities(db) == ["web.only_in_a", "web.only_in_b", "web.shared_message"]
    assert count(db, "SELECT count(*) FROM raw_rows WHERE record_key = 'm1'") == 1
    assert count(db, "SELECT count(*) FROM raw_rows WHERE file = 'segment/b.txt'") == 2
    assert manifest(db) == {"segment/a.txt": (1, 1, 0, 0), "segment/b.txt": (2, 2, 0, 0)}
    assert count(db, "SELECT count(*) FROM dup_rows") == 0
    landing("b.txt", M3)  # now no file holds m1 any more: it goes
    load.load_landing(db, root)
    assert activities(db) == ["web.only_in_a", "web.only_in_b"]
    assert manifest(db) == {"segment/a.txt": (1, 1, 0, 0), "segment/b.txt": (1, 1, 0, 0)}


def test_a_changed_file_that_keeps_the_record_keeps_the_other_copy_a_duplicate(
    tmp_path: Path, landing: Landing
) -> None:
    landing("a.txt", M1 + M2)
    root = landing("b.txt", M1)
    db = tmp_path / "w.duckdb"
    load.load_landing(db, root)
    landing("a.txt", M1)  # m2 leaves a.txt; m1 is still in both
    load.load_landing(db, root)
    assert manifest(db) == {"segment/a.txt": (1, 1, 0, 0), "segment/b.txt": (1, 0, 1, 0)}
    assert activities(db) == ["web.shared_message"]


def test_a_deleted_landing_file_keeps_its_rows_and_is_listed_as_gone(
    tmp_path: Path, landing: Landing
) -> None:
    landing("a.txt", M2)
    root = landing("b.txt", M3)
    db = tmp_path / "w.duckdb"
    load.load_landing(db, root)
    (root / "segment" / "b.txt").unlink()
    report = load.load_landing(db, root)
    assert report.gone_files == ["segment/b.txt"]
    assert report.files == [] and report.skipped_files == 1
    assert activities(db) == ["web.only_in_a", "web.only_in_b"]
    assert set(manifest(db)) == {"segment/a.txt", "segment/b.txt"}
    assert load.load_landing(db, root, sources=["ga4"]).gone_files == []  # not asked about


@pytest.fixture
def locked_folder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], None]]:
    """Make a folder unreadable. Tests run as root here, where chmod cannot deny a read, so
    the denial is injected where os.walk lists a folder."""
    real_scandir = os.scandir
    locked: set[str] = set()

    def scandir(path: str) -> os.ScandirIterator[str]:
        if str(path) in locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    yield lambda folder: locked.add(str(folder))


def test_unreadable_files_and_folders_are_named_and_the_rest_loads(
    tmp_path: Path, landing: Landing, locked_folder: Callable[[Path], None]
) -> None:
    root = landing("good.txt", M2)
    landing("private/c.txt", M3)
    segment = root / "segment"
    (segment / "loop.txt").symlink_to("loop.txt")  # reading it fails: too many levels of links
    (segment / "dangling.txt").symlink_to("nowhere.txt")
    locked_folder(segment / "private")
    db = tmp_path / "w.duckdb"
    report = load.load_landing(db, root)
    assert [f.file for f in report.files] == ["segment/good.txt"]
    assert report.errors == [
        "segment/private: cannot read folder: Permission denied",
        "segment/dangling.txt: cannot read: No such file or directory",
        "segment/loop.txt: cannot read: Too many levels of symbolic links",
    ]
    assert activities(db) == ["web.only_in_a"]


def test_a_file_that_vanishes_before_it_is_parsed_is_named(
    tmp_path: Path, landing: Landing
) -> None:
    root = landing("a.txt", M2)
    landing("b.txt", M3)
    files = load.find_landing_files(root)
    (root / "segment" / "a.txt").unlink()
    staged = load.stage_files(files, tmp_path / "stage", workers=1)
    assert staged.files == ["segment/b.txt"]
    assert staged.errors == ["segment/a.txt: cannot read: No such file or directory"]


def test_landing_folders_that_name_no_source_are_reported(tmp_path: Path, landing: Landing) -> None:
    root = landing("a.txt", M2)
    for folder in ("Segment", "intercom", ".cache"):  # a typo, a vendor not read yet, hidden
        (root / folder).mkdir()
        (root / folder / "x.txt").write_text(M3)
    report = load.load_landing(tmp_path / "w.duckdb", root)
    assert report.unknown_folders == ["Segment", "intercom"]  # hidden folders are not exports
    assert [f.file for f in report.files] == ["segment/a.txt"]
