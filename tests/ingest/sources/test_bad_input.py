"""Bad input, parametrised over the sources: one bad record costs one record, never the file.

Every case writes a file of three records built from the fixture files -- a good one, a bad
one, a good one -- and checks that exactly the middle one is quarantined, with the reason below
(written by hand from the input), and that both good ones still parse.
"""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from journeymine.errors import SourceFormatError
from journeymine.ingest.sources import ga4, salesforce, segment, sendgrid, stripe
from journeymine.ingest.sources._common import (
    INTERNAL_ERROR,
    ParsedFile,
    RawRow,
    RecordError,
    parse_records,
    parse_unix_micros,
    parse_unix_seconds,
)
from journeymine.ingest.sources._json import TOO_DEEP

LANDING = Path(__file__).parents[2] / "data" / "landing"
PARSERS: dict[str, Callable[[Path, str], ParsedFile]] = {
    "segment": segment.parse_file,
    "ga4": ga4.parse_file,
    "sendgrid": sendgrid.parse_file,
    "stripe": stripe.parse_file,
    "salesforce": salesforce.parse_file,
}
# One real fixture file per source, and the name its copy gets.
FIXTURES = {
    "segment": ("segment/2026/08/03/calls.jsonl", "calls.jsonl"),
    "ga4": ("ga4/events_20260803.json", "events_20260803.json"),
    "sendgrid": ("sendgrid/2026/08/03/webhook-1.json", "webhook-1.json"),
    "stripe": ("stripe/events-2026-08.jsonl", "events.jsonl"),
    "salesforce": ("salesforce/export-2026-08-10/Lead.csv", "Lead.csv"),
}
DEEP = "[" * 10_000 + "]" * 10_000  # json.loads raises RecursionError on it
HOLE = "__PUT_RAW_JSON_HERE__"  # replaced, in the JSON text, by text json.dumps cannot write


def _lines(name: str) -> list[str]:
    return (LANDING / name).read_text(encoding="utf-8").splitlines()


SEGMENT_PAGE = json.loads(_lines(FIXTURES["segment"][0])[0])
GA4_VIEW = json.loads(_lines(FIXTURES["ga4"][0])[0])
SENDGRID_OPEN = json.loads((LANDING / FIXTURES["sendgrid"][0]).read_text())[2]
STRIPE_INVOICE = json.loads(_lines(FIXTURES["stripe"][0])[2])
SF_HEADER = "Id,Email,LeadSource,OwnerId,CreatedDate,Description"
SF_GOOD = [
    "00Q5e00000AbCdE,jane@acme.io,Web,0055e00000Ana01,2026-08-03T08:30:00.000Z,Wants a demo",
    "00Q5e00000XyZ12,bob@corp.com,Outbound,0055e00000Ana01,2026-08-04T09:15:00.000Z,",
]


def changed(record: dict[str, Any], path: str, value: Any) -> str:
    """``record`` as a JSON line with the field at dotted ``path`` set (``None`` deletes it)."""
    out = copy.deepcopy(record)
    *parents, last = path.split(".")
    target = out
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if value is None:
        del target[last]
    else:
        target[last] = value
    return json.dumps(out)


def with_raw(record: dict[str, Any], path: str, raw_json: str) -> str:
    """``record`` with the field at ``path`` holding ``raw_json`` verbatim (NaN, deep nesting)."""
    return changed(record, path, HOLE).replace(json.dumps(HOLE), raw_json)


def write_records(source: str, tmp_path: Path, records: list[str]) -> Path:
    """A landing file of ``records``, in the source's own layout."""
    name = FIXTURES[source][1]
    if source == "sendgrid":
        text = "[\n" + ",\n".join(records) + "\n]\n"
    elif source == "salesforce":
        text = SF_HEADER + "\r\n" + "\r\n".join(records) + "\r\n"
    else:
        text = "\n".join(records) + "\n"
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


