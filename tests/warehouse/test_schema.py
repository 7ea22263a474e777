"""The declaration of the warehouse (warehouse/schema.py) is what a run creates, and a table that
differs from it is refused with its name and column."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

import journeymine as jm
from journeymine.errors import WarehouseError
from journeymine.warehouse import connect, schema


def created(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[bool, list[tuple[str, str]]]]:
    """Each table of the warehouse file: (is a view, [(column, DuckDB's type name)])."""
    rows = con.execute(
        "SELECT c.table_name, t.table_type = 'VIEW', c.column_name, c.data_type "
        "FROM information_schema.columns c JOIN information_schema.tables t "
        "USING (table_catalog, table_schema, table_name) "
        "WHERE c.table_catalog = current_database() AND c.table_schema = 'main' "
        "ORDER BY c.table_name, c.ordinal_position"
    ).fetchall()
    tables: dict[str, tuple[bool, list[tuple[str, str]]]] = {}
    for table, view, column, kind in rows:
        tables.setdefault(table, (view, []))[1].append((column, kind))
    return tables


def type_name(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """DuckDB's own name of a declared SQL type (TIMESTAMPTZ -> TIMESTAMP WITH TIME ZONE)."""
    return str(con.execute(f"SELECT typeof(NULL::{sql})").fetchall()[0][0])


@pytest.fixture
def sample(sample_warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect(str(sample_warehouse), read_only=True)
    con.execute("SET TimeZone = 'UTC'")  # Arrow exports name the session's zone
    yield con
    con.close()  # the notebook API opens the file with another configuration


def test_the_declaration_is_exactly_what_a_run_of_the_sample_creates(
    sample: duckdb.DuckDBPyConnection,
) -> None:
    made = created(sample)
    assert sorted(set(made) ^ set(schema.WAREHOUSE)) == []
    for name, (view, columns) in made.items():
        table = schema.WAREHOUSE[name]
        assert view == table.view, name
        assert [c for c, _ in columns] == [c.name for c in table.columns], name
        for (column, kind), declared in zip(columns, table.columns, strict=True):
            if declared.sql == schema.ENUM:  # the event log's activities, whatever they are
                assert kind.startswith("ENUM('"), (name, column, kind)
            else:
                assert kind == type_name(sample, declared.sql), (name, column)


def test_the_declared_arrow_types_are_what_duckdb_exports(
    sample: duckdb.DuckDBPyConnection,
) -> None:
    for name, table in schema.WAREHOUSE.items():
        exported = sample.sql(f'SELECT * FROM "{name}" LIMIT 0').to_arrow_table().schema
        assert exported == schema.arrow_schema(table.columns), name


def test_every_table_of_the_run_conforms(sample: duckdb.DuckDBPyConnection) -> None:
    schema.conform_all(sample)  # raises on the first table that does not


def test_the_notebook_api_serves_exactly_the_declared_tables(sample_warehouse: Path) -> None:
    assert tuple(schema.WAREHOUSE) == jm.TABLES
    with jm.open_warehouse(sample_warehouse) as wh:
        assert wh.tables() == list(schema.WAREHOUSE)
        persons = wh.view("persons")
        assert list(persons.columns) == [c.name for c in schema.WAREHOUSE["persons"].columns]


def test_a_new_warehouse_holds_the_declared_raw_layer(tmp_path: Path) -> None:
    con = connect(tmp_path / "w.duckdb")
    made = created(con)
    assert set(made) == {"meta", *schema.TABLES}
    for name, (_, columns) in made.items():
        declared = schema.WAREHOUSE[name].columns
        assert columns == [(c.name, type_name(con, c.sql)) for c in declared], name
    schema.conform_all(con)


def test_the_layers_are_listed_in_data_flow_order() -> None:
    layers = [t.layer for t in schema.WAREHOUSE.values()]
    assert layers == sorted(layers, key=schema.LAYERS.index)
    assert set(layers) == set(schema.LAYERS)
    assert list(schema.WAREHOUSE)[:2] == ["raw_rows", "raw_events"]


def test_the_staging_arrow_schemas_come_from_the_same_columns() -> None:
    from journeymine.ingest import stage

    events = stage.TABLES["events"]
    assert events.names == ["source", "file", "line", "pos", *(c.name for c in schema.EVENT)]
    assert events.field("occurred_at").type == pa.timestamp("us", tz="UTC")
    assert events.field("line").type == pa.int32()


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


def test_conform_accepts_a_table_as_declared(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE paths (anchor VARCHAR, direction VARCHAR, path VARCHAR, "
                "people BIGINT, share DOUBLE)")  # fmt: skip
    schema.conform(con, "paths")


@pytest.mark.parametrize(
    ("columns", "problem"),
    [
        ("anchor VARCHAR, direction VARCHAR, path VARCHAR, people INTEGER, share DOUBLE",
         "column 'people' is INTEGER, declared BIGINT"),
        ("anchor VARCHAR, direction VARCHAR, path VARCHAR, share DOUBLE",
         "column 'people' is missing"),
        ("anchor VARCHAR, direction VARCHAR, path VARCHAR, people BIGINT, share DOUBLE, x INT",
         "column 'x' is not declared"),
        ("direction VARCHAR, anchor VARCHAR, path VARCHAR, people BIGINT, share DOUBLE",
         "columns are in the order ['direction', 'anchor', "),
    ],
)  # fmt: skip
def test_conform_names_the_table_and_the_column_that_differ(
    con: duckdb.DuckDBPyConnection, columns: str, problem: str
) -> None:
    con.execute(f"CREATE TABLE paths ({columns})")
    with pytest.raises(WarehouseError, match="table 'paths' does not match") as caught:
        schema.conform(con, "paths")
    assert problem in str(caught.value)


def test_conform_refuses_an_undeclared_or_absent_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE accounts (account_id BIGINT)")
    with pytest.raises(WarehouseError, match="'accounts' is not declared"):
        schema.conform(con, "accounts")
    with pytest.raises(WarehouseError, match="'paths' is not in the warehouse"):
        schema.conform(con, "paths")


def test_conform_lets_optional_columns_be_absent_but_not_the_others(
    con: duckdb.DuckDBPyConnection,
) -> None:
    without_revenue = (
        "cohort TIMESTAMP, period BIGINT, cohort_size BIGINT, at_risk BIGINT, active BIGINT, "
        "rate DOUBLE, churned BIGINT, churn_rate DOUBLE, stage VARCHAR"
    )
    con.execute(f"CREATE TABLE retention ({without_revenue})")
    schema.conform(con, "retention")
    con.execute(
        f"CREATE OR REPLACE TABLE retention ({without_revenue.replace('rate DOUBLE, ', '')})"
    )
    with pytest.raises(WarehouseError, match="column 'rate' is missing"):
        schema.conform(con, "retention")


def test_conform_takes_any_enum_where_the_declaration_says_enum(
    con: duckdb.DuckDBPyConnection,
) -> None:
    con.execute("CREATE TYPE act AS ENUM ('a', 'b')")
    con.execute("CREATE TABLE event_log (rn BIGINT, case_key BIGINT, activity act, "
                "ts TIMESTAMPTZ, seq BIGINT)")  # fmt: skip
    schema.conform(con, "event_log")
    con.execute("ALTER TABLE event_log ALTER activity TYPE VARCHAR")
    with pytest.raises(WarehouseError, match="'activity' is VARCHAR, declared ENUM"):
        schema.conform(con, "event_log")


def test_warehouse_connections_draw_no_progress_bar_on_stdout(tmp_path: Path) -> None:
    """DuckDB prints a progress bar to stdout for any query over 2 s, terminal or not; the
    nightly run's log and the CLI's report would carry it."""
    from journeymine import warehouse

    db = tmp_path / "w.duckdb"
    for read_only in (False, True):
        with warehouse.connect(db, read_only=read_only) as con:
            setting = "SELECT current_setting('enable_progress_bar')"
            assert con.execute(setting).fetchall() == [(False,)]
