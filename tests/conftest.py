from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from journeymine.ingest import stage
from tests.fixtures import ROOT, SAMPLE_JOURNEY, SampleRun, insert_rows, load_sample
from tests.ingest import fake_source

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect API for the whole session (it takes ~20 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    from journeymine.pipelines.nightly import stop_background_loop

    with prefect_test_harness(server_startup_timeout=120):
        yield
    stop_background_loop()  # as `journeymine run` does: no 'nanobind: leaked' wall at the end


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
        columns = ("event_id", "person_id", "activity", "actor", "occurred_at", "seq")
        columns += ("owner", "owner_name", "channel", "attributes", "source")
        values = []
        for i, row in enumerate(rows):
            owner = row[4] if len(row) > 4 else None  # type: ignore[misc]
            values.append((i + 1, *row[:4], i + 1, owner, owner, "web", "{}", "test"))
        insert_rows(con, "touchpoints", columns, values)
        return con

    return make


def run_sample(out: Path) -> SampleRun:
    """What ``journeymine run`` does to the sample, task by task, without the Prefect flow
    (load, analyse, alerts, dashboard). ``tests/test_docs.py`` checks a real ``journeymine run``
    creates the same tables and columns."""
    import journeymine as jm
    from journeymine import warehouse
    from journeymine.analyses import alerts

    db = out / "warehouse.duckdb"
    load_sample(db)
    jm.analyse(db, SAMPLE_JOURNEY, out)
    declared = alerts.load_alerts(SAMPLE_JOURNEY)
    with warehouse.transaction(db) as con:
        alerts.write_alerts(con, alerts.evaluate_alerts(con, declared), "sample")
    dashboard = jm.export_dashboard(db, out / "dashboard.html", journey=SAMPLE_JOURNEY)
    return SampleRun(db, out, dashboard)


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> SampleRun:
    """The sample, run once per session. Read it only (``sample_warehouse`` opens it
    read-only); a test that writes takes ``sample_copy``."""
    return run_sample(tmp_path_factory.mktemp("sample-run"))


@pytest.fixture(scope="session")
def generated_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh run of ``scripts/make_sample.py`` with its default seed, once per session:
    ``landing/`` and ``truths.json`` (read them, never write them)."""
    out = tmp_path_factory.mktemp("generated-sample")
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_sample.py"), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="session")
def sample_warehouse(sample_run: SampleRun) -> Path:
    """The path of the sample's warehouse (read it, never write it)."""
    return sample_run.warehouse


@pytest.fixture
def sample_copy(sample_run: SampleRun, tmp_path: Path) -> Path:
    """A private copy of the sample's warehouse, for a test that writes into it."""
    copy = tmp_path / "sample-copy" / "warehouse.duckdb"
    copy.parent.mkdir()
    shutil.copy(sample_run.warehouse, copy)
    return copy


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark by what a test uses, so no file has to remember to: the Prefect API fixture makes
    a ``prefect`` test, the headless browser (a ``chromium`` fixture or helper) a ``browser``
    one. ``make test-fast`` leaves both out."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        function = getattr(item, "function", None)
        called = set(function.__code__.co_names) if function is not None else set()
        if "prefect_harness" in names:
            item.add_marker(pytest.mark.prefect)
        if "chromium" in names or "chromium" in called:
            item.add_marker(pytest.mark.browser)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Every test module is imported: move what the imports made (pandas, pm4py, DuckDB...,
    a quarter of a million objects) out of the garbage collector's sight. ``cli.main`` ends
    with ``gc.collect()``, which walked them all on each of the suite's ~50 in-process calls
    (0.2 s each); new objects are collected as before. Undone at the end of the session."""
    gc.freeze()


def pytest_sessionfinish() -> None:
    gc.unfreeze()  # the interpreter's last collection frees DuckDB's bindings before exit


@pytest.fixture
def fake_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """Route the segment folder through the tiny fake source."""
    monkeypatch.setattr(stage, "parser_for", lambda source: fake_source.parse_file)


@pytest.fixture
def landing(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write one landing file: ``landing("a.txt", "lines...")`` under segment/."""
    root = tmp_path / "landing"

    def write(name: str, text: str) -> Path:
        path = root / "segment" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return root

    return write
