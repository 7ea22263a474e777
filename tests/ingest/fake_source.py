"""A tiny stand-in source for testing the loader's mechanics apart from any vendor format.

Each line: ``key,unix_seconds,id_type,id_value,activity[,linked_type,linked_value]``.
"""

from __future__ import annotations

from pathlib import Path

from journeymine.ingest.sources._common import (
    CUSTOMER,
    Edge,
    Event,
    ParsedFile,
    RawRow,
    RecordError,
    Rejected,
    open_text,
    parse_unix_seconds,
)


def parse_file(path: Path, file: str) -> ParsedFile:
    parsed = ParsedFile("segment", file)
    with open_text(path) as fh:
        for line, text in enumerate(fh, start=1):
            text = text.strip()
            try:
                parsed.rows.append(_row(line, text))
            except RecordError as exc:
                parsed.rejected.append(Rejected(line, str(exc), text))
    return parsed


def _row(line: int, text: str) -> RawRow:
    parts = text.split(",")
    if len(parts) < 5 or not parts[0]:
        raise RecordError("missing key")
    key, ts, id_type, id_value, activity = parts[:5]
    at = parse_unix_seconds(ts, "time")
    row = RawRow(line, key, text)
    row.events.append(Event(key, activity, activity, CUSTOMER, at, ts, id_type, id_value))
    if len(parts) == 7:
        row.edges.append(Edge(id_type, id_value, parts[5], parts[6], "fake_link", at))
    return row
