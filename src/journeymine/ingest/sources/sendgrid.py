"""SendGrid: Event Webhook POST bodies, one JSON array of event objects per file (plain or .gz).

Format and units
* the whole file is one JSON array (often pretty-printed over many lines), so ``line`` is the
  1-based **index of the event in the array**, not a physical line; ``raw`` is that event
  serialised back to JSON (a rejected one: its text as in the file). Each element is decoded
  on its own: a broken, non-UTF-8 or too deeply nested element (past ``_json.MAX_DEPTH``)
  is one rejected row;
* time ``timestamp`` in unix **seconds** (UTC); a value in milliseconds is rejected as absurd.

Dedup key
* ``sg_event_id``: SendGrid retries a POST that was not acknowledged with a 2xx, so the same
  events arrive again in another body.

Identity
* the person is the recipient ``email`` (trimmed, lower case); a missing or invalid one rejects
  the event;
* SendGrid flattens ``unique_args`` / ``custom_args`` into top-level keys: a ``user_id`` key links
  the email to the product user (rule ``sendgrid_custom_arg``).

Quirks
* delivery events (processed, delivered, deferred, dropped, bounce) are company actions,
  engagement events (open, click, unsubscribe, group_unsubscribe, spamreport) customer
  actions; any other event name is kept as ``email.event:<name>`` (customer);
* ``category`` is a string or a list of strings: the owner is the first one;
* ``ip`` and ``useragent`` are never kept; a kept field holding an object or array (other
  than ``category`` as an array) rejects the event.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from journeymine import vocabulary
from journeymine.errors import SourceFormatError
from journeymine.ingest.sources._common import (
    COMPANY,
    CUSTOMER,
    EMAIL,
    USER_ID,
    Edge,
    Event,
    ParsedFile,
    RawRow,
    Record,
    RecordError,
    brief,
    identifier,
    normalise_email,
    parse_records,
    parse_unix_seconds,
    read_text,
    scalar,
    scalar_field,
)
from journeymine.ingest.sources._json import (
    iter_json_array,
    json_objects,
    skip_space,
    whole_array,
)

SOURCE = "sendgrid"
CHANNEL = vocabulary.EMAIL_CHANNEL

# Event Webhook field names.
EVENT_ID = "sg_event_id"
EVENT = "event"
EMAIL_FIELD = "email"
TIMESTAMP = "timestamp"
CATEGORY = "category"
CUSTOM_USER_ID = "user_id"  # our custom arg, flattened to the top level by SendGrid

# Event Webhook event names.
COMPANY_EVENTS = frozenset({"processed", "delivered", "deferred", "dropped", "bounce"})
CUSTOMER_EVENTS = frozenset({"open", "click", "unsubscribe", "group_unsubscribe", "spamreport"})

# Kept as attributes when present: message id, campaign, clicked url, bounce details.
KEPT_FIELDS = (
    "sg_message_id",
    "category",
    "url",
    "reason",
    "status",
    "type",
    "bounce_classification",
    "marketing_campaign_name",
    "asm_group_id",
)


def owner(category: object) -> str | None:
    """The first category: ``"welcome"`` or ``["welcome", "day1"]`` -> ``"welcome"``."""
    first = category[0] if isinstance(category, list) and category else category
    return first if isinstance(first, str) and first else None


@lru_cache(maxsize=1024)  # a handful of event names, per event
def activity(name: str) -> tuple[str, str]:
    """``(activity, actor)`` for an event name, per docs/activities.md."""
    if name in COMPANY_EVENTS:
        return f"email.{name}", COMPANY
    if name in CUSTOMER_EVENTS:
        return f"email.{name}", CUSTOMER
    return f"email.event:{name}", CUSTOMER


def _email(item: dict[str, Any]) -> str:
    value = item.get(EMAIL_FIELD)
    if value is None or value == "":
        raise RecordError(f"missing {EMAIL_FIELD}")
    email = normalise_email(value)
    if not email:
        raise RecordError(f"{EMAIL_FIELD}: invalid address {brief(value)}")
    return email


def _kept(item: dict[str, Any]) -> dict[str, Any]:
    """KEPT_FIELDS present in the event: scalars, and ``category`` also as an array of them."""
    kept = {}
    for key in KEPT_FIELDS:
        value = item.get(key)
        if value is None:
            continue
        if key == CATEGORY and isinstance(value, list):
            kept[key] = [  # an element's name is only built for a reason (it raises)
                v if v is None or scalar(v) else scalar_field(v, f"{key}[{i}]")
                for i, v in enumerate(value)
            ]
        else:
            kept[key] = scalar_field(value, key)
    return kept


def parse_event(line: int, text: str, item: object) -> RawRow:
    """One webhook event -> its row, its event and the email <-> user id link."""
    if not isinstance(item, dict):
        raise RecordError("not a JSON object")
    event_id = identifier(item, EVENT_ID, strict=False)
    if not event_id:
        raise RecordError(f"missing {EVENT_ID}")
    name = item.get(EVENT)
    if not isinstance(name, str) or not name.strip():
        raise RecordError(f"missing {EVENT}")
    if item.get(TIMESTAMP) is None or item.get(TIMESTAMP) == "":
        raise RecordError(f"{TIMESTAMP}: missing timestamp")
    at = parse_unix_seconds(item[TIMESTAMP], TIMESTAMP)
    email = _email(item)
    name = name.strip()
    activity_name, actor = activity(name)
    event = Event(
        event_key=event_id,
        event_type=name,
        activity=activity_name,
        actor=actor,
        occurred_at=at,
        raw_time=str(item[TIMESTAMP]),
        id_type=EMAIL,
        id_value=email,
        channel=CHANNEL,
        owner=owner(item.get(CATEGORY)),
        attributes=_kept(item),
    )
    user_id = identifier(item, CUSTOM_USER_ID, strict=False)
    edges = [Edge(EMAIL, email, USER_ID, user_id, "sendgrid_custom_arg", at)] if user_id else []
    return RawRow(line, event_id, text, events=[event], edges=edges)


def _body(path: Path, file: str) -> Iterator[Record]:
    """The webhook body's elements, each decoded on its own (see ``iter_json_array``).

    An element that is valid JSON but no object counts as unreadable, like broken JSON: a file
    of nothing but such elements (``[1, 2, 3]``) is not a webhook body at all.
    """
    text = read_text(path, file)
    start = skip_space(text, 0)
    if not text.startswith("[", start):
        raise SourceFormatError(file, "not a SendGrid webhook body: expected a JSON array")
    # The usual body, decoded whole at C speed: the same records as element by element.
    found = whole_array(text, start)
    if found is None or text[found[1] :].strip(" \t\r\n"):  # text after it: a record too
        return json_objects(iter_json_array(text, start))
    return json_objects(found[0])


def parse_file(path: Path, file: str) -> ParsedFile:
    """Parse one webhook body (a JSON array), plain or .gz."""
    return parse_records(SOURCE, file, _body(path, file), parse_event, "a SendGrid webhook body")
