"""Salesforce: Data Export CSVs, one file per object (``Lead.csv``, ``Task.csv``, ...).

* the object is the file name up to its first ``.`` (``Lead.csv``, ``Lead.csv.gz``);
* header row of API field names; quoted fields may hold commas and newlines; ``line`` is the
  physical line where a record starts;
* ids may be 15 characters (case-sensitive) or 18 (with a checksum suffix): every id is
  stored in its 18-character form, so both name the same record;
* datetimes ``2026-08-03T14:22:05.000Z`` / ``...+0000`` / ``2026-08-03 14:22:05`` (no offset
  means UTC); Date fields ``2026-08-03`` are taken as 00:00 UTC;
* dedup key ``Id`` + ``@`` + ``SystemModstamp``: a later export of a changed record is a new
  version of it, and its events (keyed by object, Id and kind) replace the older ones;
* rows with ``IsDeleted`` true are quarantined; open Tasks are kept as rows without events.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from journeymine.errors import SourceFormatError
from journeymine.sources._common import (
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
    ParsedFile,
    RawRow,
    RecordError,
    Rejected,
    normalise_email,
    open_text,
    parse_iso,
    slug,
)

SOURCE = "salesforce"
OBJECTS = (
    "Lead",
    "Contact",
    "Account",
    "Opportunity",
    "OpportunityHistory",
    "OpportunityContactRole",
    "Task",
    "Event",
    "User",
)
ID_PREFIXES = {"00Q": SF_LEAD, "003": SF_CONTACT, "006": SF_OPPORTUNITY, "001": SF_ACCOUNT}
CUSTOMER_LEAD_SOURCES = ("web", "inbound", "demo", "form", "trial")
KEPT_FIELDS = (
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
    "Title",
    "Rating",
)
_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"

Row = dict[str, str]


def sf_id18(value: str) -> str:
    """The 18-character form of a Salesforce id (15-character ids get their checksum suffix).

    Each 5-character chunk contributes one suffix letter: bit i is set when character i of the
    chunk is an upper-case letter.
    """
    value = value.strip()
    if len(value) == 18:
        return value
    if len(value) != 15:
        raise RecordError(f"not a Salesforce id: {value!r}")
    suffix = ""
    for start in (0, 5, 10):
        bits = sum(1 << i for i, ch in enumerate(value[start : start + 5]) if "A" <= ch <= "Z")
        suffix += _CHECKSUM_ALPHABET[bits]
    return value + suffix


def _id(row: Row, field: str) -> str | None:
    value = (row.get(field) or "").strip()
    return sf_id18(value) if value else None


def _time(row: Row, field: str) -> datetime:
    value = (row.get(field) or "").strip()
    if value.endswith("+0000"):
        value = value[:-5] + "+00:00"
    return parse_iso(value, field)


def _attributes(row: Row) -> dict[str, str]:
    return {k: row[k] for k in KEPT_FIELDS if row.get(k)}


def _event(
    row: Row, obj: str, kind: str, activity: str, actor: str, at_field: str, person: tuple[str, str]
) -> Event:
    return Event(
        event_key=f"{obj}:{_id(row, 'Id')}:{kind}",
        event_type=f"{obj}.{kind}",
        activity=activity,
        actor=actor,
        occurred_at=_time(row, at_field),
        raw_time=row.get(at_field, ""),
        id_type=person[0],
        id_value=person[1],
        channel="crm",
        owner=_id(row, "OwnerId"),
        attributes=_attributes(row),
    )


def _who(row: Row) -> tuple[str, str]:
    """The person (or deal, or account) a Task or Event is about."""
    for field in ("WhoId", "WhatId"):
        value = _id(row, field)
        if value and value[:3] in ID_PREFIXES:
            return ID_PREFIXES[value[:3]], value
    raise RecordError("neither WhoId nor WhatId names a lead, contact, opportunity or account")


def _lead(row: Row, out: RawRow) -> None:
    lead = (SF_LEAD, str(_id(row, "Id")))
    source = (row.get("LeadSource") or "").lower()
    actor = CUSTOMER if any(w in source for w in CUSTOMER_LEAD_SOURCES) else COMPANY
    out.events.append(
        _event(row, "Lead", "created", "crm.lead_created", actor, "CreatedDate", lead)
    )
    at = out.events[0].occurred_at
    email = normalise_email(row.get("Email"))
    if email:
        out.edges.append(Edge(*lead, EMAIL, email, "sf_lead_email", at))
    if (row.get("IsConverted") or "").lower() == "true" and row.get("ConvertedDate"):
        converted = _event(
            row, "Lead", "converted", "crm.lead_converted", COMPANY, "ConvertedDate", lead
        )
        out.events.append(converted)
        contact, account = _id(row, "ConvertedContactId"), _id(row, "ConvertedAccountId")
        opportunity = _id(row, "ConvertedOpportunityId")
        at = converted.occurred_at
        if contact:
            out.edges.append(Edge(*lead, SF_CONTACT, contact, "sf_lead_converted", at))
        if contact and account:
            out.edges.append(
                Edge(SF_CONTACT, contact, SF_ACCOUNT, account, "sf_contact_account", at)
            )
        if opportunity and account:
            out.edges.append(
                Edge(SF_OPPORTUNITY, opportunity, SF_ACCOUNT, account, "sf_opportunity_account", at)
            )


def _contact(row: Row, out: RawRow) -> None:
    contact = (SF_CONTACT, str(_id(row, "Id")))
    event = _event(
        row, "Contact", "created", "crm.contact_created", COMPANY, "CreatedDate", contact
    )
    out.events.append(event)
    email, account = normalise_email(row.get("Email")), _id(row, "AccountId")
    if email:
        out.edges.append(Edge(*contact, EMAIL, email, "sf_contact_email", event.occurred_at))
    if account:
        out.edges.append(
            Edge(*contact, SF_ACCOUNT, account, "sf_contact_account", event.occurred_at)
        )


def _opportunity(row: Row, out: RawRow) -> None:
    opp = (SF_OPPORTUNITY, str(_id(row, "Id")))
    event = _event(
        row, "Opportunity", "created", "crm.opportunity_created", COMPANY, "CreatedDate", opp
    )
    account = _id(row, "AccountId")
    if account:
        event = Event(**{**event.__dict__, "account_type": SF_ACCOUNT, "account_value": account})
        out.edges.append(
            Edge(*opp, SF_ACCOUNT, account, "sf_opportunity_account", event.occurred_at)
        )
    out.events.append(event)


def _history(row: Row, out: RawRow) -> None:
    opp = _id(row, "OpportunityId")
    if not opp:
        raise RecordError("missing OpportunityId")
    stage = (row.get("StageName") or "").strip() or "unknown"
    out.events.append(
        _event(
            row,
            "OpportunityHistory",
            "stage",
            f"crm.opportunity_stage:{stage}",
            COMPANY,
            "CreatedDate",
            (SF_OPPORTUNITY, opp),
        )
    )


def _contact_role(row: Row, out: RawRow) -> None:
    contact, opp = _id(row, "ContactId"), _id(row, "OpportunityId")
    if not contact or not opp:
        raise RecordError("missing ContactId or OpportunityId")
    primary = (row.get("IsPrimary") or "").lower() == "true"
    rule = "sf_contact_role_primary" if primary else "sf_contact_role"
    out.edges.append(
        Edge(SF_CONTACT, contact, SF_OPPORTUNITY, opp, rule, _time(row, "CreatedDate"))
    )


def _task(row: Row, out: RawRow) -> None:
    done = (row.get("Status") or "").lower() == "completed" or row.get("CompletedDateTime")
    if not done:
        return  # an open task is not a touchpoint (yet)
    kind = (row.get("TaskSubtype") or row.get("Type") or "").lower()
    activity = {
        "call": "crm.call_completed",
        "email": "crm.email_sent",
        "listemail": "crm.email_sent",
    }.get(kind, "crm.task_completed")
    at_field = next(
        f
        for f in ("CompletedDateTime", "ActivityDate", "CreatedDate")
        if row.get(f) or f == "CreatedDate"
    )
    out.events.append(_event(row, "Task", "completed", activity, COMPANY, at_field, _who(row)))


def _meeting(row: Row, out: RawRow) -> None:
    kind = row.get("Type") or (row.get("Subject") or "meeting").split()[0]
    out.events.append(
        _event(
            row, "Event", "held", f"crm.meeting:{slug(kind)}", COMPANY, "StartDateTime", _who(row)
        )
    )


def _user(row: Row, out: RawRow) -> None:
    """A Salesforce user: the readable name behind the ``OwnerId`` of leads, tasks, events."""
    name = (
        row.get("Name") or " ".join(filter(None, (row.get("FirstName"), row.get("LastName"))))
    ).strip()
    if name:
        out.labels.append(Label("owner", str(_id(row, "Id")), name))


HANDLERS: dict[str, Callable[[Row, RawRow], None]] = {
    "User": _user,
    "Lead": _lead,
    "Contact": _contact,
    "Opportunity": _opportunity,
    "OpportunityHistory": _history,
    "OpportunityContactRole": _contact_role,
    "Task": _task,
    "Event": _meeting,
}


def parse_record(obj: str, line: int, row: Row, raw: str) -> RawRow:
    record_id = _id(row, "Id")
    if not record_id:
        raise RecordError("missing Id")
    if (row.get("IsDeleted") or "").lower() == "true":
        raise RecordError("IsDeleted=true")
    version = (row.get("SystemModstamp") or row.get("LastModifiedDate") or "").strip()
    out = RawRow(line, f"{obj}:{record_id}@{version}" if version else f"{obj}:{record_id}", raw)
    handler = HANDLERS.get(obj)
    if handler:
        handler(row, out)
    return out


def parse_file(path: Path, file: str) -> ParsedFile:
    """Parse one Data Export CSV; the object comes from the file name."""
    obj = path.name.split(".")[0]
    if obj not in OBJECTS:
        raise SourceFormatError(file, f"unknown Salesforce object {obj!r}; expected {OBJECTS}")
    parsed = ParsedFile(SOURCE, file)
    with open_text(path) as fh:
        text = fh.read()
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames or "Id" not in reader.fieldnames:
        raise SourceFormatError(file, "not a Salesforce export: no 'Id' column in the header")
    lines = text.splitlines(keepends=True)
    start = reader.line_num + 1
    for row in reader:
        raw = "".join(lines[start - 1 : reader.line_num]).rstrip("\r\n")
        try:
            if None in row:
                raise RecordError("more fields than the header")
            parsed.rows.append(parse_record(obj, start, row, raw))
        except RecordError as exc:
            parsed.rejected.append(Rejected(start, str(exc), raw))
        start = reader.line_num + 1
    return parsed
