"""The nightly flow's wiring, on the tiny fake source: it loads, and a re-run changes nothing."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from journeymine.ingest import stage
from journeymine.pipelines.nightly import nightly
from tests.ingest import fake_source


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_flow_loads_then_a_rerun_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stage, "parser_for", lambda source: fake_source.parse_file)
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


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_each_run_publishes_a_summary_with_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    monkeypatch.setattr(stage, "parser_for", lambda source: fake_source.parse_file)
    root = tmp_path / "landing"
    (root / "segment").mkdir(parents=True)
    (root / "segment" / "a.txt").write_text("k1,1785000000,user_id,u1,web.signed_up\n")
    db, out = str(tmp_path / "w.duckdb"), str(tmp_path / "out")
    nightly(landing=str(root), warehouse_path=db, out=out)
    (root / "segment" / "b.txt").write_text("k2,1785000100,user_id,u2,web.signed_up\n")
    nightly(landing=str(root), warehouse_path=db, out=out)
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["journeymine-run-summary"]))
        )
    latest = max(artifacts, key=lambda a: a.created)  # type: ignore[arg-type,return-value]
    text = str(latest.data)
    assert "| segment | 1 | 1 | 1 | 0 | 0 |" in text
    assert "| people | 2 | +1 |" in text