GOOD: dict[str, list[str]] = {
    "segment": [json.dumps(SEGMENT_PAGE), changed(SEGMENT_PAGE, "messageId", "m-3")],
    "ga4": [json.dumps(GA4_VIEW), changed(GA4_VIEW, "event_name", "scroll")],
    "sendgrid": [json.dumps(SENDGRID_OPEN), changed(SENDGRID_OPEN, "sg_event_id", "e-3")],
    "stripe": [json.dumps(STRIPE_INVOICE), changed(STRIPE_INVOICE, "id", "evt_3")],
    "salesforce": SF_GOOD,
}
URL = "http://[::1/x"
BAD_RECORDS = [
    # --- JSON nested 10,000 deep (RecursionError in json.loads), past MAX_DEPTH
    ("segment", with_raw(SEGMENT_PAGE, "properties", DEEP), TOO_DEEP),
    ("ga4", with_raw(GA4_VIEW, "device", DEEP), TOO_DEEP),
    ("sendgrid", with_raw(SENDGRID_OPEN, "url", DEEP), TOO_DEEP),
    ("stripe", with_raw(STRIPE_INVOICE, "data", DEEP), TOO_DEEP),
    # --- timestamps no datetime can hold
    (
        "segment",
        changed(SEGMENT_PAGE, "timestamp", "0001-01-01T00:00:00+01:00"),
        "timestamp: absurd timestamp '0001-01-01T00:00:00+01:00' (0001-01-01T00:00:00+01:00)",
    ),
    (
        "ga4",
        with_raw(GA4_VIEW, "event_timestamp", "-9.9e16"),
        "event_timestamp: absurd unix microseconds -9.9e+16 (before 2000 or after 2100)",
    ),
    (
        "ga4",
        changed(GA4_VIEW, "event_timestamp", -99999999999),
        "event_timestamp: absurd unix microseconds -99999999999 (seconds or ms?)",
    ),
    (
        "sendgrid",
        changed(SENDGRID_OPEN, "timestamp", -99999999999),
        "timestamp: absurd unix seconds -99999999999 (before 2000 or after 2100)",
    ),
    (
        "stripe",
        changed(STRIPE_INVOICE, "created", -99999999999),
        "created: absurd unix seconds -99999999999 (before 2000 or after 2100)",
    ),
    (
        "stripe",
        changed(STRIPE_INVOICE, "created", "1e400"),
        "created: absurd unix seconds '1e400' (milliseconds?)",
    ),
    (
        "salesforce",
        "00Q5e00000Bad01,x@y.io,Web,,0001-01-01T00:00:00+01:00,",
        "CreatedDate: absurd timestamp '0001-01-01T00:00:00+01:00' (0001-01-01T00:00:00+01:00)",
    ),
    # --- a URL urllib refuses (ValueError: Invalid IPv6 URL)
    (
        "segment",
        changed(json.loads(changed(SEGMENT_PAGE, "context.page", None)), "properties.path", URL),
        f"properties.path: not a URL: '{URL}' (Invalid IPv6 URL)",
    ),
    (
        "ga4",
        changed(GA4_VIEW, "event_params.0.value.string_value", URL),
        f"event_params.page_location: not a URL: '{URL}' (Invalid IPv6 URL)",
    ),
    # --- wrong types where the parser reads
    (
        "stripe",
        changed(STRIPE_INVOICE, "data.object.lines.data", {"0": {"price": {"id": "p"}}}),
        "data.object.lines.data: expected an array, got object {'0': {'price': {'id': 'p'}}}",
    ),
    (
        "stripe",
        changed(STRIPE_INVOICE, "data.object.amount_paid", [4900]),
        "data.object.amount_paid: expected a scalar, got array [4900]",
    ),
    (
        "segment",
        changed(SEGMENT_PAGE, "properties", 5),
        "properties: expected an object, got number 5",
    ),
    (
        "segment",
        changed(SEGMENT_PAGE, "context.campaign.source", ["x"]),
        "context.campaign.source: expected text, got array",
    ),
    ("ga4", changed(GA4_VIEW, "event_params", 7), "event_params: expected an array, got number"),
    ("ga4", changed(GA4_VIEW, "geo", [1]), "geo: expected an object, got array [1]"),
    (
        "sendgrid",
        changed(SENDGRID_OPEN, "category", {"a": 1}),
        "category: expected a scalar, got object {'a': 1}",
    ),
    # --- JSON Python reads but no file can hold or SQL store
    ("segment", with_raw(SEGMENT_PAGE, "timestamp", "NaN"), "invalid JSON: NaN is not JSON"),
    (
        "segment",
        changed(SEGMENT_PAGE, "userId", "\ud800"),
        "invalid text: a lone UTF-16 surrogate escape (\\ud800-\\udfff)",
    ),
    (
        "ga4",
        with_raw(GA4_VIEW, "event_timestamp", "9" * 5000),
        "invalid JSON: Exceeds the limit (4300 digits) for integer string conversion",
    ),
    ("sendgrid", '{"email": }', "invalid JSON: Expecting value at column 11"),
    # --- Salesforce: a field longer than any Salesforce field; a row of the wrong width
    (
        "salesforce",
        "00Q5e00000Bad01,x@y.io,Web,,2026-08-03T08:30:00Z," + "d" * 131_073,
        "Description: 131,073 characters, more than the 131,072 a Salesforce field holds",
    ),
    (
        "salesforce",
        "00Q5e00000Bad01,x@y.io,Web,,2026-08-03T08:30:00Z",
        "wrong_column_count: 5 fields, the header has 6",
    ),
    (
        "salesforce",
        "00Q5e00000Bad01,x@y.io,Web,,2026-08-03T08:30:00Z,,extra",
        "wrong_column_count: 7 fields, the header has 6",
    ),
]


