"""Reading JSON landing files record by record: JSON lines, and arrays element by element.

Each record is decoded on its own, so one record nested deeper than :data:`MAX_DEPTH`, broken,
or holding a byte that is not UTF-8 costs that record only (see :mod:`._common` for the text
rules). A record is ``(line, raw text, parsed value or the RecordError it raised)``.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from journeymine.ingest.sources._common import (
    Record,
    RecordError,
    check_utf8,
    printable,
    read_text,
    undecodable,
)

# The deepest a record may nest (the record itself is level 1; vendor payloads stay under 20).
# Python's json decoder and encoder recurse once a level, counted against the recursion limit
# (1,000) together with the caller's frames: without a limit of its own, whether a record some
# 990 levels deep loads depended on who called the parser (a Prefect task, a worker, a compiled
# build). A fixed limit far below the limit gives every caller the same answer: a caller
# 700 frames deep still decodes ~290 levels. Deeper records are rejected with TOO_DEEP.
MAX_DEPTH = 128
TOO_DEEP = f"record nested deeper than {MAX_DEPTH} levels"
SHORTEST_TOO_DEEP = 2 * (MAX_DEPTH + 1)  # characters: [[...]] one level past the limit

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


def _lone_surrogate(text: str, pos: int, end: int, value: Any) -> bool:
    """Whether ``text[pos:end]``, decoded as ``value``, holds a lone surrogate escape.
    str.find first: it clears almost every record at C speed before any regex runs."""
    return (
        text.find("\\u", pos, end) >= 0
        and _ESCAPED_SURROGATE.search(text, pos, end) is not None
        and _has_lone_surrogate(value)
    )


def decode_json(text: str, pos: int = 0) -> tuple[Any, int]:
    """The JSON value at ``text[pos:]`` and where it ends; RecordError for anything unusable.

    Unusable: nested deeper than :data:`MAX_DEPTH`, broken JSON, an integer of more than 4,300
    digits, NaN/Infinity, and a lone surrogate escape (text no file can store). Nested too deep
    is the reason whenever the decoder could have met it first: a caller with less room on
    its stack stops there, so that every caller gives the same reason.
    """
    try:
        value, end = _DECODER.raw_decode(text, pos)
    except RecursionError:
        raise _too_deep_here() from None
    except json.JSONDecodeError as exc:  # met at exc.pos, after nesting as the text before it
        check_depth(text, pos, exc.pos)
        raise RecordError(f"invalid JSON: {exc.msg} at column {exc.colno}") from None
    except ValueError as exc:  # _NotJson, int digits over the limit: met somewhere inside
        check_depth(text, pos, value_end(text, pos))
        raise RecordError(f"invalid JSON: {exc}") from None
    # Cheap first: a value that decoded nests deeper than MAX_DEPTH only if it holds as many
    # brackets and as many closing ones (SHORTEST_TOO_DEEP characters), and check_depth's
    # counts inline (this runs for every array element).
    if end - pos >= SHORTEST_TOO_DEEP and (
        text.count("[", pos, end) + text.count("{", pos, end) > MAX_DEPTH
    ):
        check_depth(text, pos, end)
    if _lone_surrogate(text, pos, end, value):
        raise RecordError("invalid text: a lone UTF-16 surrogate escape (\\ud800-\\udfff)")
    return value, end


def check_depth(text: str, pos: int = 0, end: int | None = None) -> None:
    """RecordError :data:`TOO_DEEP` when ``text[pos:end]`` nests deeper than MAX_DEPTH."""
    if deeper(text, MAX_DEPTH, pos, end):
        raise RecordError(TOO_DEEP)


def deeper(text: str, levels: int, pos: int = 0, end: int | None = None) -> bool:
    """Whether ``text[pos:end]`` nests brackets deeper than ``levels``. Two counts at C speed
    clear any text with no more brackets than that; only the rest is walked, token by token,
    skipping brackets inside strings."""
    end = len(text) if end is None else end
    if text.count("[", pos, end) + text.count("{", pos, end) <= levels:
        return False
    return nesting_depth(text, pos, end) > levels


def nesting_depth(text: str, pos: int = 0, end: int | None = None) -> int:
    """How deep brackets nest in ``text[pos:end]``, brackets inside strings not counted
    (``{"a": [1]}`` is 2); an unclosed bracket counts as open to the end."""
    depth = deepest = 0
    for token in _STRUCTURE.finditer(text, pos, len(text) if end is None else end):
        kind = token.group()
        if kind == "[" or kind == "{":
            depth += 1
            deepest = max(deepest, depth)
        elif kind == "]" or kind == "}":
            depth -= 1
    return deepest


# Frames the decoder may need beyond a record's levels (its own calls, the check below).
_SLACK = 16


def _too_deep_here() -> Exception:
    """What a RecursionError out of the decoder means: with MAX_DEPTH levels (and some) left on
    the stack the value nests deeper than the limit; with fewer, the caller is too deep."""
    frame, used = sys._getframe(), 0
    while frame is not None:
        used += 1
        frame = frame.f_back  # type: ignore[assignment]
    if sys.getrecursionlimit() - used < MAX_DEPTH + _SLACK:
        return stack_too_deep()
    return RecordError(TOO_DEEP)


def stack_too_deep() -> RecursionError:
    """The decoder gave up with too few frames left to read MAX_DEPTH levels: the caller is too
    deep. Raised, never a record's reason: the record may be fine, the call is not."""
    return RecursionError(
        f"JSON nested up to {MAX_DEPTH} levels could not be decoded: the parser was called "
        f"with fewer than {MAX_DEPTH + _SLACK} frames left below the recursion limit "
        f"({sys.getrecursionlimit()})"
    )


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
    return index, encode_json(value), value


