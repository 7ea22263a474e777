"""The raw layer's tables, declared once: each column's name, Arrow type, SQL type and meaning.

The staging Parquet written by the parsers (``STAGED``) and the warehouse tables the loader fills
(``TABLES``) are both derived from the column groups below, so the DDL
(:data:`journeymine.warehouse.SCHEMA`), the staging Arrow schemas and the loader's column lists
cannot drift apart. The derived layers (identity, touchpoints, analyses) are created by the
modules that own them; ``docs/warehouse.md`` lists every table a run makes, and
``tests/test_docs.py`` holds the page to what a run of the sample creates.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class Column:
    name: str
    arrow: pa.DataType
    sql: str
    meaning: str


def _text(name: str, meaning: str) -> Column:
    return Column(name, pa.string(), "VARCHAR", meaning)


def _time(name: str, meaning: str) -> Column:
    return Column(name, pa.timestamp("us", tz="UTC"), "TIMESTAMPTZ", meaning)


LINEAGE = (
    _text("source", "the landing folder the file came from: segment, ga4, sendgrid, ..."),
    _text("file", "the file's path under its source folder"),
    Column("line", pa.int32(), "INTEGER", "the record's number in the file, as its parser counts"),
)
ROW = (
    _text(
        "record_key", "the vendor's dedup key of the record (messageId, sg_event_id, Id@version)"
    ),
    _text("raw", "the record exactly as exported"),
)
EVENT = (
    _text("event_key", "unique per touchpoint within its source; a newer record version wins"),
    _text("event_type", "the vendor's own name for what happened"),
    _text("activity", "the canonical activity (docs/activities.md)"),
    _text("actor", "customer or company"),
    _time("occurred_at", "when it happened, UTC"),
    _text("raw_time", "the time value exactly as exported"),
    _text("id_type", "identity node type of the person it belongs to"),
    _text("id_value", "identity node value of the person it belongs to"),
    _text("channel", "web, email, crm, billing, support, feedback"),
    _text("owner", "the company-side owner id, when the record names one"),
    _text("account_type", "the account node the record names, if any"),
    _text("account_value", "the account node's value"),
    Column("attributes", pa.string(), "JSON", "scalar attributes kept from the record"),
)
EDGE = (
    _text("src_type", "identity node type at one end"),
    _text("src_id", "identity node value at one end"),
    _text("dst_type", "identity node type at the other end"),
    _text("dst_id", "identity node value at the other end"),
    _text("rule", "why the record links them (segment_identify_email, sf_lead_email, ...)"),
    _time("observed_at", "when the record said so"),
)
LABEL = (
    _text("kind", "what is named: owner, account, ..."),
    _text("id", "the named thing's id"),
    _text("name", "its display name"),
)
REJECT = (
    _text("reason", "why the record was quarantined, naming the field"),
    _text("raw", "the record exactly as exported"),
)
RUN_ID = _text("run_id", "the load run that wrote the row")
SEQ = Column("seq", pa.int64(), "BIGINT", "load order: ties of equal timestamps break by it")
IDX = Column("idx", pa.int32(), "INTEGER", "the event's number within its record")

# Staging Parquet, one folder per table (``files`` is one file, written last).
STAGED: dict[str, tuple[Column, ...]] = {
    "files": (
        *LINEAGE[:2],
        _text("sha256", "the file's content hash: a changed file is a new version"),
        Column("rows_read", pa.int64(), "BIGINT", "records read from the file"),
        Column("file_ord", pa.int64(), "BIGINT", "the file's place in the load order"),
    ),
    "rows": (*LINEAGE, *ROW),
    "events": (*LINEAGE, IDX, *EVENT),
    "edges": (*LINEAGE, *EDGE),
    "labels": (*LINEAGE, *LABEL),
    "rejected": (*LINEAGE, *REJECT),
}

# The raw layer: what the parsers accepted, with lineage; ``dup_*`` keep the rows counted as
# duplicates, so that one can replace a loaded copy that a changed file no longer holds.
RAW: dict[str, tuple[Column, ...]] = {
    "rows": (*LINEAGE, *ROW, RUN_ID),
    "events": (SEQ, *LINEAGE, *EVENT),
    "edges": (*LINEAGE, *EDGE),
    "labels": (*LINEAGE, *LABEL),
}
_BIGINT = "BIGINT"
TABLES: dict[str, tuple[Column, ...]] = {
    **{f"raw_{name}": columns for name, columns in RAW.items()},
    **{f"dup_{name}": columns for name, columns in RAW.items()},
    "quarantine": (*LINEAGE, *REJECT, RUN_ID),
    "load_manifest": (
        *LINEAGE[:2],
        _text("sha256", "the loaded version's content hash"),
        *(
            Column(name, pa.int64(), _BIGINT, meaning)
            for name, meaning in (
                ("rows_read", "records read"),
                ("rows_loaded", "records loaded"),
                ("duplicates", "records already loaded (by their dedup key)"),
                ("quarantined", "records rejected, in quarantine"),
            )
        ),
        _time("loaded_at", "when the run loaded it"),
        RUN_ID,
    ),
    "identity_nodes": (
        _text("node_type", "identity node type"),
        _text("node_id", "identity node value"),
        Column("person_id", pa.int64(), _BIGINT, "the person it belongs to (stable across runs)"),
        _time("first_assigned_at", "when it first got that person"),
    ),
    "person_merges": (
        Column("merged_person_id", pa.int64(), _BIGINT, "a person id absorbed"),
        Column("into_person_id", pa.int64(), _BIGINT, "the id that absorbed it"),
        _time("merged_at", "when"),
        RUN_ID,
    ),
    "account_nodes": (
        _text("node_type", "account identifier type"),
        _text("node_id", "account identifier value"),
        Column("account_id", pa.int64(), _BIGINT, "the account it belongs to (stable)"),
        _time("first_assigned_at", "when it first got that account"),
    ),
}


def arrow_schema(columns: tuple[Column, ...]) -> pa.Schema:
    return pa.schema([(c.name, c.arrow) for c in columns])


def names(columns: tuple[Column, ...], prefix: str = "") -> str:
    """``a, b, c`` (or ``p.a, p.b, ...``): a column list in declared order."""
    return ", ".join(prefix + c.name for c in columns)


def create_sql(table: str, columns: tuple[Column, ...]) -> str:
    body = ", ".join(f"{c.name} {c.sql}" for c in columns)
    return f"CREATE TABLE IF NOT EXISTS {table} ({body});"


DDL = "\n".join(
    [
        "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);",
        *(create_sql(table, columns) for table, columns in TABLES.items()),
    ]
)
