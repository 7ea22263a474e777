"""A night's recomputed identifiers stay nodes only while an event or a person edge names them,
as after a full rebuild: the night knows which of them its own events name, and must not keep
one that nothing names any more (a deal's contact role that stopped being the one that counts).

The raw rows are written by hand (run by run, as a load writes them), so that an identifier
can be named by a link alone, which no parser's row does without an event of its own."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from journeymine import warehouse
from journeymine.canonical import identity, touchpoints

DAY0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Night:
    """The raw rows of one run: each event or link is a row of its own file."""

    def __init__(self, con: duckdb.DuckDBPyConnection, run_id: str, first_seq: int) -> None:
        self.con, self.run_id, self.seq, self.line = con, run_id, first_seq, 0
        self.file = f"hand/{run_id}.txt"

    def _row(self) -> int:
        self.line += 1
        self.con.execute(
            "INSERT INTO raw_rows VALUES ('hand', ?, ?, ?, '{}', ?)",
            [self.file, self.line, f"{self.run_id}-{self.line}", self.run_id],
        )
        return self.line

    def event(self, day: float, kind: str, value: str, activity: str) -> None:
        line = self._row()
        self.con.execute(
            "INSERT INTO raw_events VALUES (?, 'hand', ?, ?, ?, ?, ?, 'customer', ?, '', ?, ?, "
            "NULL, NULL, NULL, NULL, '{}')",
            [self.seq, self.file, line, f"e{self.seq}", activity, activity,
             DAY0 + timedelta(days=day), kind, value],
        )  # fmt: skip
        self.seq += 1

    def link(self, day: float, src: tuple[str, str], dst: tuple[str, str], rule: str) -> None:
        line = self._row()
        self.con.execute(
            "INSERT INTO raw_edges VALUES ('hand', ?, ?, ?, ?, ?, ?, ?, ?)",
            [self.file, line, *src, *dst, rule, DAY0 + timedelta(days=day)],
        )


def stitch(db: Path, run_id: str, incremental: bool) -> str:
    con = warehouse.connect(db)
    con.begin()
    result = identity.stitch(con, run_id, incremental=incremental)
    touchpoints.build(con)
    con.commit()
    con.close()
    return result.mode


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return sorted(con.execute(sql).fetchall(), key=repr)


CONTACT_A, CONTACT_B = ("sf_contact", "003A"), ("sf_contact", "003B")
DEAL = ("sf_opportunity", "006D")


def test_a_contact_whose_role_stops_counting_is_no_longer_a_node(tmp_path: Path) -> None:
    night, rebuilt = tmp_path / "night.duckdb", tmp_path / "rebuilt.duckdb"
    con = warehouse.connect(night)
    first = Night(con, "run-1", 1)
    first.event(0, *DEAL, "crm.opportunity_created")
    first.event(0, "anonymous_id", "a1", "web.page_view")
    first.link(1, CONTACT_B, DEAL, "sf_contact_role")  # the deal's only role: it counts
    con.close()
    assert stitch(night, "run-1", incremental=False) == "full"
    nodes = "SELECT node_type, node_id, person_id FROM identity_nodes"
    assert ("sf_contact", "003B") in [r[:2] for r in rows(night, nodes)]
    shutil.copy(night, rebuilt)
    for db in (night, rebuilt):
        con = warehouse.connect(db)
        second = Night(con, "run-2", 3)
        second.event(2, "anonymous_id", "a1", "web.page_view")
        # The primary role counts now: 003B is named by nothing, 003A joins the deal's person.
        second.link(2, CONTACT_A, DEAL, "sf_contact_role_primary")
        con.close()
    assert stitch(night, "run-2", incremental=True).startswith("incremental: ")
    assert stitch(rebuilt, "run-2", incremental=False) == "full"
    found = rows(night, nodes)
    deal = [p for t, v, p in found if (t, v) == DEAL]
    assert [(t, v) for t, v, p in found if p in deal] == [CONTACT_A, DEAL]
    assert ("sf_contact", "003B") not in [r[:2] for r in found]
    for sql in (nodes, "SELECT * FROM touchpoints", "SELECT * FROM persons"):
        assert rows(night, sql) == rows(rebuilt, sql)
