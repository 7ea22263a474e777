"""The real nightly flow on the sample, night after night: exactly once, late files, a broken
source, a crash mid-load, and a second run at the same time."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb
import pytest

from journeymine.canonical import identity
from journeymine.errors import JourneymineError, WarehouseError
from journeymine.ingest import load
from journeymine.pipelines.nightly import nightly

ROOT = Path(__file__).resolve().parents[2]
LANDING = ROOT / "data" / "sample" / "landing"
JOURNEY = str(ROOT / "data" / "sample" / "journey.toml")
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def copy_night(dest: Path, until: str) -> None:
    """The landing folder as it stood on the night of ``until`` (YYYY/MM/DD): day folders and
    daily GA4 files up to that date, monthly Stripe files of finished months, no CRM, support or survey export yet."""
    for path in sorted(LANDING.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(LANDING).as_posix()
        parts = rel.split("/")
        if parts[0] in ("segment", "sendgrid") and "/".join(parts[1:4]) > until:
            continue
        if parts[0] == "ga4" and parts[1][7:15] > until.replace("/", ""):
            continue
        if parts[0] == "stripe" and not parts[1].startswith(("events-2026-08", "events-2026-09")):
            continue
        if parts[0] in ("salesforce", "zendesk", "typeform", "survey"):  # full exports, come later
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def snapshot(db: Path) -> tuple[int, ...]:
    with duckdb.connect(str(db), read_only=True) as con:
        return tuple(
            con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
            for t in ("raw_rows", "raw_events", "quarantine", "load_manifest", "touchpoints")
        )


def run(landing: Path, db: Path, out: Path):  # type: ignore[no-untyped-def]
    return nightly(landing=str(landing), warehouse_path=str(db), journey=JOURNEY, out=str(out))


def test_two_nights_then_a_repeat_then_a_late_file(tmp_path: Path) -> None:
    landing, db, out = tmp_path / "landing", tmp_path / "w.duckdb", tmp_path / "out"
    copy_night(landing, "2026/09/30")
    first = run(landing, db, out)
    assert first.files and {f.source for f in first.files} == {
        "segment",
        "ga4",
        "sendgrid",
        "stripe",
    }
    assert (out / "dashboard.html").exists()
    shutil.rmtree(landing)
    shutil.copytree(LANDING, landing)
    second = run(landing, db, out)
    assert second.skipped_files == len(first.files)
    full = tmp_path / "full.duckdb"
    run(LANDING, full, tmp_path / "out_full")
    assert snapshot(db) == snapshot(full)  # two nights = one load of everything
    before = snapshot(db)
    repeat = run(landing, db, out)
    assert repeat.files == [] and snapshot(db) == before
    late = landing / "segment" / "2026" / "08" / "02" / "late-retry.jsonl"
    late.write_text(
        '{"type": "track", "messageId": "late-1", "userId": "u-00001", "event": "Feature Used", '
        '"timestamp": "2026-08-02T10:00:00Z"}\n'
    )
    picked = run(landing, db, out)
    assert [(f.file, f.rows_loaded) for f in picked.files] == [
        ("segment/2026/08/02/late-retry.jsonl", 1)
    ]
    before = snapshot(db)
    backfill = nightly(
        landing=str(landing),
        warehouse_path=str(db),
        journey=JOURNEY,
        out=str(out),
        since=date(2026, 8, 5),
        until=date(2026, 8, 5),
        force=True,
    )
    assert backfill.files and all("2026" in f.file for f in backfill.files)
    assert {load.file_date(f.file) for f in backfill.files} == {date(2026, 8, 5)}
    assert snapshot(db) == before


def test_a_broken_file_is_left_out_alone_and_named(tmp_path: Path) -> None:
    landing, db, out = tmp_path / "landing", tmp_path / "w.duckdb", tmp_path / "out"
    copy_night(landing, "2026/08/31")
    good = landing / "sendgrid" / "2026" / "08" / "05" / "webhook-1.json"
    body = good.read_bytes()
    good.write_text("<html>502 Bad Gateway</html>")
    with pytest.raises(JourneymineError, match="sendgrid/2026/08/05/webhook-1.json"):
        run(landing, db, out)
    with duckdb.connect(str(db), read_only=True) as con:
        loaded = {f for (f,) in con.execute("SELECT file FROM load_manifest").fetchall()}
    sendgrid = {p.relative_to(landing).as_posix() for p in (landing / "sendgrid").rglob("*.json")}
    # only the broken file waits for the next night; every other SendGrid file loaded
    assert sendgrid - loaded == {"sendgrid/2026/08/05/webhook-1.json"}
    assert {"segment", "ga4", "stripe"} <= {f.split("/", 1)[0] for f in loaded}
    good.write_bytes(body)  # the vendor re-sends the body
    fixed = run(landing, db, out)
    assert [f.file for f in fixed.files] == ["sendgrid/2026/08/05/webhook-1.json"]


def test_a_crash_mid_load_leaves_the_warehouse_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing, db, out = tmp_path / "landing", tmp_path / "w.duckdb", tmp_path / "out"
    copy_night(landing, "2026/08/31")
    run(landing, db, out)
    before = snapshot(db)
    shutil.rmtree(landing)
    shutil.copytree(LANDING, landing)

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr(identity, "stitch", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        run(landing, db, out)
    assert snapshot(db) == before
    monkeypatch.undo()
    completed = run(landing, db, out)
    assert completed.files and snapshot(db) != before


def test_a_second_run_at_the_same_time_is_refused(tmp_path: Path) -> None:
    landing, db, out = tmp_path / "landing", tmp_path / "w.duckdb", tmp_path / "out"
    copy_night(landing, "2026/08/10")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from journeymine import warehouse\n"
            f"with warehouse.writer_lock({str(db)!r}):\n    print('held', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(WarehouseError, match="another journeymine run is writing"):
            run(landing, db, out)
        assert time.monotonic() - started < 25
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout:
            holder.stdout.close()
    assert not db.exists() or snapshot(db)[3] == 0
