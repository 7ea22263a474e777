"""Deterministic synthetic event logs for benchmarks, written to Parquet.

    python benchmarks/generate_log.py --events 10000000 --out benchmarks/data/log_10m.parquet

Columns: ``case_id`` (string), ``activity`` (string, 30 activities), ``ts`` (UTC, rounded to
the minute so equal timestamps inside a case occur, as in real logs), ``seq`` (file order).
Cases average ten events; activities follow a loose chain with skips and loops; each case's
rows are written together and in time order (case ids in numeric, not text, order), and ties
inside a case are broken by file order (``seq``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ACTIVITIES = np.array([f"activity {i:02d}" for i in range(30)])


def generate(events: int, seed: int = 42) -> pa.Table:
    rng = np.random.default_rng(seed)
    lengths = rng.geometric(0.1, size=events // 5)
    ends = np.cumsum(lengths)
    lengths = lengths[: np.searchsorted(ends, events) + 1]
    lengths[-1] -= lengths.sum() - events
    lengths = lengths[lengths > 0]
    case = np.repeat(np.arange(len(lengths)), lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    steps = rng.choice([1, 1, 1, 2, 3, -2], size=events)
    steps[starts] = rng.integers(0, 3, size=len(starts))
    walk = np.cumsum(steps)
    walk -= np.repeat(walk[starts] - steps[starts], lengths)
    activity = np.mod(walk, len(ACTIVITIES))
    gaps = rng.exponential(3600.0, size=events)
    gaps[starts] = rng.uniform(0, 365 * 86400, size=len(starts))
    seconds = np.cumsum(gaps)
    seconds -= np.repeat(seconds[starts] - gaps[starts], lengths)
    minutes = (seconds // 60).astype("int64") * 60_000_000 + 1_767_225_600_000_000
    return pa.table(
        {
            "case_id": pa.array(np.char.add("case-", case.astype(str))),
            "activity": pa.array(ACTIVITIES[activity]),
            "ts": pa.array(minutes, type=pa.timestamp("us", tz="UTC")),
            "seq": pa.array(np.arange(events, dtype="int64")),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(generate(args.events, args.seed), args.out)
    print(f"{args.events:,} events -> {args.out}")


if __name__ == "__main__":
    main()
