"""Nesting depth: one stated limit for every JSON source, the same answer from any caller.

A record nested exactly MAX_DEPTH levels (the record itself is level 1) loads; one level deeper
is quarantined as TOO_DEEP with its line, in every JSON layout: JSON lines, a Stripe list page,
a SendGrid body, a Typeform and a Zendesk page. Before the limit, whether a record some hundreds
of levels deep loaded depended on how many frames the caller had already used.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import duckdb
import pytest

from journeymine.ingest import load
from journeymine.ingest.sources import _json, ga4, segment, sendgrid, stripe, typeform, zendesk
from journeymine.ingest.sources._common import ParsedFile, RecordError
from journeymine.ingest.sources._json import MAX_DEPTH, TOO_DEEP
from tests.ingest.sources.test_bad_input import (
    GA4_VIEW,
    LANDING,
    SEGMENT_PAGE,
    SENDGRID_OPEN,
    STRIPE_INVOICE,
    changed,
)
from tests.ingest.sources.test_fuzz import lines, non_blank_lines
from tests.ingest.test_load import manifest

TYPEFORM_ITEM = json.loads((LANDING / "typeform/2026/08/05/responses.json").read_text())["items"][0]
ZENDESK_TICKET = json.loads((LANDING / "zendesk/2026/08/03/tickets.json").read_text())["tickets"][0]
HOLE = "__NESTED_HERE__"


class Layout(NamedTuple):
    """How a source writes its records into one file, and where that file lands."""

    record: dict[str, Any]  # a real record of the source, from the fixtures
    key: str  # the field that tells records apart (the dedup key or part of it)
    file: str  # the landing path, under the source's folder
    parse: Callable[[Path, str], ParsedFile]
    join: Callable[[list[str]], str]  # the records' texts -> the file's text


def _lines(texts: list[str]) -> str:
    return "\n".join(texts) + "\n"


LAYOUTS = {
    "segment": Layout(
        SEGMENT_PAGE, "messageId", "segment/2026/08/03/calls.jsonl", segment.parse_file, _lines
    ),
    "ga4": Layout(GA4_VIEW, "event_name", "ga4/events_20260803.json", ga4.parse_file, _lines),
    "stripe-lines": Layout(
        STRIPE_INVOICE, "id", "stripe/events-2026-08.jsonl", stripe.parse_file, _lines
    ),
    "stripe-page": Layout(
        STRIPE_INVOICE,
        "id",
        "stripe/list-page-2026-09-06.json",
        stripe.parse_file,
        lambda texts: '{"object": "list", "data": [' + ", ".join(texts) + '], "has_more": false}',
    ),
    "stripe-page-pretty": Layout(
        STRIPE_INVOICE,
        "id",
        "stripe/list-page-2026-09-07.json",
        stripe.parse_file,
        lambda texts: (
            '{\n  "object": "list",\n  "data": [\n    '
            + ",\n    ".join(texts)
            + '\n  ],\n  "has_more": false\n}\n'
        ),
    ),
    "sendgrid": Layout(
        SENDGRID_OPEN,
        "sg_event_id",
        "sendgrid/2026/08/03/webhook-1.json",
        sendgrid.parse_file,
        lambda texts: "[\n" + ",\n".join(texts) + "\n]\n",
    ),
    "typeform": Layout(
        TYPEFORM_ITEM,
        "response_id",
        "typeform/2026/08/05/responses.json",
        typeform.parse_file,
        lambda texts: '{"total_items": 9, "page_count": 1, "items": [' + ", ".join(texts) + "]}",
    ),
    "zendesk": Layout(
        ZENDESK_TICKET,
        "id",
        "zendesk/2026/08/03/tickets.json",
        zendesk.parse_file,
        lambda texts: '{"tickets": [' + ", ".join(texts) + '], "end_of_stream": true}',
    ),
}


def depth_of(value: Any) -> int:
    """Levels of a decoded value, counted apart from the parsers: an object or array is one
    level more than its deepest member, a scalar none."""
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    return 0


def record(layout: Layout, number: int, levels: int = 0) -> str:
    """The layout's record as JSON text, its key made unique by the file and ``number``; with
    ``levels``, one member more holding arrays that many levels deep: the record then nests
    ``levels + 1``."""
    unique: str | int = f"{Path(layout.file).stem}-{number}"
    if isinstance(layout.record[layout.key], int):  # a Zendesk id is a number
        unique = 1_000 * (1 + list(LAYOUTS.values()).index(layout)) + number
    value = json.loads(changed(layout.record, layout.key, unique))
    if not levels:
        return json.dumps(value)
    value["nested"] = HOLE
    return json.dumps(value).replace(json.dumps(HOLE), "[" * levels + "]" * levels)


def write(layout: Layout, folder: Path, texts: list[str]) -> Path:
    path = folder / layout.file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(layout.join(texts), encoding="utf-8")
    return path


Outcome = tuple[list[tuple[int, str, str]], list[tuple[int, str, str]]]


def outcome(parsed: ParsedFile) -> Outcome:
    return (
        [(r.line, r.record_key, r.raw) for r in parsed.rows],
        [(r.line, r.reason, r.raw) for r in parsed.rejected],
    )


def test_the_records_around_the_limit_nest_as_their_names_say() -> None:
    # The test records themselves, measured without the code under test.
    for layout in LAYOUTS.values():
        assert depth_of(layout.record) < MAX_DEPTH
        assert depth_of(json.loads(record(layout, 1, MAX_DEPTH - 1))) == MAX_DEPTH
        assert depth_of(json.loads(record(layout, 1, MAX_DEPTH))) == MAX_DEPTH + 1


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_a_record_at_the_limit_loads_and_one_level_deeper_is_quarantined(
    tmp_path: Path, name: str
) -> None:
    layout = LAYOUTS[name]
    at_limit, deeper = record(layout, 2, MAX_DEPTH - 1), record(layout, 3, MAX_DEPTH)
    texts = [record(layout, 1), at_limit, deeper, record(layout, 4)]
    path = write(layout, tmp_path, texts)
    parsed = layout.parse(path, layout.file)
    if layout.join is _lines:  # every line read exactly once, and the records' numbers too
        assert lines(parsed) == non_blank_lines(path.read_bytes()) == [1, 2, 3, 4]
    else:
        assert lines(parsed) == [1, 2, 3, 4]
    assert [r.line for r in parsed.rows] == [1, 2, 4]
    assert json.loads(parsed.rows[1].raw) == json.loads(at_limit)
    assert [(r.line, r.reason, r.raw) for r in parsed.rejected] == [(3, TOO_DEEP, deeper)]


T = TypeVar("T")


def from_deep_stack(frames: int, call: Callable[[], T]) -> T:
    """``call()``, made ``frames`` Python frames deeper than this call."""
    if frames == 0:
        return call()
    return from_deep_stack(frames - 1, call)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_the_same_file_parses_the_same_from_a_deep_call_stack(tmp_path: Path, name: str) -> None:
    # 400 levels decode from a shallow stack but not from 700 frames deep (the recursion limit
    # is 1,000): before the limit, the record loaded or not depending on the caller.
    layout = LAYOUTS[name]
    depths = [0, MAX_DEPTH - 1, MAX_DEPTH, 400, 10_000, 0]
    texts = [record(layout, n, levels) for n, levels in enumerate(depths, start=1)]
    path = write(layout, tmp_path, texts)
    shallow = outcome(layout.parse(path, layout.file))
    deep = outcome(from_deep_stack(700, lambda: layout.parse(path, layout.file)))
    assert deep == shallow
    rows, rejected = shallow
    assert [line for line, _, _ in rows] == [1, 2, 6]
    assert rejected == [(n, TOO_DEEP, texts[n - 1]) for n in (3, 4, 5)]


def frames_in_use() -> int:
    frame, depth = sys._getframe(), 0
    while frame is not None:
        depth += 1
        frame = frame.f_back  # type: ignore[assignment]
    return depth


@pytest.mark.parametrize("name", ["segment", "sendgrid", "stripe-page", "typeform"])
def test_a_caller_without_room_for_the_limit_gets_an_error_not_a_quarantine(
    tmp_path: Path, name: str
) -> None:
    # 40 frames left below the recursion limit: the parser's own frames fit, the decoder's
    # MAX_DEPTH levels do not. The record is fine, so no reason of its own may be given.
    layout = LAYOUTS[name]
    path = write(layout, tmp_path, [record(layout, 1), record(layout, 2, MAX_DEPTH - 1)])
    room = sys.getrecursionlimit() - frames_in_use() - 40
    with pytest.raises(RecursionError, match=f"JSON nested up to {MAX_DEPTH} levels could not"):
        from_deep_stack(room, lambda: layout.parse(path, layout.file))


def test_a_load_quarantines_the_deeper_records_with_file_and_line(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    for layout in LAYOUTS.values():
        depths = [0, MAX_DEPTH - 1, MAX_DEPTH, 10_000, 0]
        write(layout, landing, [record(layout, n, d) for n, d in enumerate(depths, start=1)])
    db = tmp_path / "w.duckdb"
    report = load.load_landing(db, landing)
    assert report.errors == []
    files = manifest(db)
    # rows_read = rows_loaded + duplicates + quarantined, with each figure known
    assert files == {layout.file: (5, 3, 0, 2) for layout in LAYOUTS.values()}
    with duckdb.connect(str(db), read_only=True) as con:
        quarantined = con.execute("SELECT file, line, reason FROM quarantine").fetchall()
    expected = [(layout.file, line, TOO_DEEP) for layout in LAYOUTS.values() for line in (3, 4)]
    assert sorted(quarantined) == sorted(expected)


@pytest.mark.parametrize("name", ["stripe-page", "typeform", "zendesk"])
def test_a_page_member_nested_too_deep_outside_the_records_costs_nothing(
    tmp_path: Path, name: str
) -> None:
    # The page reads member by member; its records, all within the limit, read as usual.
    layout = LAYOUTS[name]
    texts = [record(layout, 1), record(layout, 2, MAX_DEPTH - 1)]
    path = write(layout, tmp_path, texts)
    expected = outcome(layout.parse(path, layout.file))
    assert [line for line, _, _ in expected[0]] == [1, 2] and expected[1] == []
    page = path.read_text()
    path.write_text(page[: page.rindex("}")] + ', "meta": ' + "[" * 400 + "]" * 400 + "}")
    assert outcome(layout.parse(path, layout.file)) == expected
    assert outcome(from_deep_stack(700, lambda: layout.parse(path, layout.file))) == expected


@pytest.mark.parametrize(
    ("text", "levels"),
    [
        ("[" * MAX_DEPTH + "]" * MAX_DEPTH, MAX_DEPTH),  # the shortest text at the limit
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), MAX_DEPTH + 1),  # and one past it
        ('["' + "[{" * MAX_DEPTH + '"]', 1),  # brackets inside a string are text
        ('{"a\\"[[": ' + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "}", MAX_DEPTH + 1),  # an escape
        ("{" + '"a": {' * MAX_DEPTH + "}" * MAX_DEPTH + "}", MAX_DEPTH + 1),
    ],
)
def test_a_value_past_the_limit_is_refused_by_its_depth_alone(text: str, levels: int) -> None:
    assert depth_of(json.loads(text)) == levels  # the decoder's own count, from here
    if levels <= MAX_DEPTH:
        assert _json.decode_json(text) == (json.loads(text), len(text))
    else:
        with pytest.raises(RecordError, match=f"^{TOO_DEEP}$"):
            _json.decode_json(text)
    # on a JSON line and as an array element, the same
    (_, _, line) = next(_json.json_lines(text))
    (_, _, element) = next(_json.iter_json_array(f"[{text}]", 0))
    expected = TOO_DEEP if levels > MAX_DEPTH else repr(json.loads(text))
    for value in (line, element):
        assert (str(value) if isinstance(value, RecordError) else repr(value)) == expected


def test_a_broken_line_gives_the_reason_the_decoder_meets_first_from_any_stack() -> None:
    # Broken before the deep part: the decoder stops there, from any stack, so the JSON error
    # is the reason. Broken after it, or with NaN anywhere: a caller with less room stops in
    # the deep part, so nested too deep is the reason for every caller.
    deep = "[" * 400 + "]" * 400
    lines = [
        '{"a": 1 "b": ' + deep + "}",  # a missing comma at column 9
        '{"a": ' + deep + ' "b": 1}',
        '{"a": NaN, "b": ' + deep + "}",
        '{"a": [' + '{"b": ' * 60 + "x" + "}" * 60 + "], " + '"c": ' + deep + "}",
    ]
    text = "\n".join(lines)
    shallow = list(_json.json_lines(text))
    deep_stack = from_deep_stack(700, lambda: list(_json.json_lines(text)))
    reasons = [str(value) for _, _, value in shallow]
    assert [str(value) for _, _, value in deep_stack] == reasons
    assert reasons == [
        "invalid JSON: Expecting ',' delimiter at column 9",
        TOO_DEEP,
        TOO_DEEP,
        f"invalid JSON: Expecting value at column {8 + 6 * 60}",  # x, 61 levels down
    ]
