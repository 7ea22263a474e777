"""Segment: raw calls as JSON lines (S3 / warehouse destination dumps, plain or ``.gz``).

Format and units
* one call per line, ``type`` one of ``track``, ``page``, ``screen``, ``identify``, ``alias``,
  ``group``; any other type is kept as ``web.call:<type>`` (never dropped);
* time ``timestamp``: ISO-8601, often with the visitor's local offset (``+02:00``). Stored in
  UTC; the string exactly as sent is kept in ``Event.raw_time``. A value without offset is UTC.

Dedup key
* ``messageId``: Segment retries and replays deliver the same message again, with the same id.

Identity
* the person is ``userId`` when set, else ``anonymousId``; a call with neither is rejected;
* a call carrying both links them (rule ``segment_<type>``); ``alias`` links ``previousId``
  (taken as an anonymous id) to ``userId``; ``identify`` links the person to ``traits.email``;
  ``group`` links the person to the account ``groupId``. ``alias``/``group`` yield no event.

Quirks
* ``event_type`` is the call type, except for ``track`` where it is the event name as sent
  (``"Demo Requested"``): that is the vendor's own name for what happened;
* page info may sit in ``properties`` or in ``context.page`` (analytics.js sends both);
  ``properties`` wins;
* attributes keep data strings unchanged (escaping happens at HTML time), only scalar values,
  never ``context.ip`` nor an ``ip`` property, and no personal traits (email, name, phone);
* ``properties``, ``traits``, ``context`` and its ``campaign`` / ``page`` may be absent or null;
  any other non-object there, a non-text campaign value or a malformed page URL rejects the
  call with the field named.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

from journeymine import vocabulary
from journeymine.ingest.sources._common import (
    ANONYMOUS_ID,
    CUSTOMER,
    EMAIL,
    SEGMENT_GROUP,
    USER_ID,
    Edge,
    Event,
    ParsedFile,
    RawRow,
    RecordError,
    id_text,
    identifier,
    json_type,
    normalise_email,
    optional_object,
    parse_iso,
    parse_records,
    safe_urlsplit,
    scalar,
    slug,
)
from journeymine.ingest.sources._json import (
    iter_json_lines,
    json_objects,
)

SOURCE = "segment"
CHANNEL = vocabulary.WEB

# Segment Spec field names.
MESSAGE_ID = "messageId"
TYPE = "type"
TIMESTAMP = "timestamp"
USER = "userId"
ANONYMOUS = "anonymousId"
PREVIOUS = "previousId"
GROUP_ID = "groupId"
EVENT = "event"
NAME = "name"
PROPERTIES = "properties"
TRAITS = "traits"
CONTEXT = "context"
CAMPAIGN = "campaign"
PAGE_CONTEXT = "page"

# Segment call types.
TRACK = "track"
PAGE = "page"
SCREEN = "screen"
IDENTIFY = "identify"
ALIAS = "alias"
GROUP = "group"
EDGE_ONLY_TYPES = frozenset({ALIAS, GROUP})

# context.campaign key -> attribute (Segment renames utm_campaign to "name").
CAMPAIGN_FIELDS = {
    "source": "utm_source",
    "medium": "utm_medium",
    "name": "utm_campaign",
    "term": "utm_term",
    "content": "utm_content",
}
PAGE_FIELDS = ("path", "title", "url", "referrer")
PERSONAL_TRAITS = frozenset(
    {"email", "name", "first_name", "last_name", "firstName", "lastName", "phone"}
)
NEVER_KEPT = frozenset({"ip"})  # IP addresses never go into attributes


def path_group(path: object, field_name: str = "path") -> str:
    """``/blog/how-to?x=1`` (or a full URL) -> ``/blog``; home and unknown -> ``/``.

    A malformed URL (``http://[::1/x``) is a RecordError naming ``field_name``.
    """
    if not isinstance(path, str) or not path.strip():
        return "/"
    return _path_group(path, field_name)


@lru_cache(maxsize=4096)  # a site has few paths, seen again and again
def _path_group(path: str, field_name: str) -> str:
    parts = [p for p in safe_urlsplit(path.strip(), field_name).path.split("/") if p]
    return "/" + parts[0].lower() if parts else "/"


def _scalars(values: object, field_name: str, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Top-level scalar entries only: nested objects are not flattened (shallow by design)."""
    return {
        key: value
        for key, value in optional_object(values, field_name).items()
        if key not in skip and key not in NEVER_KEPT and scalar(value)
    }


_CONTEXT_FIELDS = {key: f"{CONTEXT}.{key}" for key in (CAMPAIGN, PAGE_CONTEXT)}


def _context(context: object, key: str) -> dict[str, Any]:
    """``context.<key>`` of the call's ``context`` value (read once per call): absent is fine,
    any other non-object a RecordError naming it."""
    if context is None:
        return {}
    context = optional_object(context, CONTEXT)
    return optional_object(context.get(key), _CONTEXT_FIELDS[key]) if context else {}


def utm(context: object) -> dict[str, Any]:
    """``context.campaign`` of the call's ``context`` value as ``utm_*`` attributes."""
    campaign, found = _context(context, CAMPAIGN), {}
    if not campaign:  # most calls
        return {}
    for key, out in CAMPAIGN_FIELDS.items():
        value = campaign.get(key)
        if value and not scalar(value):
            raise RecordError(f"{CONTEXT}.{CAMPAIGN}.{key}: expected text, got {json_type(value)}")
        if value:
            found[out] = value
    return found


def page_attributes(call: dict[str, Any], context: object) -> tuple[str, dict[str, Any]]:
    """The page's path group and its attributes (``context``: the call's, read already)."""
    from_context = _context(context, PAGE_CONTEXT)
    properties = optional_object(call.get(PROPERTIES), PROPERTIES)
    page = {**from_context, **properties} if from_context else properties  # only read
    attrs = {}
    for key in PAGE_FIELDS:
        value = page.get(key)
        if type(value) is str:  # JSON text is never a subclass of str
            attrs[key] = value
    key = "path" if page.get("path") else "url"
    group = path_group(page.get(key), _PAGE_FIELD_NAMES[key in properties, key])
    attrs["path_group"] = group
    return group, attrs


# Where a page's path came from, for reasons: (found in properties?, key) -> field name.
_PAGE_FIELD_NAMES = {
    (in_properties, key): f"{PROPERTIES if in_properties else f'{CONTEXT}.{PAGE_CONTEXT}'}.{key}"
    for in_properties in (True, False)
    for key in ("path", "url")
}


@lru_cache(maxsize=4096)  # a source has few event names, seen again and again
def _track_activity(event: str) -> str:
    return f"web.{slug(event)}"


def activity(call: dict[str, Any], kind: str, context: object) -> tuple[str, str, dict[str, Any]]:
    """``(event_type, activity, attributes)`` of a touchpoint call, per docs/activities.md."""
    if kind == PAGE:
        group, attrs = page_attributes(call, context)
        return call[TYPE], f"web.page_view:{group}", attrs
    if kind == TRACK:
        event = call.get(EVENT)
        if not isinstance(event, str) or not event.strip():
            raise RecordError("missing event")
        return event, _track_activity(event), _scalars(call.get(PROPERTIES), PROPERTIES)
    raw_type = call[TYPE]  # text: parse_call checked it
    if kind == SCREEN:
        name = call.get(NAME)
        extra = {NAME: name} if isinstance(name, str) else {}
        return raw_type, "web.screen_view", {**extra, **_scalars(call.get(PROPERTIES), PROPERTIES)}
    if kind == IDENTIFY:
        return raw_type, "web.identified", _scalars(call.get(TRAITS), TRAITS, PERSONAL_TRAITS)
    return raw_type, f"web.call:{raw_type}", {}


Ids = tuple[str | None, str | None]  # userId, anonymousId


def _edges(
    call: dict[str, Any], kind: str, person: tuple[str, str], at: datetime, ids: Ids
) -> list[Edge]:
    """The call's identity links; ``ids`` are its userId and anonymousId, read already."""
    user, anon = ids
    edges = []
    if user and anon:
        edges.append(Edge(ANONYMOUS_ID, anon, USER_ID, user, f"segment_{slug(kind)}", at))
    if kind == ALIAS:
        previous = identifier(call, PREVIOUS)
        if not previous or not user:
            raise RecordError("alias: missing previousId or userId")
        edges.append(Edge(ANONYMOUS_ID, previous, USER_ID, user, "segment_alias", at))
    if kind == IDENTIFY:
        email = normalise_email(optional_object(call.get(TRAITS), TRAITS).get("email"))
        if email:
            edges.append(Edge(*person, EMAIL, email, "segment_identify_email", at))
    if kind == GROUP:
        group = identifier(call, GROUP_ID)
        if not group:
            raise RecordError("missing groupId")
        edges.append(Edge(*person, SEGMENT_GROUP, group, "segment_group", at))
    return edges


EDGE_KINDS = frozenset({ALIAS, IDENTIFY, GROUP})  # kinds with edges of their own
KINDS = {kind: kind for kind in (TRACK, PAGE, SCREEN, IDENTIFY, ALIAS, GROUP)}  # as sent


def _kind(raw_type: object) -> str:
    """The call type, trimmed and lower-case; RecordError when it is missing or no text."""
    if type(raw_type) is str:
        kind = KINDS.get(raw_type)  # nearly always: a type exactly as the spec spells it
        if kind is not None:
            return kind
    if not isinstance(raw_type, str) or not raw_type.strip():
        raise RecordError("missing type")
    return raw_type.strip().lower()


def parse_call(line: int, text: str, call: object) -> RawRow:
    """One Segment call -> its row, its event (unless alias/group) and its identity edges."""
    if not isinstance(call, dict):
        raise RecordError("not a JSON object")
    get = call.get
    message_id = id_text(get(MESSAGE_ID), MESSAGE_ID)
    if not message_id:
        raise RecordError("missing messageId")
    kind = _kind(get(TYPE))
    timestamp = get(TIMESTAMP)
    at = parse_iso(timestamp, TIMESTAMP)  # so timestamp is text
    user, anon = id_text(get(USER), USER), id_text(get(ANONYMOUS), ANONYMOUS)
    if not user and not anon:
        raise RecordError("missing userId and anonymousId")
    person = (USER_ID, user) if user else (ANONYMOUS_ID, str(anon))
    if (user and anon) or kind in EDGE_KINDS:
        edges = _edges(call, kind, person, at, (user, anon))
    else:
        edges = []
    if kind in EDGE_ONLY_TYPES:
        return RawRow(line, message_id, text, [], edges, [])
    context = get(CONTEXT)
    event_type, name, attributes = activity(call, kind, context)  # a new dict: ours to add to
    if context is not None:  # no context, no campaign
        attributes.update(utm(context))
    raw_time = cast(str, timestamp)  # text: parse_iso accepted it
    # Positional, in Event's field order (cheaper than keywords); no owner, no account.
    event = Event(
        message_id, event_type, name, CUSTOMER, at, raw_time, *person, CHANNEL, None, None, None,
        attributes,
    )  # fmt: skip
    return RawRow(line, message_id, text, [event], edges, [])


def parse_file(path: Path, file: str) -> ParsedFile:
    """Parse one file of Segment calls (JSON lines, plain or .gz)."""
    records = json_objects(iter_json_lines(path, file))
    return parse_records(SOURCE, file, records, parse_call, "Segment JSON lines")
