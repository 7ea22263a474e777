from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from journeymine.errors import SourceFormatError
from journeymine.ingest.sources import sendgrid
from journeymine.ingest.sources._common import ParsedFile, decode_text

Write = Callable[[str, str], Path]

LANDING = Path(__file__).parents[2] / "data" / "landing"
BODY = "sendgrid/2026/08/03/webhook-1.json"
MESSAGE = "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"


def parse() -> ParsedFile:
    return sendgrid.parse_file(LANDING / BODY, BODY)


def test_every_array_element_is_a_row_or_a_reject() -> None:
    parsed = parse()
    assert (parsed.source, parsed.file) == ("sendgrid", BODY)
    assert parsed.rows_read == 11 == len(parsed.rows) + len(parsed.rejected)
    # line = 1-based index of the event in the (pretty-printed) array
    assert [r.line for r in parsed.rows] == [1, 2, 3, 4, 5, 6, 11]
    assert [r.record_key for r in parsed.rows] == [
        "rbtnWrG1DVDGGGFHFyun0A==",
        "sZROwMGMagFgnOEmSdvhig==",
        "FOTFFO0ecsBE-zxFXfs6WA==",
        "kCAi1KttyQdEKHhdC-nuEA==",
        "6g4ZI7SA-xmRDv57GoPIPw==",
        "AhSN0LwHJXhlG9qUxh1C0w==",
        "FOTFFO0ecsBE-zxFXfs6WA==",  # a retried POST: same key, the loader counts the duplicate
    ]
    body = json.loads((LANDING / BODY).read_text())
    assert json.loads(parsed.rows[1].raw) == body[1]


def test_rejects_name_index_and_field() -> None:
    assert [(r.line, r.reason) for r in parse().rejected] == [
        (7, "timestamp: absurd unix seconds 1785747700000 (milliseconds?)"),
        (8, "missing sg_event_id"),
        (9, "timestamp: missing timestamp"),
        (10, "email: invalid address 'not-an-email'"),
    ]


def test_delivery_events_are_company_actions_with_owner() -> None:
    processed, delivered = (r.events[0] for r in parse().rows[:2])
    assert (processed.event_type, processed.activity, processed.actor, processed.channel) == (
        "processed",
        "email.processed",
        "company",
        "email",
    )
    assert (processed.id_type, processed.id_value, processed.owner) == (
        "email",
        "jane.doe@acme.io",
        "onboarding",
    )
    assert processed.occurred_at == datetime(2026, 8, 3, 8, 0, tzinfo=UTC)
    assert processed.raw_time == "1785744000"
    assert processed.attributes == {
        "sg_message_id": MESSAGE,
        "category": ["onboarding", "day1"],
        "marketing_campaign_name": "Onboarding <day 1>",
    }
    assert delivered.attributes == {"sg_message_id": MESSAGE, "category": ["onboarding", "day1"]}


def test_engagement_is_customer_action_without_ip_or_useragent() -> None:
    rows = parse().rows
    opened, click = rows[2].events[0], rows[3].events[0]
    assert (opened.activity, opened.actor, opened.owner) == ("email.open", "customer", "onboarding")
    assert opened.occurred_at == datetime(2026, 8, 3, 9, 0, tzinfo=UTC)
    assert opened.attributes == {"sg_message_id": MESSAGE, "category": "onboarding"}
    assert click.attributes == {
        "sg_message_id": MESSAGE,
        "category": "onboarding",
        "url": "https://northwind.io/demo?x=<script>",  # unchanged; escaped at HTML time
    }
    assert "255.255.255.255" not in json.dumps([e.attributes for r in rows for e in r.events])


def test_bounce_details_and_unknown_events() -> None:
    rows = parse().rows
    bounce, other = rows[4].events[0], rows[5].events[0]
    assert (bounce.activity, bounce.actor, bounce.id_value, bounce.owner) == (
        "email.bounce",
        "company",
        "bob@corp.com",
        None,  # empty category list: no owner
    )
    assert bounce.attributes == {
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.1",
        "category": [],
        "reason": "500 unknown recipient",
        "status": "5.0.0",
        "type": "bounce",
        "bounce_classification": "Invalid Address",
    }
    assert (other.event_type, other.activity, other.actor, other.owner) == (
        "group_resubscribe",
        "email.event:group_resubscribe",
        "customer",
        "newsletter",
    )


def test_user_id_custom_arg_links_email_to_user() -> None:
    rows = parse().rows
    edges = [(e.src_type, e.src_id, e.dst_type, e.dst_id, e.rule) for e in rows[0].edges]
    assert edges == [("email", "jane.doe@acme.io", "user_id", "u-42", "sendgrid_custom_arg")]
    assert rows[0].edges[0].observed_at == datetime(2026, 8, 3, 8, 0, tzinfo=UTC)
    assert rows[2].edges == []


