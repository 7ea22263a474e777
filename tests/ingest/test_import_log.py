from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from journeymine.ingest.import_log import load_event_log


def log_table() -> pa.Table:
    t = [datetime(2026, 1, 1, 10, m, tzinfo=UTC) for m in range(5)]
    return pa.table(
        {
            "case_id": ["NA", "NA", "c2", "c2", None],
            "activity": ["register", "triage", "register", None, "x"],
            "ts": t,
            "seq": list(range(5)),
            "resource": ["ann", "bob", "ann", "bob", "ann"],
        }
    )


def test_event_log_lands_as_persons_with_accounting(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    report = load_event_log(db, log_table(), "helpdesk.xes.gz")
    assert report.totals() == {"rows_read": 5, "rows_loaded": 3, "duplicates": 0, "quarantined": 2}
    with duckdb.connect(str(db), read_only=True) as con:
        cases = con.execute(
            "SELECT attributes->>'case_id' AS c, list(activity ORDER BY occurred_at, seq) "
            "FROM touchpoints GROUP BY ALL ORDER BY c"
        ).fetchall()
        reasons = con.execute("SELECT line, reason FROM quarantine ORDER BY line").fetchall()
    assert cases == [("NA", ["register", "triage"]), ("c2", ["register"])]
    assert reasons == [(4, "missing activity"), (5, "missing case id")]
    again = load_event_log(db, log_table(), "helpdesk.xes.gz")
    assert again.skipped_files == 1 and again.files == []
