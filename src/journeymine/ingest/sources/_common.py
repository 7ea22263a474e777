"""What every source parser returns, and the helpers they share.

A parser reads one landing file and returns a :class:`ParsedFile`. It never touches DuckDB: the
loader (:mod:`journeymine.ingest.load`) owns the warehouse. Every input row ends in exactly
one of three places, so that ``rows_read == len(rows) + len(rejected)`` for the file, and the
loader later splits ``rows`` into loaded and duplicates:

* ``rows``      -- one :class:`RawRow` per accepted input record, with the events and identity
                   edges derived from it;
* ``rejected``  -- one :class:`Rejected` per record that could not be used, with the reason.

A file that is not in the source's format at all raises
:class:`~journeymine.errors.SourceFormatError`; so does a ``.gz`` that is truncated or no gzip,
with the same message in every source. Nothing else leaves a parser: every record-level
failure is a :class:`RecordError` naming the field, caught per record (and
:func:`parse_guarded` turns a parser bug into one rejected record, marked ``INTERNAL_ERROR``).

Text is UTF-8; a leading BOM is dropped. A byte that is not UTF-8 (a Latin-1 export) is never
replaced: its record is rejected with the line and column of the byte, and ``raw`` shows it
as ``\\xe9``. JSON is read record by record (a line, an array element), so one record nested
too deep to read, or broken, costs that record only.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import re
import reprlib
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import SplitResult, urlsplit

from journeymine.errors import SourceFormatError
from journeymine.vocabulary import (  # noqa: F401  (the parsers take them from here)
    ACCOUNT_NODE_TYPES,
    ANONYMOUS_ID,
    COMPANY,
    CUSTOMER,
    EMAIL,
    PERSON_NODE_TYPES,
    SEGMENT_GROUP,
    SF_ACCOUNT,
    SF_CONTACT,
    SF_LEAD,
    SF_OPPORTUNITY,
    STRIPE_CUSTOMER,
    USER_ID,
)

# Timestamps outside this range are absurd for touchpoint data (unit mix-ups such as ms read as s).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Event:
    """One touchpoint derived from an input record.

    ``event_key`` is unique per touchpoint within its source (a record may yield several events,
    e.g. a Salesforce Lead yields *lead created* and *lead converted*); when the same event_key
    arrives again in a newer record version the newer one wins.
    """

    event_key: str
    event_type: str  # the vendor's own name for what happened, unchanged
    activity: str  # canonical activity, see docs/activities.md
    actor: str  # CUSTOMER or COMPANY
    occurred_at: datetime  # timezone-aware, UTC
    raw_time: str  # the time value exactly as exported
    id_type: str  # identity node type of the person this event belongs to
    id_value: str
    channel: str | None = None
    owner: str | None = None
    account_type: str | None = None  # account node the event belongs to, if the record says
    account_value: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Edge:
    """One observed identity link between two nodes."""

    src_type: str
    src_id: str
    dst_type: str
    dst_id: str
    rule: str  # why they are linked, e.g. "segment_identify", "sf_lead_converted"
    observed_at: datetime


@dataclass(frozen=True)
class Label:
    """A readable name for an id the data uses, e.g. a Salesforce user behind ``OwnerId``."""

    kind: str  # "owner"
    id: str
    name: str


@dataclass
class RawRow:
    """One accepted input record: its vendor dedup key, raw text, and what it yields."""

    line: int  # 1-based line (CSV: physical line of the record's start; arrays: element index)
    record_key: str  # the vendor's dedup key
    raw: str
    events: list[Event] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)


@dataclass(frozen=True)
class Rejected:
    line: int
    reason: str
    raw: str


@dataclass
class ParsedFile:
    source: str
    file: str
    rows: list[RawRow] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return len(self.rows) + len(self.rejected)


class RecordError(ValueError):
    """Raised inside a parser for one bad record; the record goes to quarantine with this text."""


# --- reading landing files ----------------------------------------------------------------------

Record = tuple[int, str, Any]  # (line, raw text, parsed value — or the RecordError it raised)

BOM = "\ufeff"  # Excel and some exporters start UTF-8 files with it; it is no data
# A byte that is not UTF-8 is decoded to a lone surrogate U+DC80..U+DCFF (surrogateescape), so
# a bad record can be found, named and quarantined instead of being replaced silently.
_UNDECODABLE = re.compile("[\udc80-\udcff]")
# A JSON escape of a UTF-16 surrogate; only a lone one (no partner) is bad text.
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")
_WHITESPACE = re.compile(r"[ \t\n\r]*")
# A JSON string, or a bracket: enough to find where a value the decoder refused ends.
_STRUCTURE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
_SCALAR_END = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[^,\]}\s]*')


def read_bytes(path: Path, file: str) -> bytes:
    """The file's bytes, un-gzipped for ``.gz``; a broken ``.gz`` is a format error naming it."""
    if not path.name.endswith(".gz"):
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read()
    except (OSError, EOFError, zlib.error) as exc:  # not gzip, truncated, bad CRC
        message = f"not a readable .gz file (truncated or corrupt): {exc}"
        raise SourceFormatError(file, message) from None


