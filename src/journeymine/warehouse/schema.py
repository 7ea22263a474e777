"""Every warehouse table, declared once: its layer, what one row is, and each column's name,
Arrow type, SQL type and meaning.

The raw layer is declared here, the derived layers in :mod:`.schema_derived` (identity,
touchpoints) and :mod:`.schema_analyses` (mining, analyses); :data:`WAREHOUSE` lists them all,
in docs/warehouse.md's order. From it come the DDL the loader creates
(:data:`journeymine.warehouse.SCHEMA`), the staging Arrow schemas and the loader's column lists,
the tables ``warehouse.replace_table`` writes, ``api.TABLES`` and the tables of
docs/warehouse.md (``scripts/make_warehouse_doc.py``). :func:`conform` holds a table in a
warehouse to its declaration; ``tests/warehouse`` holds the declaration to what a run of the
sample creates.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from journeymine.errors import WarehouseError
from journeymine.warehouse import schema_analyses, schema_derived
from journeymine.warehouse.columns import ENUM as ENUM
from journeymine.warehouse.columns import LAYERS as LAYERS
from journeymine.warehouse.columns import Column as Column
from journeymine.warehouse.columns import Table, col
from journeymine.warehouse.schema_derived import RUN_ID


def _text(name: str, meaning: str) -> Column:
    return col(name, "VARCHAR", meaning)


def _time(name: str, meaning: str) -> Column:
    return col(name, "TIMESTAMPTZ", meaning)


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
    _text("channel", "web, email, crm, billing, support, survey"),
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
SEQ = Column("seq", pa.int64(), "BIGINT", "load order: ties of equal timestamps break by it")
POS = Column(
    "pos", pa.int64(), "BIGINT", "the event's place among its file's events, as parsed (0, 1, ...)"
)

# Staging Parquet, one folder per table (``files`` is one file, written last).
STAGED: dict[str, tuple[Column, ...]] = {
    "files": (
        *LINEAGE[:2],
        _text("sha256", "the file's content hash: a changed file is a new version"),
        Column("rows_read", pa.int64(), "BIGINT", "records read from the file"),
        Column("file_ord", pa.int64(), "BIGINT", "the file's place in the load order"),
        Column("events", pa.int64(), "BIGINT", "events staged from the file"),
    ),
    "rows": (*LINEAGE, *ROW),
    "events": (*LINEAGE, POS, *EVENT),
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
# The tables a warehouse is created with (the DDL): the raw layer and the identity state a load
# keeps across runs. The modules that own the other tables create them (see WAREHOUSE).
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
    "identity_nodes": schema_derived.IDENTITY_NODES,
    "person_merges": schema_derived.PERSON_MERGES,
    "account_nodes": schema_derived.ACCOUNT_NODES,
}


def arrow_schema(columns: tuple[Column, ...]) -> pa.Schema:
    return pa.schema([(c.name, c.arrow) for c in columns])


def names(columns: tuple[Column, ...], prefix: str = "") -> str:
    """``a, b, c`` (or ``p.a, p.b, ...``): a column list in declared order."""
    return ", ".join(prefix + c.name for c in columns)


def create_sql(table: str, columns: tuple[Column, ...]) -> str:
    body = ", ".join(f"{c.name} {c.sql}" for c in columns)
    return f"CREATE TABLE IF NOT EXISTS {table} ({body});"


META = (
    _text("key", "the setting's name (schema_version)"),
    _text("value", "its value"),
)
DDL = "\n".join(
    [
        create_sql("meta", META).replace(" VARCHAR,", " VARCHAR PRIMARY KEY,", 1),
        *(create_sql(table, columns) for table, columns in TABLES.items()),
    ]
)


def _raw(name: str, row: str, layer: str = "raw") -> Table:
    return Table(name, layer, row, TABLES[name])


RAW_LAYER = (
    _raw("raw_rows", "one accepted vendor record, as exported"),
    _raw("raw_events", "one event a record yields"),
    _raw(
        "raw_edges",
        "one identity link a record states (two identifiers, the rule that links them)",
    ),
    _raw("raw_labels", "one name for an id (a Salesforce user's name, a campaign's title)"),
    _raw("quarantine", "one rejected record, with the reason naming the field"),
    _raw(
        "load_manifest",
        "one landed file version: `rows_read = rows_loaded + duplicates + quarantined`",
    ),
    Table("meta", "raw", "one setting of the warehouse (`schema_version`)", META),
    _raw("dup_rows", "a duplicate record", "duplicates"),
    _raw("dup_events", "an event of a duplicate record", "duplicates"),
    _raw("dup_edges", "a link of a duplicate record", "duplicates"),
    _raw("dup_labels", "a name of a duplicate record", "duplicates"),
)
# Every table and view a full run creates, in docs/warehouse.md's order (layer by layer).
WAREHOUSE: dict[str, Table] = {
    t.name: t
    for t in sorted(
        (
            *RAW_LAYER,
            *schema_derived.IDENTITY,
            *schema_derived.CANONICAL,
            *schema_analyses.ALL,
        ),
        key=lambda t: LAYERS.index(t.layer),  # stable: keeps the order within a layer
    )
}


def declared(name: str) -> Table:
    """The declaration of table ``name``; a :class:`WarehouseError` if there is none."""
    try:
        return WAREHOUSE[name]
    except KeyError:
        raise WarehouseError(
            f"table {name!r} is not declared in journeymine/warehouse/schema*.py: declare its "
            "columns there (docs/warehouse.md is made from the declaration)"
        ) from None


def same_type(declared_sql: str, actual: str) -> bool:
    """Whether DuckDB's name of a column's type (``information_schema``) is the declared one."""
    if declared_sql == ENUM:  # its values are the data's: any ENUM will do
        return actual.startswith("ENUM(")
    return declared_sql.replace("TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE") == actual


# The columns of the warehouse file's tables and views (not temp ones).
_MAIN_COLUMNS = (
    "SELECT table_name, column_name, data_type FROM information_schema.columns "
    "WHERE table_catalog = current_database() AND table_schema = 'main'"
)


def columns_of(con: duckdb.DuckDBPyConnection, name: str) -> list[tuple[str, str]]:
    """``(column, type)`` of a table or view of the warehouse file (not a temp one), in order."""
    return [
        (column, kind)
        for _, column, kind in con.execute(
            f"{_MAIN_COLUMNS} AND table_name = ? ORDER BY ordinal_position", [name]
        ).fetchall()
    ]


def conform(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Raise a :class:`WarehouseError` naming the table and column unless table ``name`` has
    exactly its declared columns (optional ones may be absent), in order, of the declared types."""
    _conform(name, columns_of(con, name))


