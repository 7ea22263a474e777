from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from journeymine.errors import SourceFormatError
from journeymine.ingest.sources import ga4

Write = Callable[[str, str], Path]

LANDING = Path(__file__).parents[2] / "data" / "landing"
EVENTS = "ga4/events_20260803.json"
PSEUDO = "1234567890.1785744000"

# The BigQuery export schema, as far as the fixture rows use it.
VALUE = pa.struct(
    [
        ("string_value", pa.string()),
        ("int_value", pa.int64()),
        ("float_value", pa.float64()),
        ("double_value", pa.float64()),
    ]
)
SCHEMA = pa.schema(
    [
        ("event_date", pa.string()),
        ("event_timestamp", pa.int64()),
        ("event_name", pa.string()),
        ("event_params", pa.list_(pa.struct([("key", pa.string()), ("value", VALUE)]))),
        ("user_id", pa.string()),
        ("user_pseudo_id", pa.string()),
        ("device", pa.struct([("category", pa.string())])),
        ("geo", pa.struct([("country", pa.string())])),
        (
            "traffic_source",
            pa.struct([("name", pa.string()), ("medium", pa.string()), ("source", pa.string())]),
        ),
        (
            "collected_traffic_source",
            pa.struct(
                [
                    ("manual_source", pa.string()),
                    ("manual_medium", pa.string()),
                    ("manual_campaign_name", pa.string()),
                ]
            ),
        ),
        ("stream_id", pa.string()),
        ("batch_event_index", pa.int64()),
        ("batch_page_id", pa.int64()),
        ("batch_ordering_id", pa.int64()),
    ]
)


def fixture_rows() -> list[dict[str, object]]:
    """The fixture's readable rows, as BigQuery would hold them (INT64 as ints)."""
    rows = []
    for text in (LANDING / EVENTS).read_text().splitlines():
        try:
            row = json.loads(text)
        except json.JSONDecodeError:
            continue
        if isinstance(row.get("event_timestamp"), str):
            row["event_timestamp"] = int(row["event_timestamp"])
        for param in row["event_params"]:
            if isinstance(param["value"]["int_value"], str):
                param["value"]["int_value"] = int(param["value"]["int_value"])
        rows.append(row)
    return rows[:3]  # the accepted ones


def test_ndjson_rows_become_events() -> None:
    parsed = ga4.parse_file(LANDING / EVENTS, EVENTS)
    assert (parsed.source, parsed.file, parsed.rows_read) == ("ga4", EVENTS, 7)
    assert [r.line for r in parsed.rows] == [1, 2, 3]
    view, lead, form = (r.events[0] for r in parsed.rows)
    assert (view.event_type, view.activity, view.actor, view.channel) == (
        "page_view",
        "web.page_view:/guides",
        "customer",
        "web",
    )
    assert (view.id_type, view.id_value) == ("anonymous_id", PSEUDO)
    assert view.occurred_at == datetime(2026, 8, 3, 8, 0, 0, 123456, tzinfo=UTC)
    assert view.raw_time == "1785744000123456"
    assert view.attributes == {
        "page_title": "Setup <b>guide</b>",
        "ga_session_id": 1785744000,
        "engaged_session_event": 1,
        "path": "/Guides/setup",  # the query string (it carries an email) is not kept
        "device_category": "mobile",
        "country": "Germany",
        "utm_source": "google",
        "utm_medium": "cpc",
    }
    # event_timestamp and int_value as strings: BigQuery's JSON export writes INT64 that way.
    assert (lead.activity, lead.id_type, lead.id_value) == ("web.generate_lead", "user_id", "u-42")
    assert lead.occurred_at == datetime(2026, 8, 3, 8, 1, tzinfo=UTC)
    assert lead.attributes["ga_session_id"] == 1785744000
    assert lead.attributes["value"] == 49.5 and lead.attributes["path"] == "/demo"
    # No collected campaign: the user's first acquisition, all three from one source.
    assert {k: v for k, v in form.attributes.items() if k.startswith("utm_")} == {
        "utm_source": "(direct)",
        "utm_medium": "(none)",
        "utm_campaign": "(direct)",
    }


def test_dedup_keys_and_edges() -> None:
    rows = ga4.parse_file(LANDING / EVENTS, EVENTS).rows
    assert [r.record_key for r in rows] == [
        f"{PSEUDO}|1785744000123456|page_view|1785744000000|1|0",
        f"{PSEUDO}|1785744060000000|generate_lead|1785744000000|1|1",
        f"{PSEUDO}|1785744060000000|form_submit|1785744000000|1|2",
    ]
    assert all(r.events[0].event_key == r.record_key for r in rows)
    assert rows[0].edges == []
    edge = rows[1].edges[0]
    assert (edge.src_type, edge.src_id, edge.dst_type, edge.dst_id, edge.rule) == (
        "anonymous_id",
        PSEUDO,
        "user_id",
        "u-42",
        "ga4_user_id",
    )
    assert edge.observed_at == datetime(2026, 8, 3, 8, 1, tzinfo=UTC)


