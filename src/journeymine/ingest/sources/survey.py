"""Generic survey CSV: any survey tool's export, its columns mapped in the journey spec.

Format and units
* a comma-separated CSV with a header row, UTF-8 (a leading BOM is dropped), plain or ``.gz``;
  quoted fields may hold commas and new lines; ``line`` is the physical line where the record
  starts (a comment over three lines moves the next record's line by three);
* which column holds what is declared in the journey spec, ``[sources.survey]``
  (:class:`journeymine.spec.SurveyMapping`): ``who``, ``when``, optional ``score``,
  ``comment`` and ``response_id``; the header must hold every mapped column, else the file is
  a SourceFormatError naming the column (a semicolon-separated export is named as such);
* ``when`` is ISO-8601 (``2026-08-05T10:00:00Z``, ``2026-08-05 10:00``) or the spec's
  ``date_format`` (``strptime``); a time without an offset is UTC.

Dedup key
* ``response:<response_id>`` when the mapping names that column, else
  ``answer:<survey>|<who>|<when>``: an export fetched again repeats its rows.

Identity
* ``who`` is a node of the type the spec says (``who_type``: ``email``, normalised; the
  product's ``user_id``; a ``stripe_customer`` or ``anonymous_id`` of another source). No
  identity edge: the survey links nobody, it joins the person the id already belongs to.

Touchpoint
* ``feedback.survey_answered`` (customer, channel ``survey``), like Typeform's: with
  ``scale = "nps"`` ``score`` (a whole number 0-10) and ``nps_group``; with ``scale =
  "rating"`` the number as ``rating`` (no NPS); the comment's sentiment; ``survey`` (the
  spec's ``name``). The comment itself stays in the raw layer.

Quirks (each rejects the record, with its line and the field)
* an empty ``who`` or ``when``, a time that does not read, a score that is not a number (or,
  for NPS, not a whole number 0-10), a record with more or fewer fields than the header, a
  byte that is not UTF-8. An empty score or comment is no answer to that question, not an
  error.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

from journeymine import vocabulary
from journeymine.errors import SourceFormatError
from journeymine.ingest.sources._common import (
    CUSTOMER,
    EMAIL,
    Event,
    ParsedFile,
    RawRow,
    RecordError,
    brief,
    check_time,
    nonblank_text,
    normalise_email,
    parse_iso,
)

# The shared CSV reader: physical line numbers, quoted new lines, csv errors per record.
from journeymine.ingest.sources._csv import CsvRecord, parse_csv_rows, read_csv_records
from journeymine.ingest.sources._csv import csv_row as shared_csv_row
from journeymine.ingest.sources.typeform import NPS_MAX, NPS_MIN, nps_group
from journeymine.sentiment import sentiment_attributes
from journeymine.spec import SurveyMapping

SOURCE = "survey"
CHANNEL = vocabulary.SURVEY
ACTIVITY = "feedback.survey_answered"
EVENT_TYPE = "survey_answer"
SPEC_KEY = "[sources.survey]"
WRONG_COUNT = "{got} fields, the header has {want} (a missing column?)"
CSV_FIELD_LIMIT = 1 << 20  # a free-text answer may be long; the csv module's default is 128 KiB

Row = dict[str, str]


def _who(row: Row, mapping: SurveyMapping) -> str:
    value = row[mapping.who].strip()
    if not value:
        raise RecordError(f"{mapping.who}: empty (who answered)")
    if mapping.who_type != EMAIL:
        return value
    email = normalise_email(value)
    if email is None:
        raise RecordError(f"{mapping.who}: not an email address: {brief(value)}")
    return email


def _when(row: Row, mapping: SurveyMapping) -> datetime:
    value = row[mapping.when]
    if mapping.date_format is None:
        return parse_iso(value, mapping.when)
    try:
        ts = datetime.strptime(value.strip(), mapping.date_format)
    except ValueError:
        wanted = f"date_format {mapping.date_format!r}"
        raise RecordError(f"{mapping.when}: {brief(value)} does not match {wanted}") from None
    return check_time(ts, value, mapping.when)


def _score(row: Row, mapping: SurveyMapping) -> dict[str, Any]:
    """``score`` and ``nps_group`` (NPS) or ``rating``; ``{}`` for an empty or unmapped score."""
    if mapping.score is None or not row[mapping.score].strip():
        return {}
    text = row[mapping.score].strip()
    try:
        value = float(text)
    except ValueError:
        raise RecordError(f"{mapping.score}: score is not a number: {brief(text)}") from None
    if not math.isfinite(value):  # "nan", "inf", "1e999": numbers to float(), not scores
        raise RecordError(f"{mapping.score}: score is not a finite number: {brief(text)}")
    if mapping.scale == "rating":
        return {"rating": int(value) if value.is_integer() else value}
    if not value.is_integer() or not NPS_MIN <= value <= NPS_MAX:
        raise RecordError(
            f"{mapping.score}: NPS score {brief(text)} is not a whole number {NPS_MIN}-{NPS_MAX}"
        )
    return {"score": int(value), "nps_group": nps_group(int(value))}


def _record_key(row: Row, mapping: SurveyMapping, who: str, when: str) -> str:
    if mapping.response_id is not None:
        answer_id = row[mapping.response_id].strip()
        if not answer_id:
            raise RecordError(f"{mapping.response_id}: empty answer id")
        return f"response:{answer_id}"
    return f"answer:{mapping.name or ''}|{who}|{when}"


def csv_row(header: list[str], line: int, fields: list[str] | RecordError, raw: str) -> Row:
    """The record as ``{column: value}``, or a RecordError naming what makes it unusable."""
    return shared_csv_row(header, line, fields, raw, wrong_count=WRONG_COUNT, name_bad_field=False)


def stored(row: Row, mapping: SurveyMapping) -> str:
    """The raw text kept for an answer: the record as JSON and which column is the comment,
    so that quotes can be read back without the spec."""
    return json.dumps({"record": row, "comment": mapping.comment}, ensure_ascii=False)


def parse_answer(line: int, raw: str, row: Row, mapping: SurveyMapping) -> RawRow:
    """One answer row -> its ``feedback.survey_answered`` touchpoint."""
    who = _who(row, mapping)
    at = _when(row, mapping)
    attrs = _score(row, mapping)
    comment = row[mapping.comment] if mapping.comment is not None else ""
    attrs["has_comment"] = bool(comment.strip())
    attrs.update(sentiment_attributes(comment))
    if mapping.name:
        attrs["survey"] = mapping.name
    key = _record_key(row, mapping, who, row[mapping.when].strip())
    event = Event(
        event_key=key,
        event_type=EVENT_TYPE,
        activity=ACTIVITY,
        actor=CUSTOMER,
        occurred_at=at,
        raw_time=row[mapping.when],
        id_type=mapping.who_type,
        id_value=who,
        channel=CHANNEL,
        attributes=attrs,
    )
    return RawRow(line, key, stored(row, mapping), events=[event])


def _header(first: CsvRecord | None, mapping: SurveyMapping, file: str) -> list[str]:
    """The header's column names; SourceFormatError naming the first mapped column missing."""
    if first is None:
        raise SourceFormatError(file, "empty file: no header row")
    _, fields, raw = first
    if isinstance(fields, RecordError):
        raise SourceFormatError(file, f"header: {fields}")
    header = [name.strip() for name in fields]
    for key, column in mapping.columns().items():
        if column not in header:
            hint = " (the file is separated by ';', not ',')" if ";" in raw else ""
            raise SourceFormatError(
                file,
                f"no column {column!r} (mapped as {key} in {SPEC_KEY} of the journey spec)"
                f"{hint}; the header has {header}",
            )
    return header


def parse_file(path: Path, file: str, mapping: SurveyMapping | None = None) -> ParsedFile:
    """Parse one survey CSV (plain or .gz) by the spec's column mapping."""
    if mapping is None:
        raise SourceFormatError(
            file,
            f"no column mapping for survey files: declare {SPEC_KEY} in the journey spec "
            "(who, when, score, comment; see docs/activities.md)",
        )
    records = read_csv_records(path, file, CSV_FIELD_LIMIT)
    header = _header(next(records, None), mapping, file)
    return parse_csv_rows(
        SOURCE,
        file,
        records,
        lambda line, fields, raw: csv_row(header, line, fields, raw),
        lambda line, raw, row: parse_answer(line, raw, row, mapping),
    )


def feedback_text(raw: str, event_key: str) -> str | None:
    """The comment behind an answer, read back from its raw record (for quotes)."""
    stored_row = json.loads(raw)
    if not isinstance(stored_row, dict) or not isinstance(stored_row.get("record"), dict):
        return None
    text = stored_row["record"].get(stored_row.get("comment"))
    return nonblank_text(text)
