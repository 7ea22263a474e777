"""Where the wall time of ``load.load_landing`` goes, phase by phase, including what lies
outside the parse and the SQL: the plan (scan + sha256), the staging pool, the working copy,
``schema.conform_all``, the CHECKPOINT and the publish.

    PYTHONPATH=src:. nice python benchmarks/prof_load_landing.py /tmp/bi1m-uf/landing-1000000

Loads the landing into a fresh warehouse in a temporary folder (``--warehouse`` to keep it).
Each phase is timed by wrapping the function that runs it (``bench_e2e.Clock``: a phase's time
excludes the phases inside it); "checkpoint + publish" is what no phase holds (the lock,
CHECKPOINT, close, rename, fsync).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from journeymine import warehouse
from journeymine.canonical import identity, touchpoints
from journeymine.ingest import load, stage
from journeymine.spec import SurveyMapping
from journeymine.warehouse import schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("landing", type=Path)
    parser.add_argument("--warehouse", type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_e2e import Clock
    from bench_ingest import SURVEY_MAPPING

    options = {"survey": {"mapping": SurveyMapping(**SURVEY_MAPPING)}}
    clock = Clock()  # each step's time excludes the wrapped steps inside it
    for owner, name, label in (
        (load, "plan_load", "plan"),
        (load, "stage_files", "stage outside the pool"),
        (stage, "_stage_all", "parse (pool)"),
        (load, "load_staged", "load_staged"),
        (identity, "stitch", "stitch"),
        (touchpoints, "build", "touchpoints"),
        (load, "commit_load", "commit_load other (BEGIN, COMMIT)"),
        (warehouse, "_copy", "copy"),
        (warehouse, "connect", "connect"),
        (schema, "conform_all", "conform_all"),
    ):
        clock.wrap(owner, name, label)
    with tempfile.TemporaryDirectory() as tmp:
        db = args.warehouse or Path(tmp) / "w.duckdb"
        start = time.perf_counter()
        report = load.load_landing(db, args.landing, options=options)  # type: ignore[arg-type]
        total = time.perf_counter() - start
    phases = {label: step["seconds"] for label, step in clock.steps.items()}
    # what no wrapped step holds: the lock, CHECKPOINT, close, rename and fsync
    phases["checkpoint + publish"] = total - sum(phases.values())
    print(json.dumps({"total": round(total, 2), "rows_read": report.totals()["rows_read"]}))
    for label, seconds in phases.items():
        print(f"{seconds:7.2f}  {label}")


if __name__ == "__main__":
    main()