# json.dumps(value, ensure_ascii=False), without building an encoder for every record.
# Decoded JSON holds no cycles: the encoder need not look for them. A record is never nested
# deeper than MAX_DEPTH, so the encoder's recursion stays far from the limit.
encode_json = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode


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


def array_records(values: list[Any]) -> list[Record]:
    """An array decoded whole as records ``(index, element as JSON, element)``."""
    return [(index, encode_json(value), value) for index, value in enumerate(values, start=1)]


WHOLE_ARRAYS = True  # off: every array of records element by element (for tests)


def array_at(text: str, start: int) -> tuple[list[Record], int]:
    """The records of the JSON array opening at ``text[start]`` (line = 1-based index), and
    where the array ends.

    The usual array is decoded whole, at C speed: every element valid, UTF-8 and within
    MAX_DEPTH, measured on its re-encoded text (two counts each, not a walk over the array).
    Any other is read element by element (:func:`iter_json_array`), each element with its own
    reason: the same records either way, whatever the caller's stack.
    """
    records = whole_array(text, start)
    if records is not None:
        return records
    return list(iter_json_array(text, start, whole=False)), value_end(text, start)


def whole_array(text: str, start: int) -> tuple[list[Record], int] | None:
    """:func:`array_at`'s records and end when the array is decoded whole, else None."""
    if not WHOLE_ARRAYS:
        return None
    try:
        values, end = _DECODER.raw_decode(text, start)
    except (ValueError, RecursionError):  # broken, NaN, or deeper than this stack can decode
        return None
    if undecodable(text[start:end]) or _lone_surrogate(text, start, end, values):
        return None
    records = records_within_limit(values)
    return None if records is None else (records, end)


def records_within_limit(values: list[Any]) -> list[Record] | None:
    """:func:`array_records`, or None when an element nests deeper than MAX_DEPTH (measured on
    its JSON text, two counts each) or cannot be encoded again."""
    try:
        records = array_records(values)
    except RecursionError:  # an element the decoder could read, the encoder may not
        return None
    return None if any(deeper(raw, MAX_DEPTH) for _, raw, _ in records) else records


def iter_json_lines(path: Path, file: str) -> Iterator[Record]:
    """Yield ``(line_number, raw_text, parsed value or RecordError)`` for each non-blank line."""
    return json_lines(read_text(path, file))


FAST_PATH = True  # off: every line through every check, as before the fast path (for tests)


def json_lines(text: str) -> Iterator[Record]:
    """:func:`iter_json_lines` of text already read (see :func:`read_text`)."""
    decode = _DECODER.raw_decode
    for number, line in enumerate(text.split("\n"), start=1):
        # The usual line, one object from its first character to its last, with no \\u escape
        # and no byte that was not UTF-8, needs none of the checks below: decoded here, or, if
        # the decoder refuses it, below again for the reason. A line with more brackets than
        # MAX_DEPTH may nest deeper than that: it goes below, where its depth is measured.
        if (
            FAST_PATH
            and line.startswith("{")
            and "\\u" not in line
            and not undecodable(line)
            and (len(line) < SHORTEST_TOO_DEEP or line.count("{") + line.count("[") <= MAX_DEPTH)
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


def json_objects(records: Iterable[Record]) -> Iterator[Record]:
    """Records whose value is valid JSON but no object count as unreadable, like broken JSON:
    a file of nothing but such lines (numbers, arrays) is not the source's format at all."""
    for line, text, value in records:
        if not isinstance(value, dict | RecordError):
            value = RecordError("not a JSON object")
        yield line, text, value
