"""A night that joins two accounts changes the account of touchpoints whose event names one of
the two account nodes, even when nothing else about their person changed: the night finds those
persons by the account nodes that changed id and rebuilds their touchpoints, as a full rebuild
of the same rows does."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

from journeymine import warehouse
from tests.canonical.test_night_named import DAY0, Night, rows, stitch

CY, DEE = ("user_id", "cy"), ("user_id", "dee")
GROUP, ACCOUNT = ("segment_group", "g_new"), ("sf_account", "001OLD")
CONTACT, EMAIL = ("sf_contact", "003C"), ("email", "cy@old.io")


def event_at(night: Night, day: float, who: tuple[str, str], at: tuple[str, str]) -> None:
    """An event of ``who`` naming the account node ``at`` (as a Salesforce or Segment row may)."""
    line = night._row()
    night.con.execute(
        "INSERT INTO raw_events VALUES (?, 'hand', ?, ?, ?, 'web.page_view', 'web.page_view', "
        "'customer', ?, '', ?, ?, NULL, NULL, ?, ?, '{}')",
        [night.seq, night.file, line, f"e{night.seq}", DAY0 + timedelta(days=day), *who, *at],
    )
    night.seq += 1


def test_an_unlinked_persons_event_follows_the_account_its_node_joined(tmp_path: Path) -> None:
    night, rebuilt = tmp_path / "night.duckdb", tmp_path / "rebuilt.duckdb"
    con = warehouse.connect(night)
    first = Night(con, "run-1", 1)
    first.event(0, *CY, "web.page_view")
    first.link(0, CY, GROUP, "segment_group")  # cy's person: the group's account
    first.link(0, CONTACT, ACCOUNT, "sf_contact_account")  # 003C's person: the Account's
    first.link(0, CONTACT, EMAIL, "sf_contact_email")
    event_at(first, 0, DEE, GROUP)  # dee holds no link: each event names an account node
    event_at(first, 0, DEE, ACCOUNT)
    con.close()
    assert stitch(night, "run-1", incremental=False) == "full"
    accounts = "SELECT node_type, node_id, account_id FROM account_nodes"
    before = {(t, v): a for t, v, a in rows(night, accounts)}
    assert before[GROUP] != before[ACCOUNT]  # two accounts, so far
    shutil.copy(night, rebuilt)
    for db in (night, rebuilt):
        con = warehouse.connect(db)
        # cy is 003C: one person linked to both account nodes, which become one account
        Night(con, "run-2", first.seq).link(1, CY, EMAIL, "segment_identify_email")
        con.close()
    assert stitch(night, "run-2", incremental=True).startswith("incremental: ")
    assert stitch(rebuilt, "run-2", incremental=False) == "full"
    after = {(t, v): a for t, v, a in rows(night, accounts)}
    assert after[GROUP] == after[ACCOUNT] == min(before.values())  # the older id is kept
    dee = (
        "SELECT t.event_id, t.account_id FROM touchpoints t JOIN identity_nodes n "
        "USING (person_id) WHERE n.node_type = 'user_id' AND n.node_id = 'dee'"
    )
    assert rows(night, dee) == [(2, after[GROUP]), (3, after[GROUP])]
    for sql in (accounts, "SELECT * FROM touchpoints", "SELECT * FROM persons"):
        assert rows(night, sql) == rows(rebuilt, sql)
