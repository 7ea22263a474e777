from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from journeymine.errors import SourceFormatError
from journeymine.sources import segment

Write = Callable[[str, str], Path]

PAGE = {
    "type": "page",
    "messageId": "ajs-m1",
    "anonymousId": "anon-1",
    "timestamp": "2026-08-03T10:15:00.000+02:00",
    "name": "Pricing",
    "properties": {
        "path": "/pricing/teams",
        "title": "<script>alert(1)</script>",
        "url": "https://northwind.io/pricing/teams?ref=x",
    },
    "context": {
        "campaign": {
            "source": "linkedin",
            "medium": "paid_social",
            "name": '"><img src=x onerror=alert(1)>',
        },
        "ip": "1.2.3.4",
    },
}
IDENTIFY = {
    "type": "identify",
    "messageId": "ajs-m2",
    "anonymousId": "anon-1",
    "userId": "u-42",
    "timestamp": "2026-08-03T08:20:00Z",
    "traits": {"email": "  Jane.Doe@Acme.IO ", "company_size": "11-50", "name": "Jane"},
}
TRACK = {
    "type": "track",
    "messageId": "ajs-m3",
    "userId": "u-42",
    "event": "Demo Requested",
    "timestamp": "2026-08-03T08:25:00Z",
    "properties": {"plan": "teams", "seats": 5},
}
ALIAS = {
    "type": "alias",
    "messageId": "ajs-m4",
    "previousId": "anon-2",
    "userId": "u-42",
    "timestamp": "2026-08-04T08:00:00Z",
}
GROUP = {
    "type": "group",
    "messageId": "ajs-m5",
    "userId": "u-42",
    "groupId": "g-7",
    "timestamp": "2026-08-04T08:01:00Z",
    "traits": {"name": "Acme"},
}


def lines(*calls: object) -> str:
    return "".join((c if isinstance(c, str) else json.dumps(c)) + "\n" for c in calls)


def test_calls_become_touchpoints_and_links(write: Write) -> None:
    path = write("segment/2026/08/03/a.jsonl.gz", lines(PAGE, IDENTIFY, TRACK, ALIAS, GROUP))
    parsed = segment.parse_file(path, "segment/2026/08/03/a.jsonl.gz")
    assert parsed.rows_read == 5 and not parsed.rejected
    page, identify, track, alias, group = parsed.rows
    ev = page.events[0]
    assert (ev.activity, ev.actor, ev.id_type, ev.id_value) == (
        "web.page_view:/pricing",
        "customer",
        "anonymous_id",
        "anon-1",
    )
    assert ev.occurred_at == datetime(2026, 8, 3, 8, 15, tzinfo=UTC)
    assert ev.raw_time == "2026-08-03T10:15:00.000+02:00"
    assert ev.attributes["title"] == "<script>alert(1)</script>"  # kept; escaped at HTML time
    assert ev.attributes["utm_campaign"] == '"><img src=x onerror=alert(1)>'
    assert ev.attributes["utm_source"] == "linkedin" and "1.2.3.4" not in json.dumps(ev.attributes)
    assert identify.events[0].activity == "web.identified"
    assert identify.events[0].attributes == {"company_size": "11-50"}
    assert [(e.src_type, e.src_id, e.dst_type, e.dst_id, e.rule) for e in identify.edges] == [
        ("anonymous_id", "anon-1", "user_id", "u-42", "segment_identify"),
        ("user_id", "u-42", "email", "jane.doe@acme.io", "segment_identify_email"),
    ]
    assert track.events[0].activity == "web.demo_requested"
    assert track.events[0].attributes == {"event": "Demo Requested", "plan": "teams", "seats": 5}
    assert alias.events == [] and alias.edges[0].rule == "segment_alias"
    assert group.events == [] and (group.edges[0].dst_type, group.edges[0].dst_id) == (
        "segment_group",
        "g-7",
    )
    assert [r.record_key for r in parsed.rows] == ["ajs-m1", "ajs-m2", "ajs-m3", "ajs-m4", "ajs-m5"]


def test_bad_calls_are_rejected_with_line_and_reason(write: Write) -> None:
    no_id = {**TRACK, "messageId": ""}
    nobody = {k: v for k, v in TRACK.items() if k != "userId"} | {"messageId": "x1"}
    bad_time = {**TRACK, "messageId": "x2", "timestamp": "yesterday"}
    path = write("s.jsonl", lines(TRACK, '{"type": "track", broken', no_id, nobody, bad_time))
    parsed = segment.parse_file(path, "s.jsonl")
    assert parsed.rows_read == 5 and len(parsed.rows) == 1
    assert [(r.line, r.reason.split(":")[0]) for r in parsed.rejected] == [
        (2, "invalid JSON"),
        (3, "missing messageId"),
        (4, "missing userId and anonymousId"),
        (5, "timestamp"),
    ]
    assert "unparseable timestamp 'yesterday'" in parsed.rejected[-1].reason


def test_unknown_call_types_are_kept(write: Write) -> None:
    path = write(
        "s.jsonl",
        lines(
            {**TRACK, "type": "screen", "name": "Home"},
            {**TRACK, "messageId": "z", "type": "hologram"},
        ),
    )
    acts = [r.events[0].activity for r in segment.parse_file(path, "s.jsonl").rows]
    assert acts == ["web.screen_view", "web.call:hologram"]


def test_a_file_that_is_not_json_lines_is_named(write: Write) -> None:
    path = write("segment/export.csv", "a,b,c\n1,2,3\n")
    with pytest.raises(SourceFormatError, match="segment/export.csv"):
        segment.parse_file(path, "segment/export.csv")
