from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import duckdb
import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect API for the whole session (it takes ~20 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


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
