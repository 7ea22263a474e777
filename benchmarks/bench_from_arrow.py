"""``codes.from_arrow`` on the three shapes an Arrow log arrives in: grouped by case (an XES
export), in time order across cases (a raw event export) and shuffled.

    PYTHONPATH=src:. python benchmarks/bench_from_arrow.py [--events 1000000]

Uses ``bench_mining``'s generated log (``benchmarks/data/log_<events>.parquet``; run
``bench_mining.py --events N`` once to write it). Prints the best CPU time of 3 per shape.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from journeymine.mining import codes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    path = Path(__file__).parent / "data" / f"log_{args.events}.parquet"
    log = pq.read_table(path, read_dictionary=["case_id", "activity"])
    by_time = np.argsort(log.column("ts").to_numpy(), kind="stable")
    shuffled = np.random.default_rng(1).permutation(log.num_rows)
    shapes = {
        "grouped by case": log,
        "in time order": log.take(pa.array(by_time)),
        "shuffled": log.take(pa.array(shuffled)),
    }
    for name, table in shapes.items():
        best = float("inf")
        for _ in range(3):
            started = time.process_time()
            codes.from_arrow(table)
            best = min(best, time.process_time() - started)
        print(f"{name:>16}: {best:.2f} s CPU (best of 3), {table.num_rows:,} events")


if __name__ == "__main__":
    main()
