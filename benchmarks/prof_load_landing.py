"""Where the wall time of ``load.load_landing`` goes, phase by phase, including what lies
outside the parse and the SQL: the plan (scan + sha256), the staging pool, the working copy,
``schema.conform_all``, the CHECKPOINT and the publish.

    PYTHONPATH=src:. nice python benchmarks/prof_load_landing.py /tmp/bi1m-uf/landing-1000000

Loads the landing into a fresh warehouse in a temporary folder (``--warehouse`` to keep it).
Each phase is timed by wrapping the function that runs it; "checkpoint + publish" is the time
from the end of ``conform_all`` to the end of the transaction (CHECKPOINT, close, rename, fsync).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from journeymine import warehouse
from journeymine.canonical import identity, touchpoints
from journeymine.ingest import load, stage
from journeymine.spec import SurveyMapping
from journeymine.warehouse import schema

MARKS: list[tuple[str, float]] = []


def timed(owner: Any, name: str, label: str) -> None:
    """Replace ``owner.name`` by a wrapper recording when ``label`` starts and ends."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        MARKS.append((f"{label} start", time.perf_counter()))
        try:
            return original(*args, **kwargs)
        finally:
            MARKS.append((f"{label} end", time.perf_counter()))

    setattr(owner, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("landing", type=Path)
    parser.add_argument("--warehouse", type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_ingest import SURVEY_MAPPING

    options = {"survey": {"mapping": SurveyMapping(**SURVEY_MAPPING)}}
    for owner, name, label in (
        (load, "plan_load", "plan"),
        (load, "stage_files", "stage"),
        (stage, "_stage_all", "parse (pool)"),
        (load, "load_staged", "load_staged"),
        (identity, "stitch", "stitch"),
        (touchpoints, "build", "touchpoints"),
        (load, "commit_load", "commit_load"),
        (warehouse, "_copy", "copy"),
        (warehouse, "connect", "connect"),
        (schema, "conform_all", "conform_all"),
    ):
        timed(owner, name, label)
    with tempfile.TemporaryDirectory() as tmp:
        db = args.warehouse or Path(tmp) / "w.duckdb"
        start = time.perf_counter()
        report = load.load_landing(db, args.landing, options=options)  # type: ignore[arg-type]
        end = time.perf_counter()
    phases: dict[str, float] = {}
    opened: dict[str, float] = {}
    for mark, at in MARKS:
        label, edge = mark.rsplit(" ", 1)
        if edge == "start":
            opened[label] = at
        else:
            phases[label] = phases.get(label, 0.0) + at - opened.pop(label)
    after_conform = [at for mark, at in MARKS if mark == "conform_all end"][-1]
    phases["checkpoint + publish"] = end - after_conform
    commit_sql = phases["commit_load"] - sum(
        phases[k] for k in ("load_staged", "stitch", "touchpoints")
    )
    phases["commit_load other (BEGIN, COMMIT)"] = commit_sql
    phases["stage outside the pool"] = phases["stage"] - phases["parse (pool)"]
    print(json.dumps({"total": round(end - start, 2), "rows_read": report.totals()["rows_read"]}))
    for label, seconds in phases.items():
        print(f"{seconds:7.2f}  {label}")


if __name__ == "__main__":
    main()
