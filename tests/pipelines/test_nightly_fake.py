"""The nightly flow's wiring, on the tiny fake source: it loads, and a re-run changes nothing."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from journeymine import load
from pipelines.nightly import nightly
from tests.load import fake_source


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_flow_loads_then_a_rerun_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(load, "parser_for", lambda source: fake_source.parse_file)
    landing = tmp_path / "landing" / "segment"
    landing.mkdir(parents=True)
    (landing / "a.txt").write_text("k1,1785000000,user_id,u1,web.signed_up\nbroken\n")
    db = tmp_path / "w.duckdb"
    first = nightly(landing=str(landing.parent), warehouse_path=str(db), out=str(tmp_path / "out"))
    assert first.totals() == {"rows_read": 2, "rows_loaded": 1, "duplicates": 0, "quarantined": 1}
    second = nightly(landing=str(landing.parent), warehouse_path=str(db), out=str(tmp_path / "out"))
    assert second.files == [] and second.skipped_files == 1
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM touchpoints").fetchone() == (1,)
