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
deeper than ``_json.MAX_DEPTH`` levels, or broken, costs that record only.
"""

from __future__ import annotations

import gzip
import io
import math
import re
import reprlib
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import IO, Any, NamedTuple
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


class Event(NamedTuple):
    """One touchpoint derived from an input record.

    ``event_key`` is unique per touchpoint within its source (a record may yield several events,
    e.g. a Salesforce Lead yields *lead created* and *lead converted*); when the same event_key
    arrives again in a newer record version the newer one wins.

    Events, edges and labels are named tuples, immutable like frozen dataclasses but several
    times cheaper to build (millions per load), and staged as they are: their fields are in
    the staged columns' order. ``attributes`` is never changed once the event is built (its
    default ``{}`` is shared).
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
    attributes: dict[str, Any] = {}  # noqa: RUF012  (never changed: see the class text)


class Edge(NamedTuple):
    """One observed identity link between two nodes."""

    src_type: str
    src_id: str
    dst_type: str
    dst_id: str
    rule: str  # why they are linked, e.g. "segment_identify", "sf_lead_converted"
    observed_at: datetime


class Label(NamedTuple):
    """A readable name for an id the data uses, e.g. a Salesforce user behind ``OwnerId``."""

    kind: str  # vocabulary.OWNER_LABEL
    id: str
    name: str


@dataclass(slots=True)
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
# re reads the escapes (a raw string): no surrogate in the source text, which mypyc refuses.
_UNDECODABLE = re.compile(r"[\udc80-\udcff]")


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


# --- values copied from a record ---------------------------------------------------------------


def scalar(value: object) -> bool:
    """A value fit to be an attribute as it is: text, a flag, an integer, a finite number."""
    kind = type(value)
    if kind is str or kind is int or kind is bool:  # what JSON gives, first
        return True
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
    if type(value) is dict:  # the usual case, first
        return value
    if value is None:
        return {}
    if not isinstance(value, dict):
        got = f"{json_type(value)} {brief(value)}"
        raise RecordError(f"{field_name}: expected an object, got {got}")
    return value


def object_or_empty(value: object) -> dict[str, Any]:
    """``value`` when it is an object, else ``{}``: for optional sub-objects read leniently
    (Typeform ``hidden``, Zendesk ``via``), where a wrong type carries nothing to keep."""
    return value if isinstance(value, dict) else {}


def nonblank_text(value: object) -> str | None:
    """``value`` unchanged when it is text with something in it, else ``None``."""
    return value if isinstance(value, str) and value.strip() else None


def identifier(record: dict[str, Any], key: str, *, strict: bool = True) -> str | None:
    """An id field as text (numbers are ids too); ``None`` when absent or blank.

    Any other type (a flag, an object) is a RecordError naming ``key`` with ``strict``; without
    it the id is only read as absent (SendGrid, whose ids are optional extras).
    """
    return id_text(record.get(key), key, strict=strict)


def id_text(value: object, field_name: str, *, strict: bool = True) -> str | None:
    """:func:`identifier` of a value already read (a nested field such as Stripe metadata)."""
    if type(value) is str:  # the usual case, first
        return value if value.strip() else None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        if strict:
            raise RecordError(f"{field_name}: not an id: {brief(value)}")
        return None
    text = str(value)
    return text if text.strip() else None


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def normalise_email(value: object) -> str | None:
    """Trim and lower-case an email; ``None`` when it does not look like one."""
    if not isinstance(value, str):
        return None
    email = value.strip().lower()
    if not _EMAIL.fullmatch(email):
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


# The range in unix seconds: values are compared as numbers first, since
# datetime.fromtimestamp cannot even represent most absurd values.
_EARLIEST_SECONDS, _LATEST_SECONDS = EARLIEST.timestamp(), LATEST.timestamp()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _absurd(value: object, field_name: str, unit: str, hint: str) -> RecordError:
    return RecordError(f"{field_name}: absurd unix {unit} {brief(value)} ({hint})")


def parse_unix_seconds(value: object, field_name: str) -> datetime:
    """Unix seconds (int, float or numeric string) to UTC."""
    if isinstance(value, bool):
        raise RecordError(f"{field_name}: not unix seconds: {brief(value)}")
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise RecordError(f"{field_name}: not unix seconds: {brief(value)}") from None
    if not _EARLIEST_SECONDS <= seconds < _LATEST_SECONDS:
        hint = "milliseconds?" if abs(seconds) >= 1e11 else "before 2000 or after 2100"
        raise _absurd(value, field_name, "seconds", hint)
    return datetime.fromtimestamp(seconds, tz=UTC)


def parse_unix_micros(value: object, field_name: str) -> datetime:
    """Unix microseconds (GA4 ``event_timestamp``) to UTC."""
    if isinstance(value, bool):
        raise RecordError(f"{field_name}: not unix microseconds: {brief(value)}")
    try:
        micros = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        raise RecordError(f"{field_name}: not unix microseconds: {brief(value)}") from None
    if not _EARLIEST_SECONDS <= micros // 1_000_000 < _LATEST_SECONDS:
        hint = "seconds or ms?" if abs(micros) < 1e14 else "before 2000 or after 2100"
        raise _absurd(value, field_name, "microseconds", hint)
    return _EPOCH + timedelta(microseconds=micros)  # exact: no float on the way


def safe_urlsplit(url: str, field_name: str) -> SplitResult:
    """``urlsplit``, with a malformed URL (``http://[::1/x``) a RecordError naming the field."""
    try:
        return urlsplit(url)
    except ValueError as exc:
        raise RecordError(f"{field_name}: not a URL: {brief(url)} ({exc})") from None


_NOT_SLUG = re.compile(r"[^0-9a-z]+")


@lru_cache(maxsize=4096)  # a source has few event names, seen again and again
def slug(value: str) -> str:
    """``"Demo Requested"`` -> ``"demo_requested"``: lower snake case for activity names."""
    return _NOT_SLUG.sub("_", value.strip().lower()).strip("_") or "unnamed"


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
    accept, reject = parsed.rows.append, parsed.rejected.append
    for line, text, value in records:
        if isinstance(value, RecordError):
            reject(Rejected(line, str(value), text))
            continue
        readable += 1
        try:  # parse_guarded, inline: this runs for every record
            accept(parse_one(line, text, value))
        except RecordError as exc:
            reject(Rejected(line, str(exc), text))
        except UNEXPECTED as exc:
            reject(_internal_error(line, text, exc))
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
        return _internal_error(line, text, exc)


def _internal_error(line: int, text: str, exc: Exception) -> Rejected:
    return Rejected(line, f"{INTERNAL_ERROR}: {type(exc).__name__}: {exc}", text)
