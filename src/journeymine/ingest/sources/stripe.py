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

Identity
  * the person is the Stripe customer: ``data.object.id`` when ``data.object`` is the customer
    itself (``customer.created`` / ``updated`` / ``deleted``), else ``data.object.customer`` (an
    id, or an expanded customer object). An event without one is rejected;
  * ``customer.created`` / ``updated`` link the customer to its ``email`` (rule
    ``stripe_customer_email``) and to ``metadata.user_id``, text or a number, as a ``user_id``
    node (rule ``stripe_customer_metadata``); an invoice event links it to ``customer_email``
    (rule ``stripe_invoice_email``). Emails are normalised; one that is not an address is no link.

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
  * a Stripe API error response saved as a file (``{"error": {...}}``) is not an events file;
  * a field read on the way to a value that has the wrong JSON type (``lines.data`` an object,
    ``amount_paid`` an array) rejects the event with the field's path: Stripe never sends
    that, and reading on would lose the value silently.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

from journeymine import vocabulary
from journeymine.errors import SourceFormatError
from journeymine.ingest.sources._common import (
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
    brief,
    check_utf8,
    id_text,
    json_type,
    normalise_email,
    parse_records,
    parse_unix_seconds,
    read_text,
    scalar,
    scalar_field,
)
from journeymine.ingest.sources._json import decode_json, json_lines, skip_space
from journeymine.ingest.sources._json_pages import Members, object_members

SOURCE = "stripe"
CHANNEL = vocabulary.BILLING
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

# Field names of an event and of the objects in it (API names).
ID = "id"
TYPE = "type"
CREATED = "created"  # unix seconds
API_VERSION = "api_version"
OBJECT = "object"  # what an object is: "event", "list", "customer", "invoice", "subscription"
DATA = "data"
CUSTOMER_FIELD = "customer"  # an id, or the customer object when expanded
ERROR = "error"  # an API error response: {"error": {"message": ...}}
MESSAGE = "message"
EVENT_OBJECT, LIST_OBJECT = "event", "list"
CUSTOMER_OBJECT, INVOICE_OBJECT, SUBSCRIPTION_OBJECT = "customer", "invoice", "subscription"

# Identity edge rules, per field the link comes from.
CUSTOMER_EMAIL_RULE = "stripe_customer_email"
CUSTOMER_METADATA_RULE = "stripe_customer_metadata"
INVOICE_EMAIL_RULE = "stripe_invoice_email"

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
PREVIOUS_STATUS = ("data", "previous_attributes", "status")  # in the event, not data.object
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


def _get(value: Any, path: FieldPath, where: str = "data.object") -> Any:
    """``value[path[0]][path[1]]...``; None when a step is missing or null.

    A step of the wrong kind (``lines.data`` an object where Stripe sends an array) is a
    RecordError naming the field: reading on would lose the value silently.
    """
    root = value
    for step in path:
        if value is None:
            return None
        if type(value) is dict and type(step) is str:  # the usual step, first
            value = value.get(step)
        elif type(step) is int and type(value) is list:
            value = value[step] if len(value) > step else None
        else:  # a JSON value is never a subclass of dict or list, a step never a bool
            _wrong_step(root, path, where)
    return value


def _wrong_step(value: Any, path: FieldPath, where: str) -> NoReturn:
    """The RecordError of :func:`_get` for a step of the wrong kind, its field named."""
    for depth, step in enumerate(path):
        if isinstance(step, int) and isinstance(value, list):
            value = value[step] if len(value) > step else None
        elif isinstance(step, str) and isinstance(value, dict):
            value = value.get(step)
        else:
            kind = "an array" if isinstance(step, int) else "an object"
            named = _field_name(where, path[:depth])
            raise RecordError(f"{named}: expected {kind}, got {json_type(value)} {brief(value)}")
    raise AssertionError(f"no wrong step in {path}")  # only called for one


def _field_name(where: str, path: FieldPath) -> str:
    """``data.object`` and ``("lines", "data", 0)`` -> ``data.object.lines.data[0]``; built only
    for a reason (this runs for every field of every event)."""
    return where + "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path)


def _id_of(value: Any) -> Any:
    """An id field that may also come expanded into its object."""
    return value.get(ID) if isinstance(value, dict) else value


