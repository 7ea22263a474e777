"""Per-statement profile of ``load.load_staged`` on one staging folder, and a fingerprint of
every raw table it fills (to show two checkouts load the same rows).

    PYTHONPATH=src:. nice python benchmarks/prof_load_staged.py /tmp/stg1m [--landing DIR]

The staging folder is made once from the landing (``--landing``) if it does not hold
``files.parquet`` yet, then only read. Each run loads it into a fresh warehouse twice, under
the writers' memory cap (``warehouse.settings``, as ``load_landing``): once empty (a first
load), then again on top (every file replaces its loaded version), and prints the wall and CPU
time of each, its slowest statements and a count and hash per raw table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# run as a script, this folder is on the path
from fingerprint_warehouse import table_hashes

from journeymine import warehouse
from journeymine.ingest import load
from journeymine.warehouse import schema, settings

TIMES: list[tuple[float, str]] = []


class Timed:
    """The connection, timing each ``execute``."""

    def __init__(self, con: Any) -> None:
        self.con = con

    def execute(self, query: str, *args: Any) -> Any:
        start = time.perf_counter()
        result = self.con.execute(query, *args)
        TIMES.append((time.perf_counter() - start, " ".join(query.split())[:100]))
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self.con, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("staging", type=Path)
    parser.add_argument("--landing", type=Path)
    args = parser.parse_args()
    if not (args.staging / "files.parquet").exists():
        sys.path.insert(0, str(Path(__file__).parent))
        from bench_ingest import SURVEY_MAPPING

        from journeymine.spec import SurveyMapping

        files = load.scan_landing(args.landing).files
        options = {"survey": {"mapping": SurveyMapping(**SURVEY_MAPPING)}}
        load.stage_files(files, args.staging, options=options)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as tmp:
        con = warehouse.connect(Path(tmp) / "w.duckdb")
        settings.set_memory_limit(con, settings.memory_limit_bytes(None))
        for run in ("first", "again"):
            TIMES.clear()
            con.begin()
            start, cpu = time.perf_counter(), time.process_time()
            load.load_staged(Timed(con), [args.staging], run)  # type: ignore[arg-type]
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            print(f"load_staged ({run}) {wall:.2f} s wall, {cpu:.2f} s CPU")
            for seconds, query in sorted(TIMES, reverse=True)[:8]:
                print(f"  {seconds:6.2f} {query}")
            con.commit()
            raw = [f"{k}_{t}" for k in ("raw", "dup") for t in schema.RAW]
            for table, (n, h) in table_hashes(con, [*raw, "quarantine", "load_manifest"]).items():
                print(f"  {table:16} {n:>9} {h}")
        con.close()


if __name__ == "__main__":
    main()
