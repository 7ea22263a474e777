"""Conformance on a night whose stage sequences are known, and paths of all stages in one pass.

    PYTHONPATH=src:. python benchmarks/bench_analyses_reuse.py <loaded warehouse> [--rounds 2]

On a copy of a warehouse loaded by ``bench_ingest.py`` / ``bench_e2e.py``, with
``bench_e2e.py``'s journey spec: stores the event log and the stage funnel as the runner does,
then times

* ``write_conformance`` on an empty ``conformance_fitness`` (a first night: every distinct
  stage sequence replayed in pm4py), then again (a night whose sequences are all known), and
  checks the two ``conformance`` tables are identical;
* the dropped-out paths of every stage with drop-off, one ``paths`` call per stage (as the
  runner did) against one ``dropped_paths`` call, and checks the rows are identical.

Prints wall and CPU seconds of each (CPU counts DuckDB's threads too).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_e2e import write_spec  # noqa: E402

from journeymine import warehouse  # noqa: E402
from journeymine.analyses import conformance  # noqa: E402
from journeymine.analyses.funnel import write_stage_funnel  # noqa: E402
from journeymine.analyses.paths import dropped_paths, paths  # noqa: E402
from journeymine.mining import discovery  # noqa: E402
from journeymine.mining.eventlog import log_from_touchpoints  # noqa: E402
from journeymine.spec import load_spec  # noqa: E402


def timed(what: str, call: Callable[[], Any]) -> Any:
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"  {what:48} {wall:7.2f} s wall {cpu:7.2f} s CPU")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse", type=Path, help="a loaded warehouse (not changed)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the paths comparison")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "warehouse.duckdb"
        shutil.copyfile(args.warehouse, db)
        spec = load_spec(write_spec(Path(tmp) / "journey.toml"))
        con = warehouse.connect(db)
        con.begin()
        log = discovery.materialise_log(con, log_from_touchpoints(con, case=spec.case), "event_log")
        con.execute(f"DROP TABLE IF EXISTS {conformance.FITNESS}")
        print("conformance")
        tables = []
        for night in ("first night (nothing replayed before)", "next night (same sequences)"):
            timed(night, lambda: conformance.write_conformance(con, spec, log))
            tables.append(con.execute("FROM conformance ORDER BY case_key").fetchall())
        sequences = con.execute(f"SELECT count(*) FROM {conformance.FITNESS}").fetchall()[0][0]
        print(
            f"  {sequences:,} distinct stage sequences; tables identical: {tables[0] == tables[1]}"
        )
        funnel = write_stage_funnel(con, spec, log)
        overall = funnel[funnel.segment == "all"]
        stages = overall[overall.dropped > 0].stage.tolist()
        print(f"paths of the {len(stages)} stages with drop-off ({', '.join(stages)})")
        for _ in range(args.rounds):
            each = timed(
                "one pass per stage (paths)",
                lambda: pd.concat(
                    [paths(con, s, "dropped", steps=3, top=10, log=log) for s in stages],
                    ignore_index=True,
                ),
            )
            once = timed(
                "one pass for all (dropped_paths)",
                lambda: dropped_paths(con, stages, steps=3, top=10, log=log),
            )
        print(f"  {len(once)} rows; identical: {each.equals(once)}")
        con.rollback()
        con.close()


if __name__ == "__main__":
    main()
