"""``replace_table`` stores an analysis result as its table is declared, or refuses it by name."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from journeymine.errors import WarehouseError
from journeymine.warehouse import replace_table, schema, store_query, transaction


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


def types(con: duckdb.DuckDBPyConnection, name: str) -> list[tuple[str, str]]:
    return schema.columns_of(con, name)


def paths(**overrides: list[object]) -> pd.DataFrame:
    columns: dict[str, list[object]] = {
        "anchor": ["trial", "trial"],
        "direction": ["dropped", "dropped"],
        "path": ["a → b", "a"],
        "people": [3, 1],
        "share": [0.75, 0.25],
    }
    return pd.DataFrame({**columns, **overrides})


def test_a_result_is_stored_with_the_declared_types_and_its_values(
    con: duckdb.DuckDBPyConnection,
) -> None:
    replace_table(con, "paths", paths())
    assert types(con, "paths") == [
        ("anchor", "VARCHAR"),
        ("direction", "VARCHAR"),
        ("path", "VARCHAR"),
        ("people", "BIGINT"),
        ("share", "DOUBLE"),
    ]
    assert con.execute("SELECT * FROM paths ORDER BY people").fetchall() == [
        ("trial", "dropped", "a", 1, 0.25),
        ("trial", "dropped", "a → b", 3, 0.75),
    ]


def test_columns_pandas_typed_by_accident_are_stored_as_declared(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """An all-null column has no type in pandas, and a gap turns integers into floats."""
    frame = paths(path=[None, None], people=[3.0, math.nan])
    replace_table(con, "paths", frame)
    assert dict(types(con, "paths"))["path"] == "VARCHAR"
    assert dict(types(con, "paths"))["people"] == "BIGINT"
    assert con.execute("SELECT path, people FROM paths ORDER BY share").fetchall() == [
        (None, None),
        (None, 3),
    ]


def test_columns_are_stored_in_declared_order(con: duckdb.DuckDBPyConnection) -> None:
    frame = paths()[["share", "people", "path", "direction", "anchor"]]
    replace_table(con, "paths", frame)
    assert [c for c, _ in types(con, "paths")] == ["anchor", "direction", "path", "people", "share"]


def test_an_optional_column_may_be_missing(con: duckdb.DuckDBPyConnection) -> None:
    frame = pd.DataFrame(
        {
            "cohort": [pd.Timestamp("2026-08-01")],
            "period": [0],
            "cohort_size": [10],
            "at_risk": [10],
            "active": [10],
            "rate": [1.0],
            "churned": [0],
            "churn_rate": [0.0],
            "stage": ["paid"],
        }
    )
    replace_table(con, "retention", frame)
    assert "revenue" not in dict(types(con, "retention"))
    with pytest.raises(WarehouseError, match=r"missing declared columns \['rate'\]"):
        replace_table(con, "retention", frame.drop(columns="rate"))


def test_a_result_with_other_columns_is_refused_naming_them(
    con: duckdb.DuckDBPyConnection,
) -> None:
    with pytest.raises(WarehouseError, match=r"'paths'.*undeclared columns \['people_share'\]"):
        replace_table(con, "paths", paths().rename(columns={"share": "people_share"}))
    assert types(con, "paths") == []  # nothing was stored


def test_an_undeclared_table_is_refused(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(WarehouseError, match="'accounts' is not declared"):
        replace_table(con, "accounts", pd.DataFrame({"account_id": [1]}))


def test_a_value_that_does_not_fit_its_declared_type_names_the_column(
    con: duckdb.DuckDBPyConnection,
) -> None:
    replace_table(con, "paths", paths())
    with pytest.raises(WarehouseError, match="'paths': column 'people' does not convert to BIGINT"):
        replace_table(con, "paths", paths(people=["3", "three"]))
    assert con.execute("SELECT sum(people) FROM paths").fetchall() == [(4,)]  # the old table


def test_a_result_without_columns_is_refused(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(WarehouseError, match="has no columns"):
        replace_table(con, "paths", pd.DataFrame())


def test_a_run_that_leaves_a_table_unlike_its_declaration_publishes_nothing(
    tmp_path: Path,
) -> None:
    db = tmp_path / "w.duckdb"
    with transaction(db) as con:
        replace_table(con, "paths", paths())
    refused = "table 'dfg' does not match.*'frequency' is missing"
    with pytest.raises(WarehouseError, match=refused), transaction(db) as con:
        replace_table(con, "paths", paths(people=[5, 5]))
        con.execute("CREATE TABLE dfg (source_activity VARCHAR, target_activity VARCHAR)")
    with duckdb.connect(str(db), read_only=True) as reader:
        assert reader.execute("SELECT sum(people) FROM paths").fetchall() == [(4,)]
        assert schema.columns_of(reader, "dfg") == []


def test_a_query_is_stored_as_declared_and_refused_by_the_same_names(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """``store_query`` casts a query's columns as ``replace_table`` casts a frame's (integers
    typed INTEGER by the query become the declared BIGINT, in declared order), and refuses a
    query whose columns differ from the declaration, naming them."""
    query = (
        "SELECT 0.25 AS share, 'trial' AS anchor, 'dropped' AS direction, 'a' AS path, "
        "$people::INTEGER AS people"
    )
    store_query(con, "paths", query, {"people": 1})
    assert types(con, "paths") == types_of_frame(con)
    assert con.execute("FROM paths").fetchall() == [("trial", "dropped", "a", 1, 0.25)]
    with pytest.raises(WarehouseError, match=r"missing declared columns \['people'\]"):
        store_query(con, "paths", query.replace(", $people::INTEGER AS people", ""))
    with pytest.raises(WarehouseError, match=r"undeclared columns \['extra'\]"):
        store_query(con, "paths", query + ", 1 AS extra", {"people": 1})


def types_of_frame(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """The types ``replace_table`` gives ``paths``, on a connection of its own."""
    other = duckdb.connect()
    replace_table(other, "paths", paths())
    return types(other, "paths")
