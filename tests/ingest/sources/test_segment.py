from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from journeymine.errors import SourceFormatError
from journeymine.ingest.sources import segment
from journeymine.ingest.sources._common import ParsedFile, RawRow

Write = Callable[[str, str], Path]

LANDING = Path(__file__).parents[2] / "data" / "landing"
CALLS = "segment/2026/08/03/calls.jsonl"
CALLS_GZ = "segment/2026/08/04/calls.jsonl.gz"


def parse(file: str) -> ParsedFile:
    return segment.parse_file(LANDING / file, file)


def edges(row: RawRow) -> list[tuple[str, str, str, str, str]]:
    return [(e.src_type, e.src_id, e.dst_type, e.dst_id, e.rule) for e in row.edges]


def test_every_line_is_a_row_or_a_reject() -> None:
    parsed = parse(CALLS)
    assert (parsed.source, parsed.file) == ("segment", CALLS)
    assert parsed.rows_read == 15 == len(parsed.rows) + len(parsed.rejected)
    assert [r.line for r in parsed.rows] == [1, 2, 3, 5, 6, 7, 14, 15, 16]
    assert [r.record_key for r in parsed.rows] == [
        "ajs-next-1a2b3c",
        "ajs-next-4d5e6f",
        "ajs-next-7a8b9c",
        "ajs-next-aa11",
        "ajs-next-bb22",
        "ios-cc33",
        "ajs-next-7a8b9c",  # a retried message: same key, the loader counts the duplicate
        "ajs-next-dd44",
        "ajs-next-ee55",
    ]
    lines = (LANDING / CALLS).read_text().splitlines()
    assert all(row.raw == lines[row.line - 1] for row in parsed.rows)


def test_rejects_name_line_and_field() -> None:
    rejected = parse(CALLS).rejected
    assert [(r.line, r.reason) for r in rejected[1:]] == [
        (9, "missing messageId"),
        (10, "missing userId and anonymousId"),
        (11, "timestamp: unparseable timestamp 'yesterday'"),
        (12, "timestamp: missing timestamp"),
        (13, "missing event"),
    ]
    assert rejected[0].line == 4 and rejected[0].reason.startswith("invalid JSON: Unterminated")
    assert rejected[0].raw.endswith('"timest')


def test_page_view_with_offset_time_and_campaign() -> None:
    (event,) = parse(CALLS).rows[0].events
    assert (event.event_key, event.event_type, event.activity, event.actor, event.channel) == (
        "ajs-next-1a2b3c",
        "page",
        "web.page_view:/pricing",
        "customer",
        "web",
    )
    assert (event.id_type, event.id_value) == ("anonymous_id", "5f1c2b3a-anon-0001")
    assert event.occurred_at == datetime(2026, 8, 3, 8, 15, 0, 250000, tzinfo=UTC)
    assert event.raw_time == "2026-08-03T10:15:00.250+02:00"
    assert event.attributes == {
        "path": "/Pricing/teams",
        "path_group": "/pricing",
        "title": "<script>alert('x')</script> Pricing",  # unchanged; escaped at HTML time
        "url": "https://northwind.io/Pricing/teams?utm_source=linkedin",
        "referrer": "https://www.linkedin.com/",
        "utm_source": "linkedin",
        "utm_medium": "paid_social",
        "utm_campaign": "q3-launch",
        "utm_term": "crm",
        "utm_content": "video-a",
    }
    assert parse(CALLS).rows[0].edges == []


def test_identify_links_ids_and_email_and_drops_personal_traits() -> None:
    rows = parse(CALLS).rows
    identify, anonymous_identify = rows[1], rows[7]
    (event,) = identify.events
    assert (event.activity, event.id_type, event.id_value) == ("web.identified", "user_id", "u-42")
    assert event.attributes == {"company_size": "11-50", "plan": "free"}
    assert edges(identify) == [
        ("anonymous_id", "5f1c2b3a-anon-0001", "user_id", "u-42", "segment_identify"),
        ("user_id", "u-42", "email", "jane.doe@acme.io", "segment_identify_email"),
    ]
    # Without a userId the anonymous id is the one linked to the email.
    assert edges(anonymous_identify) == [
        ("anonymous_id", "5f1c2b3a-anon-0003", "email", "bob@corp.com", "segment_identify_email")
    ]
    assert anonymous_identify.events[0].id_type == "anonymous_id"


