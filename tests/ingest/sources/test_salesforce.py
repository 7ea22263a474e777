"""Salesforce Data Export parser, on fixture exports shaped like the real ones."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from journeymine.errors import SourceFormatError
from journeymine.ingest.sources import salesforce
from journeymine.ingest.sources._common import ParsedFile

Write = Callable[[str, str], Path]

LANDING = Path(__file__).resolve().parents[2] / "data" / "landing"
EXPORT = "salesforce/export-2026-08-10"

JANE = "00Q5e00000AbCdEEAV"  # lead, exported as 15 chars in one file and 18 in another
BOB = "00Q5e00000XyZ12EAF"
ANA = "0055e00000Ana01AAB"  # owner
BEN = "0055e00000BeN02AAF"
JANE_CONTACT = "0035e00000QrStUAAV"
SOLO_CONTACT = "0035e00000Solo1AAB"
ACME = "0015e00000Acme1AAB"
DEAL = "0065e00000DEAL1AAP"


def parse(name: str) -> ParsedFile:
    parsed = salesforce.parse_file(LANDING / name, name)
    assert parsed.source == "salesforce" and parsed.file == name
    assert parsed.rows_read == len(parsed.rows) + len(parsed.rejected)
    return parsed


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


def rejects(parsed: ParsedFile) -> list[tuple[int, str]]:
    return [(r.line, r.reason) for r in parsed.rejected]


def edges(parsed: ParsedFile) -> list[tuple[str, str, str, str, str, datetime]]:
    return [
        (e.src_type, e.src_id, e.dst_type, e.dst_id, e.rule, e.observed_at)
        for row in parsed.rows
        for e in row.edges
    ]


# --- ids ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("id15", "id18"),
    [
        # Salesforce's documented example. Chunks 001A0 | 00000 | 6Vm9r: upper-case letters at
        # positions {3} | {} | {1} -> bits 8, 0, 2 -> I, A, C.
        ("001A0000006Vm9r", "001A0000006Vm9rIAC"),
        # 00Q5e | 00000 | AbCdE: Q at 2 -> 4 -> E; none -> A; A, C, E at 0, 2, 4 -> 21 -> V.
        ("00Q5e00000AbCdE", "00Q5e00000AbCdEEAV"),
        # 0055e | 00000 | Ana01: none -> A; none -> A; A at 0 -> 1 -> B.
        ("0055e00000Ana01", "0055e00000Ana01AAB"),
        # 00QAB | CDEFG | HIJKL: Q, A, B at 2, 3, 4 -> 28 -> "2"; all five upper -> 31 -> "5".
        ("00QABCDEFGHIJKL", "00QABCDEFGHIJKL255"),
        # 0065e | 00000 | DEAL1: D, E, A, L at 0..3 -> 15 -> P.
        ("0065e00000DEAL1", "0065e00000DEAL1AAP"),
        # 00Q00 | 00000 | 00000: Q at 2 -> 4 -> E; no letters -> A, A.
        ("00Q000000000000", "00Q000000000000EAA"),
        # 003AB | CDEab | cdeAb: A, B at 3, 4 -> 24 -> Y; C, D, E at 0..2 -> 7 -> H;
        # A at 3 -> 8 -> I (lower-case letters set no bit).
        ("003ABCDEabcdeAb", "003ABCDEabcdeAbYHI"),
    ],
)
def test_15_char_ids_get_the_case_checksum(id15: str, id18: str) -> None:
    assert salesforce.sf_id18(id15) == id18
    assert salesforce.sf_id18(id18) == id18  # already canonical
    assert salesforce.sf_id18(f" {id15} ") == id18


def test_18_char_ids_are_case_insensitive() -> None:
    # A tool that lower-cased the id (Excel lookups, case-insensitive databases) loses nothing.
    assert salesforce.sf_id18("001a0000006vm9riac") == "001A0000006Vm9rIAC"
    assert salesforce.sf_id18("00QABCDEFGHIJKL255".lower()) == "00QABCDEFGHIJKL255"


ALNUM = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def checksum_by_the_book(id15: str) -> str:
    """Salesforce's rule, bit by bit: in each 5-character chunk, character i upper-case sets
    bit i; the chunk's number picks a letter of A..Z0..5."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
    out = ""
    for start in (0, 5, 10):
        number = 0
        for i in range(5):
            if id15[start + i] in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
                number += 2**i
        out += alphabet[number]
    return out


