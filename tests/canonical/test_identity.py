"""Identity stitching on hand-built links: transitive merges, shared emails, conflicting ids."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from journeymine.canonical import identity
from journeymine.ingest import load

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


def restitch(db: Path, max_user_ids_per_person: int) -> identity.StitchResult:
    with duckdb.connect(str(db)) as con:
        return identity.stitch(con, "again", max_user_ids_per_person=max_user_ids_per_person)


SHARED_MAILBOX = (
    "e1,1785000000,user_id,u1,web.identified,email,info@acme.io\n"
    "e2,1785000100,user_id,u2,web.identified,email,info@acme.io\n"
    "e3,1785000200,user_id,u3,web.identified,email,info@acme.io\n"
)


def test_one_user_id_per_person_keeps_a_shared_mailbox_apart(
    tmp_path: Path, landing: Landing
) -> None:
    db = tmp_path / "w.duckdb"
    load.load_landing(db, landing("a.txt", SHARED_MAILBOX))
    ids = person_of(db)
    assert len({ids[("user_id", u)] for u in ("u1", "u2", "u3")}) == 3
    with duckdb.connect(str(db), read_only=True) as con:
        refused = con.execute(
            "SELECT src_id, kept_apart_by, other_setting_merges FROM identity_conflicts "
            "ORDER BY src_id"
        ).fetchall()
        policy = identity.identity_quality(con)["policy"]
    # With two user ids allowed, u2 would join u1's mailbox; u3 would still be refused.
    assert refused == [
        ("u2", "max_user_ids_per_person=1", True),
        ("u3", "max_user_ids_per_person=1", False),
    ]
    assert (policy["other_setting"], policy["other_setting_would_merge"]) == (2, 1)
    assert policy["other_setting_persons"] == 2


def test_two_user_ids_per_person_merge_a_double_sign_up(tmp_path: Path, landing: Landing) -> None:
    db = tmp_path / "w.duckdb"
    load.load_landing(db, landing("a.txt", SHARED_MAILBOX))
    before = person_of(db)
    result = restitch(db, 2)
    ids = person_of(db)
    assert ids[("user_id", "u1")] == ids[("user_id", "u2")] == ids[("email", "info@acme.io")]
    assert ids[("user_id", "u3")] != ids[("user_id", "u1")]
    assert (result.persons, result.new_merges, result.conflicts) == (2, 1, 1)
    with duckdb.connect(str(db), read_only=True) as con:
        reason, kept_by, other = con.execute(
            "SELECT reason, kept_apart_by, other_setting_merges FROM identity_conflicts"
        ).fetchone() or ("", "", None)
        quality = identity.identity_quality(con)
        merges = con.execute(
            "SELECT merged_person_id, into_person_id FROM person_merges"
        ).fetchall()
    assert reason.startswith("would merge 3 different user_ids (u1, u2, u3) into one person")
    assert (kept_by, other) == ("max_user_ids_per_person=2", False)
    assert quality["refusals_by_rule"]["person"] == {"max_user_ids_per_person=2": 1}
    # Back to one user id per person, the u2 link that merged tonight would be refused.
    assert quality["policy"]["other_setting_would_refuse"] == 1
    assert merges == [(before[("user_id", "u2")], before[("user_id", "u1")])]


def test_the_user_id_cap_must_allow_one(tmp_path: Path, landing: Landing) -> None:
    db = tmp_path / "w.duckdb"
    load.load_landing(db, landing("a.txt", SHARED_MAILBOX))
    with pytest.raises(ValueError, match="max_user_ids_per_person must be at least 1, got 0"):
        restitch(db, 0)


def test_a_night_recomputes_the_persons_across_a_refusal_as_a_full_rebuild(
    tmp_path: Path, landing: Landing
) -> None:
    # night 1: u2's link to the mailbox is refused, u1 holds it
    root = landing("a.txt", SHARED_MAILBOX.split("e3,")[0])
    db = tmp_path / "w.duckdb"
    load.load_landing(db, root)
    # night 2 names only u2's side; recomputing u2 without u1 across the refusal would hand
    # the mailbox to u2 (no user id would stand in the way)
    landing("b.txt", "e4,1785000300,anonymous_id,d9,web.page_view:/,user_id,u2\n")
    report = load.load_landing(db, root)
    assert report.stitch.startswith("incremental")
    full = tmp_path / "full.duckdb"
    assert load.load_landing(full, root).stitch.startswith("full")
    for path in (db, full):
        ids = person_of(path)
        assert ids[("email", "info@acme.io")] == ids[("user_id", "u1")]
        assert ids[("anonymous_id", "d9")] == ids[("user_id", "u2")] != ids[("user_id", "u1")]
        with duckdb.connect(str(path), read_only=True) as con:
            refused = con.execute("SELECT src_id, dst_id FROM identity_conflicts").fetchall()
        assert refused == [("u2", "info@acme.io")]
    assert persons(db) == persons(full)  # the same persons (one load numbers them otherwise)


def persons(db: Path) -> set[frozenset[tuple[str, str]]]:
    groups: dict[int, set[tuple[str, str]]] = {}
    for node, person in person_of(db).items():
        groups.setdefault(person, set()).add(node)
    return {frozenset(nodes) for nodes in groups.values()}


def test_a_night_keeps_the_stored_edges_equal_to_the_raw_edges(
    tmp_path: Path, landing: Landing
) -> None:
    root = landing("a.txt", "e1,1785000100,anonymous_id,a1,web.page_view:/,user_id,u1\n")
    db = tmp_path / "w.duckdb"
    load.load_landing(db, root)
    # night 2 sees the same link again, once earlier and once later, and a new one
    landing(
        "b.txt",
        "e2,1785000000,anonymous_id,a1,web.page_view:/,user_id,u1\n"
        "e3,1785000200,anonymous_id,a1,web.page_view:/,user_id,u1\n"
        "e4,1785000300,anonymous_id,a2,web.page_view:/,user_id,u1\n",
    )
    assert load.load_landing(db, root).stitch.startswith("incremental")
    with duckdb.connect(str(db), read_only=True) as con:
        stored = con.execute(
            "SELECT src_id, dst_id, epoch(observed_at)::BIGINT, observations "
            "FROM identity_edges_stored ORDER BY ALL"
        ).fetchall()
        view = con.execute("FROM identity_edges_stored EXCEPT ALL FROM identity_edges").fetchall()
        back = con.execute("FROM identity_edges EXCEPT ALL FROM identity_edges_stored").fetchall()
    assert stored == [("a1", "u1", 1785000000, 3), ("a2", "u1", 1785000300, 1)]
    assert view == back == []
