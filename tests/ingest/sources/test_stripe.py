"""Stripe Events API parser, on fixture files shaped like real event exports."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from journeymine.errors import SourceFormatError
from journeymine.ingest.sources import _json, stripe
from journeymine.ingest.sources._common import ParsedFile
from journeymine.ingest.sources._json import MAX_DEPTH

Write = Callable[[str, str], Path]

LANDING = Path(__file__).resolve().parents[2] / "data" / "landing"
JANE = "cus_QxA1b2C3d4E5f6"
SUB = "sub_1PqAbCdEfGhIjKlM"
PRICE = "price_1PqStarterMonthly"


def parse(name: str) -> ParsedFile:
    parsed = stripe.parse_file(LANDING / name, name)
    assert (parsed.source, parsed.file) == ("stripe", name)
    assert parsed.rows_read == len(parsed.rows) + len(parsed.rejected)
    return parsed


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


def summary(parsed: ParsedFile) -> list[tuple[Any, ...]]:
    out = []
    for row in parsed.rows:
        (e,) = row.events
        assert e.event_key == row.record_key and (e.id_type, e.channel) == (
            "stripe_customer",
            "billing",
        )
        out.append((row.line, row.record_key, e.event_type, e.activity, e.actor, e.occurred_at))
    return out


def test_json_lines_before_basil() -> None:
    parsed = parse("stripe/events-2026-08.jsonl")
    # created 1785744000 = 2026-08-03T08:00:00Z
    assert summary(parsed) == [
        (
            1,
            "evt_1PqCus0001",
            "customer.created",
            "billing.customer_created",
            "company",
            utc(2026, 8, 3, 8),
        ),
        (
            2,
            "evt_1PqSub0001",
            "customer.subscription.created",
            "billing.subscription_created",
            "customer",
            utc(2026, 8, 3, 8, 5),
        ),
        (
            3,
            "evt_1PqInv0001",
            "invoice.paid",
            "billing.invoice_paid",
            "customer",
            utc(2026, 8, 3, 9),
        ),
        (
            7,
            "evt_3PqChg0001",
            "charge.refunded",
            "billing.event:charge.refunded",  # unknown types keep their raw name
            "customer",
            utc(2026, 8, 4, 8),
        ),
        (
            9,
            "evt_1PqSub0002",
            "customer.subscription.updated",
            "billing.subscription_updated",
            "customer",
            utc(2026, 8, 17, 8, 5),
        ),
        (
            10,
            "evt_1PqSub0003",
            "customer.subscription.deleted",
            "billing.subscription_canceled",
            "customer",
            utc(2026, 9, 12, 8),
        ),
    ]
    assert {e.id_value for r in parsed.rows for e in r.events} == {JANE}
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (5, "invalid JSON: Expecting ',' delimiter at column 86"),
        (6, "created: absurd unix seconds 1785751200000 (milliseconds?)"),
        (8, "missing customer (data.object.customer)"),  # a guest payment
    ]
    assert parsed.rejected[2].raw.startswith('{"id": "evt_3PqPi00001"')


def test_customer_edges_and_attributes() -> None:
    customer, subscription, invoice, _, updated, deleted = parse("stripe/events-2026-08.jsonl").rows
    at = utc(2026, 8, 3, 8)
    assert [
        (e.src_type, e.src_id, e.dst_type, e.dst_id, e.rule, e.observed_at) for e in customer.edges
    ] == [
        ("stripe_customer", JANE, "email", "jane.doe@acme.io", "stripe_customer_email", at),
        ("stripe_customer", JANE, "user_id", "u-1001", "stripe_customer_metadata", at),
    ]
    assert customer.events[0].raw_time == "1785744000"
    assert customer.events[0].attributes == {"object": "customer", "api_version": "2024-06-20"}
    assert subscription.events[0].attributes == {
        "object": "subscription",
        "subscription": SUB,
        "price": PRICE,
        "status": "trialing",
        "currency": "eur",
        "api_version": "2024-06-20",
    }
    assert subscription.edges == []
    # Before basil the invoice names its subscription at the top level.
    assert invoice.events[0].attributes == {
        "object": "invoice",
        "subscription": SUB,
        "price": PRICE,
        "status": "paid",
        "amount_paid": 4900,
        "amount_due": 4900,
        "currency": "eur",
        "billing_reason": "subscription_cycle",
        "attempt_count": 1,
        "api_version": "2024-06-20",
    }
    assert [(e.dst_type, e.dst_id, e.rule) for e in invoice.edges] == [
        ("email", "jane.doe@acme.io", "stripe_invoice_email")
    ]
    assert updated.events[0].attributes["previous_status"] == "trialing"
    assert updated.events[0].attributes["status"] == "active"
    cancel = deleted.events[0].attributes
    assert (cancel["status"], cancel["cancellation_reason"], cancel["cancellation_feedback"]) == (
        "canceled",
        "cancellation_requested",
        "too_expensive",
    )
    assert "comment" not in json.dumps(cancel)  # free text stays out


def test_basil_invoice_from_gzipped_json_lines() -> None:
    parsed = parse("stripe/events-2026-09.jsonl.gz")
    (row,) = parsed.rows
    (event,) = row.events
    assert (row.line, event.activity, event.actor, event.id_value, event.occurred_at) == (
        1,
        "billing.payment_failed",
        "customer",
        JANE,
        utc(2026, 9, 3, 8),
    )
    # From basil on: parent.subscription_details.subscription and pricing.price_details.price.
    assert event.attributes == {
        "object": "invoice",
        "subscription": SUB,
        "price": PRICE,
        "status": "open",
        "amount_paid": 0,
        "amount_due": 4900,
        "currency": "eur",
        "billing_reason": "subscription_cycle",
        "attempt_count": 2,
        "api_version": "2025-03-31.basil",
    }
    assert [(e.dst_id, e.rule) for e in row.edges] == [
        ("jane.doe+billing@acme.io", "stripe_invoice_email")
    ]


def test_pretty_printed_list_page() -> None:
    parsed = parse("stripe/list-page-2026-09-06.json")
    assert summary(parsed) == [
        (
            1,
            "evt_1SbCus0002",
            "customer.updated",
            "billing.event:customer.updated",
            "customer",
            utc(2026, 9, 5, 8),
        ),
        (
            2,
            "evt_1SbInv0003",
            "invoice.paid",
            "billing.invoice_paid",
            "customer",
            utc(2026, 9, 6, 8),
        ),
    ]
    updated, paid = parsed.rows
    assert [(e.dst_type, e.dst_id, e.rule) for e in updated.edges] == [
        ("email", "jane@acme.io", "stripe_customer_email"),
        ("user_id", "u-1001", "stripe_customer_metadata"),
    ]
    assert paid.events[0].attributes["subscription"] == SUB
    assert paid.events[0].attributes["attempt_count"] == 3
    # raw is the element itself, with its non-ASCII text unchanged.
    page = json.loads((LANDING / "stripe/list-page-2026-09-06.json").read_text())
    assert json.loads(updated.raw) == page["data"][0]
    assert "Jane Müller" in updated.raw
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (3, "missing customer (data.object.customer)")
    ]


def event(kind: str, obj: dict[str, Any], version: str = "2024-06-20", **extra: Any) -> str:
    body = {"id": "evt_1", "object": "event", "api_version": version, "created": 1785744000}
    return json.dumps({**body, "type": kind, "data": {"object": obj}, **extra})


def test_invoice_shape_follows_the_object_when_it_disagrees_with_the_version(write: Write) -> None:
    old_shape_new_version = event(
        "invoice.paid",
        {"object": "invoice", "customer": "cus_1", "subscription": "sub_old"},
        "2025-06-30.basil",
    )
    new_shape_old_version = event(
        "invoice.paid",
        {
            "object": "invoice",
            "customer": "cus_1",
            "parent": {"subscription_details": {"subscription": "sub_new"}},
        },
    )
    text = old_shape_new_version + "\n" + new_shape_old_version + "\n"
    parsed = stripe.parse_file(write("stripe/mixed.jsonl", text), "stripe/mixed.jsonl")
    assert [r.events[0].attributes["subscription"] for r in parsed.rows] == ["sub_old", "sub_new"]


def test_identity_rules(write: Write) -> None:
    lines = [
        # customer.* without data.object.object: the id is the customer's own.
        event("customer.deleted", {"id": "cus_gone"}),
        # A subscription event is customer.* too, but its object names the customer.
        event(
            "customer.subscription.paused",
            {"id": "sub_9", "object": "subscription", "customer": "cus_2"},
        ),
        # An expanded customer object.
        event(
            "invoice.paid", {"object": "invoice", "customer": {"id": "cus_3", "object": "customer"}}
        ),
        event("customer.updated", {"object": "customer", "email": "x@y.io"}),
        event("invoice.paid", {"object": "invoice", "customer": 42}),
        json.dumps({"id": "cus_1", "object": "customer"}),  # not an event
        json.dumps(["evt_1"]),
        event("invoice.paid", {"customer": "cus_1"}, created="2026-08-03"),
        json.dumps({"object": "event", "type": "invoice.paid", "created": 1785744000}),
        event("invoice.paid", "in_1"),  # type: ignore[arg-type]
    ]
    parsed = stripe.parse_file(write("e.jsonl", "\n".join(lines)), "e.jsonl")
    assert [(r.events[0].id_value, r.events[0].activity) for r in parsed.rows] == [
        ("cus_gone", "billing.event:customer.deleted"),
        ("cus_2", "billing.event:customer.subscription.paused"),
        ("cus_3", "billing.invoice_paid"),
    ]
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (4, "missing customer (data.object.id)"),
        (5, "missing customer (data.object.customer)"),
        (6, "object: expected 'event', got 'customer'"),
        (7, "not a Stripe event: a JSON list, not an object"),
        (8, "created: not unix seconds: '2026-08-03'"),
        (9, "id: missing"),
        (10, "data.object: missing"),
    ]


def test_a_field_of_the_wrong_kind_is_named_by_its_whole_path(write: Write) -> None:
    invoice = {"object": "invoice", "customer": "cus_1"}
    lines = [
        event("invoice.paid", {**invoice, "lines": {"data": {"price": "x"}}}),  # data: no array
        event("invoice.paid", {**invoice, "lines": {"data": [{"price": ["p"]}]}}),  # price: no obj
        event("invoice.paid", {**invoice, "lines": {"data": [{"price": {"id": ["p"]}}]}}),
        event("invoice.paid", {**invoice, "currency": ["eur"]}),
        event("invoice.paid", {**invoice, "subscription": {"id": ["sub_1"]}}),
        event("invoice.paid", {**invoice, "lines": {"data": [{"price": {"id": "price_1"}}]}}),
    ]
    parsed = stripe.parse_file(write("w.jsonl", "\n".join(lines)), "w.jsonl")
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (1, "data.object.lines.data: expected an array, got object {'price': 'x'}"),
        (2, "data.object.lines.data[0].price: expected an object, got array ['p']"),
        (3, "data.object.lines.data.0.price.id: expected a scalar, got array ['p']"),
        (4, "data.object.currency: expected a scalar, got array ['eur']"),
        (5, "data.object.subscription: expected a scalar, got array ['sub_1']"),
    ]
    assert [r.events[0].attributes["price"] for r in parsed.rows] == ["price_1"]


def test_a_page_element_whose_object_is_an_array_is_one_rejected_record(write: Write) -> None:
    good = json.loads(event("invoice.paid", {"customer": "cus_1"}))
    page = {"object": "list", "data": [{**good, "object": ["event"]}, good]}
    parsed = stripe.parse_file(write("p.json", json.dumps(page, indent=2)), "p.json")
    assert [r.line for r in parsed.rows] == [2]
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (1, "object: expected 'event', got ['event']")
    ]


def test_single_pretty_printed_event(write: Write) -> None:
    text = json.dumps(json.loads(event("invoice.paid", {"customer": "cus_1"})), indent=2)
    parsed = stripe.parse_file(write("one.json", text), "one.json")
    assert [(r.line, r.record_key) for r in parsed.rows] == [(1, "evt_1")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,type\nevt_1,invoice.paid\n", "not Stripe events: no record in it could be read"),
        (
            json.dumps(
                {"error": {"message": "Invalid API Key provided: sk_test_***", "type": "x"}}
            ),
            "a Stripe API error response, not events: 'Invalid API Key provided: sk_test_\\*\\*\\*'",
        ),
        (
            json.dumps(
                {"object": "list", "data": [{"id": "cus_1", "object": "customer"}]}, indent=2
            ),
            "a list of \\['customer'\\] objects, not events",
        ),
        (json.dumps({"object": "list", "data": None}), "a Stripe list page without a 'data' array"),
        # An error that is a bare string, not an object, is still an error response.
        (json.dumps({"error": "boom"}), "a Stripe API error response, not events: 'boom'"),
    ],
)
def test_files_not_in_the_format_raise_naming_the_file(
    write: Write, text: str, message: str
) -> None:
    file = "stripe/2026/08/export.json"
    with pytest.raises(SourceFormatError, match=message) as info:
        stripe.parse_file(write("export.json", text), file)
    assert info.value.file == file and str(info.value).startswith(f"{file}: ")


def test_empty_list_page_and_empty_file(write: Write) -> None:
    page = json.dumps({"object": "list", "data": [], "has_more": False, "url": "/v1/events"})
    assert stripe.parse_file(write("p.json", page), "p.json").rows_read == 0
    assert stripe.parse_file(write("e.jsonl", "\n\n"), "e.jsonl").rows_read == 0


def test_a_bad_byte_in_the_page_around_the_events_breaks_the_file(tmp_path: Path) -> None:
    page = (LANDING / "stripe/list-page-2026-09-06.json").read_bytes()
    assert page.rstrip().endswith(b"}")
    path = tmp_path / "page.json"
    path.write_bytes(page.rstrip()[:-1] + b',\n  "url": "/v1/ev\xe9nts"\n}\n')
    lines = page.rstrip().count(b"\n") + 2  # the url member: a line after the last one; its
    # byte is column 17: two spaces, "url" (5), ":", a space, a quote, /v1/ev (6), then the byte
    with pytest.raises(SourceFormatError) as info:
        stripe.parse_file(path, "stripe/page.json")
    assert str(info.value) == (
        "stripe/page.json: the list page around the events: not UTF-8: byte 0xe9 at line "
        f"{lines}, column 17 (a Latin-1 export?); nothing was replaced"
    )


def _outcome(path: Path) -> ParsedFile | str:
    try:
        return stripe.parse_file(path, "stripe/page.json")
    except SourceFormatError as exc:
        return str(exc)


def test_a_page_decoded_whole_gives_the_records_of_element_by_element(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A list page whose data array decodes whole skips the element-by-element path: on pages
    around every edge of that path (tricky elements, bad bytes, nesting near the limit, one
    line or one element a line) both give the same rows, rejects and errors."""
    from tests.ingest.sources.test_json_lines import BAD_BYTES, TRICKY

    good = json.dumps(
        {"id": "evt_1", "object": "event", "type": "customer.created", "created": 1787275170,
         "data": {"object": {"id": JANE, "object": "customer", "email": "Jane@Example.com"}}}
    ).encode()  # fmt: skip
    # around the depth limit (the data array one level more), and far past it
    deep = [b"[" * n + b"]" * n for n in [*range(MAX_DEPTH - 2, MAX_DEPTH + 3), 10_000]]
    elements = [t.encode() for t in TRICKY if t.strip()] + BAD_BYTES + deep + [good]
    taken: list[bool] = []
    whole = _json.whole_array

    def spy(text: str, start: int) -> Any:
        records = whole(text, start)
        taken.append(records is not None)
        return records

    monkeypatch.setattr(_json, "whole_array", spy)
    for number, element in enumerate(elements):
        for joiner in (b", ", b",\n  "):
            data = joiner.join([good, element, good])
            page = b'{"object": "list", "has_more": false, "data": [' + data + b"]}\n"
            path = tmp_path / f"page-{number}-{len(joiner)}.json"
            path.write_bytes(page)
            fast = _outcome(path)
            monkeypatch.setattr(_json, "WHOLE_ARRAYS", False)  # element by element
            assert fast == _outcome(path), page[:200]
            monkeypatch.setattr(_json, "WHOLE_ARRAYS", True)
    assert 0 < sum(taken) < 2 * len(elements)  # both ways of reading a page were compared
    # The usual page is read whole; one with a bad byte or a record too deep in it is not.
    for element, read_whole in ((good, [True]), (BAD_BYTES[0], [False]), (deep[3], [False])):
        taken.clear()
        path.write_bytes(b'{"object": "list", "data": [' + good + b", " + element + b"]}")
        assert isinstance(_outcome(path), ParsedFile) and taken == read_whole
