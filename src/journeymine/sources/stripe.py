"""Stripe: Events API objects, as JSON lines or as list pages ``{"object": "list", "data": [...]}``.

* dedup key ``id`` (``evt_...``); time ``created`` in unix **seconds**;
* in a list page, ``line`` is the 1-based position in ``data``;
* the person is the Stripe customer: ``data.object.id`` for ``customer.*`` events (other than
  subscriptions), else ``data.object.customer``;
* invoices come in two shapes: before API version ``2025-03-31.basil`` the subscription is
  ``invoice.subscription``; from basil on it is ``invoice.parent.subscription_details
  .subscription``. Both are read;
* unknown event types are kept as ``billing.event:<type>``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from journeymine.sources._common import (
    COMPANY,
    CUSTOMER,
    EMAIL,
    STRIPE_CUSTOMER,
    USER_ID,
    Edge,
    Event,
    ParsedFile,
    RawRow,
    Record,
    RecordError,
    iter_json_lines,
    normalise_email,
    open_text,
    parse_records,
    parse_unix_seconds,
)

SOURCE = "stripe"
ACTIVITIES = {
    "customer.created": ("billing.customer_created", COMPANY),
    "customer.subscription.created": ("billing.subscription_created", CUSTOMER),
    "customer.subscription.updated": ("billing.subscription_updated", CUSTOMER),
    "customer.subscription.deleted": ("billing.subscription_canceled", CUSTOMER),
    "invoice.paid": ("billing.invoice_paid", CUSTOMER),
    "invoice.payment_succeeded": ("billing.invoice_paid", CUSTOMER),
    "invoice.payment_failed": ("billing.payment_failed", CUSTOMER),
}


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _subscription_of(obj: dict[str, Any]) -> Any:
    """The subscription an invoice belongs to, in either API shape."""
    if obj.get("object") == "subscription":
        return obj.get("id")
    return obj.get("subscription") or _get(obj, "parent", "subscription_details", "subscription")


def _price_of(obj: dict[str, Any]) -> Any:
    items = _get(obj, "items", "data") or _get(obj, "lines", "data") or []
    first = items[0] if items and isinstance(items[0], dict) else {}
    return (
        _get(first, "price", "id")
        or _get(first, "pricing", "price_details", "price")
        or _get(first, "plan", "id")
        or _get(obj, "plan", "id")
    )


def _attributes(obj: dict[str, Any], api_version: Any) -> dict[str, Any]:
    attrs = {
        "object": obj.get("object"),
        "subscription": _subscription_of(obj),
        "status": obj.get("status"),
        "price": _price_of(obj),
        "amount_paid": obj.get("amount_paid"),
        "amount_due": obj.get("amount_due"),
        "currency": obj.get("currency"),
        "billing_reason": obj.get("billing_reason"),
        "attempt_count": obj.get("attempt_count"),
        "cancellation_reason": _get(obj, "cancellation_details", "reason"),
        "api_version": api_version,
    }
    return {k: v for k, v in attrs.items() if v is not None}


def parse_event(line: int, text: str, event: object) -> RawRow:
    if not isinstance(event, dict) or event.get("object") not in (None, "event"):
        raise RecordError("not a Stripe event object")
    event_id, kind = event.get("id"), event.get("type")
    if not event_id:
        raise RecordError("missing id")
    if not kind:
        raise RecordError("missing type")
    at = parse_unix_seconds(event.get("created"), "created")
    obj = _get(event, "data", "object")
    if not isinstance(obj, dict):
        raise RecordError("missing data.object")
    is_customer = obj.get("object") == "customer"
    customer = obj.get("id") if is_customer else obj.get("customer")
    if isinstance(customer, dict):  # expanded customer object
        customer = customer.get("id")
    if not customer:
        raise RecordError("missing customer (data.object.customer)")
    activity, actor = ACTIVITIES.get(str(kind), (f"billing.event:{kind}", CUSTOMER))
    row = RawRow(line, str(event_id), text)
    row.events.append(
        Event(
            event_key=str(event_id),
            event_type=str(kind),
            activity=activity,
            actor=actor,
            occurred_at=at,
            raw_time=str(event.get("created")),
            id_type=STRIPE_CUSTOMER,
            id_value=str(customer),
            channel="billing",
            attributes=_attributes(obj, event.get("api_version")),
        )
    )
    email = normalise_email(obj.get("email") if is_customer else obj.get("customer_email"))
    if email:
        rule = "stripe_customer_email" if is_customer else "stripe_invoice_email"
        row.edges.append(Edge(STRIPE_CUSTOMER, str(customer), EMAIL, email, rule, at))
    user_id = _get(obj, "metadata", "user_id") if is_customer else None
    if user_id:
        row.edges.append(
            Edge(
                STRIPE_CUSTOMER,
                str(customer),
                USER_ID,
                str(user_id),
                "stripe_customer_metadata",
                at,
            )
        )
    return row


def _list_page(path: Path) -> list[Any] | None:
    """The ``data`` of a list page, or None when the file is JSON lines."""
    with open_text(path) as fh:
        head = fh.read(4096)
        if not head.lstrip().startswith("{") or '"list"' not in head:
            return None
        text = head + fh.read()
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        return None  # JSON lines whose first event mentions "list"
    if isinstance(doc, dict) and doc.get("object") == "list":
        data = doc.get("data")
        return data if isinstance(data, list) else []
    return None


def parse_file(path: Path, file: str) -> ParsedFile:
    """Parse a file of Stripe events (JSON lines or a list page), plain or .gz."""
    page = _list_page(path)
    items: Iterable[Record]
    if page is not None:
        items = ((i, json.dumps(e), e) for i, e in enumerate(page, start=1))
    else:
        items = iter_json_lines(path)
    return parse_records(SOURCE, file, items, parse_event, "Stripe events")
