"""Paths and planted names shared by the tests (the sample's own truths are in
``data/sample/truths.json``, which ``scripts/make_sample.py`` writes beside it)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from journeymine.sql import ident

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
SAMPLE_LANDING = SAMPLE / "landing"
SAMPLE_JOURNEY = SAMPLE / "journey.toml"
SAMPLE_TRUTHS = SAMPLE / "truths.json"
DOCS = ROOT / "docs"
NOTEBOOKS = ROOT / "notebooks"
TEST_DATA = ROOT / "tests" / "data"
EVENT_LOGS = TEST_DATA / "eventlogs"
HELPDESK_LOG = EVENT_LOGS / "helpdesk.xes.gz"
PUBLIC_LOGS = ("receipt", "helpdesk", "sepsis")  # public logs in tests/data/eventlogs
FIXTURE_LANDING = TEST_DATA / "landing"

# Names the sample plants: its designed stages (journey.toml) and a stage / segment pair whose
# drop-outs the docs and notebooks drill into.
SAMPLE_STAGES = (
    "visit",
    "signup",
    "demo_requested",
    "demo_held",
    "trial",
    "paid",
    "renewed",
    "churned",
)
DRILL_STAGE = "demo_held"
DRILL_SEGMENT = "company_size=1-10"


def sample_truths() -> dict[str, Any]:
    """What the sample generator planted (counts, cut-off, deviations...)."""
    result: dict[str, Any] = json.loads(SAMPLE_TRUTHS.read_text())
    return result


@dataclass(frozen=True)
class SampleRun:
    """The bundled sample after a full nightly run: warehouse, dashboard and models in ``out``."""

    warehouse: Path
    out: Path
    dashboard: Path


@cache
def public_log(name: str) -> pa.Table:
    """The public event log ``name`` (one of ``PUBLIC_LOGS``) as read by ``read_event_log``,
    read once per test process: parsing the XES takes seconds and several test modules
    compare against the same logs. An Arrow table cannot be changed, so sharing it is safe."""
    from journeymine.mining.eventlog import read_event_log

    return read_event_log(EVENT_LOGS / f"{name}.xes.gz")


def load_sample(db: Path) -> None:
    """Load the bundled landing as ``journeymine run`` does: with the spec's source options."""
    import journeymine as jm

    report = jm.load(db, SAMPLE_LANDING, journey=SAMPLE_JOURNEY)
    assert report.errors == [], report.errors


def insert_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[object]],
) -> None:
    """Insert ``rows`` (values in ``columns`` order; other columns NULL or their default) into
    ``table`` as one statement. ``executemany`` runs its INSERT once per row, about a
    millisecond each, which made a hand-built warehouse of a few thousand touchpoints most of
    some tests' time. The INSERT casts to the table's types as a bound parameter would be:
    ISO text to TIMESTAMPTZ, text to JSON, whole floats to BIGINT."""
    values = list(zip(*rows, strict=True))
    if not values:
        return
    data = pa.table({f"c{i}": pa.array(list(column)) for i, column in enumerate(values)})
    names = ", ".join(ident(name) for name in columns)
    view = "_jm_test_rows"  # a name no table in a test warehouse has
    con.register(view, data)
    try:
        con.execute(f"INSERT INTO {ident(table)} ({names}) SELECT * FROM {view}")
    finally:
        con.unregister(view)
