from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from journeymine.errors import SourceFormatError
from journeymine.sources import sendgrid, stripe

Write = Callable[[str, str], Path]

DELIVERED = {
    "email": "Jane.Doe@acme.io",
    "timestamp": 1785740400,
    "event": "delivered",
    "sg_event_id": "sg-1",
    "sg_message_id": "msg-1",
    "category": ["onboarding", "day1"],
    "user_id": "u-42",
    "ip": "10.0.0.1",
    "response": "250 OK",
}
CLICK = {
    "email": "jane.doe@acme.io",
    "timestamp": 1785744000,
    "event": "click",
    "sg_event_id": "sg-2",
    "url": "https://northwind.io/demo",
    "useragent": "Mozilla",
}


def test_webhook_body_events(write: Write) -> None:
    body = [
        DELIVERED,
        CLICK,
        {**CLICK, "sg_event_id": "sg-3", "event": "group_resubscribe"},
        {**CLICK, "sg_event_id": "sg-4", "timestamp": 1785744000000},
        {**CLICK, "sg_event_id": None},
        {**CLICK, "sg_event_id": "sg-6", "email": "nobody"},
    ]
    path = write("sendgrid/2026/08/03/webhook-1.json.gz", json.dumps(body, indent=2))
    parsed = sendgrid.parse_file(path, "f")
    assert parsed.rows_read == 6 and len(parsed.rows) == 3
    delivered, click, other = (r.events[0] for r in parsed.rows)
    assert (delivered.activity, delivered.actor, delivered.id_value, delivered.owner) == (
        "email.delivered",
        "company",
        "jane.doe@acme.io",
        "onboarding",
    )
    assert delivered.occurred_at == datetime.fromtimestamp(1785740400, tz=UTC)
    assert delivered.attributes == {"sg_message_id": "msg-1", "category": ["onboarding", "day1"]}
    assert (click.activity, click.actor, click.attributes) == (
        "email.click",
        "customer",
        {"url": "https://northwind.io/demo"},
    )
    assert other.activity == "email.event:group_resubscribe"
    edge = parsed.rows[0].edges[0]
    assert (edge.src_id, edge.dst_type, edge.dst_id, edge.rule) == (
        "jane.doe@acme.io",
        "user_id",
        "u-42",
        "sendgrid_custom_arg",
    )
    assert [(r.line, r.reason.split(":")[0]) for r in parsed.rejected] == [
        (4, "timestamp"),
        (5, "missing sg_event_id"),
        (6, "email"),
    ]
    assert "milliseconds" in parsed.rejected[0].reason


def test_sendgrid_file_that_is_not_an_array(write: Write) -> None:
    with pytest.raises(SourceFormatError, match="hook.json"):
        sendgrid.parse_file(write("hook.json", '{"email": "a@b.co"}'), "hook.json")


def stripe_event(evt: str, kind: str, obj: dict[str, object], version: str) -> dict[str, object]:
    return {
        "id": evt,
        "object": "event",
        "type": kind,
        "created": 1785740400,
        "api_version": version,
        "data": {"object": obj},
    }


CUSTOMER = stripe_event(
    "evt_1",
    "customer.created",
    {"id": "cus_9", "object": "customer", "email": "JANE@acme.io", "metadata": {"user_id": "u-42"}},
    "2024-06-20",
)
OLD_INVOICE = stripe_event(
    "evt_2",
    "invoice.paid",
    {
        "id": "in_1",
        "object": "invoice",
        "customer": "cus_9",
        "subscription": "sub_1",
        "amount_paid": 4900,
        "currency": "eur",
        "billing_reason": "subscription_cycle",
    },
    "2024-06-20",
)
BASIL_INVOICE = stripe_event(
    "evt_3",
    "invoice.payment_failed",
    {
        "id": "in_2",
        "object": "invoice",
        "customer": "cus_9",
        "attempt_count": 1,
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": "sub_1"},
        },
    },
    "2025-03-31.basil",
)


def test_stripe_json_lines_both_invoice_shapes(write: Write) -> None:
    text = "\n".join(json.dumps(e) for e in (CUSTOMER, OLD_INVOICE, BASIL_INVOICE)) + "\n"
    text += json.dumps(stripe_event("evt_4", "charge.dispute.created", {"customer": "cus_9"}, "x"))
    text += "\n" + json.dumps({**OLD_INVOICE, "id": "evt_5", "created": 1785740400123}) + "\n"
    parsed = stripe.parse_file(write("stripe/events.jsonl", text), "stripe/events.jsonl")
    assert parsed.rows_read == 5 and len(parsed.rows) == 4
    acts = [(r.events[0].activity, r.events[0].id_value) for r in parsed.rows]
    assert acts == [
        ("billing.customer_created", "cus_9"),
        ("billing.invoice_paid", "cus_9"),
        ("billing.payment_failed", "cus_9"),
        ("billing.event:charge.dispute.created", "cus_9"),
    ]
    assert parsed.rows[1].events[0].attributes["subscription"] == "sub_1"
    assert parsed.rows[2].events[0].attributes["subscription"] == "sub_1"
    assert {(e.dst_type, e.dst_id, e.rule) for e in parsed.rows[0].edges} == {
        ("email", "jane@acme.io", "stripe_customer_email"),
        ("user_id", "u-42", "stripe_customer_metadata"),
    }
    assert parsed.rejected[0].line == 5 and "milliseconds" in parsed.rejected[0].reason


def test_stripe_list_page(write: Write) -> None:
    page = {
        "object": "list",
        "url": "/v1/events",
        "has_more": False,
        "data": [CUSTOMER, {**OLD_INVOICE, "data": {"object": {"object": "invoice"}}}],
    }
    parsed = stripe.parse_file(write("stripe/page.json", json.dumps(page, indent=2)), "p")
    assert [r.record_key for r in parsed.rows] == ["evt_1"]
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (2, "missing customer (data.object.customer)")
    ]