def test_rejects_name_line_and_field() -> None:
    rejected = ga4.parse_file(LANDING / EVENTS, EVENTS).rejected
    assert rejected[0].line == 4 and rejected[0].reason.startswith("invalid JSON")
    assert [(r.line, r.reason) for r in rejected[1:]] == [
        (5, "event_timestamp: absurd unix microseconds 1785744000 (seconds or ms?)"),
        (6, "event_timestamp: missing timestamp"),
        (7, "missing user_id and user_pseudo_id"),
    ]


def test_parquet_gives_the_same_rows_as_ndjson(tmp_path: Path) -> None:
    path = tmp_path / "events_20260803.parquet"
    pq.write_table(pa.Table.from_pylist(fixture_rows(), schema=SCHEMA), path)
    parsed = ga4.parse_file(path, "ga4/events_20260803.parquet")
    from_json = ga4.parse_file(LANDING / EVENTS, EVENTS).rows
    assert parsed.rows_read == 3 and not parsed.rejected
    assert [r.line for r in parsed.rows] == [1, 2, 3]
    assert [r.record_key for r in parsed.rows] == [r.record_key for r in from_json]
    for mine, theirs in zip(parsed.rows, from_json, strict=True):
        ours, expected = mine.events[0], theirs.events[0]
        assert (ours.activity, ours.occurred_at, ours.attributes) == (
            expected.activity,
            expected.occurred_at,
            expected.attributes,
        )
    assert json.loads(parsed.rows[0].raw)["event_name"] == "page_view"


def test_parquet_is_recognised_by_magic_and_gz_ndjson_works(tmp_path: Path, write: Write) -> None:
    path = tmp_path / "events_20260803"
    pq.write_table(pa.Table.from_pylist(fixture_rows(), schema=SCHEMA), path)
    assert ga4.parse_file(path, "ga4/events_20260803").rows_read == 3
    text = (LANDING / EVENTS).read_text()
    parsed = ga4.parse_file(write("ga4/events_20260803.json.gz", text), "x.json.gz")
    assert (len(parsed.rows), len(parsed.rejected)) == (3, 4)


def test_malformed_rows_are_rejected_not_raised(write: Write) -> None:
    base = {"event_name": "scroll", "user_pseudo_id": "p1", "event_timestamp": 1785744000000000}
    rows = [
        {**base, "event_name": ""},
        {**base, "user_pseudo_id": ["p"]},
        {**base, "event_timestamp": "soon"},
        # null is an absent field (BigQuery writes it so); unknown keys are no concern of ours.
        {**base, "event_params": None, "device": None, "page_view": 1},
        # A wrong type would lose the params silently: the row goes to quarantine instead.
        {**base, "event_params": "not a list"},
        {**base, "device": "mobile"},
    ]
    path = write("ga4/x.ndjson", "".join(json.dumps(r) + "\n" for r in rows))
    parsed = ga4.parse_file(path, "ga4/x.ndjson")
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (1, "missing event_name"),
        (2, "user_pseudo_id: not an id: ['p']"),
        (3, "event_timestamp: not unix microseconds: 'soon'"),
        (5, "event_params: expected an array, got string"),
        (6, "device: expected an object, got string 'mobile'"),
    ]
    (row,) = parsed.rows
    assert (row.line, row.events[0].activity, row.events[0].attributes) == (4, "web.scroll", {})


def test_files_that_are_not_ga4_exports_name_the_file(tmp_path: Path, write: Write) -> None:
    for name, text in {
        "ga4/a.csv": "event_name,user_pseudo_id\nx,y\n",
        "ga4/b.json": "7\n",
    }.items():
        with pytest.raises(SourceFormatError, match=name):
            ga4.parse_file(write(name, text), name)
    (tmp_path / "bad.parquet").write_text("nope")
    with pytest.raises(SourceFormatError, match="ga4/bad.parquet"):
        ga4.parse_file(tmp_path / "bad.parquet", "ga4/bad.parquet")


def test_a_param_is_its_first_non_null_typed_value(write: Write) -> None:
    def param(key: str, **value: object) -> dict[str, object]:
        slots = dict.fromkeys(("string_value", "int_value", "float_value", "double_value"))
        return {"key": key, "value": {**slots, **value}}

    row = {
        "event_name": "scroll",
        "user_pseudo_id": "p1",
        "event_timestamp": 1785744000000000,
        "event_params": [
            param("engagement_time_msec", int_value=None, double_value=1.5),  # int null: double
            param("ga_session_id", int_value="77"),  # INT64 as a string: back to an int
            param("percent_scrolled", float_value=90.0, double_value=0.5),  # float before double
            param("ga_session_id", int_value=78),  # a repeated key: the first one wins
            param("empty"),  # every slot null: no value, no attribute
        ],
    }
    parsed = ga4.parse_file(write("ga4/p.ndjson", json.dumps(row) + "\n"), "ga4/p.ndjson")
    assert parsed.rows[0].events[0].attributes == {
        "engagement_time_msec": 1.5,
        "ga_session_id": 77,
        "percent_scrolled": 90.0,
    }