def test_gzipped_body_and_odd_values(write: Write) -> None:
    body = [
        {"email": "A@B.io", "timestamp": "1785744000", "event": "spamreport", "sg_event_id": "e1"},
        {"email": "a@b.io", "timestamp": 1785744000.5, "event": "open", "sg_event_id": "e2"},
        {
            "email": "a@b.io",
            "timestamp": 1785744000,
            "event": "open",
            "sg_event_id": "e3",
            "user_id": 7,
        },
        {"timestamp": 1785744000, "event": "open", "sg_event_id": "e4"},
        {"email": "a@b.io", "timestamp": 1785744000, "sg_event_id": "e5"},
        "not an event",
        {"email": "a@b.io", "timestamp": 1785744000, "event": "open", "sg_event_id": None},
    ]
    path = write("sendgrid/hook.json.gz", json.dumps(body, indent=2))
    parsed = sendgrid.parse_file(path, "sendgrid/hook.json.gz")
    spam, half, linked = (r.events[0] for r in parsed.rows)
    assert (spam.activity, spam.actor, spam.id_value) == ("email.spamreport", "customer", "a@b.io")
    assert half.occurred_at == datetime(2026, 8, 3, 8, 0, 0, 500000, tzinfo=UTC)
    assert parsed.rows[2].edges[0].dst_id == "7" and linked.owner is None
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (4, "missing email"),
        (5, "missing event"),
        (6, "not a JSON object"),
        (7, "missing sg_event_id"),  # null is as missing as an absent key
    ]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("sendgrid/hook.json", '{"email": "a@b.co", "event": "open"}'),
        ("sendgrid/hook.csv", "email,event\na@b.co,open\n"),
        ("sendgrid/lines.json", '{"sg_event_id": "1"}\n{"sg_event_id": "2"}\n'),
        ("sendgrid/numbers.json", "[1, 2, 3]"),
        ("sendgrid/empty.json", ""),
    ],
)
def test_files_that_are_not_webhook_bodies_name_the_file(
    write: Write, name: str, text: str
) -> None:
    with pytest.raises(SourceFormatError, match=name):
        sendgrid.parse_file(write(name, text), name)


def test_a_corrupt_gz_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "hook.json.gz"
    path.write_bytes(b"\x1f\x8b\x08 truncated")
    with pytest.raises(SourceFormatError, match="sendgrid/hook.json.gz"):
        sendgrid.parse_file(path, "sendgrid/hook.json.gz")


def _outcome_of(path: Path) -> tuple[list[tuple[int, str, str]], list[tuple[int, str, str]]] | str:
    try:
        parsed = sendgrid.parse_file(path, "sendgrid/body.json")
    except SourceFormatError as exc:
        return str(exc)
    rows = [(r.line, r.record_key, r.raw) for r in parsed.rows]
    return rows, [(r.line, r.reason, r.raw) for r in parsed.rejected]


def test_a_body_decoded_whole_gives_the_records_of_element_by_element(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The usual body is decoded whole; on bodies around every edge of that path (tricky
    elements, bad bytes, nesting at and past the depth limit, text after the array) both ways
    give the same rows, rejects and errors."""
    from journeymine.ingest.sources import _json
    from tests.ingest.sources.test_json_lines import BAD_BYTES, TRICKY

    good = (LANDING / BODY).read_bytes().strip()[1:-1].split(b"},", 1)[0].strip() + b"}"
    assert isinstance(json.loads(good), dict)
    limit = _json.MAX_DEPTH
    deep = [b"[" * n + b"]" * n for n in (limit - 1, limit, limit + 1, 10_000)]
    elements = [t.encode() for t in TRICKY if t.strip()] + BAD_BYTES + deep + [good]
    read_whole = 0
    for number, element in enumerate(elements):
        for after in (b"\n", b" x\n"):
            path = tmp_path / f"body-{number}-{len(after)}.json"
            path.write_bytes(b"[" + b",\n".join([good, element, good]) + b"]" + after)
            whole = _outcome_of(path)
            text = decode_text(path.read_bytes())
            read_whole += _json.whole_array(text, 0) is not None and after == b"\n"
            monkeypatch.setattr(_json, "WHOLE_ARRAYS", False)
            assert whole == _outcome_of(path), path.read_bytes()[:200]
            monkeypatch.setattr(_json, "WHOLE_ARRAYS", True)
    assert 0 < read_whole < len(elements)  # both ways were compared
