from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from journeymine.errors import SourceFormatError
from journeymine.sources import ga4, salesforce

Write = Callable[[str, str], Path]


@pytest.mark.parametrize(
    ("id15", "id18"),
    [
        ("001A0000006Vm9r", "001A0000006Vm9rIAC"),  # worked example: chunk bits 8, 0, 2
        ("00Q000000000000", "00Q000000000000EAA"),
        ("003ABCDEabcdeAb", "003ABCDEabcdeAbYHI"),  # chunk bits: 24, 7, 8
    ],
)
def test_15_char_ids_get_their_checksum(id15: str, id18: str) -> None:
    assert salesforce.sf_id18(id15) == id18
    assert salesforce.sf_id18(id18) == id18


LEADS = """\
Id,IsDeleted,Email,Company,LeadSource,Status,OwnerId,NumberOfEmployees,IsConverted,ConvertedDate,ConvertedContactId,ConvertedAccountId,ConvertedOpportunityId,CreatedDate,SystemModstamp,Description
00Q000000000001EAA,false, Jane.Doe@Acme.IO ,Acme,Web - Demo Request,Converted,005000000000001AAA,25,true,2026-08-10,003000000000001AAA,001000000000001AAA,006000000000001AAA,2026-08-03T08:30:00.000Z,2026-08-10T09:00:00.000Z,"Wants a demo,
asap"
00Q000000000002,false,bob@corp.com,Corp,Outbound,Open,005000000000001,500,false,,,,,2026-08-04T09:00:00.000+0000,2026-08-04T09:00:00.000Z,
00Q000000000003EAA,true,gone@corp.com,Corp,Outbound,Open,005000000000001AAA,5,false,,,,,2026-08-04T09:00:00.000Z,2026-08-04T09:00:00.000Z,
00Q000000000004EAA,false,x@corp.com,Corp,Outbound,Open,005000000000001AAA,5,false,,,,,last week,2026-08-04T09:00:00.000Z,
"""
TASKS = """\
Id,WhoId,WhatId,OwnerId,Subject,Status,TaskSubtype,ActivityDate,CompletedDateTime,CreatedDate
00T000000000001EAA,00Q000000000001,,005000000000002AAA,Call back,Completed,Call,2026-08-03,2026-08-03T11:00:00.000Z,2026-08-03T10:00:00.000Z
00T000000000002EAA,00Q000000000001EAA,,005000000000002AAA,Follow up,Not Started,Email,2026-08-05,,2026-08-03T10:00:00.000Z
00T000000000003EAA,,,005000000000002AAA,Orphan,Completed,Call,2026-08-05,2026-08-05T10:00:00Z,2026-08-03T10:00:00.000Z
"""


def test_leads_become_events_and_links(write: Write) -> None:
    parsed = salesforce.parse_file(write("salesforce/x/Lead.csv", LEADS), "Lead.csv")
    assert parsed.rows_read == 4 and len(parsed.rows) == 2
    jane, bob = parsed.rows
    created, converted = jane.events
    assert (created.activity, created.actor, created.id_value, created.owner) == (
        "crm.lead_created",
        "customer",
        "00Q000000000001EAA",
        "005000000000001AAA",
    )
    assert created.occurred_at == datetime(2026, 8, 3, 8, 30, tzinfo=UTC)
    assert (converted.activity, converted.occurred_at) == (
        "crm.lead_converted",
        datetime(2026, 8, 10, tzinfo=UTC),
    )
    assert created.attributes["NumberOfEmployees"] == "25"
    assert "Email" not in created.attributes
    assert {(e.src_type, e.dst_type, e.dst_id, e.rule) for e in jane.edges} == {
        ("sf_lead", "email", "jane.doe@acme.io", "sf_lead_email"),
        ("sf_lead", "sf_contact", "003000000000001AAA", "sf_lead_converted"),
        ("sf_contact", "sf_account", "001000000000001AAA", "sf_contact_account"),
        ("sf_opportunity", "sf_account", "001000000000001AAA", "sf_opportunity_account"),
    }
    assert jane.raw.endswith('"Wants a demo,\nasap"') and jane.line == 2
    # 15-char ids come out in their 18-char form; outbound leads are company actions.
    assert bob.events[0].id_value == "00Q000000000002EAA" and bob.events[0].actor == "company"
    assert bob.line == 4 and bob.events[0].owner == "005000000000001AAA"
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (5, "IsDeleted=true"),
        (6, "CreatedDate: unparseable timestamp 'last week'"),
    ]
    assert jane.record_key == "00Q000000000001EAA@2026-08-10T09:00:00.000Z"


