"""Reading JSON landing files that are one object holding arrays of records: a Stripe list page,
a Typeform or Zendesk page.

Such a page is read member by member when it must be (a record in it nested deeper than
:data:`._json.MAX_DEPTH`, or a page the decoder gave up on), so that one record too deep costs
that record only and the page reads the same whoever calls the parser.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

from journeymine.errors import SourceFormatError
from journeymine.ingest.sources._common import (
    Record,
    RecordError,
    check_utf8,
    decode_text,
    read_bytes,
)
from journeymine.ingest.sources._json import (
    MAX_DEPTH,
    TOO_DEEP,
    array_at,
    decode_json,
    deeper,
    encode_json,
    records_within_limit,
    skip_space,
    stack_too_deep,
    value_end,
)

Span = tuple[int, int]  # where a value starts and ends in the text


class Members(NamedTuple):
    spans: dict[str, Span]  # where each member's value starts and ends
    values: dict[str, Any]  # the values that decoded (not the arrays of records)
    records: dict[str, list[Record]]  # the arrays of records asked for, as records


def object_members(text: str, pos: int, arrays: tuple[str, ...] = ()) -> Members | None:
    """Where each member's value starts and ends in the JSON object opening at ``text[pos]``.

    A member named in ``arrays`` whose value is an array is read as records (:func:`array_at`).
    Any other value that decodes is kept in ``values``; one that does not is skipped by its
    brackets. So one record nested too deep cannot hide the rest of a page. None when the text
    is not exactly one object (JSON lines, or broken).
    """
    members = Members({}, {}, {})
    pos = skip_space(text, pos + 1)
    while pos < len(text) and text[pos] != "}":
        try:
            key, pos = decode_json(text, pos)
        except RecordError:
            return None
        pos = skip_space(text, pos)
        if not isinstance(key, str) or not text.startswith(":", pos):
            return None
        start = skip_space(text, pos + 1)
        if start >= len(text):
            return None
        if key in arrays and text.startswith("[", start):
            members.records[key], end = array_at(text, start)
        else:
            try:
                members.values[key], end = decode_json(text, start)
            except RecordError:
                end = value_end(text, start)
        members.spans[key] = (start, end)
        pos = skip_space(text, end)
        if text.startswith(",", pos):
            pos = skip_space(text, pos + 1)
    if pos >= len(text) or text[skip_space(text, pos + 1) :].strip():
        return None
    return members


class JsonPage(NamedTuple):
    """A file that is one JSON object holding arrays of records (a Typeform or Zendesk page)."""

    members: dict[str, Any] | None  # None: the document is no object; a member that could not
    # be decoded (nested too deep) holds RecordError TOO_DEEP
    arrays: dict[str, list[Record]]  # each requested member that is an array, as its records


PAGE_DEPTH = MAX_DEPTH + 2  # a page holds its records two levels down: object, then array


def read_json_page(path: Path, file: str, what: str, arrays: tuple[str, ...]) -> JsonPage:
    """A page file (plain or .gz) and the records of its ``arrays``; SourceFormatError naming
    ``what`` the file should have been when it is no JSON or not UTF-8.

    The usual page, nested at most MAX_DEPTH levels below its arrays, is decoded whole. A page
    nested deeper (measured on the text, so whatever the caller's stack) is read member by
    member and its arrays element by element: each record deeper than the limit is one rejected
    record (TOO_DEEP), the others read as JSON lines are.
    """
    data = read_bytes(path, file)
    try:
        page = json.loads(data)
    except RecursionError:
        page = _UNREAD
    except ValueError as exc:  # JSON, UTF-8
        if not deeper(decode_text(data), PAGE_DEPTH):
            raise SourceFormatError(file, f"not {what} (JSON): {exc}") from None
        page = _UNREAD
    if isinstance(page, dict):
        records = _within_limit(page, arrays)
        if records is not None:
            return JsonPage(page, records)
    text = decode_text(data)
    if deeper(text, PAGE_DEPTH):
        return _deep_page(text, file, what, arrays)
    if page is _UNREAD or isinstance(page, dict):  # within the limit, yet not read: the stack
        raise stack_too_deep()
    return JsonPage(None, {})


_UNREAD = object()  # a page the decoder gave up on


def _within_limit(page: dict[str, Any], arrays: tuple[str, ...]) -> dict[str, list[Record]] | None:
    """The records of the page's ``arrays``; None when any member nests deeper than the page
    may, measured on the records' JSON text (two counts each) and other members' re-encoding."""
    records = {}
    try:  # a member the decoder could read, the encoder may not (a frame deeper): too deep
        for name, value in page.items():
            if name in arrays and isinstance(value, list):
                found = records_within_limit(value)
                if found is None:
                    return None
                records[name] = found
            elif isinstance(value, dict | list) and deeper(encode_json(value), PAGE_DEPTH - 1):
                return None
    except RecursionError:
        return None
    return records


def _deep_page(text: str, file: str, what: str, arrays: tuple[str, ...]) -> JsonPage:
    try:  # as json.loads of the bytes: a byte that is not UTF-8 breaks the whole page
        check_utf8(text, 1)
    except RecordError as exc:
        raise SourceFormatError(file, f"not {what} (JSON): {exc}") from None
    start = skip_space(text, 0)
    members = object_members(text, start, arrays) if text.startswith("{", start) else None
    if members is None:
        reason = f"not one JSON object, and nested deeper than {MAX_DEPTH} levels"
        raise SourceFormatError(file, f"not {what} (JSON): {reason}")
    values = {key: members.values.get(key, RecordError(TOO_DEEP)) for key in members.spans}
    return JsonPage(values, members.records)
