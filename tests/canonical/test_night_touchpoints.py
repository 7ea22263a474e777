"""A night's touchpoints after a merge: the merged person's rows are relabelled, not reread,
and end as a full rebuild of the same two nights leaves them."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from journeymine.canonical.touchpoints import _id_ranges
from journeymine.ingest import load

pytestmark = pytest.mark.usefixtures("fake_parser")

Landing = Callable[[str, str], Path]


def table(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def two_nights(tmp_path: Path, landing: Landing, first: str, second: str) -> tuple[Path, Path]:
    """Night 1, then night 2 loaded incrementally and, into a copy, with the full rebuild."""
    root = landing("a.txt", first)
    night, rebuilt = tmp_path / "night.duckdb", tmp_path / "rebuilt.duckdb"
    load.load_landing(night, root)
    shutil.copy(night, rebuilt)
    landing("b.txt", second)
    assert load.load_landing(night, root).stitch.startswith("incremental")
    assert load.load_landing(rebuilt, root, incremental=False).stitch.startswith("full")
    return night, rebuilt


TOUCHPOINTS = "SELECT * FROM touchpoints ORDER BY event_id"
PERSONS = "SELECT * FROM persons ORDER BY person_id"


def test_a_merged_persons_touchpoints_move_to_the_person_it_joined(
    tmp_path: Path, landing: Landing
) -> None:
    night, rebuilt = two_nights(
        tmp_path,
        landing,
        "e1,1785000000,anonymous_id,a1,web.page_view:/\n"
        "e2,1785000010,anonymous_id,a1,web.page_view:/\n"
        "e3,1785000020,anonymous_id,a3,web.page_view:/\n"
        "e4,1785000030,anonymous_id,a2,web.page_view:/\n",
        "e5,1785000100,anonymous_id,a3,web.page_view:/,anonymous_id,a1\n",  # a3 joins a1
    )
    by_event = {row[0]: row[1] for row in table(night, TOUCHPOINTS)}
    # person ids in (type, id) order: a1 1, a2 2, a3 3; the merge keeps the smaller
    assert by_event == {1: 1, 2: 1, 3: 1, 4: 2, 5: 1}
    assert table(
        night,
        "SELECT person_id, events, epoch(first_seen), epoch(last_seen) "
        "FROM persons ORDER BY person_id",
    ) == [  # fmt: skip
        (1, 4, 1785000000, 1785000100),
        (2, 1, 1785000030, 1785000030),
    ]
    for sql in (TOUCHPOINTS, PERSONS):
        assert table(night, sql) == table(rebuilt, sql)


def test_a_person_joining_one_with_an_account_takes_that_account(
    tmp_path: Path, landing: Landing
) -> None:
    # a0's person holds u1, of the group g1 (an account from the start); a9 is anonymous
    night, rebuilt = two_nights(
        tmp_path,
        landing,
        "e1,1785000000,anonymous_id,a0,web.page_view:/,user_id,u1\n"
        "e2,1785000010,user_id,u1,web.group,segment_group,g1\n"
        "e3,1785000020,anonymous_id,a9,web.page_view:/\n",
        "e4,1785000100,anonymous_id,a9,web.identified,user_id,u1\n",  # a9 is u1
    )
    # a9's old page view moves to person 1, with the account person 1 had all along: the
    # same ids and periods as before for person 1, so only the comparison of the accounts
    # over time says a9's rows cannot keep their account
    rows = table(night, "SELECT event_id, person_id, account_id FROM touchpoints ORDER BY 1")
    account = table(night, "SELECT account_id FROM account_nodes")[0][0]
    assert account is not None
    assert rows == [(1, 1, account), (2, 1, account), (3, 1, account), (4, 1, account)]
    for sql in (TOUCHPOINTS, PERSONS):
        assert table(night, sql) == table(rebuilt, sql)


def test_a_merge_hands_an_account_link_to_the_person_it_joined(
    tmp_path: Path, landing: Landing
) -> None:
    # u1's person (2) is of the group g1; a0's person (1) has no account and keeps its id
    night, rebuilt = two_nights(
        tmp_path,
        landing,
        "e1,1785000000,anonymous_id,a0,web.page_view:/\n"
        "e2,1785000010,user_id,u1,web.group,segment_group,g1\n",
        "e3,1785000100,anonymous_id,a0,web.identified,user_id,u1\n",  # a0 is u1
    )
    account = table(night, "SELECT account_id FROM account_nodes")[0][0]
    assert table(night, "SELECT person_id, account_id, valid_from, valid_to "
                        "FROM person_accounts") == [(1, account, None, None)]  # fmt: skip
    rows = table(night, "SELECT event_id, person_id, account_id FROM touchpoints ORDER BY 1")
    assert rows == [(1, 1, account), (2, 1, account), (3, 1, account)]
    assert table(night, "SELECT person_id, account_id FROM persons") == [(1, account)]
    for sql in (TOUCHPOINTS, PERSONS, "SELECT * FROM account_links ORDER BY ALL"):
        assert table(night, sql) == table(rebuilt, sql)


def test_a_known_persons_first_link_to_an_account_gives_its_touchpoints_that_account(
    tmp_path: Path, landing: Landing
) -> None:
    # u1's person moves nowhere: only the search from the ends of the night's linking edge
    # finds that its links changed
    night, rebuilt = two_nights(
        tmp_path,
        landing,
        "e1,1785000000,user_id,u1,web.page_view:/\n",
        "e2,1785000100,user_id,u1,web.group,segment_group,g1\n",  # u1 joins the group g1
    )
    account = table(night, "SELECT account_id FROM account_nodes")[0][0]
    assert account is not None
    assert table(night, "SELECT person_id, account_id FROM person_accounts") == [(1, account)]
    rows = table(night, "SELECT event_id, person_id, account_id FROM touchpoints ORDER BY 1")
    assert rows == [(1, 1, account), (2, 1, account)]
    for sql in (TOUCHPOINTS, PERSONS, "SELECT * FROM account_links ORDER BY ALL"):
        assert table(night, sql) == table(rebuilt, sql)


@pytest.mark.parametrize("parts", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("top", [0, 1, 2, 7, 100])
def test_id_ranges_hold_every_id_once_in_order(top: int, parts: int) -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE ids AS SELECT range AS person_id FROM range(?)", [top + 1])
    found = [
        [
            row[0]
            for row in con.execute(f"SELECT person_id FROM ids WHERE {mine} ORDER BY 1").fetchall()
        ]
        for mine in _id_ranges("person_id", top, parts)
    ]
    assert len(found) == parts
    assert [i for part in found for i in part] == list(range(top + 1))
