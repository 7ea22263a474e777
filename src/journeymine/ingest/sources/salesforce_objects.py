"""Salesforce objects -> touchpoints and identity edges: what each exported object yields.

:mod:`journeymine.ingest.sources.salesforce` reads the CSV and checks its header; this module
holds the Salesforce vocabulary (object key prefixes, API field names, activities) and turns one
row of an object into its events, edges and labels. The rules are documented in that module.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import lru_cache

from journeymine import vocabulary
from journeymine.ingest.sources._common import (
    COMPANY,
    CUSTOMER,
    EMAIL,
    SF_ACCOUNT,
    SF_CONTACT,
    SF_LEAD,
    SF_OPPORTUNITY,
    Edge,
    Event,
    Label,
    RawRow,
    RecordError,
    normalise_email,
    parse_iso,
    slug,
)
from journeymine.ingest.sources.salesforce_ids import EMPTY_ID, sf_id18

CHANNEL = vocabulary.CRM
# Object name -> the key prefix of its record ids (fixed for standard objects).
OBJECT_PREFIXES = {
    "Lead": "00Q",
    "Contact": "003",
    "Account": "001",
    "Opportunity": "006",
    "OpportunityHistory": "008",
    "OpportunityContactRole": "00K",
    "Task": "00T",
    "Event": "00U",
    "User": "005",
}
OBJECTS = tuple(OBJECT_PREFIXES)

# Field names (Salesforce API names).
ID = "Id"
IS_DELETED = "IsDeleted"
SYSTEM_MODSTAMP = "SystemModstamp"
LAST_MODIFIED_DATE = "LastModifiedDate"
CREATED_DATE = "CreatedDate"
OWNER_ID = "OwnerId"
ACCOUNT_ID = "AccountId"
OPPORTUNITY_ID = "OpportunityId"
CONTACT_ID = "ContactId"
WHO_ID = "WhoId"
WHAT_ID = "WhatId"
EMAIL_FIELD = "Email"
LEAD_SOURCE = "LeadSource"
IS_CONVERTED = "IsConverted"
CONVERTED_DATE = "ConvertedDate"
CONVERTED_CONTACT_ID = "ConvertedContactId"
CONVERTED_ACCOUNT_ID = "ConvertedAccountId"
CONVERTED_OPPORTUNITY_ID = "ConvertedOpportunityId"
STAGE_NAME = "StageName"
IS_PRIMARY = "IsPrimary"
STATUS = "Status"
IS_CLOSED = "IsClosed"
COMPLETED_DATE_TIME = "CompletedDateTime"
ACTIVITY_DATE = "ActivityDate"
ACTIVITY_DATE_TIME = "ActivityDateTime"
START_DATE_TIME = "StartDateTime"
TASK_SUBTYPE = "TaskSubtype"
TYPE = "Type"
SUBJECT = "Subject"
NAME = "Name"
FIRST_NAME = "FirstName"
LAST_NAME = "LastName"


# Activity vocabulary (docs/activities.md).
LEAD_CREATED = "crm.lead_created"
LEAD_CONVERTED = "crm.lead_converted"
CONTACT_CREATED = "crm.contact_created"
OPPORTUNITY_CREATED = "crm.opportunity_created"
OPPORTUNITY_STAGE = "crm.opportunity_stage:"  # + StageName, unchanged
CALL_COMPLETED = "crm.call_completed"
EMAIL_SENT = "crm.email_sent"
TASK_COMPLETED = "crm.task_completed"
MEETING = "crm.meeting:"  # + slug of Type, else of the Subject's first word

CUSTOMER_LEAD_SOURCE_WORDS = ("web", "inbound", "demo", "form", "trial")
CALL_KINDS = ("call",)
EMAIL_KINDS = ("email", "listemail")
TRUE_VALUES = ("true", "1")

# Who a Task or Event is about: WhoId first (a person), then WhatId (a deal or an account).
WHO_TYPES = {"00Q": SF_LEAD, "003": SF_CONTACT}
WHAT_TYPES = {"006": SF_OPPORTUNITY, "001": SF_ACCOUNT}

# Non-personal columns copied into event attributes (plus any column whose name mentions utm).
ATTRIBUTE_FIELDS = (
    "LeadSource",
    "Status",
    "Company",
    "Industry",
    "NumberOfEmployees",
    "Country",
    "StageName",
    "Amount",
    "Subject",
    "Type",
    "TaskSubtype",
    "CallDurationInSeconds",
)
PERSONAL_FIELDS = frozenset(
    {"FirstName", "LastName", "Name", "Email", "Phone", "MobilePhone", "Street", "Description"}
)

Row = dict[str, str]
Person = tuple[str, str]  # (identity node type, id)


# --- field readers -----------------------------------------------------------------------------


def _text(row: Row, field: str) -> str:
    return (row.get(field) or "").strip()


def _flag(row: Row, field: str) -> bool:
    return _text(row, field).lower() in TRUE_VALUES


def _ref(row: Row, field: str) -> str | None:
    """An id column in its 18-character form; None when empty."""
    value = _text(row, field)
    if not value or value.startswith(EMPTY_ID):
        return None
    try:
        return sf_id18(value)
    except ValueError as exc:
        raise RecordError(f"{field}: {exc}") from None


def _time(row: Row, field: str) -> datetime:
    return parse_iso(row.get(field), field)


def _first_time_field(row: Row, fields: tuple[str, ...]) -> str:
    """The first of ``fields`` that has a value (the last one when none has, for the error)."""
    return next((f for f in fields if _text(row, f)), fields[-1])


def _attributes(row: Row) -> dict[str, str]:
    """Useful non-personal columns, values unchanged; blanks left out (``_text`` inline: a
    value is blank when absent, empty or all white space, what ``strip`` removes)."""
    return {
        k: value
        for k in _attribute_names(tuple(row))
        if (value := row.get(k)) and not value.isspace()
    }


@lru_cache(maxsize=256)  # one header per file: its rows share the answer
def _attribute_names(columns: tuple[str, ...]) -> tuple[str, ...]:
    """The columns :func:`_attributes` may keep, in order: known ones, then any utm_*."""
    names = [*ATTRIBUTE_FIELDS, *(k for k in columns if "utm" in k.lower())]
    return tuple(k for k in dict.fromkeys(names) if k not in PERSONAL_FIELDS)


# --- events and edges per object ---------------------------------------------------------------


def _event(
    obj: str,
    row: Row,
    kind: str,
    activity: str,
    actor: str,
    time_field: str,
    person: Person,
    account: str | None = None,
    owner: bool = True,
) -> Event:
    return Event(  # positional, in field order: cheaper than keywords
        f"{obj}:{_ref(row, ID)}:{kind}",
        f"{obj}.{kind}",
        activity,
        actor,
        _time(row, time_field),
        row.get(time_field) or "",
        *person,
        CHANNEL,
        _ref(row, OWNER_ID) if owner else None,
        SF_ACCOUNT if account else None,
        account,
        _attributes(row),
    )


def _lead_actor(row: Row) -> str:
    lead_source = _text(row, LEAD_SOURCE).lower()
    return CUSTOMER if any(w in lead_source for w in CUSTOMER_LEAD_SOURCE_WORDS) else COMPANY


def _lead(row: Row, out: RawRow) -> None:
    lead: Person = (SF_LEAD, str(_ref(row, ID)))
    created = _event("Lead", row, "created", LEAD_CREATED, _lead_actor(row), CREATED_DATE, lead)
    out.events.append(created)
    email = normalise_email(row.get(EMAIL_FIELD))
    if email:
        out.edges.append(Edge(*lead, EMAIL, email, "sf_lead_email", created.occurred_at))
    if _flag(row, IS_CONVERTED):
        converted = _event("Lead", row, "converted", LEAD_CONVERTED, COMPANY, CONVERTED_DATE, lead)
        out.events.append(converted)
        out.edges.extend(_conversion_edges(row, lead, converted.occurred_at))


def _conversion_edges(row: Row, lead: Person, at: datetime) -> list[Edge]:
    contact, account = _ref(row, CONVERTED_CONTACT_ID), _ref(row, CONVERTED_ACCOUNT_ID)
    opportunity = _ref(row, CONVERTED_OPPORTUNITY_ID)
    edges: list[Edge] = []
    if contact:
        edges.append(Edge(*lead, SF_CONTACT, contact, "sf_lead_converted", at))
    if contact and account:
        edges.append(Edge(SF_CONTACT, contact, SF_ACCOUNT, account, "sf_contact_account", at))
    if opportunity and account:
        edges.append(
            Edge(SF_OPPORTUNITY, opportunity, SF_ACCOUNT, account, "sf_opportunity_account", at)
        )
    return edges


def _contact(row: Row, out: RawRow) -> None:
    contact: Person = (SF_CONTACT, str(_ref(row, ID)))
    account = _ref(row, ACCOUNT_ID)
    event = _event(
        "Contact", row, "created", CONTACT_CREATED, COMPANY, CREATED_DATE, contact, account
    )
    out.events.append(event)
    email = normalise_email(row.get(EMAIL_FIELD))
    if email:
        out.edges.append(Edge(*contact, EMAIL, email, "sf_contact_email", event.occurred_at))
    if account:
        out.edges.append(
            Edge(*contact, SF_ACCOUNT, account, "sf_contact_account", event.occurred_at)
        )


def _account(row: Row, out: RawRow) -> None:
    """Accounts carry no touchpoint; the row is kept for lineage."""


def _opportunity(row: Row, out: RawRow) -> None:
    deal: Person = (SF_OPPORTUNITY, str(_ref(row, ID)))
    account = _ref(row, ACCOUNT_ID)
    event = _event(
        "Opportunity", row, "created", OPPORTUNITY_CREATED, COMPANY, CREATED_DATE, deal, account
    )
    out.events.append(event)
    if account:
        out.edges.append(
            Edge(*deal, SF_ACCOUNT, account, "sf_opportunity_account", event.occurred_at)
        )


def _opportunity_history(row: Row, out: RawRow) -> None:
    deal, stage = _ref(row, OPPORTUNITY_ID), _text(row, STAGE_NAME)
    if not deal:
        raise RecordError(f"{OPPORTUNITY_ID}: missing")
    if not stage:
        raise RecordError(f"{STAGE_NAME}: missing")
    activity = OPPORTUNITY_STAGE + (row.get(STAGE_NAME) or "")
    person: Person = (SF_OPPORTUNITY, deal)
    # History rows have no OwnerId (only CreatedById): no owner, as docs/activities.md says.
    out.events.append(
        _event(
            "OpportunityHistory", row, "stage", activity, COMPANY, CREATED_DATE, person, None, False
        )
    )


def _contact_role(row: Row, out: RawRow) -> None:
    contact, deal = _ref(row, CONTACT_ID), _ref(row, OPPORTUNITY_ID)
    if not contact:
        raise RecordError(f"{CONTACT_ID}: missing")
    if not deal:
        raise RecordError(f"{OPPORTUNITY_ID}: missing")
    primary = _flag(row, IS_PRIMARY)
    rule = vocabulary.SF_CONTACT_ROLE_PRIMARY if primary else vocabulary.SF_CONTACT_ROLE
    at = _time(row, _first_time_field(row, (CREATED_DATE, SYSTEM_MODSTAMP, LAST_MODIFIED_DATE)))
    out.edges.append(Edge(SF_CONTACT, contact, SF_OPPORTUNITY, deal, rule, at))


def _subject_of(row: Row) -> tuple[Person, str | None]:
    """The person (or deal, or account) a Task or Event belongs to, and its account if known."""
    who, what = _ref(row, WHO_ID), _ref(row, WHAT_ID)
    account = what if what and what[:3] == "001" else None
    if who and who[:3] in WHO_TYPES:
        return (WHO_TYPES[who[:3]], who), account
    if what and what[:3] in WHAT_TYPES:
        return (WHAT_TYPES[what[:3]], what), account
    raise RecordError(
        f"{WHO_ID}/{WHAT_ID}: names no lead (00Q), contact (003), opportunity (006) or "
        f"account (001): {WHO_ID}={_text(row, WHO_ID)!r} {WHAT_ID}={_text(row, WHAT_ID)!r}"
    )


def _task_done(row: Row) -> bool:
    return (
        _text(row, STATUS).lower() == "completed"
        or _flag(row, IS_CLOSED)
        or bool(_text(row, COMPLETED_DATE_TIME))
    )


def _task_activity(row: Row) -> str:
    kinds = {_text(row, TASK_SUBTYPE).lower(), _text(row, TYPE).lower()}
    if kinds.intersection(CALL_KINDS):
        return CALL_COMPLETED
    if kinds.intersection(EMAIL_KINDS):
        return EMAIL_SENT
    return TASK_COMPLETED


def _task(row: Row, out: RawRow) -> None:
    if not _task_done(row):
        return  # an open task is a plan, not a touchpoint (yet)
    person, account = _subject_of(row)
    at = _first_time_field(row, (COMPLETED_DATE_TIME, ACTIVITY_DATE, CREATED_DATE))
    out.events.append(
        _event("Task", row, "completed", _task_activity(row), COMPANY, at, person, account)
    )


def _meeting(row: Row, out: RawRow) -> None:
    person, account = _subject_of(row)
    subject_words = _text(row, SUBJECT).split()
    kind = _text(row, TYPE) or (subject_words[0] if subject_words else "")
    at = _first_time_field(row, (START_DATE_TIME, ACTIVITY_DATE_TIME, ACTIVITY_DATE))
    out.events.append(
        _event("Event", row, "held", MEETING + slug(kind), COMPANY, at, person, account)
    )


def _user(row: Row, out: RawRow) -> None:
    """A Salesforce user: the readable name behind the ``OwnerId`` of leads, tasks, events."""
    name = _text(row, NAME) or " ".join(
        filter(None, (_text(row, FIRST_NAME), _text(row, LAST_NAME)))
    )
    if name:
        out.labels.append(Label(vocabulary.OWNER_LABEL, str(_ref(row, ID)), name))


HANDLERS: dict[str, Callable[[Row, RawRow], None]] = {
    "Lead": _lead,
    "Contact": _contact,
    "Account": _account,
    "Opportunity": _opportunity,
    "OpportunityHistory": _opportunity_history,
    "OpportunityContactRole": _contact_role,
    "Task": _task,
    "Event": _meeting,
    "User": _user,
}


def _record_key(row: Row, record_id: str) -> str:
    version = _text(row, SYSTEM_MODSTAMP) or _text(row, LAST_MODIFIED_DATE)
    return f"{record_id}@{version}" if version else record_id


def parse_row(obj: str, line: int, row: Row, raw: str) -> RawRow:
    """One row of object ``obj`` -> its accepted row with events, edges and labels.

    The ``Id`` must carry the object's key prefix; a recycle-bin row (``IsDeleted``) is rejected.
    """
    record_id = _ref(row, ID)
    if not record_id:
        raise RecordError(f"{ID}: missing")
    prefix = OBJECT_PREFIXES[obj]
    if not record_id.startswith(prefix):
        raise RecordError(f"{ID}: {record_id!r} does not start with {prefix}, the {obj} key prefix")
    if _flag(row, IS_DELETED):
        raise RecordError(f"{IS_DELETED}=true")
    out = RawRow(line, _record_key(row, record_id), raw)
    HANDLERS[obj](row, out)
    return out
