"""Staging a generated landing (every format) equals what DuckDB reads from the same files.

The landing is benchmarks/bench_ingest.py's generator at a small size; the expected rows,
events and edges are computed from the raw files by DuckDB's own JSON and CSV readers in SQL
written here from the vendors' formats and docs/activities.md, not by the parsers. A parser
made faster must stage exactly what these queries say.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from benchmarks.bench_ingest import SURVEY_MAPPING, generate
from journeymine.ingest import load
from journeymine.spec import SurveyMapping

ROWS = 2_000


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("generated")
    landing = root / "landing"
    assert generate(landing, ROWS, seed=5) == ROWS
    files = load.scan_landing(landing).files
    options = {"survey": {"mapping": SurveyMapping(**SURVEY_MAPPING)}}
    result = load.stage_files(files, root / "stage", workers=1, options=options)
    assert result.errors == []
    return landing, root / "stage"


def query(sql: str, landing: Path, stage: Path) -> list[tuple[Any, ...]]:
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        for table in ("rows", "events", "edges", "rejected", "labels"):
            con.execute(
                f"CREATE VIEW staged_{table} AS "
                f"SELECT * FROM read_parquet('{stage / table / '*.parquet'}')"
            )
        return sorted(con.execute(sql.replace("$landing", str(landing))).fetchall())


def staged_events(source: str, landing: Path, stage: Path) -> list[tuple[Any, ...]]:
    return query(
        "SELECT event_key, activity, actor, occurred_at, id_type, id_value, owner, attributes "
        f"FROM staged_events WHERE source = '{source}'",
        landing,
        stage,
    )


def test_every_record_is_staged_once_and_none_rejected(staged: tuple[Path, Path]) -> None:
    landing, stage = staged
    per_source = query("SELECT source, count(*) FROM staged_rows GROUP BY ALL", landing, stage)
    shares = {"segment": 760, "ga4": 480, "sendgrid": 380, "salesforce": 200, "stripe": 100}
    assert {k: v for k, v in per_source if k in shares} == shares  # the generator's mix, 2,000
    assert query("SELECT count(*) FROM staged_rejected", landing, stage) == [(0,)]
    twice = "SELECT source, file, line FROM staged_rows GROUP BY ALL HAVING count(*) > 1"
    assert query(twice, landing, stage) == []


SEGMENT = """
WITH calls AS (
    SELECT json AS j FROM read_json_objects('$landing/segment/**/*.jsonl.gz',
                                             format = 'newline_delimited')
), read AS (
    SELECT j->>'messageId' AS key, j->>'type' AS type, j->>'userId' AS user_id,
           j->>'anonymousId' AS anon, (j->>'timestamp')::TIMESTAMPTZ AS ts,
           j->'properties'->>'path' AS path, j->>'event' AS event FROM calls
)
SELECT key,
       CASE type WHEN 'page' THEN 'web.page_view:/' || lower(coalesce(split_part(path, '/', 2), ''))
                 WHEN 'identify' THEN 'web.identified'
                 ELSE 'web.' || trim(regexp_replace(lower(event), '[^0-9a-z]+', '_', 'g'), '_')
       END,
       'customer', ts,
       CASE WHEN user_id IS NULL THEN 'anonymous_id' ELSE 'user_id' END,
       coalesce(user_id, anon), NULL,
       CASE type WHEN 'page' THEN '{"path":"' || path || '","path_group":"/'
                                  || lower(split_part(path, '/', 2)) || '"}'
                 -- identify keeps non-personal traits only; track has empty properties
                 WHEN 'identify' THEN '{"company_size":"11-50"}' ELSE '{}' END
