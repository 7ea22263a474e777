"""Salesforce: Data Export CSVs, one file per object (``Lead.csv``, ``Task.csv.gz``, ...).

Format and units
  (field names, object key prefixes and activities are constants in
  :mod:`~journeymine.ingest.sources.salesforce_objects`, beside the rules that use them)
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

Identity
  * a Lead's events belong to the lead (``sf_lead``), a Contact's to the contact, an
    Opportunity's and its OpportunityHistory's to the opportunity; a Task or Event to its
    ``WhoId``, else its ``WhatId`` (see Quirks). ``AccountId`` (or an account ``WhatId``) sets
    the event's account;
  * edges: a Lead's or Contact's ``Email`` (normalised; rules ``sf_lead_email``,
    ``sf_contact_email``); a converted Lead to its ``ConvertedContactId`` (``sf_lead_converted``),
    that contact to ``ConvertedAccountId`` (``sf_contact_account``) and ``ConvertedOpportunityId``
    to that account (``sf_opportunity_account``); a Contact's and an Opportunity's ``AccountId``
    (the same two rules); an OpportunityContactRole links contact and opportunity
    (``sf_contact_role``, or ``sf_contact_role_primary`` when ``IsPrimary``);
  * ids come in a case-sensitive 15-character form (reports, the UI) and an 18-character form
    whose 3 suffix letters encode the case of the first 15 (the API, Data Export). Every id --
    ``Id``, ``OwnerId``, ``WhoId``, ``AccountId``... -- is emitted in its 18-character form (see
    :func:`~journeymine.ingest.sources.salesforce_ids.sf_id18`) so both forms name the same
    record. ``000000000000000AAA`` is Salesforce's "empty" id and is read as no id;
  * a User row yields no event: it names the owner behind ``OwnerId`` (an ``owner`` label).

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

from pathlib import Path

from journeymine.errors import SourceFormatError
from journeymine.ingest.sources._common import ParsedFile, RecordError, check_utf8
from journeymine.ingest.sources._csv import (
    CsvRecord,
    csv_row,
    parse_csv_rows,
    read_csv_records,
)
from journeymine.ingest.sources.salesforce_ids import sf_id18 as sf_id18  # the public id helper
from journeymine.ingest.sources.salesforce_objects import (
    ACTIVITY_DATE,
    ACTIVITY_DATE_TIME,
    CONTACT_ID,
    CREATED_DATE,
    ID,
    OBJECT_PREFIXES,
    OBJECTS,
    OPPORTUNITY_ID,
    STAGE_NAME,
    START_DATE_TIME,
    WHAT_ID,
    WHO_ID,
    Row,
    parse_row,
)

SOURCE = "salesforce"

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

# Long Text Area fields hold up to 131,072 characters (the csv module's default field limit, so
# that is raised: a longer field is one bad record, never a file that cannot be read).
FIELD_MAX_CHARS = 131_072
CSV_FIELD_LIMIT = 2**31 - 1  # the largest a C long takes on every platform
WRONG_COLUMN_COUNT = "wrong_column_count"
WRONG_COUNT = WRONG_COLUMN_COUNT + ": {got} fields, the header has {want}"

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
        lambda line, raw, row: parse_row(obj, line, row, raw),
    )
