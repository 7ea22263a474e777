"""Account stitching on hand-made raw identity edges: one company across Segment, Salesforce and
Stripe; accounts the data keeps apart; a person moving company; stable ids across nights."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from journeymine import warehouse
from journeymine.canonical import identity, touchpoints
from journeymine.errors import WarehouseError

DAY0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(day: float) -> datetime:
    return DAY0 + timedelta(days=day)


def node(text: str) -> tuple[str, str]:
    kind, _, value = text.partition(":")
    return kind, value


@dataclass
class Raw:
    """Hand-made raw rows: events ``(day, "type:id", activity[, "sf_account:id"])`` and links
    ``(day, "type:id", "type:id", rule)``, written straight into the raw layer."""

    con: duckdb.DuckDBPyConnection
    seq: int = 0
    runs: list[str] = field(default_factory=list)

    def event(self, day: float, who: str, activity: str, account: str | None = None) -> None:
        self.seq += 1
        kind, value = node(who)
        acc_kind, acc_value = node(account) if account else (None, None)
        self.con.execute(
            "INSERT INTO raw_events VALUES (?, 'hand', 'hand.txt', ?, ?, ?, ?, 'customer', ?, "
            "'', ?, ?, NULL, NULL, ?, ?, '{}')",
            [self.seq, self.seq, f"e{self.seq}", activity, activity, at(day), kind, value]
            + [acc_kind, acc_value],
        )

    def link(self, day: float, src: str, dst: str, rule: str) -> None:
        self.seq += 1
        self.con.execute(
            "INSERT INTO raw_edges VALUES ('hand', 'hand.txt', ?, ?, ?, ?, ?, ?, ?)",
            [self.seq, *node(src), *node(dst), rule, at(day)],
        )

    def stitch(self, **settings: int) -> identity.StitchResult:
        self.runs.append(f"night{len(self.runs) + 1}")
        result = identity.stitch(self.con, self.runs[-1], **settings)
        touchpoints.build(self.con)
        return result

    def account_of(self, who: str) -> int:
        row = self.con.execute(
            "SELECT account_id FROM account_nodes WHERE node_type = ? AND node_id = ?",
            list(node(who)),
        ).fetchone()
        assert row is not None, f"{who} is no account node"
        return int(row[0])

    def person_of(self, who: str) -> int:
        row = self.con.execute(
            "SELECT person_id FROM identity_nodes WHERE node_type = ? AND node_id = ?",
            list(node(who)),
        ).fetchone()
        assert row is not None, f"{who} is no person node"
        return int(row[0])


@pytest.fixture
def raw(tmp_path: Path) -> Iterator[Raw]:
    con = warehouse.connect(tmp_path / "w.duckdb")
    yield Raw(con)
    con.close()


def acme_in_three_systems(raw: Raw) -> None:
    """Acme: a Segment group, a Salesforce Account with two contacts and an opportunity, a
    Stripe customer paid by Alice. Carol shares Acme's e-mail domain but is in Beta's group."""
    raw.event(0, "anonymous_id:a1", "web.page_view")
    raw.link(0, "anonymous_id:a1", "user_id:alice", "segment_identify")
    raw.link(0, "user_id:alice", "email:alice@acme.io", "segment_identify_email")
    raw.link(0, "user_id:alice", "segment_group:g_acme", "segment_group")
    raw.event(1, "sf_lead:00Q1", "crm.lead_created")
    raw.link(1, "sf_lead:00Q1", "email:alice@acme.io", "sf_lead_email")
    raw.event(2, "sf_lead:00Q1", "crm.lead_converted")
    raw.link(2, "sf_lead:00Q1", "sf_contact:003A", "sf_lead_converted")
    raw.link(2, "sf_contact:003A", "sf_account:001ACME", "sf_contact_account")
    raw.event(2, "sf_opportunity:006A", "crm.opportunity_created", "sf_account:001ACME")
    raw.link(2, "sf_opportunity:006A", "sf_account:001ACME", "sf_opportunity_account")
    raw.link(2, "sf_contact:003A", "sf_opportunity:006A", "sf_contact_role_primary")
    raw.event(3, "user_id:bob", "web.feature_used")
    raw.link(3, "user_id:bob", "segment_group:g_acme", "segment_group")
    raw.link(3, "sf_contact:003B", "sf_opportunity:006A", "sf_contact_role")
    raw.link(3, "sf_contact:003B", "email:bob@acme.io", "sf_contact_email")
    raw.link(3, "user_id:bob", "email:bob@acme.io", "segment_identify_email")
    raw.event(4, "stripe_customer:cus_acme", "billing.invoice_paid")
    raw.link(4, "stripe_customer:cus_acme", "user_id:alice", "stripe_customer_metadata")
    raw.event(5, "user_id:carol", "web.page_view")
    raw.link(5, "user_id:carol", "email:carol@acme.io", "segment_identify_email")
    raw.link(5, "user_id:carol", "segment_group:g_beta", "segment_group")


def test_a_company_in_segment_salesforce_and_stripe_is_one_account(raw: Raw) -> None:
    acme_in_three_systems(raw)
    result = raw.stitch()
    acme = raw.account_of("segment_group:g_acme")
    assert raw.account_of("sf_account:001ACME") == acme
    assert raw.account_of("stripe_customer:cus_acme") == acme
    assert raw.account_of("segment_group:g_beta") != acme  # the e-mail domain is no evidence
    assert result.accounts == 2
    # Every touchpoint of Alice, Bob and the deal is Acme's; Carol's are Beta's.
    tp = raw.con.execute("SELECT person_id, account_id FROM touchpoints").df()
    acme_people = {
        raw.person_of(p) for p in ("user_id:alice", "user_id:bob", "sf_opportunity:006A")
    }
    expected = [
        acme if p in acme_people else raw.account_of("segment_group:g_beta") for p in tp.person_id
    ]
    assert tp.account_id.tolist() == expected and len(tp) == 7
    why = identity.explain_account(raw.con, acme)
    assert "segment_group g_acme + sf_account 001ACME: 2 person(s) linked to both" in why
    assert "stripe_customer cus_acme" in why and "refused" not in why


def test_the_account_case_log_follows_the_company_across_people_and_systems(raw: Raw) -> None:
    from journeymine.mining.eventlog import log_from_touchpoints

    acme_in_three_systems(raw)
    raw.stitch()
    log = log_from_touchpoints(raw.con, case="account")
    cases = raw.con.execute(
        f"SELECT case_key, list(activity ORDER BY ts, seq) FROM {log} GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    assert cases == [
        (
            raw.account_of("sf_account:001ACME"),
            [
                "web.page_view",  # Alice, still anonymous
                "crm.lead_created",
                "crm.lead_converted",
                "crm.opportunity_created",
                "web.feature_used",  # Bob
                "billing.invoice_paid",
            ],
        ),
        (raw.account_of("segment_group:g_beta"), ["web.page_view"]),  # Carol
    ]


def test_two_salesforce_accounts_stay_two_and_the_refusal_is_explained(raw: Raw) -> None:
    # One Segment workspace used by people of two Salesforce Accounts of the same group of
    # companies: the group can join one of them, never both.
    raw.link(0, "user_id:u1", "segment_group:g_holding", "segment_group")
    raw.link(0, "user_id:u1", "email:jo@holding.io", "segment_identify_email")
    raw.link(0, "sf_contact:003J", "email:jo@holding.io", "sf_contact_email")
    raw.link(0, "sf_contact:003J", "sf_account:001EAST", "sf_contact_account")
    raw.link(0, "user_id:u2", "segment_group:g_holding", "segment_group")
    raw.link(0, "user_id:u2", "email:kim@holding.io", "segment_identify_email")
    raw.link(2, "sf_contact:003K", "email:kim@holding.io", "sf_contact_email")
    raw.link(2, "sf_contact:003K", "sf_account:001WEST", "sf_contact_account")
    result = raw.stitch()
    east, west = raw.account_of("sf_account:001EAST"), raw.account_of("sf_account:001WEST")
    assert east != west and result.accounts == 2 and result.account_conflicts == 1
    # Jo's links are the same day, Kim's two days apart: the closer pair wins the group.
    assert raw.account_of("segment_group:g_holding") == east
    refused = raw.con.execute(
        "SELECT src_id, dst_id, kept_apart_by, reason FROM account_conflicts"
    ).fetchall()
    assert len(refused) == 1
    assert refused[0][:3] == ("g_holding", "001WEST", "max_sf_accounts_per_account=1")
    assert "two different sf_accounts (001EAST and 001WEST)" in refused[0][3]
    assert "refused  segment_group g_holding + sf_account 001WEST" in identity.explain_account(
        raw.con, west
    )
    quality = identity.identity_quality(raw.con)
    assert quality["refusals_by_rule"]["account"] == {"max_sf_accounts_per_account=1": 1}
    assert quality["joins_by_rule"]["account"] == {"shared_person": 1}


def test_a_person_moving_company_keeps_the_account_of_the_time(raw: Raw) -> None:
    for colleague, group, contact, account in (
        ("u9", "g_acme", "003X", "001ACME"),
        ("u8", "g_beta", "003Y", "001BETA"),
    ):
        raw.link(0, f"user_id:{colleague}", f"segment_group:{group}", "segment_group")
        raw.link(0, f"user_id:{colleague}", f"email:{colleague}@co.io", "segment_identify_email")
        raw.link(0, f"sf_contact:{contact}", f"email:{colleague}@co.io", "sf_contact_email")
        raw.link(0, f"sf_contact:{contact}", f"sf_account:{account}", "sf_contact_account")
    # Dana: at Acme from day 1, at Beta from day 30 (new group call, new Salesforce contact).
    raw.link(0, "anonymous_id:d1", "user_id:dana", "segment_page")
    raw.link(1, "user_id:dana", "segment_group:g_acme", "segment_group")
    raw.link(1, "user_id:dana", "email:dana@acme.io", "segment_identify_email")
    raw.link(2, "sf_contact:003D", "email:dana@acme.io", "sf_contact_email")
    raw.link(2, "sf_contact:003D", "sf_account:001ACME", "sf_contact_account")
    raw.link(30, "user_id:dana", "segment_group:g_beta", "segment_group")
    raw.link(30, "user_id:dana", "email:dana@beta.io", "segment_identify_email")
    raw.link(31, "sf_contact:003E", "email:dana@beta.io", "sf_contact_email")
    raw.link(31, "sf_contact:003E", "sf_account:001BETA", "sf_contact_account")
    days = [0, 5, 29.9, 30, 40]
    for day in days:
        raw.event(day, "anonymous_id:d1", "web.page_view")
    raw.stitch()
    acme, beta = raw.account_of("sf_account:001ACME"), raw.account_of("sf_account:001BETA")
    assert acme != beta
    assert raw.account_of("segment_group:g_acme") == acme
    assert raw.account_of("segment_group:g_beta") == beta
    dana = raw.person_of("user_id:dana")
    periods = raw.con.execute(
        "SELECT account_id, valid_from, valid_to FROM person_accounts WHERE person_id = ? "
        "ORDER BY valid_from NULLS FIRST",
        [dana],
    ).fetchall()
    assert periods == [(acme, None, at(30)), (beta, at(30), None)]
    got = raw.con.execute(
        "SELECT occurred_at, account_id FROM touchpoints WHERE person_id = ? ORDER BY occurred_at",
        [dana],
    ).fetchall()
    assert got == [(at(d), acme if d < 30 else beta) for d in days]
    # The old and the new employer were never joined through her: the data keeps them apart.
    # Each cross pair would put both groups (and both Accounts) in one; the first rule checked
    # (groups) is the one named.
    kept = raw.con.execute("SELECT kept_apart_by FROM account_conflicts").fetchall()
    assert kept == [("max_segment_groups_per_account=1",)] * 4


def test_a_second_night_that_merges_two_accounts_keeps_the_older_id(raw: Raw) -> None:
    raw.link(0, "sf_contact:003C", "sf_account:001OLD", "sf_contact_account")
    raw.link(0, "sf_contact:003C", "email:cy@old.io", "sf_contact_email")
    raw.link(0, "user_id:zed", "segment_group:g_other", "segment_group")
    raw.stitch()
    old, other = raw.account_of("sf_account:001OLD"), raw.account_of("segment_group:g_other")
    raw.link(1, "user_id:cy", "segment_group:g_new", "segment_group")
    raw.event(1, "user_id:cy", "web.feature_used")
    raw.stitch()
    new = raw.account_of("segment_group:g_new")
    assert len({old, other, new}) == 3 and new > old
    raw.link(2, "user_id:cy", "email:cy@old.io", "segment_identify_email")  # ties cy to 003C
    result = raw.stitch()
    assert result.new_account_merges == 1
    assert raw.account_of("segment_group:g_new") == raw.account_of("sf_account:001OLD") == old
    assert raw.account_of("segment_group:g_other") == other
    merges = raw.con.execute(
        "SELECT merged_account_id, into_account_id, run_id FROM account_merges"
    ).fetchall()
    assert merges == [(new, old, "night3")]
    assert raw.con.execute("SELECT DISTINCT account_id FROM touchpoints").fetchall() == [(old,)]
    assert f"absorbed account {new}" in identity.explain_account(raw.con, old)


def test_a_stripe_customer_paid_by_people_of_two_companies_joins_neither_twice(raw: Raw) -> None:
    for who, group in (("ann", "g_one"), ("ben", "g_two")):
        raw.link(0, f"user_id:{who}", f"segment_group:{group}", "segment_group")
        raw.link(1, "stripe_customer:cus_x", f"email:{who}@x.io", "stripe_invoice_email")
        raw.link(0, f"user_id:{who}", f"email:{who}@x.io", "segment_identify_email")
    raw.stitch()
    one, two = raw.account_of("segment_group:g_one"), raw.account_of("segment_group:g_two")
    assert one != two
    assert raw.account_of("stripe_customer:cus_x") == one  # the first of two equal pairs
    reason = raw.con.execute("SELECT reason FROM account_conflicts").fetchall()
    assert reason == [
        (
            "would merge two different segment_groups (g_one and g_two) into one account "
            "(max_segment_groups_per_account=1)",
        )
    ]


def test_a_lone_stripe_customer_is_no_account_and_unknown_ids_are_said(raw: Raw) -> None:
    raw.event(0, "stripe_customer:cus_solo", "billing.invoice_paid")
    raw.link(0, "stripe_customer:cus_solo", "email:solo@x.io", "stripe_customer_email")
    result = raw.stitch()
    assert result.accounts == 0
    assert raw.con.execute("SELECT count(*) FROM account_nodes").fetchone() == (0,)
    assert raw.con.execute("SELECT account_id FROM touchpoints").fetchall() == [(None,)]
    assert identity.explain_account(raw.con, 7) == "account 7: no such account in this warehouse"


def test_quality_figures_match_an_independent_count(raw: Raw) -> None:
    acme_in_three_systems(raw)
    raw.event(6, "anonymous_id:lurker", "web.page_view")
    raw.event(7, "anonymous_id:lurker", "web.page_view")
    raw.stitch()
    quality = identity.identity_quality(raw.con, giant_min_size=100)
    nodes = raw.con.execute("SELECT node_type, person_id FROM identity_nodes").df()
    anonymous = nodes.groupby("person_id").node_type.agg(lambda t: set(t) == {"anonymous_id"})
    tp = raw.con.execute("SELECT person_id FROM touchpoints").df()
    # Alice (with her device, lead, contact, deal and Stripe customer), Bob, Carol, the lurker.
    assert quality["persons"] == nodes.person_id.nunique() == 4
    assert quality["accounts"] == 2
    share = tp.person_id.map(anonymous).mean()
    assert share == pytest.approx(2 / 9) and quality["anonymous_only_touchpoint_share"] == share
    biggest = nodes.person_id.value_counts()
    top = quality["largest"]["person"][0]
    assert (top["id"], top["identifiers"]) == (raw.person_of("user_id:alice"), biggest.max())
    assert quality["warnings"] == []
    assert json.loads(json.dumps(quality, default=str))["accounts"] == 2


def test_a_giant_cluster_is_warned_about(raw: Raw) -> None:
    for i in range(40):  # one kiosk login used on forty devices swallows them all
        raw.link(0, f"anonymous_id:kiosk{i}", "user_id:kiosk", "segment_identify")
    for i in range(20):
        raw.link(0, f"anonymous_id:dev{i}", f"user_id:u{i}", "segment_identify")
    raw.stitch()
    kiosk = raw.person_of("user_id:kiosk")
    quality = identity.identity_quality(raw.con)
    assert quality["identifiers"] == 81
    warnings = quality["warnings"]
    assert len(warnings) == 1 and warnings[0].startswith(f"giant person: person {kiosk} holds 41")
    assert "50.6% of all" in warnings[0]
    assert identity.identity_quality(raw.con, giant_share=0.6)["warnings"] == []


def test_no_giant_warning_on_evenly_sized_persons(raw: Raw) -> None:
    for i in range(30):
        raw.link(0, f"anonymous_id:dev{i}", f"user_id:u{i}", "segment_identify")
    raw.stitch()
    assert identity.identity_quality(raw.con, giant_min_size=1)["warnings"] == []
    frame = pd.DataFrame(identity.identity_quality(raw.con)["largest"]["person"])
    assert frame.identifiers.tolist() == [2] * 5 and frame.share.tolist() == [2 / 60] * 5


def test_quality_of_a_warehouse_never_stitched_by_this_version_says_what_to_do(raw: Raw) -> None:
    with pytest.raises(WarehouseError, match="no identity_policy in this warehouse"):
        identity.identity_quality(raw.con)