def test_tasks_completed_only_and_who_resolution(write: Write) -> None:
    parsed = salesforce.parse_file(write("Task.csv.gz", TASKS), "Task.csv.gz")
    done, still_open = parsed.rows
    ev = done.events[0]
    assert (ev.activity, ev.id_type, ev.id_value, ev.actor) == (
        "crm.call_completed",
        "sf_lead",
        "00Q000000000001EAA",
        "company",
    )
    assert ev.occurred_at == datetime(2026, 8, 3, 11, tzinfo=UTC)
    assert still_open.events == []
    assert parsed.rejected[0].line == 4 and "WhoId" in parsed.rejected[0].reason


def test_unknown_object_and_missing_id_column(write: Write) -> None:
    with pytest.raises(SourceFormatError, match="Widget.csv"):
        salesforce.parse_file(write("Widget.csv", "Id\n1\n"), "Widget.csv")
    with pytest.raises(SourceFormatError, match="no 'Id' column"):
        salesforce.parse_file(write("Lead.csv", "Name\nx\n"), "Lead.csv")


def ga4_row(ts: object, name: str = "page_view", **extra: object) -> dict[str, object]:
    return {
        "event_date": "20260803",
        "event_timestamp": ts,
        "event_name": name,
        "user_pseudo_id": "123.456",
        "event_params": [
            {
                "key": "page_location",
                "value": {"string_value": "https://docs.northwind.io/guides/setup?x=1"},
            },
            {"key": "ga_session_id", "value": {"int_value": 77}},
            {"key": "engagement_time_msec", "value": {"int_value": None, "double_value": 1.5}},
        ],
        "device": {"category": "desktop"},
        "geo": {"country": "Germany"},
        "collected_traffic_source": {"manual_source": "google", "manual_medium": "cpc"},
        "batch_event_index": 1,
        "batch_page_id": 9,
        "batch_ordering_id": 3,
        **extra,
    }


def test_ga4_ndjson_rows(write: Write) -> None:
    rows = [
        ga4_row(1785744000123456),
        ga4_row("1785744060000000", "generate_lead", user_id="u-42"),
        ga4_row(1785744000, "scroll"),
    ]
    text = "\n".join(json.dumps(r) for r in rows) + "\n"
    parsed = ga4.parse_file(write("ga4/events_20260803.json", text), "f")
    view, lead = (r.events[0] for r in parsed.rows)
    assert (view.activity, view.id_type, view.id_value) == (
        "web.page_view:/guides",
        "anonymous_id",
        "123.456",
    )
    assert view.occurred_at == datetime(2026, 8, 3, 8, 0, 0, 123456, tzinfo=UTC)
    assert view.attributes == {
        "path": "/guides/setup",
        "ga_session_id": 77,
        "engagement_time_msec": 1.5,
        "utm_source": "google",
        "utm_medium": "cpc",
        "device_category": "desktop",
        "country": "Germany",
    }
    assert parsed.rows[0].record_key == "123.456|1785744000123456|page_view|9|3|1"
    assert (lead.activity, lead.id_type) == ("web.generate_lead", "user_id")
    assert parsed.rows[1].edges[0].rule == "ga4_user_id"
    assert parsed.rejected[0].line == 3 and "seconds or ms" in parsed.rejected[0].reason


def test_ga4_parquet_export(tmp_path: Path) -> None:
    path = tmp_path / "events_20260803.parquet"
    pq.write_table(pa.Table.from_pylist([ga4_row(1785744000123456)]), path)
    parsed = ga4.parse_file(path, "ga4/events_20260803.parquet")
    assert parsed.rows[0].line == 1
    assert parsed.rows[0].events[0].attributes["ga_session_id"] == 77
    (tmp_path / "bad.parquet").write_text("nope")
    with pytest.raises(SourceFormatError, match="bad.parquet"):
        ga4.parse_file(tmp_path / "bad.parquet", "ga4/bad.parquet")


def test_users_name_the_owners(write: Write) -> None:
    users = "Id,FirstName,LastName,Name,IsActive\n005000000000001,Ana,Ruiz,Ana Ruiz,true\n"
    parsed = salesforce.parse_file(write("User.csv", users), "User.csv")
    label = parsed.rows[0].labels[0]
    assert (label.kind, label.id, label.name) == ("owner", "005000000000001AAA", "Ana Ruiz")
    assert parsed.rows[0].events == []
