from __future__ import annotations

from collections.abc import Callable

import duckdb
import pytest

Row = tuple[int, str, str, str] | tuple[int, str, str, str, str]


@pytest.fixture
def touchpoints() -> Callable[[list[Row]], duckdb.DuckDBPyConnection]:
    """A warehouse with a hand-written touchpoints table: (person, activity, actor, time[, owner])."""

    def make(rows: list[Row]) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect()
        con.execute(
            "CREATE TABLE touchpoints (event_id BIGINT, person_id BIGINT, activity VARCHAR, "
            "actor VARCHAR, occurred_at TIMESTAMPTZ, seq BIGINT, owner VARCHAR, owner_name VARCHAR, "
            "channel VARCHAR, "
            "attributes JSON, account_id BIGINT, deal_id VARCHAR, source VARCHAR)"
        )
        for i, row in enumerate(rows):
            owner = row[4] if len(row) > 4 else None  # type: ignore[misc]
            con.execute(
                "INSERT INTO touchpoints VALUES (?, ?, ?, ?, ?::TIMESTAMPTZ, ?, ?, ?, 'web', '{}', NULL, NULL, 'test')",
                [i + 1, row[0], row[1], row[2], row[3], i + 1, owner, owner],
            )
        return con

    return make
