"""Stripe: Events API objects (``evt_...``), as JSON lines or as list pages.

Format and units
  * JSON lines: one event object per line, ``line`` is the physical line;
  * a list page ``{"object": "list", "data": [...], "has_more": ...}`` as ``GET /v1/events``
    returns it, compact or pretty-printed: ``line`` is the 1-based index in ``data`` and ``raw``
    the element re-serialised (non-ASCII text unchanged). Each page is its own file; ``has_more``
    is not followed;
  * ``created`` is unix **seconds**; a value in milliseconds is rejected.

Dedup key
  the event ``id`` (``evt_...``); it is also the event key.

Person
  the Stripe customer: ``data.object.id`` when ``data.object`` is the customer itself
  (``customer.created`` / ``updated`` / ``deleted``), else ``data.object.customer`` (an id, or an
  expanded customer object). An event without one is rejected.

Quirks
  * invoices come in two shapes: before API version ``2025-03-31.basil`` the subscription is
    ``invoice.subscription`` and a line's price ``lines.data[].price.id``; from basil on they are
    ``invoice.parent.subscription_details.subscription`` and
    ``lines.data[].pricing.price_details.price``. The event's ``api_version`` says which shape to
    expect first; the other is the fallback, since webhook endpoints pinned to another version
    and hand-made exports mix them;
  * a subscription's price is ``items.data[0].price.id`` (older objects: ``plan.id``);
  * unknown event types are kept as ``billing.event:<type>`` with the type unchanged;
  * a single pretty-printed event object is read as one record (``line`` 1);
  * a Stripe API error response saved as a file (``{"error": {...}}``) is not an events file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from journeymine.errors import SourceFormatError
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
CHANNEL = "billing"
BASIL = "2025-03-31.basil"  # the API version that moved invoice.subscription under parent

# Event type -> (activity, actor), docs/activities.md. Anything else: UNKNOWN_ACTIVITY + type.
ACTIVITIES = {
    "customer.created": ("billing.customer_created", COMPANY),
    "customer.subscription.created": ("billing.subscription_created", CUSTOMER),
    "customer.subscription.updated": ("billing.subscription_updated", CUSTOMER),
    "customer.subscription.deleted": ("billing.subscription_canceled", CUSTOMER),
    "invoice.paid": ("billing.invoice_paid", CUSTOMER),
    "invoice.payment_succeeded": ("billing.invoice_paid", CUSTOMER),
    "invoice.payment_failed": ("billing.payment_failed", CUSTOMER),
}
UNKNOWN_ACTIVITY = "billing.event:"
UNKNOWN_ACTOR = CUSTOMER

# Events whose data.object is the customer itself; identity edges come from created/updated.
CUSTOMER_OBJECT_TYPES = ("customer.created", "customer.updated", "customer.deleted")
CUSTOMER_EDGE_TYPES = ("customer.created", "customer.updated")

# Field paths inside data.object.
OLD_INVOICE_SUBSCRIPTION = ("subscription",)
BASIL_INVOICE_SUBSCRIPTION = ("parent", "subscription_details", "subscription")
SUBSCRIPTION_PRICE = ("items", "data", 0, "price", "id")
SUBSCRIPTION_PLAN = ("plan", "id")
OLD_LINE_PRICE = ("lines", "data", 0, "price", "id")
BASIL_LINE_PRICE = ("lines", "data", 0, "pricing", "price_details", "price")
CUSTOMER_EMAIL = ("email",)
INVOICE_EMAIL = ("customer_email",)
METADATA_USER_ID = ("metadata", "user_id")
CANCELLATION_REASON = ("cancellation_details", "reason")
CANCELLATION_FEEDBACK = ("cancellation_details", "feedback")
# Plain data.object fields copied into attributes, values unchanged.
OBJECT_FIELDS = (
    "status",
    "amount_paid",
    "amount_due",
    "currency",
    "billing_reason",
    "attempt_count",
)

FieldPath = tuple[str | int, ...]


def _get(value: Any, path: FieldPath) -> Any:
    """``value[path[0]][path[1]]...``; None when any step is missing or of the wrong kind."""
    for step in path:
        if isinstance(step, int):
            value = value[step] if isinstance(value, list) and len(value) > step else None
        elif isinstance(value, dict):
            value = value.get(step)
        else:
            return None
    return value


def _id_of(value: Any) -> Any:
    """An id field that may also come expanded into its object."""
    return value.get("id") if isinstance(value, dict) else value


def _is_basil_or_later(api_version: Any) -> bool:
    # Versions are ``YYYY-MM-DD`` or ``YYYY-MM-DD.name``: the date part orders them.
    return isinstance(api_version, str) and api_version[:10] >= BASIL[:10]


def _first_of(obj: dict[str, Any], paths: tuple[FieldPath, ...]) -> Any:
    return next((v for v in (_id_of(_get(obj, p)) for p in paths) if v), None)


def _subscription(obj: dict[str, Any], api_version: Any) -> Any:
    if obj.get("object") == "subscription":
        return obj.get("id")
    paths = (OLD_INVOICE_SUBSCRIPTION, BASIL_INVOICE_SUBSCRIPTION)
    return _first_of(obj, paths[::-1] if _is_basil_or_later(api_version) else paths)


def _price(obj: dict[str, Any], api_version: Any) -> Any:
    lines: tuple[FieldPath, ...] = (OLD_LINE_PRICE, BASIL_LINE_PRICE)
    if _is_basil_or_later(api_version):
        lines = lines[::-1]
    return _first_of(obj, (SUBSCRIPTION_PRICE, SUBSCRIPTION_PLAN, *lines))


def _attributes(event: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
    api_version = event.get("api_version")
    attrs: dict[str, Any] = {
        "object": obj.get("object"),
        "subscription": _subscription(obj, api_version),
        "price": _price(obj, api_version),
        **{name: obj.get(name) for name in OBJECT_FIELDS},
        "cancellation_reason": _get(obj, CANCELLATION_REASON),
        "cancellation_feedback": _get(obj, CANCELLATION_FEEDBACK),
        # A subscription.updated that moved trialing -> active says so only here.
        "previous_status": _get(event, ("data", "previous_attributes", "status")),
        "api_version": api_version,
    }
    return {k: v for k, v in attrs.items() if v is not None}


def _required_str(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RecordError(f"{field}: missing" if value is None else f"{field}: not a string")
    return value


def _customer(kind: str, obj: dict[str, Any]) -> str:
    if obj.get("object") == "customer" or kind in CUSTOMER_OBJECT_TYPES:
        customer, where = obj.get("id"), "data.object.id"
    else:
        customer, where = _id_of(obj.get("customer")), "data.object.customer"
    if not isinstance(customer, str) or not customer.strip():
        raise RecordError(f"missing customer ({where})")
    return customer


def _edges(kind: str, obj: dict[str, Any], customer: str, event: Event) -> list[Edge]:
    at, edges = event.occurred_at, []
    if kind in CUSTOMER_EDGE_TYPES:
        email = normalise_email(_get(obj, CUSTOMER_EMAIL))
        if email:
            edges.append(Edge(STRIPE_CUSTOMER, customer, EMAIL, email, "stripe_customer_email", at))
        user_id = _get(obj, METADATA_USER_ID)
        if isinstance(user_id, (str, int)) and str(user_id).strip():
            edges.append(
                Edge(
                    STRIPE_CUSTOMER, customer, USER_ID, str(user_id), "stripe_customer_metadata", at
                )
            )
    elif obj.get("object") == "invoice" or kind.startswith("invoice."):
        email = normalise_email(_get(obj, INVOICE_EMAIL))
        if email:
            edges.append(Edge(STRIPE_CUSTOMER, customer, EMAIL, email, "stripe_invoice_email", at))
    return edges


def _parse_event(line: int, text: str, event: Any) -> RawRow:
    if not isinstance(event, dict):
        raise RecordError(f"not a Stripe event: a JSON {type(event).__name__}, not an object")
    if event.get("object", "event") != "event":
        raise RecordError(f"object: expected 'event', got {event.get('object')!r}")
    event_id = _required_str(event.get("id"), "id")
    kind = _required_str(event.get("type"), "type")
    at = parse_unix_seconds(event.get("created"), "created")
    obj = _get(event, ("data", "object"))
    if not isinstance(obj, dict):
        raise RecordError("data.object: missing")
    customer = _customer(kind, obj)
    activity, actor = ACTIVITIES.get(kind, (UNKNOWN_ACTIVITY + kind, UNKNOWN_ACTOR))
    parsed = Event(
        event_key=event_id,
        event_type=kind,
        activity=activity,
        actor=actor,
        occurred_at=at,
        raw_time=str(event.get("created")),
        id_type=STRIPE_CUSTOMER,
        id_value=customer,
        channel=CHANNEL,
        attributes=_attributes(event, obj),
    )
    return RawRow(line, event_id, text, [parsed], _edges(kind, obj, customer, parsed))


# --- reading the file --------------------------------------------------------------------------


def _first_line(path: Path) -> str:
    with open_text(path) as fh:
        return next((text.strip() for text in fh if text.strip()), "")


def _whole_document(path: Path) -> Any:
    """The file as one JSON value, or None when it is not one (JSON lines, broken)."""
    with open_text(path) as fh:
        try:
            return json.load(fh)
        except json.JSONDecodeError:
            return None


def _page_records(file: str, page: dict[str, Any]) -> Iterator[Record]:
    data = page.get("data")
    if not isinstance(data, list):
        raise SourceFormatError(file, "a Stripe list page without a 'data' array")
    kinds = {item.get("object") for item in data if isinstance(item, dict)}
    if data and "event" not in kinds and kinds - {None}:
        raise SourceFormatError(file, f"a list of {sorted(map(str, kinds))} objects, not events")
    for index, item in enumerate(data, start=1):
        yield index, json.dumps(item, ensure_ascii=False), item


def _records(path: Path, file: str) -> Iterator[Record]:
    first = _first_line(path)
    # A one-line document parses on its first line; a pretty-printed one does not, so only then
    # (or when the first line is itself a list page or an error) the whole file is read as one.
    try:
        head = json.loads(first)
    except json.JSONDecodeError:
        head = None
    document = head if isinstance(head, dict) and _is_document(head) else None
    if first and head is None:
        document = _whole_document(path)
    if isinstance(document, dict) and "error" in document and "type" not in document:
        message = _get(document, ("error", "message"))
        raise SourceFormatError(file, f"a Stripe API error response, not events: {message!r}")
    if isinstance(document, dict) and document.get("object") == "list":
        return _page_records(file, document)
    if isinstance(document, dict) and document.get("object") == "event":
        return iter([(1, json.dumps(document, ensure_ascii=False), document)])
    return iter_json_lines(path)


def _is_document(value: dict[str, Any]) -> bool:
    return value.get("object") == "list" or ("error" in value and "type" not in value)


def parse_file(path: Path, file: str) -> ParsedFile:
    """Parse a file of Stripe events (JSON lines or a list page), plain or .gz."""
    return parse_records(SOURCE, file, _records(path, file), _parse_event, "Stripe events")