def test_track_keeps_scalar_properties_but_no_ip() -> None:
    track = parse(CALLS).rows[2]
    (event,) = track.events
    assert (event.event_type, event.activity, event.id_value) == (
        "Demo Requested",
        "web.demo_requested",
        "u-42",
    )
    assert event.occurred_at == datetime(2026, 8, 3, 8, 25, tzinfo=UTC)
    assert event.attributes == {
        "plan": "teams",
        "seats": 5,
        "trial": False,
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "aug-digest",
    }
    assert edges(track) == [
        ("anonymous_id", "5f1c2b3a-anon-0001", "user_id", "u-42", "segment_track")
    ]


def test_alias_and_group_are_edges_only() -> None:
    rows = parse(CALLS).rows
    alias, group = rows[3], rows[4]
    assert alias.events == [] and group.events == []
    at = datetime(2026, 8, 3, 9, 0, tzinfo=UTC)
    assert edges(alias) == [
        ("anonymous_id", "5f1c2b3a-anon-0002", "user_id", "u-42", "segment_alias")
    ]
    assert alias.edges[0].observed_at == at
    assert edges(group) == [
        ("anonymous_id", "5f1c2b3a-anon-0001", "user_id", "u-42", "segment_group"),
        ("user_id", "u-42", "segment_group", "acct-7", "segment_group"),
    ]


def test_screen_and_unknown_types_are_kept() -> None:
    rows = parse(CALLS).rows
    screen, unknown = rows[5].events[0], rows[8].events[0]
    assert (screen.activity, screen.attributes) == (
        "web.screen_view",
        {"name": "Dashboard", "tab": "home"},
    )
    assert (unknown.event_type, unknown.activity, unknown.attributes) == (
        "hologram",
        "web.call:hologram",
        {},
    )


def test_gzipped_file_and_negative_offset() -> None:
    parsed = parse(CALLS_GZ)
    assert parsed.rows_read == 2 and not parsed.rejected
    page, signup = (r.events[0] for r in parsed.rows)
    assert page.activity == "web.page_view:/"
    assert page.occurred_at == datetime(2026, 8, 4, 11, 30, tzinfo=UTC)
    assert page.raw_time == "2026-08-04T07:30:00.000-04:00"
    assert (signup.activity, signup.attributes) == ("web.signed_up", {"plan": "free"})


@pytest.mark.parametrize(
    ("path", "group"),
    [
        ("/", "/"),
        ("", "/"),
        (None, "/"),
        ("/blog/how-to?x=1", "/blog"),
        ("/Pricing", "/pricing"),
        ("https://northwind.io/docs/a#b", "/docs"),
        ("pricing", "/pricing"),
    ],
)
def test_path_group(path: str | None, group: str) -> None:
    assert segment.path_group(path) == group


def test_malformed_calls_are_rejected_not_raised(write: Write) -> None:
    base = {"type": "track", "event": "X", "userId": "u-1", "timestamp": "2026-08-03T08:00:00Z"}
    calls = [
        {**base, "messageId": "m1", "userId": {"id": 1}},
        {**base, "messageId": "m2", "type": "group"},
        {**base, "messageId": "m3", "type": "alias"},
        {**base, "messageId": "m4", "type": None},
        {**base, "messageId": "m5", "timestamp": "1999-12-31T23:00:00Z"},
        [1, 2],
        {**base, "messageId": 77},
    ]
    path = write("s.jsonl", "".join(json.dumps(c) + "\n" for c in calls))
    parsed = segment.parse_file(path, "s.jsonl")
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (1, "userId: not an id: {'id': 1}"),
        (2, "missing groupId"),
        (3, "alias: missing previousId or userId"),
        (4, "missing type"),
        (5, "timestamp: absurd timestamp '1999-12-31T23:00:00Z' (1999-12-31T23:00:00+00:00)"),
        (6, "not a JSON object"),
    ]
    assert [r.record_key for r in parsed.rows] == ["77"]


def test_files_that_are_not_segment_json_lines_name_the_file(write: Write) -> None:
    not_segment = {
        "segment/export.csv": "messageId,type\nm1,track\n",
        "segment/numbers.jsonl": "1\n2\n",
        "segment/binary.jsonl": "\x00\x01PNG\x1a\n",
    }
    for name, text in not_segment.items():
        with pytest.raises(SourceFormatError, match=name):
            segment.parse_file(write(name, text), name)
    broken_gz = write("segment/broken.jsonl", "")
    broken_gz = broken_gz.rename(broken_gz.with_name("broken.jsonl.gz"))
    broken_gz.write_bytes(b"not gzip at all")
    with pytest.raises(SourceFormatError, match="broken.jsonl.gz"):
        segment.parse_file(broken_gz, "segment/broken.jsonl.gz")


def test_an_empty_file_is_fine(write: Write) -> None:
    parsed = segment.parse_file(write("empty.jsonl", "\n"), "empty.jsonl")
    assert parsed.rows_read == 0
