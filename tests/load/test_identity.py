"""Identity stitching on hand-built links: transitive merges, shared emails, conflicting ids."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from journeymine import identity, load

pytestmark = pytest.mark.usefixtures("fake_parser")

Landing = Callable[[str, str], Path]


def person_of(db: Path) -> dict[tuple[str, str], int]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT node_type, node_id, person_id FROM identity_nodes").fetchall()
    return {(t, v): p for t, v, p in rows}


def test_transitive_links_make_one_person(tmp_path: Path, landing: Landing) -> None:
    root = landing(
        "a.txt",
        "e1,1785000000,anonymous_id,dev1,web.page_view:/,user_id,u1\n"
        "e2,1785000001,anonymous_id,dev2,web.page_view:/,user_id,u1\n"
        "e3,1785000002,user_id,u1,web.identified,email,jo@x.io\n"
        "e4,1785000003,sf_lead,00Q1,crm.lead_created,email,jo@x.io\n"
        "e5,1785000004,stripe_customer,cus_1,billing.customer_created,user_id,u1\n",
    )
    db = tmp_path / "w.duckdb"
    report = load.load_landing(db, root)
    ids = person_of(db)
    assert len(set(ids.values())) == 1 and report.persons == 1
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(DISTINCT person_id) FROM touchpoints").fetchone() == (1,)
        why = identity.explain_person(con, next(iter(ids.values())))
    assert sorted(why.rule) == ["fake_link"] * 5 and not why.refused.any()


def test_shared_email_does_not_merge_two_users(tmp_path: Path, landing: Landing) -> None:
    root = landing(
        "a.txt",
        "e1,1785000000,user_id,u1,web.identified,email,info@acme.io\n"
        "e2,1785000100,user_id,u2,web.identified,email,info@acme.io\n",
    )
    db = tmp_path / "w.duckdb"
    load.load_landing(db, root)
    ids = person_of(db)
    assert ids[("user_id", "u1")] != ids[("user_id", "u2")]
    # The earlier link wins the mailbox; the later one is refused and explained.
    assert ids[("email", "info@acme.io")] == ids[("user_id", "u1")]
    with duckdb.connect(str(db), read_only=True) as con:
        why = identity.explain_person(con, ids[("user_id", "u2")])
    refused = why[why.refused]
    assert len(refused) == 1 and "two different user_ids" in refused.reason.iloc[0]


def test_conflicting_ids_on_one_device_stay_apart(tmp_path: Path, landing: Landing) -> None:
    root = landing(
        "a.txt",
        "e1,1785000000,anonymous_id,shared,web.page_view:/,user_id,u1\n"
        "e2,1785000100,anonymous_id,shared,web.page_view:/,user_id,u2\n",
    )
    db = tmp_path / "w.duckdb"
    load.load_landing(db, root)
    ids = person_of(db)
    assert ids[("user_id", "u1")] != ids[("user_id", "u2")]
    assert ids[("anonymous_id", "shared")] == ids[("user_id", "u1")]


def test_email_matching_can_be_switched_off(tmp_path: Path, landing: Landing) -> None:
    root = landing(
        "a.txt",
        "e1,1785000000,user_id,u1,web.identified,email,jo@x.io\n"
        "e2,1785000100,sf_lead,00Q1,crm.lead_created,email,jo@x.io\n",
    )
    db = tmp_path / "w.duckdb"
    load.load_landing(db, root, match_on_email=False)
    ids = person_of(db)
    assert ids[("user_id", "u1")] != ids[("sf_lead", "00Q1")]
    db2 = tmp_path / "w2.duckdb"
    load.load_landing(db2, root)
    ids2 = person_of(db2)
    assert ids2[("user_id", "u1")] == ids2[("sf_lead", "00Q1")]


def test_a_new_link_merges_without_renumbering_anyone_else(
    tmp_path: Path, landing: Landing
) -> None:
    root = landing(
        "a.txt",
        "e1,1785000000,anonymous_id,a1,web.page_view:/\n"
        "e2,1785000001,anonymous_id,a2,web.page_view:/\n"
        "e3,1785000002,anonymous_id,a3,web.page_view:/\n",
    )
    db = tmp_path / "w.duckdb"
    load.load_landing(db, root)
    before = person_of(db)
    landing("b.txt", "e4,1785000100,anonymous_id,a3,web.page_view:/,anonymous_id,a1\n")
    report = load.load_landing(db, root)
    after = person_of(db)
    assert report.new_merges == 1
    keep = min(before[("anonymous_id", "a1")], before[("anonymous_id", "a3")])
    assert after[("anonymous_id", "a1")] == after[("anonymous_id", "a3")] == keep
    assert after[("anonymous_id", "a2")] == before[("anonymous_id", "a2")]
    with duckdb.connect(str(db), read_only=True) as con:
        merges = con.execute(
            "SELECT merged_person_id, into_person_id FROM person_merges"
        ).fetchall()
    gone = max(before[("anonymous_id", "a1")], before[("anonymous_id", "a3")])
    assert merges == [(gone, keep)]
