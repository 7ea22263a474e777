"""DuckDB's memory cap on the writer: where it comes from, and that a load past it spills and
gives the same warehouse."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

import journeymine as jm
from journeymine import warehouse
from journeymine.analyses import runner
from journeymine.errors import UsageError
from journeymine.ingest import load
from journeymine.warehouse import settings
from tests.fixtures import SAMPLE_JOURNEY, SAMPLE_LANDING

# Below the sample's working set (measured: ~13 MB spilled at 96MB, ~27 MB at 80MB; at 64MB
# the touchpoints rebuild runs out of memory), above what DuckDB cannot spill.
TINY_CAP = "80MB"


def test_sizes_are_read_as_duckdb_writes_them() -> None:
    assert settings.memory_limit_bytes("512MB") == 512 * 10**6
    assert settings.memory_limit_bytes("2GB") == 2 * 10**9
    assert settings.memory_limit_bytes("1.5GiB") == 3 * 2**29
    assert settings.memory_limit_bytes(" 64 mib ") == 64 * 2**20


def test_a_share_is_of_the_machines_ram() -> None:
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert settings.memory_limit_bytes("25%") == int(ram * 0.25)


def test_keyword_beats_environment_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(settings.ENV_VAR, raising=False)
    assert settings.memory_limit_bytes() == 10**9  # DEFAULT_MEMORY_LIMIT
    monkeypatch.setenv(settings.ENV_VAR, "3GB")
    assert settings.memory_limit_bytes() == 3 * 10**9
    assert settings.memory_limit_bytes("100MB") == 100 * 10**6


@pytest.mark.parametrize("value", ["lots", "512", "12 parsecs", "0%", "150%", "-1GB"])
def test_a_bad_value_names_the_variable_and_the_value(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(settings.ENV_VAR, value)
    with pytest.raises(UsageError, match=f"JOURNEYMINE_MEMORY_LIMIT={value!r}: not a memory size"):
        settings.memory_limit_bytes()


def test_a_cap_too_small_to_run_a_query_is_refused() -> None:
    with pytest.raises(UsageError, match="memory_limit='1MB': at least 16MB"):
        settings.memory_limit_bytes("1MB")


def test_the_cap_is_set_on_the_connection() -> None:
    con = duckdb.connect()
    settings.apply_memory_limit(con, "100MiB")
    rows = con.execute("SELECT current_setting('memory_limit')").fetchall()
    assert rows == [("100.0 MiB",)]


@pytest.mark.parametrize(
    ("cap", "rows", "parts"),
    [
        ("1GB", 15_000_000, 1),  # 15M * 64 B = 0.96e9 <= 953.6 MiB = 999,922,073 B (rounded)
        ("1GB", 16_000_000, 2),
        ("1GB", 151_000_000, 10),  # the 100M-row night's nodes: 9.66 parts
        ("8GB", 151_000_000, 2),
        ("100MiB", 0, 1),
    ],
)
def test_partitions_follow_the_cap_on_the_connection(cap: str, rows: int, parts: int) -> None:
    con = duckdb.connect()
    settings.apply_memory_limit(con, cap)
    assert settings.partitions(con, rows) == parts


@dataclass
class Capped:
    """The sample loaded twice: with DuckDB's own limits, and under a cap it must spill past."""

    free: Path
    capped: Path
    cap_seen: list[Any]  # memory_limit on the writer's connection, read during the load
    spilled_bytes: int  # the most the capped load's temp folder held


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Capped]:
    tmp = tmp_path_factory.mktemp("memory")
    free, capped = tmp / "free.duckdb", tmp / "capped.duckdb"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(settings.ENV_VAR, "4GB")
        jm.load(free, SAMPLE_LANDING, journey=SAMPLE_JOURNEY)
        mp.setenv(settings.ENV_VAR, TINY_CAP)
        cap_seen: list[Any] = []
        original = load.load_staged

        def spy(con: duckdb.DuckDBPyConnection, *args: Any) -> Any:
            cap_seen.extend(con.execute("SELECT current_setting('memory_limit')").fetchall())
            return original(con, *args)

        mp.setattr(load, "load_staged", spy)
        with _watch(capped.parent / (capped.name + ".next.tmp")) as most:
            jm.load(capped, SAMPLE_LANDING, journey=SAMPLE_JOURNEY)
    yield Capped(free, capped, cap_seen, most[0])


@contextmanager
def _watch(folder: Path) -> Iterator[list[int]]:
    """Poll a folder's size in a thread while the block runs; yields [the largest size seen]."""
    most, stop = [0], threading.Event()

    def poll() -> None:
        while not stop.is_set():
            try:
                size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            except OSError:  # a spill file deleted while we listed it
                size = 0
            most[0] = max(most[0], size)
            time.sleep(0.002)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield most
    finally:
        stop.set()
        thread.join()


