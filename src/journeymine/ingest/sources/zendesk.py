"""Zendesk Support: Incremental Export pages of tickets, ticket events and users (JSON).

Format and units
* one page per file, as the Incremental Export API returns it: a JSON object holding any of
  ``tickets`` (Incremental Ticket Export), ``ticket_events`` (Incremental Ticket Event Export
  with ``include=comment_events``) and ``users`` (Incremental User Export or the ``users``
  sideload); paging fields (``end_time``, ``after_cursor``, ``end_of_stream``...) are ignored;
* ``line`` is the 1-based position of the record in the page, counted over ``tickets``, then
  ``ticket_events``, then ``users``; ``raw`` is the record re-serialised;
* ``created_at`` / ``updated_at`` are ISO-8601 UTC (``2026-08-03T09:12:00Z``); a ticket
  event's comments happen at the event's ``created_at`` (else its unix-seconds ``timestamp``).

Dedup key
* ``ticket:<id>@<updated_at>``: the ticket export repeats a ticket each time it changes, so a
  new ``updated_at`` is a new version; event keys (``ticket:<id>:created``) carry no version,
  so the newest version's events win;
* ``ticket_event:<id>`` and ``user:<id>@<updated_at>`` likewise.

Identity
* a Zendesk user is the node ``anonymous_id`` = ``zendesk_user:<id>`` and a ticket the node
  ``zendesk_ticket:<id>`` (prefixed so they never meet another source's ids; they are person
  nodes that are not the product's user id, which is what ``anonymous_id`` is for);
* a ticket links its node to its requester (rule ``zendesk_ticket_requester``); a ticket
  without ``requester_id`` is rejected;
* an end-user links to ``email`` (``zendesk_user_email``) and to ``external_id`` as the
  product's ``user_id`` (``zendesk_user_external_id``); agents and admins get no identity edge
  (staff are not customers) but an owner label with their name, for replies they wrote.

Touchpoints (docs/activities.md)
* ticket: ``support.ticket_created`` (customer) at ``created_at``; ``support.ticket_solved``
  (company) when ``status`` is solved or closed; ``support.csat_rated`` (customer) when
  ``satisfaction_rating.score`` is good or bad, with the comment's sentiment;
* ticket event: one touchpoint per ``Comment`` child event: ``support.agent_replied``
  (company, on the ticket's node, so on the requester's journey) or
  ``support.customer_replied`` (customer, on the author's node, with sentiment); a private
  comment is ``support.internal_note`` (company). Other known child types (``Change``,
  ``Notification``...) yield nothing; an unknown one rejects the record.

Quirks
* a comment's author is an agent or an end-user by the author's ``role``, looked up in the
  ``users`` of the **same page**. Real exports page users separately, so an author may not be
  in the page: the comment is kept, never guessed, as ``support.reply`` with actor
  ``unknown`` on the ticket's node (the requester's journey), owner ``zendesk:<author>`` (so a
  staff author's name still comes from any page's users) and ``author_id`` in its attributes;
  its body is scored (it may be the customer's), but actor ``unknown`` is no voice in
  ``feelings``. ``zendesk_replies.resolve_reply_authors`` decides the actor later, in SQL,
  from the users of every loaded page (the touchpoints layer runs it once ``touchpoints`` is
  built). A
  private comment of an unknown author is a ``support.internal_note`` (company): end-users
  cannot write private comments;
* the export has no solve time: ``support.ticket_solved`` is at the version's ``updated_at``;
* free text (subject, description, comment bodies, CSAT comments) never goes into attributes,
  only its sentiment; bodies are scored as plain text, HTML included, never rendered. The
  description is not scored: it is also the ticket's first comment in the events export.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from journeymine import vocabulary
from journeymine.errors import SourceFormatError
from journeymine.ingest.sources._common import (
    ANONYMOUS_ID,
    COMPANY,
    CUSTOMER,
    EMAIL,
    USER_ID,
    Edge,
    Event,
    Label,
    ParsedFile,
    RawRow,
    Record,
    RecordError,
    nonblank_text,
    normalise_email,
    object_or_empty,
    parse_iso,
    parse_records,
    parse_unix_seconds,
)
from journeymine.ingest.sources._json_pages import JsonPage, read_json_page
from journeymine.sentiment import sentiment_attributes

SOURCE = "zendesk"
CHANNEL = vocabulary.SUPPORT

# Page arrays, in the order their records are numbered.
TICKETS = "tickets"
TICKET_EVENTS = "ticket_events"
USERS = "users"
PAGE_ARRAYS = (TICKETS, TICKET_EVENTS, USERS)

# Identity: Zendesk ids as person nodes (see Identity above).
ZENDESK_NODE = ANONYMOUS_ID
USER_PREFIX = "zendesk_user:"
TICKET_PREFIX = "zendesk_ticket:"
OWNER_PREFIX = "zendesk:"  # owner ids of agents, e.g. "zendesk:901"

# Ticket statuses; solved and closed mean the company resolved it.
STATUSES = frozenset({"new", "open", "pending", "hold", "solved", "closed", "deleted"})
SOLVED = frozenset({"solved", "closed"})
CSAT_SCORES = frozenset({"good", "bad"})
CSAT_NOT_RATED = frozenset({"offered", "unoffered"})

# A public comment whose author's role is not in the page (see Quirks).
UNKNOWN_AUTHOR_ACTIVITY = "support.reply"
UNKNOWN_ACTOR = "unknown"

# User roles: end-users are customers, the others staff.
END_USER = "end-user"
STAFF_ROLES = frozenset({"agent", "admin"})

# Ticket event child types (Zendesk audit event types). Only comments are touchpoints.
COMMENT = "Comment"
IGNORED_CHILD_TYPES = frozenset(
    {
        "Create",
        "Change",
        "Notification",
        "NotificationWithCcs",
        "Cc",
        "EmailCcChange",
        "FollowerChange",
        "FollowerNotification",
        "CommentPrivacyChange",
        "CommentRedactionEvent",
        "AttachmentRedactionEvent",
        "SatisfactionRating",
        "TicketSharingEvent",
        "OrganizationActivity",
        "AgentMacroReference",
        "External",
        "Push",
        "Error",
        "VoiceComment",
        "Tweet",
        "SMS",
        "FacebookEvent",
        "LogMeInTranscript",
        "ChatStartedEvent",
        "ChatEndedEvent",
        "Translatable",
    }
)

Roles = dict[str, str]  # Zendesk user id -> role, from the page's users

# Scalar ticket fields kept as attributes (no free text).
TICKET_FIELDS = ("status", "priority", "type", "group_id", "organization_id", "brand_id")


def _id(record: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    """An integer (or digit string) Zendesk id as text."""
    value = record.get(key)
    if value is None or value == "":
        if required:
            raise RecordError(f"missing {key}")
        return None
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise RecordError(f"{key}: not a Zendesk id: {value!r}")
    return str(value)


def user_node(user_id: str) -> tuple[str, str]:
    return ZENDESK_NODE, USER_PREFIX + user_id


def ticket_node(ticket_id: str) -> tuple[str, str]:
    return ZENDESK_NODE, TICKET_PREFIX + ticket_id


def _owner(user_id: str | None) -> str | None:
    return OWNER_PREFIX + user_id if user_id else None


def _event(
    key: str,
    kind: str,
    activity: str,
    actor: str,
    at: tuple[datetime, str],
    node: tuple[str, str],
    owner: str | None,
    attributes: dict[str, Any],
) -> Event:
    return Event(
        event_key=key,
        event_type=kind,
        activity=activity,
        actor=actor,
        occurred_at=at[0],
        raw_time=at[1],
        id_type=node[0],
        id_value=node[1],
        channel=CHANNEL,
        owner=owner,
        attributes=attributes,
    )


def _csat_event(ticket: dict[str, Any], ticket_id: str, updated: str) -> Event | None:
    rating = object_or_empty(ticket.get("satisfaction_rating"))
    score = rating.get("score")
    if not rating or score in CSAT_NOT_RATED or score is None:
        return None
    if score not in CSAT_SCORES:
        raise RecordError(f"satisfaction_rating.score: unknown score {score!r}")
    rated = nonblank_text(rating.get("updated_at")) or nonblank_text(rating.get("created_at"))
    raw_time = rated or updated
    at = parse_iso(raw_time, "satisfaction_rating.updated_at")
    attrs = {"ticket_id": ticket_id, "score": score, "csat_good": score == "good"}
    attrs.update(sentiment_attributes(nonblank_text(rating.get("comment"))))
    requester = user_node(str(_id(ticket, "requester_id")))
    return _event(
        f"ticket:{ticket_id}:csat",
        "satisfaction_rating",
        "support.csat_rated",
        CUSTOMER,
        (at, raw_time),
        requester,
        _owner(_id(ticket, "assignee_id", required=False)),
        attrs,
    )


def parse_ticket(line: int, text: str, ticket: dict[str, Any]) -> RawRow:
    """One ticket version -> created / solved / CSAT touchpoints and the requester link."""
    ticket_id = str(_id(ticket, "id"))
    requester = user_node(str(_id(ticket, "requester_id")))
    status = ticket.get("status")
    if status not in STATUSES:
        raise RecordError(f"status: unknown ticket status {status!r}")
    created = parse_iso(ticket.get("created_at"), "created_at")
    updated_raw = ticket.get("updated_at")
    updated = parse_iso(updated_raw, "updated_at")
    owner = _owner(_id(ticket, "assignee_id", required=False))
    attrs: dict[str, Any] = {"ticket_id": ticket_id}
    attrs.update({k: ticket[k] for k in TICKET_FIELDS if isinstance(ticket.get(k), str | int)})
    via = nonblank_text(object_or_empty(ticket.get("via")).get("channel"))
    if via:
        attrs["via_channel"] = via
    if isinstance(ticket.get("tags"), list):
        attrs["tags"] = [t for t in ticket["tags"] if isinstance(t, str)]
    row = RawRow(line, f"ticket:{ticket_id}@{updated_raw}", text)
    row.edges.append(Edge(*ticket_node(ticket_id), *requester, "zendesk_ticket_requester", created))
    row.events.append(
        _event(
            f"ticket:{ticket_id}:created",
            "ticket_created",
            "support.ticket_created",
            CUSTOMER,
            (created, str(ticket["created_at"])),
            requester,
            owner,
            attrs,
        )
    )
    if status in SOLVED:
        row.events.append(
            _event(
                f"ticket:{ticket_id}:solved",
                f"status:{status}",
                "support.ticket_solved",
                COMPANY,
                (updated, str(updated_raw)),
                requester,
                owner,
                attrs,
            )
        )
    csat = _csat_event(ticket, ticket_id, str(updated_raw))
    if csat:
        row.events.append(csat)
    return row


def _event_time(record: dict[str, Any]) -> tuple[datetime, str]:
    if nonblank_text(record.get("created_at")):
        return parse_iso(record["created_at"], "created_at"), str(record["created_at"])
    if record.get("timestamp") is None:
        raise RecordError("created_at: missing timestamp")
    return parse_unix_seconds(record["timestamp"], "timestamp"), str(record["timestamp"])


def _comment(
    child: dict[str, Any], where: str, ticket_id: str, at: tuple[datetime, str], roles: Roles
) -> Event:
    comment_id, author = str(_id(child, "id")), str(_id(child, "author_id"))
    public = child.get("public")
    if not isinstance(public, bool):
        raise RecordError(f"{where}.public: expected true or false, got {public!r}")
    attrs: dict[str, Any] = {"ticket_id": ticket_id, "comment_id": comment_id, "public": public}
    key = f"comment:{comment_id}"
    role = roles.get(author)
    if role is None and public:  # the author is in another page: kept, actor left unknown
        attrs["author_id"] = author
        attrs.update(sentiment_attributes(nonblank_text(child.get("body"))))
        return _event(
            key,
            COMMENT,
            UNKNOWN_AUTHOR_ACTIVITY,
            UNKNOWN_ACTOR,
            at,
            ticket_node(ticket_id),
            _owner(author),
            attrs,
        )
    if role == END_USER:
        attrs.update(sentiment_attributes(nonblank_text(child.get("body"))))
        activity = "support.customer_replied" if public else "support.internal_note"
        return _event(key, COMMENT, activity, CUSTOMER, at, user_node(author), None, attrs)
    activity = "support.agent_replied" if public else "support.internal_note"
    return _event(
        key, COMMENT, activity, COMPANY, at, ticket_node(ticket_id), _owner(author), attrs
    )


def parse_ticket_event(line: int, text: str, record: dict[str, Any], roles: Roles) -> RawRow:
    """One ticket event -> a touchpoint per comment in its ``child_events``."""
    event_id = _id(record, "id")
    ticket_id = str(_id(record, "ticket_id"))
    at = _event_time(record)
    children = record.get("child_events")
    if not isinstance(children, list):
        raise RecordError("child_events: missing or not a list")
    row = RawRow(line, f"ticket_event:{event_id}", text)
    for index, child in enumerate(children):
        where = f"child_events[{index}]"
        if not isinstance(child, dict):
            raise RecordError(f"{where}: not a JSON object")
        kind = child.get("event_type") or child.get("type")
        if kind == COMMENT:
            row.events.append(_comment(child, where, ticket_id, at, roles))
        elif kind not in IGNORED_CHILD_TYPES:
            raise RecordError(f"{where}.event_type: unknown event type {kind!r}")
    return row


def parse_user(line: int, text: str, user: dict[str, Any]) -> RawRow:
    """One user -> identity edges (end-users) or an owner label (agents, admins)."""
    user_id = str(_id(user, "id"))
    role = user.get("role")
    if role != END_USER and role not in STAFF_ROLES:
        raise RecordError(f"role: unknown user role {role!r}")
    version = user.get("updated_at") or user.get("created_at")
    at = parse_iso(version, "updated_at")
    row = RawRow(line, f"user:{user_id}@{version}", text)
    if role in STAFF_ROLES:
        name = nonblank_text(user.get("name"))
        if name:
            row.labels.append(Label(vocabulary.OWNER_LABEL, OWNER_PREFIX + user_id, name))
        return row
    email = normalise_email(user.get("email"))
    if email:
        row.edges.append(Edge(*user_node(user_id), EMAIL, email, "zendesk_user_email", at))
    external = nonblank_text(user.get("external_id")) or (
        str(user["external_id"]) if isinstance(user.get("external_id"), int) else None
    )
    if external:
        row.edges.append(
            Edge(*user_node(user_id), USER_ID, external, "zendesk_user_external_id", at)
        )
    return row


def read_page(path: Path, file: str) -> JsonPage:
    """The page with at least one of the record arrays, or SourceFormatError."""
    page = read_json_page(path, file, "a Zendesk export page", PAGE_ARRAYS)
    members = page.members or {}
    if not any(name in members for name in PAGE_ARRAYS):
        raise SourceFormatError(file, f"not a Zendesk export page: no {' / '.join(PAGE_ARRAYS)}")
    for name in PAGE_ARRAYS:
        if name in members and name not in page.arrays:
            raise SourceFormatError(file, f"not a Zendesk export page: {name} is not a list")
    return page


def page_roles(page: JsonPage) -> Roles:
    """Role of every user listed in the page (ids as text)."""
    return {
        str(u["id"]): u["role"]
        for _, _, u in page.arrays.get(USERS, [])
        if isinstance(u, dict)
        and isinstance(u.get("id"), int | str)
        and isinstance(u.get("role"), str)
    }


def _records(page: JsonPage) -> Iterator[tuple[str, Record]]:
    """The records of every array, numbered on from one array to the next."""
    line = 0
    for name in PAGE_ARRAYS:
        for _, raw, item in page.arrays.get(name, []):
            line += 1
            yield name, (line, raw, item)


def parse_file(path: Path, file: str) -> ParsedFile:
    """Parse one Zendesk export page (plain or .gz)."""
    page = read_page(path, file)
    roles = page_roles(page)
    kinds: dict[int, str] = {}

    def records() -> Iterator[Record]:
        for name, record in _records(page):
            kinds[record[0]] = name
            yield record

    def parse_one(line: int, text: str, item: object) -> RawRow:
        if not isinstance(item, dict):
            raise RecordError(f"{kinds[line]}: not a JSON object")
        if kinds[line] == TICKETS:
            return parse_ticket(line, text, item)
        if kinds[line] == TICKET_EVENTS:
            return parse_ticket_event(line, text, item, roles)
        return parse_user(line, text, item)

    return parse_records(SOURCE, file, records(), parse_one, "a Zendesk export page")


def feedback_text(raw: str, event_key: str) -> str | None:
    """The customer's words behind a touchpoint, read back from its raw record (for quotes):
    a comment's ``body`` (``comment:<id>``) or a CSAT comment (``ticket:<id>:csat``)."""
    record = json.loads(raw)
    if not isinstance(record, dict):
        return None
    if event_key.startswith("comment:"):
        comment_id = event_key.removeprefix("comment:")
        for child in record.get("child_events") or []:
            if isinstance(child, dict) and str(child.get("id")) == comment_id:
                return nonblank_text(child.get("body"))
        return None
    if event_key.endswith(":csat"):
        return nonblank_text(object_or_empty(record.get("satisfaction_rating")).get("comment"))
    return None
