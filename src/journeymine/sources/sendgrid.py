"""SendGrid: Event Webhook POST bodies, one JSON array of event objects per file.

* ``line`` is the 1-based position of the event in the array (a body may be pretty-printed);
* dedup key ``sg_event_id`` (SendGrid retries a POST that was not acknowledged);
* time ``timestamp`` in unix **seconds** (a value in milliseconds is rejected as absurd);
* the person is the recipient ``email`` (trimmed, lower case);
* custom args are flattened to top-level keys by SendGrid: a ``user_id`` custom arg links the
  email to the product user;
* delivery events (processed, delivered, deferred, dropped, bounce) are company actions,
  engagement events (open, click, unsubscribe, ...) customer actions. IPs and user agents are
  not kept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from journeymine.errors import SourceFormatError
from journeymine.sources._common import (
    COMPANY,
    CUSTOMER,
    EMAIL,
    USER_ID,
    Edge,
    Event,
    ParsedFile,
    RawRow,
    RecordError,
    normalise_email,
    parse_records,
    parse_unix_seconds,
    read_bytes,
    slug,
)

SOURCE = "sendgrid"
EVENT_ID = "sg_event_id"
COMPANY_EVENTS = {"processed", "delivered", "deferred", "dropped", "bounce"}
CUSTOMER_EVENTS = {"open", "click", "unsubscribe", "group_unsubscribe", "spamreport"}
KEPT_FIELDS = (
    "sg_message_id",
    "category",
    "url",
    "reason",
    "status",
    "type",
    "marketing_campaign_name",
    "asm_group_id",
)
CUSTOM_USER_ID = "user_id"


def parse_event(line: int, text: str, item: object) -> RawRow:
    if not isinstance(item, dict):
        raise RecordError("not a JSON object")
    event_id = item.get(EVENT_ID)
    if not event_id:
        raise RecordError("missing sg_event_id")
    name = str(item.get("event") or "").strip().lower()
    if not name:
        raise RecordError("missing event")
    at = parse_unix_seconds(item.get("timestamp"), "timestamp")
    email = normalise_email(item.get("email"))
    if not email:
        raise RecordError(f"email: missing or invalid {item.get('email')!r}")
    known = name in COMPANY_EVENTS or name in CUSTOMER_EVENTS
    category = item.get("category")
    owner = category[0] if isinstance(category, list) and category else category
    row = RawRow(line, str(event_id), text)
    row.events.append(
        Event(
            event_key=str(event_id),
            event_type=name,
            activity=f"email.{name}" if known else f"email.event:{slug(name)}",
            actor=COMPANY if name in COMPANY_EVENTS else CUSTOMER,
            occurred_at=at,
            raw_time=str(item.get("timestamp")),
            id_type=EMAIL,
            id_value=email,
            channel="email",
            owner=str(owner) if owner else None,
            attributes={k: item[k] for k in KEPT_FIELDS if item.get(k) is not None},
        )
    )
    user_id = item.get(CUSTOM_USER_ID)
    if user_id:
        row.edges.append(Edge(EMAIL, email, USER_ID, str(user_id), "sendgrid_custom_arg", at))
    return row


def parse_file(path: Path, file: str) -> ParsedFile:
    """Parse one webhook body (a JSON array), plain or .gz."""
    try:
        body: Any = json.loads(read_bytes(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SourceFormatError(file, f"not a SendGrid webhook body (JSON array): {exc}") from None
    if not isinstance(body, list):
        raise SourceFormatError(file, "not a SendGrid webhook body: expected a JSON array")
    items = ((line, json.dumps(item), item) for line, item in enumerate(body, start=1))
    return parse_records(SOURCE, file, items, parse_event, "a SendGrid webhook body")
