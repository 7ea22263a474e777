"""Reading JSON landing files record by record: JSON lines, and arrays element by element.

Each record is decoded on its own, so one record nested too deep to read, broken, or holding a
byte that is not UTF-8 costs that record only (see :mod:`._common` for the text rules). A record
is ``(line, raw text, parsed value or the RecordError it raised)``.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from journeymine.errors import SourceFormatError
from journeymine.ingest.sources._common import (
    Record,
    RecordError,
    check_utf8,
    printable,
    read_bytes,
    read_text,
    undecodable,
)

# A JSON escape of a UTF-16 surrogate; only a lone one (no partner) is bad text.
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile(r"[\ud800-\udfff]")  # escapes read by re: no surrogate literal (mypyc)
_WHITESPACE = re.compile(r"[ \t\n\r]*")
# A JSON string, or a bracket: enough to find where a value the decoder refused ends.
_STRUCTURE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
_SCALAR_END = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[^,\]}\s]*')


class _NotJson(ValueError):
    """NaN / Infinity: Python's json reads them; no vendor sends them, and SQL cannot hold them."""


def _no_constants(name: str) -> Any:
    raise _NotJson(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_no_constants)


def _has_lone_surrogate(value: Any) -> bool:
    """Walk ``value`` without recursion (it may be nested ~1,000 deep) for unencodable text."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def decode_json(text: str, pos: int = 0) -> tuple[Any, int]:
    """The JSON value at ``text[pos:]`` and where it ends; RecordError for anything unusable.

    Unusable: broken JSON, nesting deeper than Python can read (RecursionError), an integer of
    more than 4,300 digits, NaN/Infinity, and a lone surrogate escape (text no file can store).
    """
    try:
        value, end = _DECODER.raw_decode(text, pos)
    except json.JSONDecodeError as exc:
        raise RecordError(f"invalid JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise RecordError("invalid JSON: nested too deep to read") from None
    except ValueError as exc:  # _NotJson, or int digits over sys.get_int_max_str_digits()
        raise RecordError(f"invalid JSON: {exc}") from None
    # str.find first: it clears almost every record at C speed before any regex runs.
    escapes = text.find("\\u", pos, end) >= 0
    if escapes and _ESCAPED_SURROGATE.search(text, pos, end) and _has_lone_surrogate(value):
        raise RecordError("invalid text: a lone UTF-16 surrogate escape (\\ud800-\\udfff)")
    return value, end


def value_end(text: str, pos: int) -> int:
    """Where the JSON value starting at ``pos`` ends, by its brackets (not its grammar).

    Used only for a value the decoder refused, to skip it and read on; an unbalanced value
    runs to the end of the text.
    """
    if text[pos] not in "[{":
        found = _SCALAR_END.match(text, pos)
        return max(found.end() if found else pos, pos + 1)
    depth = 0
    for token in _STRUCTURE.finditer(text, pos):
        kind = token.group()
        if kind in ("[", "{"):
            depth += 1
        elif kind in ("]", "}"):
            depth -= 1
            if depth == 0:
                return token.end()
    return len(text)


def skip_space(text: str, pos: int) -> int:
    if pos >= len(text) or text[pos] not in " \t\n\r":  # mostly: no regex needed
        return pos
    found = _WHITESPACE.match(text, pos)
    return found.end() if found else pos


def _value_record(text: str, pos: int, index: int) -> tuple[Record, int]:
    """One value of an array as a record ``(index, raw, value or RecordError)`` and its end."""
    try:
        value, end = decode_json(text, pos)
    except RecordError as exc:
        value, end = exc, value_end(text, pos)
    return _span_record(text, pos, end, index, value), end


def _span_record(text: str, pos: int, end: int, index: int, value: Any) -> Record:
    """``text[pos:end]`` as a record; a byte that is not UTF-8 is the reason to give whenever
    the span holds one, even when it also broke the JSON."""
    span = text[pos:end]
    if undecodable(span):  # only then count lines: it costs a pass over the text
        line_start = text.rfind("\n", 0, pos) + 1
        try:
            check_utf8(span, text.count("\n", 0, pos) + 1, first_column=pos - line_start + 1)
        except RecordError as exc:
            value = exc
    if isinstance(value, RecordError):
        return index, printable(span), value
    return index, _serialised(value, span), value


# json.dumps(value, ensure_ascii=False), without building an encoder for every record.
# Decoded JSON holds no cycles: the encoder need not look for them.
_ENCODE = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode


def _serialised(value: Any, original: str) -> str:
    # Compact, non-ASCII unchanged; a value just short of the depth limit keeps its own text.
    try:
        return _ENCODE(value)
    except RecursionError:
        return original


def iter_json_array(text: str, pos: int, whole: bool = True) -> Iterator[Record]:
    """Records of the JSON array opening at ``text[pos]``: line = 1-based index in the array.

    Each element is decoded on its own, so one unreadable element (too deep, not UTF-8, broken)
    is one rejected record and the elements after it are still read. With ``whole`` the array
    is the whole text, and any text after it is one more rejected record.
    """
    pos, index = skip_space(text, pos + 1), 0
    if text.startswith("]", pos):
        return
    while pos < len(text):
        index += 1
        record, end = _value_record(text, pos, index)
        yield record
        pos = skip_space(text, end)
        if text.startswith(",", pos):
            pos = skip_space(text, pos + 1)
            continue
        if text.startswith("]", pos) and not whole:
            return
        if text.startswith("]", pos):
            pos = skip_space(text, pos + 1)
            reason = "invalid JSON: text after the end of the array"
        else:
            reason = "invalid JSON: expected ',' or ']' after the previous element"
        if pos < len(text):  # nothing is dropped unseen: the rest is one more rejected record
            end = len(text.rstrip(" \t\r\n"))
            yield _span_record(text, pos, end, index + 1, RecordError(reason))
        return


def array_records(values: list[Any]) -> list[Record] | None:
    """The records :func:`iter_json_array` gives for an array that decoded whole (so every
    element decodes alone), without decoding each again; None when an element is nested too
    deep to serialise, whose record keeps its own text on the element-by-element path."""
    try:
        return [(index, _ENCODE(value), value) for index, value in enumerate(values, start=1)]
    except RecursionError:
        return None


def iter_json_lines(path: Path, file: str) -> Iterator[Record]:
    """Yield ``(line_number, raw_text, parsed value or RecordError)`` for each non-blank line."""
    return json_lines(read_text(path, file))


FAST_PATH = True  # off: every line through every check, as before the fast path (for tests)


def json_lines(text: str) -> Iterator[Record]:
    """:func:`iter_json_lines` of text already read (see :func:`read_text`)."""
    decode, shallow = _DECODER.raw_decode, _shallow_enough()
    for number, line in enumerate(text.split("\n"), start=1):
        # The usual line, one object from its first character to its last, with no \\u escape
        # and no byte that was not UTF-8, needs none of the checks below: decoded here, or, if
        # the decoder refuses it, below again for the reason. Here the decoder runs a frame
        # less deep than below: a line nested to the recursion limit could read here and not
        # below, so a line with that many brackets goes below too.
        if (
            FAST_PATH
            and line.startswith("{")
            and "\\u" not in line
            and not undecodable(line)
            and (len(line) < shallow or line.count("{") + line.count("[") < shallow)
        ):
            try:
                value, end = decode(line)
            except (ValueError, RecursionError):
                pass
            else:
                if end == len(line):
                    yield number, line, value
                    continue
        record = line.strip(" \t\r\n")
        if not record:
            continue
        bad_bytes = not line.isascii() and undecodable(line)
        try:
            if bad_bytes:
                check_utf8(line, number)
            # Decoded in place, so that a reason's column is the column in the file.
            value, end = decode_json(line, skip_space(line, 0))
            if end < len(line) and line[end:].strip():
                raise RecordError(f"invalid JSON: Extra data at column {end + 1}")
        except RecordError as exc:
            value = exc
        yield number, printable(record) if bad_bytes else record, value


def _shallow_enough() -> int:
    """Brackets a line may hold and still decode on :func:`json_lines`' fast path exactly as
    on its checked path: half the frames left below the recursion limit, from here."""
    frame, depth = sys._getframe(), 0
    while frame is not None:
        depth += 1
        frame = frame.f_back  # type: ignore[assignment]
    return (sys.getrecursionlimit() - depth) // 2


def read_json_document(path: Path, file: str, what: str) -> Any:
    """A file that is one JSON document (plain or .gz), decoded whole; SourceFormatError naming
    ``what`` the file should have been when it is no JSON, not UTF-8 or nested too deep."""
    try:
        return json.loads(read_bytes(path, file))
    except (ValueError, RecursionError, OSError, EOFError) as exc:  # JSON, UTF-8, depth
        raise SourceFormatError(file, f"not {what} (JSON): {exc}") from None


def json_objects(records: Iterable[Record]) -> Iterator[Record]:
    """Records whose value is valid JSON but no object count as unreadable, like broken JSON:
    a file of nothing but such lines (numbers, arrays) is not the source's format at all."""
    for line, text, value in records:
        if not isinstance(value, dict | RecordError):
            value = RecordError("not a JSON object")
        yield line, text, value
