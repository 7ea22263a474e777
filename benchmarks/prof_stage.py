"""Profile staging of one source in one process (cProfile, by own time), or time the workers.

    python benchmarks/prof_stage.py LANDING SOURCE [--rows 25]
    python benchmarks/prof_stage.py LANDING all --timeline [--workers 2]

Stages ``LANDING/SOURCE`` into a temporary folder with one worker (so every call is seen) and
prints the functions that took the most time of their own. Profiling slows small functions
most: compare runs of this script with each other, and measure speed with bench_stage.py.

``--timeline`` stages (``all``: every source, in load order, as ``journeymine load`` does) with
the process pool and prints, per worker, when each chunk of files started and ended and how
busy the worker was until the last one finished: whether the work is spread evenly.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.bench_ingest import SURVEY_MAPPING  # noqa: E402
from journeymine.ingest import load, stage  # noqa: E402
from journeymine.spec import SurveyMapping  # noqa: E402

_stage_chunk = stage.stage_chunk


def timed_chunk(jobs: Any, number: int, *args: Any) -> dict[int, Any]:
    """stage_chunk, with (worker pid, start, end, files, rows) added to its outcome under -1."""
    start = time.time()
    outcome = _stage_chunk(jobs, number, *args)
    rows = sum(v for v in outcome.values() if isinstance(v, int))
    return {**outcome, -1 - number: (os.getpid(), start, time.time(), len(jobs), rows)}


def timeline(files: list[Any], folder: Path, options: Any, workers: int) -> None:
    stage.stage_chunk = timed_chunk  # type: ignore[assignment]  (forked workers see it)
    outcomes: dict[int, Any] = {}
    original = stage._stage_all

    def keep(*args: Any) -> dict[int, Any]:
        found = original(*args)
        outcomes.update(found)
        return {k: v for k, v in found.items() if k >= 0}

    stage._stage_all = keep  # type: ignore[assignment]
    began = time.time()
    stage.stage_files(files, folder, options=options, workers=workers)
    ended = time.time()
    by_worker: dict[int, list[tuple[float, float, int, int]]] = defaultdict(list)
    for pid, start, end, nfiles, rows in (v for k, v in outcomes.items() if k < 0):
        by_worker[pid].append((start - began, end - began, nfiles, rows))
    last = max(end for chunks in by_worker.values() for _, end, _, _ in chunks)
    print(f"staging {ended - began:.2f} s wall, {len(files)} files, last chunk ends {last:.2f} s")
    for pid, chunks in sorted(by_worker.items()):
        busy = sum(end - start for start, end, _, _ in chunks)
        finish = max(end for _, end, _, _ in chunks)
        rows = sum(r for *_, r in chunks)
        print(f"worker {pid}: {len(chunks)} chunks, {rows:,} rows, busy {busy:.2f} s, "
              f"done at {finish:.2f} s ({busy / last:.0%} of the span)")  # fmt: skip
        for start, end, nfiles, nrows in sorted(chunks):
            print(f"    {start:6.2f} - {end:6.2f} s  {nfiles:3d} files {nrows:>8,} rows")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("landing", type=Path)
    parser.add_argument("source", help="a source, or all")
    parser.add_argument("--rows", type=int, default=25, help="functions to print")
    parser.add_argument("--timeline", action="store_true", help="time the workers' chunks")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    options = {"survey": {"mapping": SurveyMapping(**SURVEY_MAPPING)}}
    files = [f for f in load.scan_landing(args.landing).files if args.source in ("all", f.source)]
    with tempfile.TemporaryDirectory() as tmp:
        if args.timeline:
            timeline(files, Path(tmp) / args.source, options, args.workers)
            return
        started = time.process_time()
        profile = cProfile.Profile()
        profile.enable()
        stage.stage_files(files, Path(tmp) / args.source, options=options, workers=1)
        profile.disable()
        print(f"{args.source}: {time.process_time() - started:.2f} s CPU (profiled)")
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.rows)


if __name__ == "__main__":
    main()
