"""GA4: BigQuery export rows (tables ``events_YYYYMMDD``) as NDJSON or Parquet, plain or ``.gz``.

Format and units
* NDJSON (``.json``/``.ndjson``/``.jsonl``): one row per line, ``line`` is the physical line;
  Parquet (``.parquet``, recognised by its ``PAR1`` magic too): ``line`` is the 1-based row
  number and ``raw`` the row serialised as JSON;
* ``event_timestamp`` is unix **microseconds**, UTC. BigQuery's JSON export writes INT64 values
  as strings, so ``"1785744000123456"`` is accepted like ``1785744000123456`` (and an
  ``int_value`` param given as a digit string becomes an int); seconds or milliseconds are
  rejected as absurd;
* ``event_params`` is a list of ``{key, value: {string_value, int_value, float_value,
  double_value}}``; each key is flattened to the first non-null of those values.

Dedup key
* GA4 has no event id. The key joins, with ``|``: ``user_pseudo_id``, ``event_timestamp`` (as an
  integer), ``event_name``, ``batch_page_id``, ``batch_ordering_id``, ``batch_event_index``
  (absent fields as empty strings) -- the batch fields tell apart events GA4 sent in one batch
  with the same timestamp. The same row gives the same key from NDJSON and from Parquet.

Identity
* the person is ``user_id`` when set, else ``user_pseudo_id`` (the cookie: an anonymous id);
  a row with both links them (rule ``ga4_user_id``).

Quirks
* ``page_location`` is kept as its path only (``path``): query strings may carry personal data;
  a malformed URL there (``http://[::1/x``) rejects the row;
* a null struct or ``event_params`` is absent; any other wrong type (``event_params`` not an
  array, ``device`` not an object, a param value that is an object) rejects the row;
* ``utm_*`` come from ``collected_traffic_source`` (this event's campaign) when it has any value,
  else from ``traffic_source`` (the user's first acquisition); never a mix of the two.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from journeymine import vocabulary
from journeymine.errors import SourceFormatError
from journeymine.ingest.sources._common import (
    ANONYMOUS_ID,
    CUSTOMER,
    USER_ID,
    Edge,
    Event,
    ParsedFile,
    RawRow,
    Record,
    RecordError,
    decode_text,
    id_text,
    json_type,
    optional_object,
    parse_records,
    parse_unix_micros,
    read_bytes,
    safe_urlsplit,
    scalar,
    scalar_field,
    slug,
)
from journeymine.ingest.sources._json import (
    json_lines,
    json_objects,
)
from journeymine.ingest.sources.segment import path_group

SOURCE = "ga4"
CHANNEL = vocabulary.WEB

# BigQuery export column names.
EVENT_NAME = "event_name"
EVENT_TIMESTAMP = "event_timestamp"
EVENT_PARAMS = "event_params"
USER_PSEUDO_ID = "user_pseudo_id"
USER = "user_id"
DEVICE = "device"
GEO = "geo"
TRAFFIC_SOURCE = "traffic_source"
COLLECTED_TRAFFIC_SOURCE = "collected_traffic_source"
BATCH_FIELDS = ("batch_page_id", "batch_ordering_id", "batch_event_index")
VALUE_FIELDS = ("string_value", "int_value", "float_value", "double_value")

# GA4 event and parameter names.
PAGE_VIEW = "page_view"
PAGE_LOCATION = "page_location"
LOCATION_FIELD = f"{EVENT_PARAMS}.{PAGE_LOCATION}"  # how reasons name it

# attribute -> (collected_traffic_source key, traffic_source key)
UTM_FIELDS = {
    "utm_source": ("manual_source", "source"),
    "utm_medium": ("manual_medium", "medium"),
    "utm_campaign": ("manual_campaign_name", "name"),
}
PARQUET_MAGIC = b"PAR1"


def _param_value(value: object, key: str) -> Any:
    """First non-null typed value; INT64 as string (BigQuery JSON export) back to int."""
    # Field names for reasons are only built when there is one to give: this runs per param.
    slots = value if type(value) is dict else optional_object(value, f"{EVENT_PARAMS}.{key}.value")
    for name in VALUE_FIELDS:
        found = slots.get(name)
        if found is None:
            continue
        if not scalar(found):
            scalar_field(found, f"{EVENT_PARAMS}.{key}.value.{name}")  # raises, naming it
        if name == "int_value" and isinstance(found, str) and found.lstrip("-").isdigit():
            return int(found)
        return found
    return None


def event_params(params: object) -> dict[str, Any]:
    """``[{key, value: {...}}, ...]`` -> ``{key: value}``; the first occurrence of a key wins.

    Absent or null is no params; any other non-array, or an item that is no object, is a
    RecordError naming the field (its params would be lost silently otherwise).
    """
    if params is None:
        return {}
    if not isinstance(params, list):
        raise RecordError(f"{EVENT_PARAMS}: expected an array, got {json_type(params)}")
    out: dict[str, Any] = {}
    for index, item in enumerate(params):
        if type(item) is not dict:
            item = optional_object(item, f"{EVENT_PARAMS}[{index}]")  # null reads as {}
        key = item.get("key")
        if isinstance(key, str) and key and key not in out:
            out[key] = _param_value(item.get("value"), key)
    return out


def location_path(location: object) -> str | None:
    """``https://docs.example.com/guides/x?q=1#top`` -> ``/guides/x``."""
    if not isinstance(location, str) or not location.strip():
        return None
    return _location_path(location)


