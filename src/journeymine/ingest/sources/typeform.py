"""Typeform: Responses API pages (``GET /forms/{form_id}/responses``), one page per file.

Format and units
* a JSON object ``{"total_items": .., "page_count": .., "items": [...]}``, plain or ``.gz``;
  ``line`` is the 1-based index of the response in ``items``, ``raw`` the response
  re-serialised;
* ``submitted_at`` is ISO-8601 UTC (``2026-08-05T10:00:00Z``); a response without it (a
  partial, unsubmitted one) is rejected.

Dedup key
* ``response_id`` (older exports: ``token``, the same value): a page fetched again repeats it.

Identity
* ``hidden`` fields carry who answered: ``user_id`` (the product's user id) and / or
  ``email``; the person is the user id when set, else the email; both link them (rule
  ``typeform_hidden``). A response with neither is rejected.

Touchpoint
* ``feedback.survey_answered`` (customer, channel ``survey``) with ``score`` (the NPS answer,
  0-10), ``nps_group`` (promoter 9-10, passive 7-8, detractor 0-6) and the sentiment of the
  free text (all ``text`` answers, joined by new lines). The text itself stays in the raw layer.

Quirks
* the NPS answer is the ``number`` answer whose field ``type`` is ``nps`` or whose field
  ``ref`` contains ``nps``; a score outside 0-10 or not an integer rejects the response;
* answers of other types (choice, boolean, date...) are not used; hidden fields other than
  ``user_id`` / ``email`` are not kept (they may be personal).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from journeymine import vocabulary
from journeymine.errors import SourceFormatError
from journeymine.ingest.sources._common import (
    CUSTOMER,
    EMAIL,
    USER_ID,
    Edge,
    Event,
    ParsedFile,
    RawRow,
    Record,
    RecordError,
    normalise_email,
    object_or_empty,
    parse_iso,
    parse_records,
)
from journeymine.ingest.sources._json_pages import read_json_page
from journeymine.sentiment import sentiment_attributes

SOURCE = "typeform"
CHANNEL = vocabulary.SURVEY
ACTIVITY = "feedback.survey_answered"

# Responses API field names.
ITEMS = "items"
RESPONSE_ID = "response_id"
TOKEN = "token"
SUBMITTED_AT = "submitted_at"
HIDDEN = "hidden"
ANSWERS = "answers"
HIDDEN_USER_ID = "user_id"
HIDDEN_EMAIL = "email"
NUMBER = "number"
TEXT = "text"
NPS = "nps"

NPS_MIN, NPS_MAX = 0, 10
PROMOTER_MIN = 9  # 9-10 promoters
DETRACTOR_MAX = 6  # 0-6 detractors; 7-8 passives


def nps_group(score: int) -> str:
    """``promoter`` (9-10), ``passive`` (7-8) or ``detractor`` (0-6)."""
    if score >= PROMOTER_MIN:
        return "promoter"
    if score <= DETRACTOR_MAX:
        return "detractor"
    return "passive"


def _is_nps(answer: dict[str, Any]) -> bool:
    field = object_or_empty(answer.get("field"))
    ref = field["ref"] if isinstance(field.get("ref"), str) else ""
    return answer.get("type") == NUMBER and (field.get("type") == NPS or NPS in ref.lower())


def _score(answer: dict[str, Any], where: str) -> int:
    value = answer.get(NUMBER)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise RecordError(f"{where}.number: NPS score is not an integer: {value!r}")
    if not NPS_MIN <= value <= NPS_MAX:
        raise RecordError(f"{where}.number: NPS score {value} out of {NPS_MIN}-{NPS_MAX}")
    return int(value)


def read_answers(answers: object) -> tuple[int | None, str | None]:
    """``(NPS score, free text)`` of a response's answers; either may be None."""
    if answers is None:
        return None, None
    if not isinstance(answers, list):
        raise RecordError(f"{ANSWERS}: not a list")
    score, texts = None, []
    for index, answer in enumerate(answers):
        where = f"{ANSWERS}[{index}]"
        if not isinstance(answer, dict):
            raise RecordError(f"{where}: not a JSON object")
        if _is_nps(answer):
            score = _score(answer, where)
        elif answer.get("type") == TEXT and isinstance(answer.get(TEXT), str):
            texts.append(answer[TEXT])
    text = "\n".join(t for t in texts if t.strip())
    return score, text or None


