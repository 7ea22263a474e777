"""GA4: BigQuery export rows (``events_YYYYMMDD``) as NDJSON or Parquet.

* ``event_timestamp`` is unix **microseconds** (an int; JSON exports may give it as a string);
* ``event_params`` is a list of ``{key, value: {string_value, int_value, float_value,
  double_value}}``; the first non-null value is kept per key;
* GA4 has no event id: the dedup key joins ``user_pseudo_id``, ``event_timestamp``,
  ``event_name``, ``batch_page_id``, ``batch_ordering_id`` and ``batch_event_index``
  (Google's own recipe for telling batched events apart);
* the person is ``user_id`` when set, else ``user_pseudo_id`` (the cookie: an anonymous id);
* in Parquet files ``line`` is the 1-based row number, and ``raw`` the row as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from journeymine.errors import SourceFormatError
from journeymine.sources._common import (
    ANONYMOUS_ID,
    CUSTOMER,
    USER_ID,
    Edge,
    Event,
    ParsedFile,
    RawRow,
    RecordError,
    iter_json_lines,
    parse_records,
    parse_unix_micros,
    slug,
)
from journeymine.sources.segment import path_group

SOURCE = "ga4"
DEDUP_FIELDS = (
    "user_pseudo_id",
    "event_timestamp",
    "event_name",
    "batch_page_id",
    "batch_ordering_id",
    "batch_event_index",
)
VALUE_FIELDS = ("string_value", "int_value", "float_value", "double_value")


def event_params(params: object) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in params if isinstance(params, list) else []:
        if not isinstance(item, dict) or not item.get("key"):
            continue
        value = item.get("value") or {}
        out[item["key"]] = next((value[f] for f in VALUE_FIELDS if value.get(f) is not None), None)
    return out


def _utm(row: dict[str, Any]) -> dict[str, Any]:
    collected, traffic = row.get("collected_traffic_source") or {}, row.get("traffic_source") or {}
    pairs = {
        "utm_source": collected.get("manual_source") or traffic.get("source"),
        "utm_medium": collected.get("manual_medium") or traffic.get("medium"),
        "utm_campaign": collected.get("manual_campaign_name") or traffic.get("name"),
    }
    return {k: v for k, v in pairs.items() if v}


def parse_row(line: int, text: str, row: object) -> RawRow:
    if not isinstance(row, dict):
        raise RecordError("not a JSON object")
    name, pseudo = row.get("event_name"), row.get("user_pseudo_id")
    if not name:
        raise RecordError("missing event_name")
    if not pseudo and not row.get("user_id"):
        raise RecordError("missing user_pseudo_id and user_id")
    at = parse_unix_micros(row.get("event_timestamp"), "event_timestamp")
    key = "|".join(str(row.get(f) if row.get(f) is not None else "") for f in DEDUP_FIELDS)
    params = event_params(row.get("event_params"))
    user = row.get("user_id")
    person = (USER_ID, str(user)) if user else (ANONYMOUS_ID, str(pseudo))
    attrs: dict[str, Any] = {k: v for k, v in params.items() if k != "page_location"}
    if name == "page_view" or params.get("page_location"):
        attrs["path"] = _path(params.get("page_location"))
    activity = f"web.page_view:{path_group(attrs['path'])}" if name == "page_view" else ""
    attrs.update(_utm(row))
    attrs["device_category"] = (row.get("device") or {}).get("category")
    attrs["country"] = (row.get("geo") or {}).get("country")
    out = RawRow(line, key, text)
    out.events.append(
        Event(
            event_key=key,
            event_type=str(name),
            activity=activity or f"web.{slug(str(name))}",
            actor=CUSTOMER,
            occurred_at=at,
            raw_time=str(row.get("event_timestamp")),
            id_type=person[0],
            id_value=person[1],
            channel="web",
            attributes={k: v for k, v in attrs.items() if v is not None},
        )
    )
    if user and pseudo:
        out.edges.append(Edge(ANONYMOUS_ID, str(pseudo), USER_ID, str(user), "ga4_user_id", at))
    return out


def _path(location: object) -> str:
    """``https://docs.example.com/guides/x?q=1`` -> ``/guides/x``."""
    if not isinstance(location, str):
        return "/"
    after_host = location.split("://", 1)[-1]
    path = "/" + after_host.split("/", 1)[1] if "/" in after_host else "/"
    return path.split("?", 1)[0].split("#", 1)[0]


def _parquet_rows(path: Path, file: str) -> Iterator[tuple[int, str, Any]]:
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a non-Parquet file
        raise SourceFormatError(file, f"not a readable Parquet file: {exc}") from None
    for number, row in enumerate(table.to_pylist(), start=1):
        yield number, json.dumps(row, default=str, sort_keys=True), row


def parse_file(path: Path, file: str) -> ParsedFile:
    """Parse one GA4 export file: NDJSON (plain or .gz) or Parquet."""
    rows = _parquet_rows(path, file) if path.name.endswith(".parquet") else iter_json_lines(path)
    return parse_records(SOURCE, file, rows, parse_row, "GA4 export rows")