@given(st.text(ALNUM, min_size=15, max_size=15))
def test_every_id_gets_the_checksum_of_the_rule_and_its_case_back(id15: str) -> None:
    id18 = id15 + checksum_by_the_book(id15)
    assert salesforce.sf_id18(id15) == id18
    assert salesforce.sf_id18(id18) == id18
    # The 18-character form survives any change of case: the suffix restores it.
    assert salesforce.sf_id18(id18.lower()) == id18
    assert salesforce.sf_id18(id18.upper()) == id18
    assert salesforce.sf_id18(id18.swapcase()) == id18


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("001A0000006Vm9", "not a Salesforce id: '001A0000006Vm9'"),  # 14 chars
        ("001A0000006Vm9r-AC", "not a Salesforce id"),  # not alphanumeric
        ("001A0000006Vm9r9AC", "bad checksum '9AC'"),  # 9 is not in A..Z0..5
        ("000000000000000BAA", "checksum mismatch"),  # says char 0 is upper, but it is a digit
    ],
)
def test_malformed_ids_raise(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        salesforce.sf_id18(value)


# --- Lead ----------------------------------------------------------------------------------------


def test_lead_export() -> None:
    parsed = parse(f"{EXPORT}/Lead.csv")
    jane, bob, lee = parsed.rows
    assert [r.line for r in parsed.rows] == [2, 4, 8]  # Jane's Description spans lines 2-3
    assert jane.raw.startswith('"00Q5e00000AbCdEEAV","false","Jane"')
    assert '"Asked for a demo,\nwants SSO"' in jane.raw and not jane.raw.endswith("\n")
    assert jane.record_key == f"{JANE}@2026-08-10T09:00:00.000Z"

    created, converted = jane.events
    assert created.event_key == f"Lead:{JANE}:created"
    assert (created.event_type, created.activity, created.actor) == (
        "Lead.created",
        "crm.lead_created",
        "customer",  # LeadSource "Web - Demo Request"
    )
    assert (created.occurred_at, created.raw_time) == (
        utc(2026, 8, 3, 8, 30),
        "2026-08-03T08:30:00.000Z",
    )
    assert (created.id_type, created.id_value, created.channel) == ("sf_lead", JANE, "crm")
    assert created.owner == ANA  # exported as the 15-char 0055e00000Ana01
    assert created.attributes == {
        "LeadSource": "Web - Demo Request",
        "Status": "Converted",
        "Company": "Acme, Inc.",
        "Industry": "Software",
        "NumberOfEmployees": "250",
        "Country": "Germany",
        "UTM_Source__c": "google",
    }
    assert (converted.event_key, converted.activity, converted.actor) == (
        f"Lead:{JANE}:converted",
        "crm.lead_converted",
        "company",
    )
    # ConvertedDate is a Date field: midnight UTC of that day.
    assert (converted.occurred_at, converted.raw_time) == (utc(2026, 8, 10), "2026-08-10")

    assert edges(ParsedFile("salesforce", "x", rows=[jane])) == [
        ("sf_lead", JANE, "email", "jane.doe@acme.io", "sf_lead_email", utc(2026, 8, 3, 8, 30)),
        ("sf_lead", JANE, "sf_contact", JANE_CONTACT, "sf_lead_converted", utc(2026, 8, 10)),
        ("sf_contact", JANE_CONTACT, "sf_account", ACME, "sf_contact_account", utc(2026, 8, 10)),
        ("sf_opportunity", DEAL, "sf_account", ACME, "sf_opportunity_account", utc(2026, 8, 10)),
    ]

    # Bob: 15-char Id, "+0000" CreatedDate, naive SystemModstamp, an outbound (company) lead.
    (bob_created,) = bob.events
    assert bob.record_key == f"{BOB}@2026-08-04 09:15:00"
    assert (bob_created.id_value, bob_created.actor, bob_created.owner) == (BOB, "company", BEN)
    assert bob_created.occurred_at == utc(2026, 8, 4, 9, 15)
    assert [e.dst_id for e in bob.edges] == ["bob.stone@globex.example"]

    # Lee: "Free Trial" is a customer action; no SystemModstamp -> LastModifiedDate versions it;
    # a value that is no email makes no edge.
    assert lee.record_key == "00QABCDEFGHIJKL255@2026-08-06T07:45:10.000Z"
    assert (lee.events[0].actor, lee.edges) == ("customer", [])

    assert rejects(parsed) == [
        (5, "IsDeleted=true"),
        (6, "CreatedDate: unparseable timestamp '03/08/2026 10:00'"),
        (7, "OwnerId: not a Salesforce id: '005XYZ'"),
    ]
    assert parsed.rejected[0].raw.startswith('"00Q5e00000Del01EAB","true"')


def test_personal_fields_never_reach_attributes() -> None:
    parsed = parse(f"{EXPORT}/Lead.csv")
    for row in parsed.rows:
        for event in row.events:
            assert not {"FirstName", "LastName", "Email", "Phone", "Description"} & set(
                event.attributes
            )


def test_later_export_with_15_char_ids_is_a_new_version_of_the_same_record() -> None:
    first = parse(f"{EXPORT}/Lead.csv").rows[0]
    later = parse("salesforce/export-2026-08-17/Lead.csv").rows[0]
    assert later.record_key == f"{JANE}@2026-08-17T12:00:00.000Z" != first.record_key
    assert [e.event_key for e in later.events] == [e.event_key for e in first.events]
    assert {(e.src_type, e.src_id, e.dst_type, e.dst_id, e.rule) for e in later.edges} == {
        (e.src_type, e.src_id, e.dst_type, e.dst_id, e.rule) for e in first.edges
    }


# --- Contact, Account, Opportunity and its history, contact roles -------------------------------


def test_contacts() -> None:
    parsed = parse(f"{EXPORT}/Contact.csv")
    jane, solo = parsed.rows
    (event,) = jane.events
    assert (event.event_key, event.activity, event.actor, event.occurred_at) == (
        f"Contact:{JANE_CONTACT}:created",
        "crm.contact_created",
        "company",
        utc(2026, 8, 10, 9),
    )
    assert (event.id_type, event.id_value, event.owner) == ("sf_contact", JANE_CONTACT, ANA)
    assert (event.account_type, event.account_value) == ("sf_account", ACME)
    assert event.attributes == {"LeadSource": "Web - Demo Request"}
    at = utc(2026, 8, 10, 9)
    assert edges(parsed) == [
        ("sf_contact", JANE_CONTACT, "email", "jane.doe@acme.io", "sf_contact_email", at),
        ("sf_contact", JANE_CONTACT, "sf_account", ACME, "sf_contact_account", at),
    ]
    assert solo.events[0].account_value is None and solo.edges == []
    assert rejects(parsed) == [(4, "Id: missing")]


def test_accounts_are_rows_without_events() -> None:
    parsed = parse(f"{EXPORT}/Account.csv")
    assert [(r.line, r.record_key, r.events, r.edges) for r in parsed.rows] == [
        (2, f"{ACME}@2026-08-10T09:00:00.000Z", [], []),
        (3, "001A0000006Vm9rIAC", [], []),  # no version column value: the bare 18-char Id
    ]
    assert parsed.rejected == []


def test_opportunities() -> None:
    parsed = parse(f"{EXPORT}/Opportunity.csv")
    (deal,) = parsed.rows
    (event,) = deal.events
    assert (event.event_key, event.activity, event.actor, event.occurred_at) == (
        f"Opportunity:{DEAL}:created",
        "crm.opportunity_created",
        "company",
        utc(2026, 8, 10, 9, 0, 5),
    )
    assert (event.id_type, event.id_value, event.owner) == ("sf_opportunity", DEAL, ANA)
    assert (event.account_type, event.account_value) == ("sf_account", ACME)
    assert event.attributes == {
        "StageName": "Prospecting",
        "Amount": "30000.00",
        "Type": "New Business",
        "LeadSource": "Web - Demo Request",
    }
    assert edges(parsed) == [
        ("sf_opportunity", DEAL, "sf_account", ACME, "sf_opportunity_account", event.occurred_at)
    ]
    # An Account id in Opportunity.csv is a misfiled row, not a deal.
    assert rejects(parsed) == [
        (3, f"Id: '{ACME}' does not start with 006, the Opportunity key prefix")
    ]


def test_opportunity_history_stages() -> None:
    parsed = parse(f"{EXPORT}/OpportunityHistory.csv")
    events = [e for row in parsed.rows for e in row.events]
    assert [
        (e.event_key, e.activity, e.actor, e.occurred_at, e.id_type, e.id_value, e.owner)
        for e in events
    ] == [
        (
            "OpportunityHistory:0085e00000Hst01AAB:stage",
            "crm.opportunity_stage:Prospecting",
            "company",
            utc(2026, 8, 10, 9, 0, 5),
            "sf_opportunity",
            DEAL,  # exported as the 15-char 0065e00000DEAL1
            None,
        ),
        (
            "OpportunityHistory:0085e00000Hst02AAB:stage",  # 15-char Id in the file
            "crm.opportunity_stage:Needs Analysis",  # stage name kept as written
            "company",
            utc(2026, 8, 20, 14),
            "sf_opportunity",
            DEAL,
            None,
        ),
    ]
    assert rejects(parsed) == [(4, "StageName: missing")]


def test_contact_roles_link_contacts_to_deals() -> None:
    parsed = parse(f"{EXPORT}/OpportunityContactRole.csv")
    assert all(r.events == [] for r in parsed.rows)
    assert edges(parsed) == [
        (
            "sf_contact",
            JANE_CONTACT,
            "sf_opportunity",
            DEAL,
            "sf_contact_role_primary",
            utc(2026, 8, 10, 9, 0, 6),
        ),
        (
            "sf_contact",
            SOLO_CONTACT,
            "sf_opportunity",
            DEAL,
            "sf_contact_role",
            utc(2026, 8, 12, 16, 20),
        ),
    ]
    assert rejects(parsed) == [(4, "ContactId: missing")]


# --- Task and Event ------------------------------------------------------------------------------


def test_tasks_from_a_gzipped_crlf_export() -> None:
    parsed = parse(f"{EXPORT}/Task.csv.gz")
    got = [
        (
            row.line,
            [
                (e.activity, e.occurred_at, e.id_type, e.id_value, e.account_value)
                for e in row.events
            ],
        )
        for row in parsed.rows
    ]
    assert got == [
        # Call, CompletedDateTime; WhoId is the 15-char lead id.
        (2, [("crm.call_completed", utc(2026, 8, 3, 11), "sf_lead", JANE, None)]),
        # Email without CompletedDateTime: ActivityDate, midnight UTC; WhatId names the account.
        (4, [("crm.email_sent", utc(2026, 8, 11), "sf_contact", JANE_CONTACT, ACME)]),
        (5, []),  # Not Started: an open task is a row without a touchpoint
        # Generic task on a deal, no completion or activity date: CreatedDate.
        (6, [("crm.task_completed", utc(2026, 8, 21, 9), "sf_opportunity", DEAL, None)]),
        (8, [("crm.email_sent", utc(2026, 8, 6), "sf_lead", BOB, None)]),  # ListEmail
        # Status "Done" but IsClosed; TaskSubtype Task with Type Call is a call.
        (9, [("crm.call_completed", utc(2026, 8, 7, 13, 5), "sf_lead", BOB, None)]),
    ]
    call = parsed.rows[0]
    assert call.raw.endswith(
        '"Left voicemail first,\r\nthen reached her",'
        '"2026-08-03T10:40:00.000Z","2026-08-03T11:00:00.000Z"'
    )
    assert call.line == 2 and parsed.rows[1].line == 4  # the quoted CRLF is inside record 2
    (event,) = call.events
    assert (event.event_key, event.actor, event.owner, event.raw_time) == (
        "Task:00T5e00000Tsk01EAB:completed",
        "company",
        ANA,
        "2026-08-03T11:00:00.000Z",
    )
    assert event.attributes == {
        "Status": "Completed",
        "Subject": "Call: demo request",
        "Type": "Call",
        "TaskSubtype": "Call",
        "CallDurationInSeconds": "420",
    }
    assert rejects(parsed) == [
        (
            7,
            "WhoId/WhatId: names no lead (00Q), contact (003), opportunity (006) or account "
            "(001): WhoId='' WhatId=''",
        )
    ]


def test_events_are_meetings() -> None:
    parsed = parse(f"{EXPORT}/Event.csv")
    got = [
        (e.event_key, e.activity, e.actor, e.occurred_at, e.id_type, e.id_value, e.owner)
        for row in parsed.rows
        for e in row.events
    ]
    assert got == [
        # No Type: the first word of the Subject ("Demo:").
        (
            "Event:00U5e00000Mtg01EAB:held",
            "crm.meeting:demo",
            "company",
            utc(2026, 8, 5, 15),
            "sf_lead",
            JANE,
            ANA,
        ),
        # Type wins over the Subject; the contact (WhoId) wins over the deal (WhatId).
        (
            "Event:00U5e00000Mtg02EAB:held",
            "crm.meeting:discovery_call",
            "company",
            utc(2026, 8, 12, 10, 30),
            "sf_contact",
            JANE_CONTACT,
            ANA,
        ),
    ]
    # A campaign (701) is neither a person nor an account.
    assert rejects(parsed) == [
        (
            4,
            "WhoId/WhatId: names no lead (00Q), contact (003), opportunity (006) or account "
            "(001): WhoId='' WhatId='7015e00000Cmp01'",
        )
    ]


# --- files that are not exports, and records that are broken -------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "Campaign.csv",
            "Id,Name\n7015e00000Cmp01,August\n",
            "unknown Salesforce object 'Campaign'",
        ),
        ("Lead.csv", "Name,Email\nx,x@y.io\n", "not a Salesforce Lead export: no 'Id' column"),
        (
            "Task.csv",
            "Id,Subject,CreatedDate\n00T5e00000Tsk01,x,2026-08-03\n",
            "no 'WhoId' or 'WhatId' column",
        ),
        ("Lead.csv", "", "empty file: no header row"),
    ],
)
def test_files_not_in_the_format_raise_naming_the_file(
    write: Write, name: str, text: str, message: str
) -> None:
    file = f"salesforce/export-2026-08-10/{name}"
    with pytest.raises(SourceFormatError, match=message) as info:
        salesforce.parse_file(write(name, text), file)
    assert info.value.file == file and str(info.value).startswith(f"{file}: ")