FROM read
"""


def test_a_files_events_are_placed_in_line_order_and_counted(staged: tuple[Path, Path]) -> None:
    """The load numbers events (``seq``) by their place in their file (``pos``) and the file's
    count: every parser must give its events in line order, and the counts must add up."""
    misplaced = """
        SELECT source, count(*) FILTER (WHERE pos <> want OR prev > line) AS misplaced
        FROM (SELECT source, pos, line,
                     row_number() OVER (PARTITION BY file ORDER BY pos) - 1 AS want,
                     lag(line) OVER (PARTITION BY file ORDER BY pos) AS prev
              FROM staged_events)
        GROUP BY source
    """
    placed = dict(query(misplaced, *staged))
    assert placed == dict.fromkeys(
        ["ga4", "salesforce", "segment", "sendgrid", "stripe", "survey", "typeform", "zendesk"], 0
    )
    counted = f"""
        SELECT f.file, f.events, count(e.file) FROM read_parquet('{staged[1] / "files.parquet"}') f
        LEFT JOIN staged_events e USING (file) GROUP BY ALL HAVING f.events <> count(e.file)
    """
    assert query(counted, *staged) == []


def test_segment_events_are_the_calls_read_by_duckdb(staged: tuple[Path, Path]) -> None:
    expected = query(SEGMENT, *staged)
    assert len(expected) == 760
    assert staged_events("segment", *staged) == expected


SEGMENT_EDGES = """
WITH calls AS (
    SELECT json AS j FROM read_json_objects('$landing/segment/**/*.jsonl.gz',
                                             format = 'newline_delimited')
)
SELECT 'anonymous_id', j->>'anonymousId', 'user_id', j->>'userId', 'segment_' || (j->>'type')
FROM calls WHERE j->>'userId' IS NOT NULL
UNION ALL
SELECT 'user_id', j->>'userId', 'email', lower(j->'traits'->>'email'), 'segment_identify_email'
FROM calls WHERE j->>'type' = 'identify'
"""


def test_segment_edges_link_the_ids_each_call_names(staged: tuple[Path, Path]) -> None:
    landing, stage = staged
    got = query(
        "SELECT src_type, src_id, dst_type, dst_id, rule FROM staged_edges "
        "WHERE source = 'segment'",
        landing,
        stage,
    )
    assert got == query(SEGMENT_EDGES, landing, stage)


GA4 = """
WITH rows AS (
    SELECT json AS j FROM read_json_objects('$landing/ga4/*.json', format = 'newline_delimited')
), read AS (
    SELECT (j->>'event_timestamp')::BIGINT AS micros, j->>'event_name' AS name,
           j->>'user_pseudo_id' AS pseudo, j->>'user_id' AS user_id,
           j->'event_params'->0->'value'->>'string_value' AS url,
           (j->'event_params'->1->'value'->>'int_value')::BIGINT AS session FROM rows
)
SELECT pseudo || '|' || micros || '|' || name || '|||',
       CASE name WHEN 'page_view'
            THEN 'web.page_view:/' || lower(split_part(regexp_extract(url, '//[^/]+/?([^?#]*)', 1), '/', 1))
            ELSE 'web.' || name END,
       'customer', make_timestamp(micros)::TIMESTAMPTZ,
       CASE WHEN user_id IS NULL THEN 'anonymous_id' ELSE 'user_id' END,
       coalesce(user_id, pseudo), NULL,
       '{"country":"France","device_category":"desktop","ga_session_id":' || session
       || ',"path":"/' || regexp_extract(url, '//[^/]+/?([^?#]*)', 1) || '"}'
FROM read
"""  # noqa: E501


def test_ga4_events_are_the_export_rows_read_by_duckdb(staged: tuple[Path, Path]) -> None:
    expected = query(GA4, *staged)
    assert len(expected) == 480
    assert staged_events("ga4", *staged) == expected


SENDGRID = """
WITH events AS (
    SELECT json AS j FROM read_json_objects('$landing/sendgrid/**/*.json', format = 'array')
)
SELECT j->>'sg_event_id', 'email.' || (j->>'event'),
       CASE WHEN j->>'event' IN ('processed', 'delivered') THEN 'company' ELSE 'customer' END,
       to_timestamp((j->>'timestamp')::BIGINT), 'email', j->>'email', j->'category'->>0,
       '{"category":["lifecycle"],"sg_message_id":"' || (j->>'sg_message_id') || '"}'
FROM events
"""


def test_sendgrid_events_are_the_webhook_elements_read_by_duckdb(
    staged: tuple[Path, Path],
) -> None:
    expected = query(SENDGRID, *staged)
    assert len(expected) == 380
    assert staged_events("sendgrid", *staged) == expected
    raws = query(
        "SELECT raw FROM staged_rows WHERE source = 'sendgrid' EXCEPT "
        "SELECT json::VARCHAR FROM read_json_objects('$landing/sendgrid/**/*.json', "
        "format = 'array')",
        *staged,
    )
    assert raws == []  # raw is each element as it was written (compact, ", " and ": ")


STRIPE = """
WITH events AS (
    SELECT json AS j FROM read_json_objects('$landing/stripe/*.jsonl', format = 'newline_delimited')
)
SELECT j->>'id', 'billing.customer_created', 'company', to_timestamp((j->>'created')::BIGINT),
       'stripe_customer', j->'data'->'object'->>'id', NULL,
       '{"api_version":"2024-06-20","object":"customer"}'
FROM events
"""


def test_stripe_events_are_the_event_lines_read_by_duckdb(staged: tuple[Path, Path]) -> None:
    expected = query(STRIPE, *staged)
    assert len(expected) == 100
    assert staged_events("stripe", *staged) == expected


SALESFORCE = """
SELECT 'Lead:' || Id || ':created', 'crm.lead_created', 'customer', CreatedDate::TIMESTAMPTZ,
       'sf_lead', Id, OwnerId,
       '{"Company":"' || Company || '","Country":"France","LeadSource":"Web",'
       || '"NumberOfEmployees":"30","Status":"Open"}'