def _is_basil_or_later(api_version: Any) -> bool:
    # Versions are ``YYYY-MM-DD`` or ``YYYY-MM-DD.name``: the date part orders them.
    return isinstance(api_version, str) and api_version[:10] >= BASIL[:10]


def _first_of(obj: dict[str, Any], paths: tuple[FieldPath, ...]) -> Any:
    for path in paths:
        value = _id_of(_get(obj, path))
        if value:
            # The field's name is only built for a value that is no scalar (raises).
            return value if scalar(value) else scalar_field(value, _dotted("data.object", path))
    return None


def _subscription(obj: dict[str, Any], api_version: Any) -> Any:
    if obj.get(OBJECT) == SUBSCRIPTION_OBJECT:
        return scalar_field(obj.get(ID), "data.object.id")
    paths = (OLD_INVOICE_SUBSCRIPTION, BASIL_INVOICE_SUBSCRIPTION)
    return _first_of(obj, paths[::-1] if _is_basil_or_later(api_version) else paths)


def _price(obj: dict[str, Any], api_version: Any) -> Any:
    lines: tuple[FieldPath, ...] = (OLD_LINE_PRICE, BASIL_LINE_PRICE)
    if _is_basil_or_later(api_version):
        lines = lines[::-1]
    return _first_of(obj, (SUBSCRIPTION_PRICE, SUBSCRIPTION_PLAN, *lines))


def _value(obj: dict[str, Any], path: FieldPath, where: str = "data.object") -> Any:
    """The scalar at ``path`` (None when absent), named by its full path when it is not one."""
    value = _get(obj, path, where)
    return value if value is None or scalar(value) else scalar_field(value, _dotted(where, path))


def _object_value(obj: dict[str, Any], name: str) -> Any:
    """:func:`_value` of ``data.object.<name>``: one step, no walk."""
    value = obj.get(name)
    return value if value is None or scalar(value) else scalar_field(value, f"data.object.{name}")


def _dotted(where: str, path: FieldPath) -> str:
    return ".".join([where, *map(str, path)])


