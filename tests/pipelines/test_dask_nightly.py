"""Done means (issue 12): the nightly pipeline on a Dask cluster of 2 worker processes gives
the single-machine run's tables, on the bundled sample (staged on the workers in batches,
mined in shards) and on a real public log imported with ``journeymine import-log``; and
``journeymine run --dask local:2`` exits cleanly.

One cluster serves the whole session (``dask_scheduler``, tests/pipelines/conftest.py); each
pipeline runs once per module, and the tests compare what those runs left.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from journeymine.cli import main
from journeymine.ingest import load
from journeymine.pipelines import scale
from journeymine.pipelines.nightly import nightly

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"
HELPDESK = ROOT / "tests" / "data" / "eventlogs" / "helpdesk.xes.gz"
# What must not differ between the two runs. The manifest's run id and load time do, by design.
TABLES = {
    "dfg": "SELECT * FROM dfg",
    "variants": "SELECT * FROM variants",
    "stage_funnel": "SELECT * FROM stage_funnel",
    "followups": "SELECT * FROM followups",
    "conformance": "SELECT * FROM conformance",
    "load_manifest": "SELECT * EXCLUDE (loaded_at, run_id) FROM load_manifest",
    # exactly-once and the load order: every event once, numbered as on one machine
    "raw_events": "SELECT seq, source, file, line, event_key, activity FROM raw_events",
}
# A journey for the helpdesk log, so its funnel, follow-ups and conformance exist too.
HELPDESK_JOURNEY = """
name = "helpdesk"
case = "person"
window = "30d"
company_activities = ["Take in charge ticket", "Resolve ticket", "Closed"]

[[stages]]
name = "assigned"
activities = ["Assign seriousness"]

[[stages]]
name = "taken"
activities = ["Take in charge ticket"]

[[stages]]
name = "resolved"
activities = ["Resolve ticket"]

[[stages]]
name = "closed"
activities = ["Closed"]

[[followups]]
name = "pickup"
triggers = ["Assign seriousness"]
responses = ["Take in charge ticket"]
sla = "1d"
"""


def table(db: Path, query: str) -> pd.DataFrame:
    """A table's rows in a canonical order (by every column), for frame equality; list
    values (a variant's activities) as tuples, which sort."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        frame = con.execute(query).df()
    finally:
        con.close()
    for column in frame.columns:
        if frame[column].map(lambda v: isinstance(v, list | np.ndarray)).any():
            frame[column] = frame[column].map(lambda v: None if v is None else tuple(v))
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def assert_same_tables(single: Path, cluster: Path, names: list[str]) -> None:
    for name in names:
        ours, reference = table(cluster, TABLES[name]), table(single, TABLES[name])
        assert len(reference) > 0, f"{name}: the single-machine run left no rows"
        pd.testing.assert_frame_equal(ours, reference, obj=name)


@pytest.fixture(scope="module")
def sample_runs(
    dask_scheduler: str, prefect_harness: None, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """The sample's nightly run on one machine and on the cluster (staging batches of at most
    512 KiB, so most sources are staged in several batches on both workers)."""
    base = tmp_path_factory.mktemp("sample")
    runs = []
    for name, dask in (("single", None), ("cluster", dask_scheduler)):
        db = base / name / "w.duckdb"
        db.parent.mkdir()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(scale, "STAGE_BATCH_BYTES", 512 << 10)
            nightly(
                landing=str(SAMPLE / "landing"),
                warehouse_path=str(db),
                journey=str(SAMPLE / "journey.toml"),
                out=str(base / name / "out"),
                dask=dask,
                shards=3,
            )
        runs.append(db)
    return runs[0], runs[1]


@pytest.mark.slow
def test_the_sample_on_a_cluster_gives_the_single_machine_tables(
    sample_runs: tuple[Path, Path],
) -> None:
    single, cluster = sample_runs
    assert_same_tables(single, cluster, list(TABLES))


@pytest.mark.slow
def test_the_sample_was_staged_in_several_batches_per_source(
    sample_runs: tuple[Path, Path],
) -> None:
    files = table(sample_runs[1], "SELECT source, file FROM load_manifest")
    plan = {s: [(f, "") for f in part.file] for s, part in files.groupby("source")}
    batches = scale.plan_batches(SAMPLE / "landing", plan, 512 << 10)
    per_source = pd.Series([s for s, _, _ in batches]).value_counts()
    assert per_source.max() > 1 and len(batches) > len(plan)  # the batching was exercised


@pytest.fixture(scope="module")
def helpdesk_runs(
    dask_scheduler: str, prefect_harness: None, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """The helpdesk log imported with ``journeymine import-log``, then reported on one machine
    and with ``--dask`` on the cluster (as ``journeymine report`` does), each on its copy."""
    base = tmp_path_factory.mktemp("helpdesk")
    spec = base / "helpdesk.toml"
    spec.write_text(HELPDESK_JOURNEY)
    single, cluster = base / "single.duckdb", base / "cluster.duckdb"
    assert main(["import-log", str(HELPDESK), "--warehouse", str(single)]) == 0
    shutil.copy(single, cluster)
    common = ["report", "--journey", str(spec)]
    assert main([*common, "--warehouse", str(single), "--out", str(base / "o1")]) == 0
    dask = ["--dask", dask_scheduler, "--shards", "4"]
    assert main([*common, "--warehouse", str(cluster), "--out", str(base / "o2"), *dask]) == 0
    return single, cluster


@pytest.mark.slow
def test_a_real_log_on_a_cluster_gives_the_single_machine_tables(
    helpdesk_runs: tuple[Path, Path],
) -> None:
    single, cluster = helpdesk_runs
    names = ["dfg", "variants", "stage_funnel", "followups", "conformance", "load_manifest"]
    assert_same_tables(single, cluster, names)
    cases = table(single, "SELECT count(DISTINCT case_key) AS n FROM event_log")
    assert cases.n[0] == 4580  # every ticket of the public log is a case


@pytest.mark.slow
def test_run_with_a_local_cluster_exits_cleanly_with_its_outputs(tmp_path: Path) -> None:
    """The CLI as a user runs it, in its own process: it used to crash (exit 139) while the
    interpreter shut down, after the work was done."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    env.pop("PREFECT_API_URL", None)  # a temporary API, as on a laptop
    db, out = tmp_path / "w.duckdb", tmp_path / "out"
    # the command, with the default 64 shards: the crash did not show with 4
    command = [sys.executable, "-m", "journeymine.cli", "run", "--landing",
               str(SAMPLE / "landing"), "--warehouse", str(db), "--journey",
               str(SAMPLE / "journey.toml"), "--out", str(out), "--dask", "local:2"]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "leaked" not in done.stderr  # Prefect's loop is stopped on the Dask path too
    assert (out / "dashboard.html").stat().st_size > 0
    # what it printed is what it loaded: every landing file, every row accounted for
    totals = table(db, TOTALS).iloc[0]
    read, loaded, duplicates, quarantined = (int(totals[c]) for c in ("r", "l", "d", "q"))
    assert read == loaded + duplicates + quarantined and loaded > 0
    assert (
        f"rows read {read:,} = loaded {loaded:,} + duplicates {duplicates:,} + "
        f"quarantined {quarantined:,}"
    ) in done.stdout
    assert int(totals.files) == len(load.scan_landing(SAMPLE / "landing").files)
    assert len(table(db, "SELECT * FROM dfg")) > 0


TOTALS = (
    "SELECT sum(rows_read) AS r, sum(rows_loaded) AS l, sum(duplicates) AS d, "
    "sum(quarantined) AS q, count(*) AS files FROM load_manifest"
)