def read_text(path: Path, file: str) -> str:
    """The file as text: UTF-8, a leading BOM dropped, bad bytes kept as lone surrogates."""
    return decode_text(read_bytes(path, file))


def open_text(path: Path) -> IO[str]:
    """The file as a text stream (see :func:`read_text`), for parsers that read line by line."""
    return io.StringIO(read_text(path, path.name), newline="")


def decode_text(data: bytes) -> str:
    """UTF-8 text, a leading BOM dropped, bytes that are not UTF-8 kept as lone surrogates."""
    return data.decode("utf-8", errors="surrogateescape").removeprefix(BOM)


def printable(raw: str) -> str:
    """``raw`` with every byte that was not UTF-8 written as ``\\xe9``: storable, and visible."""
    if not undecodable(raw):
        return raw
    return raw.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def undecodable(text: str) -> bool:
    """Whether ``text`` (read by :func:`decode_text`) holds a byte that was not UTF-8."""
    return not text.isascii() and _UNDECODABLE.search(text) is not None  # isascii: C speed


def check_utf8(raw: str, first_line: int, field_name: str = "", first_column: int = 1) -> None:
    """Raise RecordError naming the line (and field) of the first byte that was not UTF-8.

    ``raw`` starts at ``first_line``, ``first_column`` of the file (1-based, in characters).
    """
    found = _UNDECODABLE.search(raw)
    if found is None:
        return
    line = first_line + raw.count("\n", 0, found.start())
    line_start = raw.rfind("\n", 0, found.start()) + 1
    column = found.start() - line_start + 1 + (first_column - 1 if line_start == 0 else 0)
    byte = ord(found.group()) - 0xDC00
    where = f"{field_name}: " if field_name else ""
    raise RecordError(
        f"{where}not UTF-8: byte 0x{byte:02x} at line {line}, column {column} "
        "(a Latin-1 export?); nothing was replaced"
    )


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


def _serialised(value: Any, original: str) -> str:
    # Compact, non-ASCII unchanged; a value just short of the depth limit keeps its own text.
    try:
        return json.dumps(value, ensure_ascii=False)
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


def iter_json_lines(path: Path, file: str) -> Iterator[Record]:
    """Yield ``(line_number, raw_text, parsed value or RecordError)`` for each non-blank line."""
    return json_lines(read_text(path, file))


def json_lines(text: str) -> Iterator[Record]:
    """:func:`iter_json_lines` of text already read (see :func:`read_text`)."""
    for number, line in enumerate(text.split("\n"), start=1):
        record = line.strip(" \t\r\n")
        if not record:
            continue
        bad_bytes = undecodable(line)
        try:
            if bad_bytes:
                check_utf8(line, number)
            # Decoded in place, so that a reason's column is the column in the file.
            value, end = decode_json(line, skip_space(line, 0))
            if line[end:].strip():
                raise RecordError(f"invalid JSON: Extra data at column {end + 1}")
        except RecordError as exc:
            value = exc
        yield number, printable(record) if bad_bytes else record, value


# --- values copied from a record ---------------------------------------------------------------


def scalar(value: object) -> bool:
    """A value fit to be an attribute as it is: text, a flag, an integer, a finite number."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str | int | bool)


def scalar_field(value: Any, field_name: str) -> Any:
    """A value copied as it is (an attribute, a key part): a scalar or None, nothing nested."""
    if value is None or scalar(value):
        return value
    if isinstance(value, float):  # NaN or infinite: a Parquet double can hold it, SQL JSON not
        raise RecordError(f"{field_name}: {value} is not a finite number")
    raise RecordError(f"{field_name}: expected a scalar, got {json_type(value)} {brief(value)}")


def json_type(value: object) -> str:
    """The JSON name of a Python value's type, for reasons: ``object``, ``array``, ``string``."""
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


_BRIEF = reprlib.Repr()
_BRIEF.maxstring = _BRIEF.maxother = 80


def brief(value: object) -> str:
    """``repr`` cut short for a reason: a huge value is shortened, a deep one (nested ~1,000
    levels, where plain ``repr`` itself raises RecursionError) stops after a few levels."""
    return _BRIEF.repr(value)