def test_a_gz_that_is_not_gzip_raises(tmp_path: Path) -> None:
    (tmp_path / "Lead.csv.gz").write_text("Id\n00Q5e00000AbCdE\n")
    with pytest.raises(SourceFormatError, match=r"Lead\.csv\.gz: not a readable \.gz file"):
        salesforce.parse_file(tmp_path / "Lead.csv.gz", "salesforce/Lead.csv.gz")


def test_broken_records_are_rejected_never_raised(write: Write) -> None:
    text = (
        "\ufeffId,IsDeleted,Email,LeadSource,OwnerId,CreatedDate\r\n"  # BOM, as Excel saves it
        # 000000000000000AAA is Salesforce's empty lookup: no owner.
        "00Q5e00000AbCdE,false,a@b.io,Web,000000000000000AAA,2026-08-03T08:30:00Z\r\n"
        "\r\n"  # blank line: skipped, still counted for line numbers
        "00Q5e00000XyZ12,false,c@d.io,Web\r\n"  # short row
        "00Q5e00000XyZ12,false,c@d.io,Web,,2026-08-03,extra\r\n"  # long row
        "0035e00000QrStU,false,c@d.io,Web,,2026-08-03\r\n"  # a contact id in Lead.csv
        "00Q5e00000Bad01EAB,false,,,,\r\n"  # no CreatedDate
        ",,,,,\r\n"  # a record of empty fields is still a record
    )
    parsed = salesforce.parse_file(write("Lead.csv.gz", text), "Lead.csv.gz")
    assert parsed.rows_read == 6  # the blank line is no record
    (row,) = parsed.rows
    assert row.record_key == JANE and row.events[0].owner is None
    assert rejects(parsed) == [
        (4, "wrong_column_count: 4 fields, the header has 6"),
        (5, "wrong_column_count: 7 fields, the header has 6"),
        (6, f"Id: '{JANE_CONTACT}' does not start with 00Q, the Lead key prefix"),
        (7, "CreatedDate: missing timestamp"),
        (8, "Id: missing"),
    ]
    assert parsed.rejected[0].raw == "00Q5e00000XyZ12,false,c@d.io,Web"