def test_the_capped_load_ran_under_the_cap_and_spilled(capped: Capped) -> None:
    assert capped.cap_seen == [("76.2 MiB",)]  # 80 * 10**6 bytes, as DuckDB prints it
    assert capped.spilled_bytes > 0


# Columns that say when or in which run a row was written, not what it holds.
VOLATILE = {
    "raw_rows": ("run_id",),
    "dup_rows": ("run_id",),
    "quarantine": ("run_id",),
    "load_manifest": ("loaded_at", "run_id"),
    "identity_nodes": ("first_assigned_at",),
    "account_nodes": ("first_assigned_at",),
    "person_merges": ("merged_at", "run_id"),
    "account_merges": ("merged_at", "run_id"),
}


def _tables(db: Path) -> list[str]:
    con = warehouse.connect(db, read_only=True)
    try:
        found = con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE NOT temporary ORDER BY table_name"
        ).fetchall()
    finally:
        con.close()
    return [name for (name,) in found]


def _rows(db: Path, table: str) -> list[tuple[str, ...]]:
    exclude = VOLATILE.get(table)
    columns = f"* EXCLUDE ({', '.join(exclude)})" if exclude else "*"
    con = warehouse.connect(db, read_only=True)
    try:
        found = con.execute(f"SELECT {columns} FROM {table}").fetchall()
    finally:
        con.close()
    return sorted((tuple(str(v) for v in row) for row in found), key=repr)


def test_the_capped_load_made_the_same_tables(capped: Capped) -> None:
    assert _tables(capped.capped) == _tables(capped.free)
    assert "touchpoints" in _tables(capped.free)


def test_the_capped_load_made_the_same_rows_in_every_table(capped: Capped) -> None:
    for table in _tables(capped.free):
        free = _rows(capped.free, table)
        assert _rows(capped.capped, table) == free, table
    assert len(_rows(capped.free, "touchpoints")) > 30_000  # the sample, not an empty load


def test_a_load_past_the_cap_names_the_setting_and_leaves_the_warehouse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 24MB the sample's touchpoints rebuild needs memory DuckDB cannot spill: the load
    fails naming the cap and the variable that raises it, and publishes nothing."""
    db = tmp_path / "w.duckdb"
    jm.load(db, SAMPLE_LANDING, journey=SAMPLE_JOURNEY, sources=("segment",))  # an earlier night
    with duckdb.connect(str(db), read_only=True) as con:
        before = con.execute("SELECT count(*), sum(rows_loaded) FROM load_manifest").fetchall()
    assert before[0][0] > 0
    monkeypatch.setenv(settings.ENV_VAR, "24MB")
    with pytest.raises(warehouse.WarehouseError, match=r"cap of 24 MB .*JOURNEYMINE_MEMORY_LIMIT"):
        jm.load(db, SAMPLE_LANDING, journey=SAMPLE_JOURNEY)
    with duckdb.connect(str(db), read_only=True) as con:
        assert (
            con.execute("SELECT count(*), sum(rows_loaded) FROM load_manifest").fetchall() == before
        )


def test_the_analyses_run_under_the_cap_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cap is the writer transaction's, not the load's alone: at 10M raw rows the analyses
    peaked at 5.1 GB with DuckDB's own limit (benchmarks/README.md, Ingest)."""
    db = tmp_path / "w.duckdb"
    jm.load(db, SAMPLE_LANDING, journey=SAMPLE_JOURNEY, sources=("segment",))
    monkeypatch.setenv(settings.ENV_VAR, "300MB")
    seen: list[Any] = []
    original = runner.analyse

    def spy(con: duckdb.DuckDBPyConnection, *args: Any) -> Any:
        seen.extend(con.execute("SELECT current_setting('memory_limit')").fetchall())
        return original(con, *args)

    monkeypatch.setattr(runner, "analyse", spy)
    runner.analyse_warehouse(db, SAMPLE_JOURNEY, tmp_path / "out")
    assert seen == [("286.1 MiB",)]  # 300 * 10**6 bytes


def test_any_writer_past_the_cap_names_the_setting_and_publishes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    with warehouse.transaction(db) as con:
        con.execute("INSERT INTO load_manifest (source, file) VALUES ('segment', 'a.jsonl')")
    before = db.read_bytes()
    past_the_cap = pytest.raises(warehouse.WarehouseError, match=r"cap of 20 MB .*_MEMORY_LIMIT")
    with past_the_cap, warehouse.transaction(db, memory_limit="20MB") as con:
        con.execute("DELETE FROM load_manifest")
        # a list aggregate does not spill: 20M integers need ~160 MB at once
        con.execute("SELECT list(i) FROM range(20000000) t(i)").fetchall()
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.duckdb", "w.duckdb.lock"]