def _conform(name: str, actual: list[tuple[str, str]]) -> None:
    """:func:`conform`, given the table's ``(column, type)`` in order."""
    table = declared(name)
    if not actual:
        raise WarehouseError(f"table {name!r} is not in the warehouse")
    present = {column for column, _ in actual}
    expected = [c for c in table.columns if not (c.optional and c.name not in present)]
    problems = [f"column {c.name!r} is missing" for c in expected if c.name not in present]
    problems += [
        f"column {column!r} is not declared" for column in present - {c.name for c in table.columns}
    ]
    if not problems and [c.name for c in expected] != [column for column, _ in actual]:
        problems.append(
            f"columns are in the order {[column for column, _ in actual]}, "
            f"declared {[c.name for c in expected]}"
        )
    types = dict(actual)
    problems += [
        f"column {c.name!r} is {types[c.name]}, declared {c.sql}"
        for c in expected
        if c.name in types and not same_type(c.sql, types[c.name])
    ]
    if problems:
        raise WarehouseError(
            f"table {name!r} does not match its declaration (journeymine/warehouse/schema*.py): "
            + "; ".join(problems)
        )


def conform_all(con: duckdb.DuckDBPyConnection) -> None:
    """:func:`conform` every declared table the warehouse holds so far.

    Every table's columns come from one catalogue read (this runs as every writer commits)."""
    held: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in con.execute(
        f"{_MAIN_COLUMNS} ORDER BY table_name, ordinal_position"
    ).fetchall():
        held.setdefault(table, []).append((column, kind))
    for name in WAREHOUSE:
        if name in held:
            _conform(name, held[name])