def test_every_fixture_file_accounts_for_every_record() -> None:
    files = sorted(p for p in (LANDING / "salesforce").rglob("*") if p.is_file())
    assert len(files) == 9
    totals = [parse(str(p.relative_to(LANDING))).rows_read for p in files]
    assert sum(totals) == 30


def test_users_name_the_owners(write: Write) -> None:
    users = 'Id,FirstName,LastName,Name,IsActive\n0055e00000Ana01,Ana,Ruiz,"Ana Ruiz",true\n'
    parsed = salesforce.parse_file(write("User.csv", users), "User.csv")
    (label,) = parsed.rows[0].labels
    assert (label.kind, label.id, label.name) == ("owner", ANA, "Ana Ruiz")
    assert parsed.rows[0].events == []


def test_gzip_and_plain_give_the_same_result(tmp_path: Path) -> None:
    plain = (LANDING / EXPORT / "Event.csv").read_bytes()
    (tmp_path / "Event.csv.gz").write_bytes(gzip.compress(plain))
    zipped = salesforce.parse_file(tmp_path / "Event.csv.gz", "Event.csv.gz")
    assert zipped.rows == parse(f"{EXPORT}/Event.csv").rows


def test_a_quote_left_open_runs_to_the_end_of_the_file(write: Write) -> None:
    # The csv module reads an unclosed quoted field up to the end of the file, newlines
    # included: that record keeps all the text as its raw and its first line; nothing after it
    # is read as records of its own, and reading ends there (the csv reader asks the line
    # source again after its end).
    tail = f'{ACME},"Acme\r\n001A0000006Vm9r,Globex\r\n'
    text = "Id,Name\r\n001A0000006Vm9r,Globex\r\n" + tail
    parsed = salesforce.parse_file(write("Account.csv", text), "Account.csv")
    assert parsed.rows_read == 2
    assert [(r.line, r.record_key, r.raw) for r in parsed.rows] == [
        (2, "001A0000006Vm9rIAC", "001A0000006Vm9r,Globex"),
        (3, ACME, tail.removesuffix("\r\n")),
    ]
    assert parsed.rejected == []


def test_lines_are_counted_by_newline_only(write: Write) -> None:
    # A lone \r inside a quoted field is data: the next record is still on line 3.
    text = 'Id,Name\r\n0015e00000Acme1AAB,"Acme\rInc."\r\n001A0000006Vm9r,Globex\r\n'
    parsed = salesforce.parse_file(write("Account.csv", text), "Account.csv")
    assert [(r.line, r.record_key) for r in parsed.rows] == [
        (2, ACME),
        (3, "001A0000006Vm9rIAC"),
    ]
    assert parsed.rows[0].raw == '0015e00000Acme1AAB,"Acme\rInc."'
