"""``journeymine run`` (the README's ``make run``) ends with its own last lines: no wall of
``nanobind: leaked ...`` from DuckDB's bindings after them.

Those lines came from Prefect's background event loop, a daemon thread that kept copies of the
flow run's context (the flow, and through its globals our modules and DuckDB's types) until
the interpreter abandoned it at exit; ``stop_background_loop`` ends that loop after the run.
Whether the abandoned objects showed depended on the order modules are torn down in, so the
test runs the command as the README does, in its own process (``python -m journeymine`` is this
same ``main``), and also checks the cause itself: that loop's thread is gone at exit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"
pytestmark = [pytest.mark.slow, pytest.mark.prefect]
# ``journeymine.__main__`` plus one line on stderr at exit (registered first, so it runs after
# Prefect's own exit hooks): the threads still alive, which the interpreter will abandon.
MAIN = """
import atexit, sys, threading
from journeymine.cli import main
atexit.register(lambda: print("alive at exit:", sorted(t.name for t in threading.enumerate()),
                              file=sys.stderr))
sys.exit(main(sys.argv[1:]))
"""


def test_run_on_the_sample_ends_with_its_report_and_no_leak_warnings(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    env.pop("PREFECT_API_URL", None)  # a temporary API, as on a laptop
    db, out = tmp_path / "warehouse.duckdb", tmp_path / "out"
    command = [sys.executable, "-c", MAIN, "run", "--landing", str(SAMPLE / "landing"),
               "--warehouse", str(db), "--journey", str(SAMPLE / "journey.toml"),
               "--out", str(out)]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    said = done.stdout + done.stderr
    assert "nanobind" not in said and "leaked" not in said, done.stderr[-3000:]
    alive = [line for line in done.stderr.splitlines() if line.startswith("alive at exit:")]
    assert len(alive) == 1 and "'MainThread'" in alive[0], done.stderr[-3000:]
    assert "GlobalEventLoopThread" not in alive[0]  # the loop that held the flow run's context
    # The run's own last lines are the last thing the user reads: its row accounting, as the
    # warehouse records it, then where the dashboard is.
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.sql(
            "SELECT sum(rows_read), sum(rows_loaded), sum(duplicates), sum(quarantined) "
            "FROM load_manifest"
        ).fetchall()
    read, loaded, duplicates, quarantined = (int(n) for n in rows[0])
    assert read == loaded + duplicates + quarantined and loaded > 0
    lines = done.stdout.splitlines()
    assert lines[-1] == f"dashboard: {(out / 'dashboard.html').resolve()}"
    assert lines[-2] == f"warehouse: {db.resolve()}"
    assert (
        f"rows read {read:,} = loaded {loaded:,} + duplicates {duplicates:,} + "
        f"quarantined {quarantined:,}"
    ) in lines
