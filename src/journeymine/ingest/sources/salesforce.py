"""Salesforce: Data Export CSVs, one file per object (``Lead.csv``, ``Task.csv.gz``, ...).

Format and units
  * the object is the file name up to its first ``.``, in any folder (``export-2026-08-10/
    Lead.csv``); objects: Lead, Contact, Account, Opportunity, OpportunityHistory,
    OpportunityContactRole, Task, Event, and User (only to name the owners behind ``OwnerId``);
    any other name raises :class:`SourceFormatError`, as does a header without the object's
    required columns (``Id`` always);
  * header row of API field names; quoted fields may hold commas and newlines, so ``line`` is the
    physical line where a record starts and ``raw`` is the record's text exactly as exported;
  * datetimes ``2026-08-03T14:22:05.000Z``, ``2026-08-03T14:22:05.000+0000`` and
    ``2026-08-03 14:22:05`` (no offset means UTC); Date fields (``ActivityDate``,
    ``ConvertedDate``) ``2026-08-03`` are taken as 00:00 UTC of that day.

Ids
  Ids come in a case-sensitive 15-character form (reports, the UI) and an 18-character form whose
  3 suffix letters encode the case of the first 15 (the API, Data Export). Every id -- ``Id``,
  ``OwnerId``, ``WhoId``, ``AccountId``... -- is emitted in its 18-character form (see
  :func:`sf_id18`) so both forms name the same record. ``000000000000000AAA`` is Salesforce's
  "empty" id and is read as no id.

Dedup key
  ``<Id18>@<SystemModstamp>`` (or ``LastModifiedDate``), else ``<Id18>``: a later export of a
  changed record is a new version. Event keys (``Lead:<Id18>:created``) do not carry the version,
  so the newest version's events replace the older ones.

Quirks
  * rows with ``IsDeleted`` true (recycle bin) are rejected with reason ``IsDeleted=true``;
  * a row with fewer or more fields than the header is rejected as ``wrong_column_count``, never
    loaded with shifted fields; a field over 131,072 characters (the longest a Salesforce Long
    Text Area holds, e.g. an unbalanced quote that swallowed the rest of the file) rejects its
    row; Excel's UTF-8 BOM is dropped; a Latin-1 byte rejects its row, naming field and line;
  * a Lead's ``crm.lead_created`` is a customer action when ``LeadSource`` mentions web, inbound,
    demo, form or trial (case-insensitive substring), else a company action;
  * a Task is a touchpoint only once done (``Status`` Completed, ``IsClosed`` true or
    ``CompletedDateTime`` set); open Tasks are accepted rows without events;
  * Tasks and Events belong to their ``WhoId`` (lead ``00Q`` / contact ``003``), else their
    ``WhatId`` (opportunity ``006`` / account ``001``); a record naming neither is rejected;
  * OpportunityHistory gets a row on every change of amount or close date too, so the same
    ``crm.opportunity_stage:<StageName>`` may repeat for one deal;
  * names, emails and phone numbers are never copied into attributes; emails only become
    normalised identity edges.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from journeymine.errors import SourceFormatError
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
    ParsedFile,
    RawRow,
    RecordError,
    check_utf8,
    normalise_email,
    parse_iso,
    slug,
)
from journeymine.ingest.sources._csv import (
    CsvRecord,
    csv_row,
    parse_csv_rows,
    read_csv_records,
)

SOURCE = "salesforce"
CHANNEL = "crm"

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

# Columns a file must have, per object; a tuple of alternatives means "at least one of".
REQUIRED_COLUMNS: dict[str, tuple[tuple[str, ...], ...]] = {
    "Lead": ((ID,), (CREATED_DATE,)),
    "Contact": ((ID,), (CREATED_DATE,)),
    "Account": ((ID,),),
    "Opportunity": ((ID,), (CREATED_DATE,)),
    "OpportunityHistory": ((ID,), (OPPORTUNITY_ID,), (STAGE_NAME,), (CREATED_DATE,)),
    "OpportunityContactRole": ((ID,), (CONTACT_ID,), (OPPORTUNITY_ID,)),
    "Task": ((ID,), (CREATED_DATE,), (WHO_ID, WHAT_ID)),
    "Event": ((ID,), (START_DATE_TIME, ACTIVITY_DATE_TIME, ACTIVITY_DATE), (WHO_ID, WHAT_ID)),
    "User": ((ID,),),
}

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
EMPTY_ID = "000000000000000"  # Salesforce's null lookup, exported as 000000000000000AAA

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

# Long Text Area fields hold up to 131,072 characters (the csv module's default field limit, so
# that is raised: a longer field is one bad record, never a file that cannot be read).
FIELD_MAX_CHARS = 131_072
CSV_FIELD_LIMIT = 2**31 - 1  # the largest a C long takes on every platform
WRONG_COLUMN_COUNT = "wrong_column_count"
WRONG_COUNT = WRONG_COLUMN_COUNT + ": {got} fields, the header has {want}"
_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"

Row = dict[str, str]
Person = tuple[str, str]  # (identity node type, id)


def sf_id18(value: str) -> str:
    """The canonical 18-character form of a 15- or 18-character Salesforce id.

    For each 5-character chunk of the 15-character id, bit ``i`` is set when character ``i`` is
    an upper-case letter; the bits index ``A..Z0..5``, giving one suffix character per chunk:
    ``001A0000006Vm9r`` -> chunks ``001A0`` (bit 3 -> 8 -> ``I``), ``00000`` (``A``), ``6Vm9r``
    (bit 1 -> 2 -> ``C``) -> ``001A0000006Vm9rIAC``.

    An 18-character id is case-insensitive by design, so its case is restored from its suffix
    (``001a0000006vm9riac`` -> ``001A0000006Vm9rIAC``). Raises ValueError for anything else.
    """
    text = value.strip()
    if not (text.isascii() and text.isalnum() and len(text) in (15, 18)):
        raise ValueError(f"not a Salesforce id: {value!r}")
    if len(text) == 15:
        return text + "".join(_checksum_char(text[i : i + 5]) for i in (0, 5, 10))
    return _restore_case(text, value)


def _checksum_char(chunk: str) -> str:
    bits = sum(1 << i for i, ch in enumerate(chunk) if "A" <= ch <= "Z")
    return _CHECKSUM_ALPHABET[bits]


def _restore_case(text: str, value: str) -> str:
    suffix = text[15:].upper()
    chars: list[str] = []
    for chunk, check in enumerate(suffix):
        bits = _CHECKSUM_ALPHABET.find(check)
        if bits < 0:
            raise ValueError(f"not a Salesforce id: {value!r} (bad checksum {text[15:]!r})")
        for i, ch in enumerate(text[chunk * 5 : chunk * 5 + 5]):
            upper = bool(bits >> i & 1)
            if upper and not ch.isalpha():
                raise ValueError(f"not a Salesforce id: {value!r} (checksum mismatch)")
            chars.append(ch.upper() if upper else ch.lower())
    return "".join(chars) + suffix


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
    """Useful non-personal columns, values unchanged; blanks left out."""
    names = [*ATTRIBUTE_FIELDS, *(k for k in row if "utm" in k.lower())]
    return {k: row[k] for k in dict.fromkeys(names) if k not in PERSONAL_FIELDS and _text(row, k)}


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
    return Event(
        event_key=f"{obj}:{_ref(row, ID)}:{kind}",
        event_type=f"{obj}.{kind}",
        activity=activity,
        actor=actor,
        occurred_at=_time(row, time_field),
        raw_time=row.get(time_field) or "",
        id_type=person[0],
        id_value=person[1],
        channel=CHANNEL,
        owner=_ref(row, OWNER_ID) if owner else None,
        account_type=SF_ACCOUNT if account else None,
        account_value=account,
        attributes=_attributes(row),
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
    rule = "sf_contact_role_primary" if _flag(row, IS_PRIMARY) else "sf_contact_role"
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
        out.labels.append(Label("owner", str(_ref(row, ID)), name))


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


def _parse_row(obj: str, line: int, row: Row, raw: str) -> RawRow:
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


# --- reading the file --------------------------------------------------------------------------


def _check_header(obj: str, header: list[str], file: str) -> None:
    for alternatives in REQUIRED_COLUMNS[obj]:
        if not any(name in header for name in alternatives):
            wanted = " or ".join(repr(name) for name in alternatives)
            raise SourceFormatError(file, f"not a Salesforce {obj} export: no {wanted} column")


def _header(first: CsvRecord | None, obj: str, file: str) -> list[str]:
    if first is None:
        raise SourceFormatError(file, "empty file: no header row")
    _, fields, raw = first
    try:
        if isinstance(fields, RecordError):
            raise fields
        check_utf8(raw, 1, "header")
    except RecordError as exc:
        raise SourceFormatError(file, str(exc)) from None
    header = [name.strip() for name in fields]
    _check_header(obj, header, file)
    return header


def _row(header: list[str], line: int, fields: list[str] | RecordError, raw: str) -> Row:
    """The record as ``{column: value}``, or a RecordError naming what makes it unusable."""
    row = csv_row(header, line, fields, raw, wrong_count=WRONG_COUNT, name_bad_field=True)
    if max(map(len, row.values()), default=0) <= FIELD_MAX_CHARS:  # usual case, C speed
        return row
    for name, value in row.items():
        if len(value) > FIELD_MAX_CHARS:
            raise RecordError(
                f"{name}: {len(value):,} characters, more than the {FIELD_MAX_CHARS:,} "
                "a Salesforce field holds"
            )
    return row


def parse_file(path: Path, file: str) -> ParsedFile:
    """Parse one Data Export CSV (plain or .gz); the object comes from the file name."""
    obj = path.name.split(".")[0]
    if obj not in OBJECT_PREFIXES:
        raise SourceFormatError(
            file, f"unknown Salesforce object {obj!r}; expected one of {OBJECTS}"
        )
    records = read_csv_records(path, file, CSV_FIELD_LIMIT)
    header = _header(next(records, None), obj, file)
    return parse_csv_rows(
        SOURCE,
        file,
        records,
        lambda line, fields, raw: _row(header, line, fields, raw),
        lambda line, raw, row: _parse_row(obj, line, row, raw),
    )
