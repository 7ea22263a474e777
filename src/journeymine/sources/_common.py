"""What every source parser returns, and the helpers they share.

A parser reads one landing file and returns a :class:`ParsedFile`. It never touches DuckDB: the
loader (:mod:`journeymine.load`) owns the warehouse. Every input row ends in exactly one of three
places, so that ``rows_read == len(rows) + len(rejected)`` for the file, and the loader later
splits ``rows`` into loaded and duplicates:

* ``rows``      -- one :class:`RawRow` per accepted input record, with the events and identity
                   edges derived from it;
* ``rejected``  -- one :class:`Rejected` per record that could not be used, with the reason.

A file that is not in the source's format at all raises
:class:`~journeymine.errors.SourceFormatError`.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from journeymine.errors import SourceFormatError

# Identity node types. An edge links two nodes; person nodes are merged into persons, account
# nodes into accounts (see journeymine.identity).
ANONYMOUS_ID = "anonymous_id"  # Segment anonymousId / GA4 user_pseudo_id (cookie, device)
USER_ID = "user_id"  # the product's own user id (Segment userId, GA4 user_id, metadata)
EMAIL = "email"  # normalised email address (trimmed, lower case)
SF_LEAD = "sf_lead"  # Salesforce Lead Id, always the 18-character form
SF_CONTACT = "sf_contact"  # Salesforce Contact Id (18 chars)
STRIPE_CUSTOMER = "stripe_customer"  # Stripe customer id (cus_...)
PERSON_NODE_TYPES = (ANONYMOUS_ID, USER_ID, EMAIL, SF_LEAD, SF_CONTACT, STRIPE_CUSTOMER)

SF_ACCOUNT = "sf_account"  # Salesforce Account Id (18 chars)
SF_OPPORTUNITY = "sf_opportunity"  # Salesforce Opportunity Id (18 chars); belongs to an account
SEGMENT_GROUP = "segment_group"  # Segment group call groupId
ACCOUNT_NODE_TYPES = (SF_ACCOUNT, SEGMENT_GROUP)

CUSTOMER = "customer"
COMPANY = "company"

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


def open_text(path: Path) -> IO[str]:
    """Open a landing file as UTF-8 text, transparently un-gzipping ``.gz`` files."""
    if path.name.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
    return path.open("r", encoding="utf-8", errors="replace", newline="")


def read_bytes(path: Path) -> bytes:
    if path.name.endswith(".gz"):
        with gzip.open(path, "rb") as fh:
            return fh.read()
    return path.read_bytes()


def iter_json_lines(path: Path) -> Iterator[tuple[int, str, Any]]:
    """Yield ``(line_number, raw_text, parsed_or_exception)`` for each non-blank line."""
    with open_text(path) as fh:
        for number, text in enumerate(fh, start=1):
            text = text.strip()
            if not text:
                continue
            try:
                yield number, text, json.loads(text)
            except json.JSONDecodeError as exc:
                yield number, text, RecordError(f"invalid JSON: {exc.msg} at column {exc.colno}")


def normalise_email(value: object) -> str | None:
    """Trim and lower-case an email; ``None`` when it does not look like one."""
    if not isinstance(value, str):
        return None
    email = value.strip().lower()
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
        return None
    return email


def check_time(ts: datetime, raw: object, field_name: str) -> datetime:
    """Return ``ts`` in UTC, or raise RecordError when it is naive-less absurd (unit mix-ups)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    ts = ts.astimezone(UTC)
    if not EARLIEST <= ts < LATEST:
        raise RecordError(f"{field_name}: absurd timestamp {raw!r} ({ts.isoformat()})")
    return ts


def parse_iso(value: object, field_name: str) -> datetime:
    """ISO-8601 string to UTC. A value without an offset is taken as UTC."""
    if not isinstance(value, str) or not value.strip():
        raise RecordError(f"{field_name}: missing timestamp")
    text = value.strip().replace("Z", "+00:00")
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise RecordError(f"{field_name}: unparseable timestamp {value!r}") from None
    return check_time(ts, value, field_name)


def parse_unix_seconds(value: object, field_name: str) -> datetime:
    """Unix seconds (int, float or numeric string) to UTC."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise RecordError(f"{field_name}: not unix seconds: {value!r}") from None
    if not -1e11 < seconds < 1e11:  # milliseconds or microseconds sent as seconds
        raise RecordError(f"{field_name}: absurd unix seconds {value!r} (milliseconds?)")
    return check_time(datetime.fromtimestamp(seconds, tz=UTC), value, field_name)


def parse_unix_micros(value: object, field_name: str) -> datetime:
    """Unix microseconds (GA4 ``event_timestamp``) to UTC."""
    try:
        micros = int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise RecordError(f"{field_name}: not unix microseconds: {value!r}") from None
    if not 1e14 < abs(micros) < 1e17:
        raise RecordError(f"{field_name}: absurd unix microseconds {value!r} (seconds or ms?)")
    ts = datetime.fromtimestamp(micros // 1_000_000, tz=UTC).replace(microsecond=micros % 1_000_000)
    return check_time(ts, value, field_name)


def slug(value: str) -> str:
    """``"Demo Requested"`` -> ``"demo_requested"``: lower snake case for activity names."""
    return re.sub(r"[^0-9a-z]+", "_", value.strip().lower()).strip("_") or "unnamed"


Record = tuple[int, str, Any]  # (line, raw text, parsed value — or the RecordError it raised)


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
        try:
            if isinstance(value, RecordError):
                raise value
            readable += 1
            parsed.rows.append(parse_one(line, text, value))
        except RecordError as exc:
            parsed.rejected.append(Rejected(line, str(exc), text))
    if parsed.rejected and readable == 0:
        raise SourceFormatError(file, f"not {what}: no record in it could be read")
    return parsed