def _hidden_ids(item: dict[str, Any]) -> tuple[str | None, str | None]:
    hidden = object_or_empty(item.get(HIDDEN))
    user = hidden.get(HIDDEN_USER_ID)
    # A JSON true is no user id (bool is an int to Python): only text and whole numbers are.
    usable = isinstance(user, str | int) and not isinstance(user, bool) and str(user).strip()
    user_id = str(user) if usable else None
    email = normalise_email(hidden.get(HIDDEN_EMAIL))
    if hidden.get(HIDDEN_EMAIL) and not email and not user_id:
        raise RecordError(f"{HIDDEN}.{HIDDEN_EMAIL}: invalid address {hidden[HIDDEN_EMAIL]!r}")
    if not user_id and not email:
        raise RecordError(f"{HIDDEN}: missing {HIDDEN_USER_ID} and {HIDDEN_EMAIL}")
    return user_id, email


def parse_response(line: int, text: str, item: object) -> RawRow:
    """One response -> its ``feedback.survey_answered`` touchpoint and the user-email link."""
    if not isinstance(item, dict):
        raise RecordError("not a JSON object")
    response_id = item.get(RESPONSE_ID) or item.get(TOKEN)
    if not isinstance(response_id, str) or not response_id.strip():
        raise RecordError(f"missing {RESPONSE_ID}")
    at = parse_iso(item.get(SUBMITTED_AT), SUBMITTED_AT)
    user_id, email = _hidden_ids(item)
    score, comment = read_answers(item.get(ANSWERS))
    attrs: dict[str, Any] = {"response_id": response_id, "has_comment": comment is not None}
    if score is not None:
        attrs.update({"score": score, "nps_group": nps_group(score)})
    attrs.update(sentiment_attributes(comment))
    person = (USER_ID, user_id) if user_id else (EMAIL, str(email))
    event = Event(
        event_key=f"response:{response_id}",
        event_type="form_response",
        activity=ACTIVITY,
        actor=CUSTOMER,
        occurred_at=at,
        raw_time=str(item[SUBMITTED_AT]),
        id_type=person[0],
        id_value=person[1],
        channel=CHANNEL,
        attributes=attrs,
    )
    edges = []
    if user_id and email:
        edges.append(Edge(USER_ID, user_id, EMAIL, email, "typeform_hidden", at))
    return RawRow(line, response_id, text, events=[event], edges=edges)


def read_page(path: Path, file: str) -> list[Record]:
    """The page's ``items`` as records (line = index in ``items``, raw = the item as JSON), or
    SourceFormatError when the file is not a responses page."""
    page = read_json_page(path, file, "a Typeform responses page", (ITEMS,))
    if ITEMS not in page.arrays:
        raise SourceFormatError(file, f"not a Typeform responses page: no {ITEMS} list")
    return page.arrays[ITEMS]


def parse_file(path: Path, file: str) -> ParsedFile:
    """Parse one Responses API page (plain or .gz)."""
    items = read_page(path, file)
    return parse_records(SOURCE, file, items, parse_response, "a Typeform responses page")


def feedback_text(raw: str, event_key: str) -> str | None:
    """The free-text answers behind a ``response:<id>`` touchpoint, read back from its raw
    record (for quotes), joined by new lines as they were scored."""
    item = json.loads(raw)
    if not isinstance(item, dict) or not event_key.startswith("response:"):
        return None
    try:
        return read_answers(item.get(ANSWERS))[1]
    except RecordError:
        return None