@pytest.mark.parametrize(
    ("source", "bad", "reason"),
    BAD_RECORDS,
    ids=[f"{s}-{r[:40]}" for s, _, r in BAD_RECORDS],
)
def test_one_bad_record_is_quarantined_and_the_rest_parse(
    tmp_path: Path, source: str, bad: str, reason: str
) -> None:
    first, last = GOOD[source]
    path = write_records(source, tmp_path, [first, bad, last])
    parsed = PARSERS[source](path, f"{source}/{path.name}")
    offset = 1 if source == "salesforce" else 0  # the header is line 1
    assert [r.line for r in parsed.rows] == [1 + offset, 3 + offset]
    ((line, got),) = [(r.line, r.reason) for r in parsed.rejected]
    assert line == 2 + offset
    assert got.startswith(reason), got
    assert INTERNAL_ERROR not in got


# --- a broken .gz ------------------------------------------------------------------------------


@pytest.mark.parametrize("source", sorted(FIXTURES))
def test_a_truncated_gz_gives_the_same_error_in_every_source(tmp_path: Path, source: str) -> None:
    fixture, name = FIXTURES[source]
    packed = gzip.compress((LANDING / fixture).read_bytes())
    path = tmp_path / f"{name}.gz"
    path.write_bytes(packed[: len(packed) // 2])
    file = f"{source}/2026/08/{name}.gz"
    with pytest.raises(SourceFormatError) as info:
        PARSERS[source](path, file)
    assert str(info.value) == (
        f"{file}: not a readable .gz file (truncated or corrupt): "
        "Compressed file ended before the end-of-stream marker was reached"
    )
    assert info.value.file == file


@pytest.mark.parametrize("source", sorted(FIXTURES))
def test_a_gz_that_is_no_gzip_gives_the_same_error_in_every_source(
    tmp_path: Path, source: str
) -> None:
    fixture, name = FIXTURES[source]
    path = tmp_path / f"{name}.gz"
    path.write_bytes((LANDING / fixture).read_bytes())  # named .gz, but plain text
    file = f"{source}/{name}.gz"
    with pytest.raises(SourceFormatError, match="not a readable .gz file") as info:
        PARSERS[source](path, file)
    assert str(info.value).startswith(f"{file}: not a readable .gz file (truncated or corrupt): ")


# --- encodings -----------------------------------------------------------------------------------


def summary(parsed: ParsedFile) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    return [(r.line, r.record_key) for r in parsed.rows], [
        (r.line, r.reason) for r in parsed.rejected
    ]


@pytest.mark.parametrize(
    ("source", "fixture"),
    [
        *((s, f) for s, (f, _) in sorted(FIXTURES.items())),
        ("stripe", "stripe/list-page-2026-09-06.json"),  # a pretty-printed page
    ],
)
def test_a_utf8_bom_changes_nothing(tmp_path: Path, source: str, fixture: str) -> None:
    data = (LANDING / fixture).read_bytes()
    plain, with_bom = tmp_path / "plain" / Path(fixture).name, tmp_path / "bom" / Path(fixture).name
    for path, content in ((plain, data), (with_bom, b"\xef\xbb\xbf" + data)):
        path.parent.mkdir()
        path.write_bytes(content)
    expected = summary(PARSERS[source](plain, fixture))
    assert expected[0]  # the fixture has rows to compare
    assert summary(PARSERS[source](with_bom, fixture)) == expected


LATIN1 = [
    # (source, the good records, where the byte goes) -- é written as Latin-1 0xe9
    ("segment", GOOD["segment"], changed(SEGMENT_PAGE, "properties.title", "Caf\u00e9")),
    ("ga4", GOOD["ga4"], changed(GA4_VIEW, "event_name", "caf\u00e9")),
    ("sendgrid", GOOD["sendgrid"], changed(SENDGRID_OPEN, "event", "caf\u00e9")),
    ("stripe", GOOD["stripe"], changed(STRIPE_INVOICE, "type", "caf\u00e9")),
    ("salesforce", SF_GOOD, "00Q5e00000Bad01,x@y.io,Web,,2026-08-03T08:30:00Z,Caf\u00e9"),
]


@pytest.mark.parametrize(("source", "good", "bad"), LATIN1, ids=[s for s, _, _ in LATIN1])
def test_latin1_bytes_are_quarantined_naming_the_line_never_replaced(
    tmp_path: Path, source: str, good: list[str], bad: str
) -> None:
    path = write_records(source, tmp_path, [good[0], "PLACEHOLDER", good[1]])
    # ensure_ascii would write \u00e9; the byte must be raw Latin-1 in an otherwise UTF-8 file.
    text = path.read_text(encoding="utf-8").replace("PLACEHOLDER", bad.replace("\\u00e9", "\u00e9"))
    head, tail = text.split("\u00e9")
    path.write_bytes(head.encode() + b"\xe9" + tail.encode())
    physical = head.count("\n") + 1  # the line the byte is on, counted from the file itself
    column = len(head) - (head.rfind("\n") + 1) + 1
    parsed = PARSERS[source](path, f"{source}/{path.name}")
    assert len(parsed.rows) == 2
    (rejected,) = parsed.rejected
    field = "Description: " if source == "salesforce" else ""
    assert rejected.reason == (
        f"{field}not UTF-8: byte 0xe9 at line {physical}, column {column} "
        "(a Latin-1 export?); nothing was replaced"
    )
    assert "Caf\\xe9" in rejected.raw or "caf\\xe9" in rejected.raw  # shown, not replaced
    everything = json.dumps([r.raw for r in parsed.rows] + [rejected.raw], ensure_ascii=False)
    assert "\ufffd" not in everything


# --- the safety net and the time readers --------------------------------------------------------


def test_a_bug_costs_one_record_and_says_so() -> None:
    def parse_one(line: int, text: str, value: Any) -> RawRow:
        if value == "bug":
            return {}["missing"]  # type: ignore[no-any-return]
        if value == "bad":
            raise RecordError("field: bad")
        return RawRow(line, text, text)

    records = [(1, "a", "a"), (2, "bug", "bug"), (3, "bad", "bad"), (4, "b", "b")]
    parsed = parse_records("x", "x/f", records, parse_one, "x")
    assert [r.line for r in parsed.rows] == [1, 4]
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (2, f"{INTERNAL_ERROR}: KeyError: 'missing'"),
        (3, "field: bad"),
    ]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (-99999999999, "t: absurd unix seconds -99999999999 (before 2000 or after 2100)"),
        (True, "t: not unix seconds: True"),
        # Long values are cut in the middle (reprlib: integers at 40 characters, 18 + 19).
        (10**400, "t: not unix seconds: 1" + "0" * 17 + "..." + "0" * 19),
        (float("nan"), "t: absurd unix seconds nan (before 2000 or after 2100)"),
        ("946684799", "t: absurd unix seconds '946684799' (before 2000 or after 2100)"),
    ],
)
def test_unix_seconds_out_of_range_are_record_errors(value: object, reason: str) -> None:
    with pytest.raises(RecordError) as info:
        parse_unix_seconds(value, "t")
    assert str(info.value) == reason


def test_unix_seconds_at_the_edges_of_the_range() -> None:
    assert parse_unix_seconds("946684800", "t").isoformat() == "2000-01-01T00:00:00+00:00"
    with pytest.raises(RecordError, match="before 2000 or after 2100"):
        parse_unix_seconds(4102444800, "t")  # 2100-01-01 itself is out


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (-9.9e16, "t: absurd unix microseconds -9.9e+16 (before 2000 or after 2100)"),
        (
            "9" * 400,
            "t: absurd unix microseconds '"
            + "9" * 37
            + "..."
            + "9" * 38
            + "' (before 2000 or after 2100)",
        ),
        (float("inf"), "t: not unix microseconds: inf"),
        (False, "t: not unix microseconds: False"),
    ],
)
def test_unix_micros_out_of_range_are_record_errors(value: object, reason: str) -> None:
    with pytest.raises(RecordError) as info:
        parse_unix_micros(value, "t")
    assert str(info.value).startswith(reason)