def _attributes(event: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
    api_version = event.get(API_VERSION)
    attrs: dict[str, Any] = {
        "object": _object_value(obj, OBJECT),
        "subscription": _subscription(obj, api_version),
        "price": _price(obj, api_version),
        **{name: _object_value(obj, name) for name in OBJECT_FIELDS},
        "cancellation_reason": _value(obj, CANCELLATION_REASON),
        "cancellation_feedback": _value(obj, CANCELLATION_FEEDBACK),
        # A subscription.updated that moved trialing -> active says so only here.
        "previous_status": _value(event, PREVIOUS_STATUS, "event"),
        "api_version": scalar_field(api_version, API_VERSION),
    }
    return {k: v for k, v in attrs.items() if v is not None}


def _required_str(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RecordError(f"{field}: missing" if value is None else f"{field}: not a string")
    return value


def _customer(kind: str, obj: dict[str, Any]) -> str:
    if obj.get(OBJECT) == CUSTOMER_OBJECT or kind in CUSTOMER_OBJECT_TYPES:
        customer, where = obj.get(ID), "data.object.id"
    else:
        customer, where = _id_of(obj.get(CUSTOMER_FIELD)), "data.object.customer"
    if not isinstance(customer, str) or not customer.strip():
        raise RecordError(f"missing customer ({where})")
    return customer


def _edges(kind: str, obj: dict[str, Any], customer: str, event: Event) -> list[Edge]:
    at, edges = event.occurred_at, []
    if kind in CUSTOMER_EDGE_TYPES:
        email = normalise_email(_get(obj, CUSTOMER_EMAIL))
        if email:
            edges.append(Edge(STRIPE_CUSTOMER, customer, EMAIL, email, CUSTOMER_EMAIL_RULE, at))
        user_id = id_text(_get(obj, METADATA_USER_ID), "metadata.user_id", strict=False)
        if user_id:
            edges.append(
                Edge(STRIPE_CUSTOMER, customer, USER_ID, user_id, CUSTOMER_METADATA_RULE, at)
            )
    elif obj.get(OBJECT) == INVOICE_OBJECT or kind.startswith(f"{INVOICE_OBJECT}."):
        email = normalise_email(_get(obj, INVOICE_EMAIL))
        if email:
            edges.append(Edge(STRIPE_CUSTOMER, customer, EMAIL, email, INVOICE_EMAIL_RULE, at))
    return edges


def _parse_event(line: int, text: str, event: Any) -> RawRow:
    if not isinstance(event, dict):
        raise RecordError(f"not a Stripe event: a JSON {type(event).__name__}, not an object")
    if event.get(OBJECT, EVENT_OBJECT) != EVENT_OBJECT:
        raise RecordError(f"{OBJECT}: expected 'event', got {brief(event.get(OBJECT))}")
    event_id = _required_str(event.get(ID), ID)
    kind = _required_str(event.get(TYPE), TYPE)
    at = parse_unix_seconds(event.get(CREATED), CREATED)
    obj = _get(event, (DATA, OBJECT), "event")
    if not isinstance(obj, dict):
        raise RecordError("data.object: missing")
    customer = _customer(kind, obj)
    activity, actor = ACTIVITIES.get(kind, (UNKNOWN_ACTIVITY + kind, UNKNOWN_ACTOR))
    raw_time, attributes = str(event.get(CREATED)), _attributes(event, obj)
    # Positional, in Event's field order (cheaper than keywords); no owner, no account.
    parsed = Event(
        event_id, kind, activity, actor, at, raw_time, STRIPE_CUSTOMER, customer, CHANNEL, None,
        None, None, attributes,
    )  # fmt: skip
    return RawRow(line, event_id, text, [parsed], _edges(kind, obj, customer, parsed))


# --- reading the file --------------------------------------------------------------------------


def _page_records(text: str, file: str, members: Members) -> Iterator[Record]:
    start, end = members.spans.get(DATA, (len(text), len(text)))
    if not text.startswith("[", start):
        raise SourceFormatError(file, "a Stripe list page without a 'data' array")
    try:  # a bad byte in the page around the events belongs to no record: the file is broken
        check_utf8(text[:start], 1)
        line = text.count("\n", 0, end) + 1
        check_utf8(text[end:], line, first_column=end - (text.rfind("\n", 0, end) + 1) + 1)
    except RecordError as exc:
        raise SourceFormatError(file, f"the list page around the events: {exc}") from None
    records = members.records[DATA]
    objects = (value.get(OBJECT) for _, _, value in records if isinstance(value, dict))
    kinds = {kind for kind in objects if isinstance(kind, str)}  # any other type: the record's
    if kinds and EVENT_OBJECT not in kinds:
        raise SourceFormatError(file, f"a list of {sorted(kinds)} objects, not events")
    return iter(records)


def _document(text: str, file: str, start: int) -> Iterator[Record] | None:
    """The records of a list page, an error response or a single event; None for JSON lines."""
    members = object_members(text, start, (DATA,))
    if members is None:
        return None
    kind = members.values.get(OBJECT)  # None when absent or unreadable
    if _is_error(members.spans):
        error = members.values.get(ERROR)
        message = error.get(MESSAGE) if isinstance(error, dict) else error
        raise SourceFormatError(file, f"a Stripe API error response, not events: {brief(message)}")
    if kind == LIST_OBJECT:
        return _page_records(text, file, members)
    if kind == EVENT_OBJECT:  # one pretty-printed event: one record, on the line it starts
        line = text.count("\n", 0, start) + 1
        return ((line, raw, value) for _, raw, value in json_lines(text.replace("\n", " ")))
    return None


def _records(text: str, file: str) -> Iterator[Record]:
    start = skip_space(text, 0)
    first = text[start:].split("\n", 1)[0].strip()
    # A one-line record parses on its first line; a pretty-printed document does not. Only
    # then (or when the first line is itself a list page or an error) is the text one document.
    try:
        head = decode_json(first)[0] if first else None
    except RecordError:
        head = None
    whole = head is None and first.startswith("{")
    if whole or (isinstance(head, dict) and _is_document(head)):
        document = _document(text, file, start)
        if document is not None:
            return document
    return json_lines(text)


def _is_error(members: dict[str, Any]) -> bool:
    # Every event has a type; an API error response has an error and no type.
    return ERROR in members and TYPE not in members


def _is_document(value: dict[str, Any]) -> bool:
    return value.get(OBJECT) == LIST_OBJECT or _is_error(value)


def parse_file(path: Path, file: str) -> ParsedFile:
    """Parse a file of Stripe events (JSON lines or a list page), plain or .gz."""
    records = _records(read_text(path, file), file)
    return parse_records(SOURCE, file, records, _parse_event, "Stripe events")