@lru_cache(maxsize=4096)  # a site has few pages, seen again and again
def _location_path(location: str) -> str:
    return safe_urlsplit(location.strip(), LOCATION_FIELD).path or "/"


# utm attribute -> key, in each of the two sources of a campaign
_COLLECTED_FIELDS = {out: collected for out, (collected, _) in UTM_FIELDS.items()}
_FIRST_FIELDS = {out: first for out, (_, first) in UTM_FIELDS.items()}
_DEVICE_CATEGORY = f"{DEVICE}.category"
_GEO_COUNTRY = f"{GEO}.country"


def utm(row: dict[str, Any]) -> dict[str, Any]:
    """Campaign of this event when GA4 collected one, else the user's first acquisition.

    One whole source wins: mixing fields of both would invent attributions (google / cpc /
    (direct)) that never happened.
    """
    collected = optional_object(row.get(COLLECTED_TRAFFIC_SOURCE), COLLECTED_TRAFFIC_SOURCE)
    if collected and any(collected.get(c) for c in _COLLECTED_FIELDS.values()):
        name, fields = COLLECTED_TRAFFIC_SOURCE, _COLLECTED_FIELDS
    else:
        name, fields = TRAFFIC_SOURCE, _FIRST_FIELDS
    chosen = optional_object(row.get(name), name)
    if not chosen:  # most rows: nothing to check or keep
        return {}
    pairs = {out: scalar_field(chosen.get(f), f"{name}.{f}") for out, f in fields.items()}
    return {key: value for key, value in pairs.items() if value}


def attributes(row: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    attrs = {key: value for key, value in params.items() if key != PAGE_LOCATION}
    attrs["path"] = location_path(params.get(PAGE_LOCATION))
    device = optional_object(row.get(DEVICE), DEVICE).get("category")
    attrs["device_category"] = scalar_field(device, _DEVICE_CATEGORY)
    country = optional_object(row.get(GEO), GEO).get("country")
    attrs["country"] = scalar_field(country, _GEO_COUNTRY)
    attrs.update(utm(row))
    return {key: value for key, value in attrs.items() if value is not None}


def dedup_key(row: dict[str, Any], micros: int) -> str:
    parts = [row.get(USER_PSEUDO_ID), micros, row.get(EVENT_NAME)]
    parts += [scalar_field(row.get(name), name) for name in BATCH_FIELDS]
    return "|".join(["" if part is None else str(part) for part in parts])


def event_time(row: dict[str, Any]) -> tuple[datetime, int]:
    """``event_timestamp`` as UTC time and as integer microseconds (for the dedup key)."""
    value = row.get(EVENT_TIMESTAMP)
    if value is None or value == "":
        raise RecordError(f"{EVENT_TIMESTAMP}: missing timestamp")
    at = parse_unix_micros(value, EVENT_TIMESTAMP)  # validates type and range
    return at, int(value)


def parse_row(line: int, text: str, row: object) -> RawRow:
    """One export row -> its row, its event and the pseudo id <-> user id link."""
    if not isinstance(row, dict):
        raise RecordError("not a JSON object")
    name = row.get(EVENT_NAME)
    if not isinstance(name, str) or not name.strip():
        raise RecordError(f"missing {EVENT_NAME}")
    user, pseudo = id_text(row.get(USER), USER), id_text(row.get(USER_PSEUDO_ID), USER_PSEUDO_ID)
    if not user and not pseudo:
        raise RecordError(f"missing {USER} and {USER_PSEUDO_ID}")
    at, micros = event_time(row)
    params = event_params(row.get(EVENT_PARAMS))
    is_view = name == PAGE_VIEW
    activity = f"web.page_view:{path_group(params.get(PAGE_LOCATION), LOCATION_FIELD)}"
    activity = activity if is_view else ""
    key = dedup_key(row, micros)
    person = (USER_ID, user) if user else (ANONYMOUS_ID, str(pseudo))
    activity = activity or f"web.{slug(name)}"
    raw_time, attrs = str(row[EVENT_TIMESTAMP]), attributes(row, params)
    # Positional, in Event's field order (cheaper than keywords); no owner, no account.
    event = Event(
        key, name, activity, CUSTOMER, at, raw_time, *person, CHANNEL, None, None, None, attrs
    )
    edges = (
        [Edge(ANONYMOUS_ID, pseudo, USER_ID, user, "ga4_user_id", at)] if user and pseudo else []
    )
    return RawRow(line, key, text, [event], edges, [])


def _is_parquet(path: Path, data: bytes) -> bool:
    return path.name.lower().removesuffix(".gz").endswith(".parquet") or data[:4] == PARQUET_MAGIC


def _parquet_rows(data: bytes, file: str) -> Iterator[Record]:
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError, EOFError, ValueError) as exc:
        raise SourceFormatError(file, f"not a readable Parquet file: {exc}") from None
    for number, row in enumerate(table.to_pylist(), start=1):
        yield number, json.dumps(row, default=str, ensure_ascii=False), row


def parse_file(path: Path, file: str) -> ParsedFile:
    """Parse one GA4 export file: NDJSON or Parquet, plain or .gz."""
    data = read_bytes(path, file)
    if _is_parquet(path, data):
        rows, what = _parquet_rows(data, file), "GA4 export rows (Parquet)"
    else:
        rows, what = json_objects(json_lines(decode_text(data))), "GA4 export rows (NDJSON)"
    return parse_records(SOURCE, file, rows, parse_row, what)
