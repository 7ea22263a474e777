"""Property-based fuzzing of the five parsers with mutated real records.

Each test takes records from the fixture files, mutates them (drop or replace keys, wrong types,
huge and negative numbers, deep nesting, odd strings, stray bytes, truncation), writes a landing
file in the source's layout and asserts the parser's contract:

* it returns a ParsedFile or raises SourceFormatError -- nothing else;
* every input record is exactly one row or one rejected row (counted from the written file);
* no rejection comes from the parsers' safety net (``INTERNAL_ERROR``): every failure is known;
* everything it returns can be stored: text encodes as UTF-8, times are in range.

The budget is small in the normal suite; ``make fuzz`` (HYPOTHESIS_PROFILE=fuzz) runs longer.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journeymine.errors import SourceFormatError
from journeymine.ingest.sources import ga4, salesforce, segment, sendgrid, stripe
from journeymine.ingest.sources._common import EARLIEST, INTERNAL_ERROR, LATEST, ParsedFile
from journeymine.ingest.sources._json import MAX_DEPTH

FUZZ = settings(settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "parsers")))
LANDING = Path(__file__).parents[2] / "data" / "landing"
Parse = Callable[[Path, str], ParsedFile]


def _json_lines(name: str) -> list[Any]:
    records = []
    for text in (LANDING / name).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(text))
        except json.JSONDecodeError:
            continue  # the fixture's deliberately broken line
    return records


SEGMENT = _json_lines("segment/2026/08/03/calls.jsonl")
GA4 = _json_lines("ga4/events_20260803.json")
SENDGRID = json.loads((LANDING / "sendgrid/2026/08/03/webhook-1.json").read_text())
STRIPE = (
    _json_lines("stripe/events-2026-08.jsonl")
    + json.loads((LANDING / "stripe/list-page-2026-09-06.json").read_text())["data"]
)
SALESFORCE = {
    path.name: path.read_bytes()
    for path in (LANDING / "salesforce/export-2026-08-10").iterdir()
    if path.suffix == ".csv"
}

# --- values a vendor should never send, and sometimes does ----------------------------------------

DEEP = "__DEEP__"  # a placeholder, replaced in the JSON text by nesting json.dumps cannot write
ODD_STRINGS = [
    "",
    " ",
    "http://[::1/x",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "2026-08-03T08:00:00Z",
    "-99999999999",
    "1e400",
    "NaN",
    "\ud800",
    "\udcff",
    "\x00",
    "\u2028",
    "<script>alert(1)</script>",
    "x" * 200_000,
    "000000000000000AAA",
    "00Q5e00000AbCdE",
    "a@b.io",
]
ODD_NUMBERS = [-99999999999, -9.9e16, 9.9e16, 10**30, 2**63, -(2**63) - 1, 0, -1, 1e-300, 1.5]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # NaN and infinities included: json.dumps writes them as NaN / Infinity
    st.text(max_size=20),
    st.sampled_from(ODD_STRINGS),
    st.sampled_from(ODD_NUMBERS),
)
# The known-nasty values come first and often: a small budget must still meet them.
VALUES = st.one_of(
    st.sampled_from([DEEP, *ODD_STRINGS, *ODD_NUMBERS]),
    st.just(DEEP),
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=8), SCALARS, max_size=3),
)


def _paths(value: Any) -> list[tuple[Any, ...]]:
    """Every place in a JSON value, as a path of keys and indexes (walked without recursion)."""
    found: list[tuple[Any, ...]] = []
    stack: list[tuple[tuple[Any, ...], Any]] = [((), value)]
    while stack:
        path, item = stack.pop()
        found.append(path)
        if isinstance(item, dict):
            stack.extend((path + (key,), child) for key, child in item.items())
        elif isinstance(item, list):
            stack.extend((path + (index,), child) for index, child in enumerate(item))
    return found


def _wrong_type(value: Any) -> Any:
    """The same content in another JSON type: an object as its values, a number as text..."""
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    if isinstance(value, str):
        return len(value)
    if value is None:
        return {}
    return str(value)


@st.composite
def mutated(draw: st.DrawFn, record: Any) -> str:
    """``record`` with 1-3 mutations, as one line of JSON text."""
    value = json.loads(json.dumps(record))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(value) if p]
        if not paths:
            value = draw(VALUES)
            break
        path = draw(st.sampled_from(paths))
        parent = value
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["drop", "replace", "wrong_type"]))
        if action == "drop":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = draw(VALUES)
        else:
            parent[path[-1]] = _wrong_type(parent[path[-1]])
    # far past the limit, near Python's own (1,000), and at the limit (plus where it is put)
    depth = draw(st.sampled_from([10_000, 1_000, 990, 500, MAX_DEPTH, MAX_DEPTH - 1]))
    return json.dumps(value).replace(json.dumps(DEEP), "[" * depth + "]" * depth)


@st.composite
def text_damage(draw: st.DrawFn, data: bytes) -> bytes:
    """Maybe truncate the bytes, or slip in a Latin-1 byte or a stray quote or brace."""
    action = draw(st.sampled_from(["none", "none", "truncate", "latin1", "quote", "brace"]))
    if action == "none" or not data:
        return data
    at = draw(st.integers(0, len(data) - 1))
    if action == "truncate":
        return data[:at]
    inserted = {"latin1": b"\xe9", "quote": b'"', "brace": b"{"}[action]
    return data[:at] + inserted + data[at:]


@st.composite
def records_of(draw: st.DrawFn, pool: list[Any]) -> list[str]:
    """1-4 records from ``pool``: the first one mutated, each other one maybe."""
    chosen = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4))
    return [
        draw(mutated(record)) if i == 0 or draw(st.booleans()) else json.dumps(record)
        for i, record in enumerate(chosen)
    ]


# --- the contract ------------------------------------------------------------------------------


def parse_or_format_error(parse: Parse, path: Path, file: str) -> ParsedFile | None:
    """The parser's result, or None when it raised SourceFormatError naming the file.

    Any other exception fails the test: that is the point.
    """
    try:
        return parse(path, file)
    except SourceFormatError as exc:
        assert exc.file == file and str(exc).startswith(f"{file}: ")
        return None


def assert_nothing_replaced(parsed: ParsedFile, data: bytes) -> None:
    """A byte that is not UTF-8 is quarantined and named, never turned into U+FFFD unseen."""
    if "\ufffd".encode() in data:
        return  # the input itself holds a replacement character
    texts = [r.raw for r in parsed.rows] + [r.raw for r in parsed.rejected]
    texts += [json.dumps(e.attributes) for r in parsed.rows for e in r.events]
    assert not any("\ufffd" in text for text in texts)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        assert any("not UTF-8" in r.reason for r in parsed.rejected)


def assert_storable(parsed: ParsedFile) -> None:
    """What the loader writes to Parquet and DuckDB: UTF-8 text, JSON attributes, sane times."""
    for rejected in parsed.rejected:
        assert not rejected.reason.startswith(INTERNAL_ERROR), rejected.reason
        (rejected.reason + rejected.raw).encode("utf-8")
    for row in parsed.rows:
        (row.record_key + row.raw).encode("utf-8")
        for event in row.events:
            assert EARLIEST <= event.occurred_at < LATEST
            json.dumps(event.attributes, allow_nan=False).encode("utf-8")
            text = [event.event_key, event.event_type, event.activity, event.id_value]
            "".join(text + [event.raw_time, event.owner or ""]).encode("utf-8")
        for edge in row.edges:
            (edge.src_id + edge.dst_id).encode("utf-8")
            assert EARLIEST <= edge.observed_at < LATEST


def lines(parsed: ParsedFile) -> list[int]:
    return sorted([r.line for r in parsed.rows] + [r.line for r in parsed.rejected])


def non_blank_lines(data: bytes) -> list[int]:
    """Physical line numbers of the non-blank lines, counted from the bytes themselves."""
    return [n for n, text in enumerate(data.split(b"\n"), start=1) if text.strip(b" \t\r\n")]


def check_json_lines(parse: Parse, tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    parsed = parse_or_format_error(parse, path, name)
    if parsed is None:
        return
    assert lines(parsed) == non_blank_lines(data)  # each line exactly once
    assert_storable(parsed)
    assert_nothing_replaced(parsed, data)


def check_array(parse: Parse, path: Path, name: str, elements: int | None) -> None:
    """Elements of an array: index 1..n each exactly once; n known unless the text was damaged."""
    parsed = parse_or_format_error(parse, path, name)
    if parsed is None:
        return
    found = lines(parsed)
    assert found == list(range(1, len(found) + 1))
    if elements is not None:
        assert len(found) == elements
    assert_storable(parsed)
    assert_nothing_replaced(parsed, path.read_bytes())


# --- one property per parser -------------------------------------------------------------------


@FUZZ
@given(st.data())
def test_segment_survives_mutated_calls(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    text = "\n".join(data.draw(records_of(SEGMENT))) + "\n"
    damaged = data.draw(text_damage(text.encode()))
    check_json_lines(segment.parse_file, tmp_path_factory.mktemp("s"), "calls.jsonl", damaged)


@FUZZ
@given(st.data())
def test_ga4_survives_mutated_rows(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    text = "\n".join(data.draw(records_of(GA4))) + "\n"
    damaged = data.draw(text_damage(text.encode()))
    check_json_lines(ga4.parse_file, tmp_path_factory.mktemp("g"), "events.json", damaged)


@FUZZ
@given(st.data())
def test_sendgrid_survives_mutated_events(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    records = data.draw(records_of(SENDGRID))
    body = ("[\n" + ",\n".join(records) + "\n]").encode()
    damaged = data.draw(text_damage(body))
    path = tmp_path_factory.mktemp("sg") / "webhook.json"
    path.write_bytes(damaged)
    elements = len(records) if damaged == body else None
    check_array(sendgrid.parse_file, path, "sendgrid/webhook.json", elements)


@FUZZ
@given(st.data())
def test_stripe_survives_mutated_events(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    records = data.draw(records_of(STRIPE))
    folder = tmp_path_factory.mktemp("st")
    if data.draw(st.booleans()):  # JSON lines
        text = "\n".join(records) + "\n"
        damaged = data.draw(text_damage(text.encode()))
        check_json_lines(stripe.parse_file, folder, "events.jsonl", damaged)
        return
    elements = ",\n".join(records)
    page = f'{{\n  "object": "list",\n  "data": [\n{elements}\n  ],\n  "has_more": false\n}}'
    damaged = data.draw(text_damage(page.encode()))
    path = folder / "page.json"
    path.write_bytes(damaged)
    parsed = parse_or_format_error(stripe.parse_file, path, "stripe/page.json")
    if parsed is None:
        return
    if damaged == page.encode():  # an intact page: one record per element
        assert lines(parsed) == list(range(1, len(records) + 1))
    else:  # a damaged page may be read as JSON lines or as a page: each number once, at least
        assert len(set(lines(parsed))) == len(lines(parsed))
    assert_storable(parsed)
    assert_nothing_replaced(parsed, damaged)


FIELD_VALUES = st.one_of(
    st.sampled_from(ODD_STRINGS),
    st.text(max_size=30),
    st.just("y" * 131_073),  # one more than a Salesforce field holds
    st.just('line one\r\nline two, with "quotes"'),
)


@st.composite
def salesforce_export(draw: st.DrawFn) -> tuple[str, bytes, int | None]:
    """A fixture export with mutated values; the number of records unless the text is damaged."""
    name = draw(st.sampled_from(sorted(SALESFORCE)))
    rows = list(csv.reader(io.StringIO(SALESFORCE[name].decode("utf-8"), newline="")))
    header, body = rows[0], [r for r in rows[1:] if r]
    body = draw(st.lists(st.sampled_from(body), min_size=1, max_size=4))
    mutated_rows = []
    for row in body:
        row = list(row)
        for _ in range(draw(st.integers(0, 3))):
            action = draw(st.sampled_from(["replace", "drop_field", "add_field"]))
            at = draw(st.integers(0, len(row)))
            if action == "replace" and row:
                row[min(at, len(row) - 1)] = draw(FIELD_VALUES).replace("\x00", "")
            elif action == "drop_field" and len(row) > 1:
                del row[min(at, len(row) - 1)]
            elif action == "add_field":
                row.insert(at, draw(FIELD_VALUES).replace("\x00", ""))
        mutated_rows.append(row)
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerows([header, *mutated_rows])
    # csv.writer cannot write a lone surrogate: such a value is written as its escape instead.
    data = out.getvalue().encode("utf-8", "backslashreplace")
    damaged = draw(text_damage(data))
    # A one-field row holding "" reads back as a blank line: not a record, by design.
    blank = sum(1 for row in mutated_rows if row == [""] or row == [])
    return name, damaged, (len(mutated_rows) - blank) if damaged == data else None


@FUZZ
@given(salesforce_export())
def test_salesforce_survives_mutated_exports(
    tmp_path_factory: pytest.TempPathFactory, export: tuple[str, bytes, int | None]
) -> None:
    name, data, records = export
    path = tmp_path_factory.mktemp("sf") / name
    path.write_bytes(data)
    parsed = parse_or_format_error(salesforce.parse_file, path, f"salesforce/{name}")
    if parsed is None:
        return
    found = lines(parsed)
    assert len(set(found)) == len(found) and all(1 < n <= data.count(b"\n") + 1 for n in found)
    if records is not None:
        assert len(found) == records
    assert_storable(parsed)
    assert_nothing_replaced(parsed, data)
    for row in parsed.rows:  # no accepted record holds more than a Salesforce field can
        (fields,) = csv.reader(io.StringIO(row.raw, newline=""))
        assert max(map(len, fields)) <= 131_072  # Long Text Area, the longest field type