FROM read_csv('$landing/salesforce/*/Lead.csv', all_varchar = true)
UNION ALL
SELECT 'Task:' || Id || ':completed', 'crm.call_completed', 'company',
       CompletedDateTime::TIMESTAMPTZ, 'sf_lead', WhoId, OwnerId,
       '{"Status":"Completed","Subject":"Call: follow-up","TaskSubtype":"Call"}'
FROM read_csv('$landing/salesforce/*/Task.csv', all_varchar = true)
"""


def test_salesforce_events_are_the_csv_rows_read_by_duckdb(staged: tuple[Path, Path]) -> None:
    expected = query(SALESFORCE, *staged)
    assert len(expected) == 200
    assert staged_events("salesforce", *staged) == expected
    keys = query(
        "SELECT record_key FROM staged_rows WHERE source = 'salesforce' EXCEPT ("
        "SELECT Id || '@' || SystemModstamp FROM read_csv('$landing/salesforce/*/Lead.csv', "
        "all_varchar = true) UNION ALL "
        "SELECT Id FROM read_csv('$landing/salesforce/*/Task.csv', all_varchar = true))",
        *staged,
    )
    assert keys == []  # a Lead's key carries its version, a Task (no SystemModstamp) its Id


# --files-per-day: the same records, in the same order, cut into the many small files real
# exports come in. Read back here with the standard library, file by file in path order.


def records(landing: Path, source: str) -> list[Any]:
    out: list[Any] = []
    for path in sorted(p for p in (landing / source).rglob("*") if p.is_file()):
        data = path.read_bytes()
        text = (gzip.decompress(data) if path.name.endswith(".gz") else data).decode()
        if source == "sendgrid":  # a webhook body is one JSON array
            out += json.loads(text)
        elif source == "stripe" and path.suffix == ".json":  # a GET /v1/events list page
            out += json.loads(text)["data"]
        else:  # JSON lines
            out += [json.loads(line) for line in text.splitlines()]
    return out


def files_of(landing: Path) -> dict[str, bytes]:
    return {
        p.relative_to(landing).as_posix(): p.read_bytes() for p in landing.rglob("*") if p.is_file()
    }


@pytest.fixture(scope="module")
def split(staged: tuple[Path, Path]) -> tuple[Path, Path]:
    landing = staged[0].parent / "landing-x2"
    assert generate(landing, ROWS, seed=5, files_per_day=2) == ROWS
    return staged[0], landing


def test_files_per_day_cuts_the_same_records_into_more_files(split: tuple[Path, Path]) -> None:
    one, two = split
    for source in ("segment", "ga4", "sendgrid", "stripe"):
        assert records(two, source) == records(one, source), source
    # 2,000 rows: Segment 760, GA4 480, SendGrid 380 over 92 days are 4 or more a day, so two
    # files every day each; Stripe's 33 + 33 + 34 events over 60 pages a month are one a page
    # and empty pages are not written: 100 pages. The 48 other files are as they were.
    split_files, one_files = files_of(two), files_of(one)
    assert len(one_files) == 92 * 3 + 3 + 48
    assert len(split_files) == 92 * 2 * 3 + 100 + 48
    kept = ("salesforce/", "zendesk/", "typeform/", "survey/")
    assert {k: v for k, v in split_files.items() if k.startswith(kept)} == {
        k: v for k, v in one_files.items() if k.startswith(kept)
    }
    assert "segment/2026/08/01/events-01.jsonl.gz" in split_files
    assert "ga4/events_20260801-000000000001.json" in split_files
    assert "sendgrid/2026/08/01/webhook-02.json" in split_files
    pages = sorted(k for k in split_files if k.startswith("stripe/2026-08/"))
    assert [json.loads(split_files[k])["has_more"] for k in pages] == [True] * 32 + [False]


def test_files_per_day_stages_the_same_rows_and_events(
    staged: tuple[Path, Path], split: tuple[Path, Path], tmp_path: Path
) -> None:
    files = load.scan_landing(split[1]).files
    options = {"survey": {"mapping": SurveyMapping(**SURVEY_MAPPING)}}
    result = load.stage_files(files, tmp_path / "stage", workers=1, options=options)
    assert result.errors == []
    # Everything but the lineage (file, line, an event's place in its file; Stripe's raw is a
    # page element re-serialised).
    rows = "SELECT source, record_key FROM staged_rows"
    events = "SELECT * EXCLUDE (file, line, pos) FROM staged_events"
    edges = "SELECT * EXCLUDE (file, line) FROM staged_edges"
    for sql in (rows, events, edges, "SELECT count(*) FROM staged_rejected"):
        assert query(sql, split[1], tmp_path / "stage") == query(sql, *staged), sql