def optional_object(value: object, field_name: str) -> dict[str, Any]:
    """An object field that may be absent (missing or null); any other type is a RecordError."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        got = f"{json_type(value)} {brief(value)}"
        raise RecordError(f"{field_name}: expected an object, got {got}")
    return value


def normalise_email(value: object) -> str | None:
    """Trim and lower-case an email; ``None`` when it does not look like one."""
    if not isinstance(value, str):
        return None
    email = value.strip().lower()
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
        return None
    return email


def check_time(ts: datetime, raw: object, field_name: str) -> datetime:
    """Return ``ts`` in UTC, or raise RecordError when it is absurd (unit mix-ups, year 1).

    The range is checked before converting: ``0001-01-01T00:00:00+01:00`` has no UTC form.
    """
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    if not EARLIEST <= ts < LATEST:
        raise RecordError(f"{field_name}: absurd timestamp {brief(raw)} ({ts.isoformat()})")
    return ts.astimezone(UTC)


def parse_iso(value: object, field_name: str) -> datetime:
    """ISO-8601 string to UTC. A value without an offset is taken as UTC."""
    if not isinstance(value, str) or not value.strip():
        raise RecordError(f"{field_name}: missing timestamp")
    text = value.strip().replace("Z", "+00:00")
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise RecordError(f"{field_name}: unparseable timestamp {brief(value)}") from None
    return check_time(ts, value, field_name)


def _in_range(seconds: float | int, value: object, field_name: str, unit: str, hint: str) -> None:
    # Compared as numbers first: datetime.fromtimestamp cannot even represent most absurd values.
    if not EARLIEST.timestamp() <= seconds < LATEST.timestamp():
        raise RecordError(f"{field_name}: absurd unix {unit} {brief(value)} ({hint})")


def parse_unix_seconds(value: object, field_name: str) -> datetime:
    """Unix seconds (int, float or numeric string) to UTC."""
    if isinstance(value, bool):
        raise RecordError(f"{field_name}: not unix seconds: {brief(value)}")
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise RecordError(f"{field_name}: not unix seconds: {brief(value)}") from None
    hint = "milliseconds?" if abs(seconds) >= 1e11 else "before 2000 or after 2100"
    _in_range(seconds, value, field_name, "seconds", hint)
    return datetime.fromtimestamp(seconds, tz=UTC)


def parse_unix_micros(value: object, field_name: str) -> datetime:
    """Unix microseconds (GA4 ``event_timestamp``) to UTC."""
    if isinstance(value, bool):
        raise RecordError(f"{field_name}: not unix microseconds: {brief(value)}")
    try:
        micros = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        raise RecordError(f"{field_name}: not unix microseconds: {brief(value)}") from None
    hint = "seconds or ms?" if abs(micros) < 1e14 else "before 2000 or after 2100"
    _in_range(micros // 1_000_000, value, field_name, "microseconds", hint)
    return datetime.fromtimestamp(micros // 1_000_000, tz=UTC).replace(
        microsecond=micros % 1_000_000
    )


def safe_urlsplit(url: str, field_name: str) -> SplitResult:
    """``urlsplit``, with a malformed URL (``http://[::1/x``) a RecordError naming the field."""
    try:
        return urlsplit(url)
    except ValueError as exc:
        raise RecordError(f"{field_name}: not a URL: {brief(url)} ({exc})") from None


def slug(value: str) -> str:
    """``"Demo Requested"`` -> ``"demo_requested"``: lower snake case for activity names."""
    return re.sub(r"[^0-9a-z]+", "_", value.strip().lower()).strip("_") or "unnamed"


INTERNAL_ERROR = "internal error, please report"
# What a bug in a parser raises on odd input; anything else (MemoryError...) is not the record's.
UNEXPECTED = (ValueError, TypeError, LookupError, AttributeError, ArithmeticError, RecursionError)


def parse_records(
    source: str,
    file: str,
    records: Iterable[Record],
    parse_one: Callable[[int, str, Any], RawRow],
    what: str,
) -> ParsedFile:
    """Run ``parse_one`` over a file's records: accepted rows, or rejects with their reason.

    A file in which not a single record could even be read (not JSON at all, say) is not a bad
    record but the wrong file: it raises SourceFormatError naming it.
    """
    parsed = ParsedFile(source, file)
    readable = 0
    for line, text, value in records:
        if isinstance(value, RecordError):
            parsed.rejected.append(Rejected(line, str(value), text))
            continue
        readable += 1
        parsed_row = parse_guarded(parse_one, line, text, value)
        if isinstance(parsed_row, Rejected):
            parsed.rejected.append(parsed_row)
        else:
            parsed.rows.append(parsed_row)
    if parsed.rejected and readable == 0:
        raise SourceFormatError(file, f"not {what}: no record in it could be read")
    return parsed


def parse_guarded(
    parse_one: Callable[[int, str, Any], RawRow], line: int, text: str, value: Any
) -> RawRow | Rejected:
    """``parse_one``'s row, or the record rejected with its reason.

    The second except is a net, not the plan: every known failure is a RecordError with a
    reason naming the field. A bug that slips through still costs one record, never the night;
    the fuzz tests fail on any reason starting with ``INTERNAL_ERROR``.
    """
    try:
        return parse_one(line, text, value)
    except RecordError as exc:
        return Rejected(line, str(exc), text)
    except UNEXPECTED as exc:
        return Rejected(line, f"{INTERNAL_ERROR}: {type(exc).__name__}: {exc}", text)
