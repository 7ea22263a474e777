"""Profile staging of one source in one process (cProfile, by own time).

    python benchmarks/prof_stage.py LANDING SOURCE [--rows 25]

Stages ``LANDING/SOURCE`` into a temporary folder with one worker (so every call is seen) and
prints the functions that took the most time of their own. Profiling slows small functions
most: compare runs of this script with each other, and measure speed with bench_stage.py.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.bench_ingest import SURVEY_MAPPING  # noqa: E402
from journeymine.ingest import load, stage  # noqa: E402
from journeymine.spec import SurveyMapping  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("landing", type=Path)
    parser.add_argument("source")
    parser.add_argument("--rows", type=int, default=25, help="functions to print")
    args = parser.parse_args()
    options = {"survey": {"mapping": SurveyMapping(**SURVEY_MAPPING)}}
    files = [f for f in load.scan_landing(args.landing).files if f.source == args.source]
    with tempfile.TemporaryDirectory() as tmp:
        started = time.process_time()
        profile = cProfile.Profile()
        profile.enable()
        stage.stage_files(files, Path(tmp) / args.source, options=options, workers=1)
        profile.disable()
        print(f"{args.source}: {time.process_time() - started:.2f} s CPU (profiled)")
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.rows)


if __name__ == "__main__":
    main()
