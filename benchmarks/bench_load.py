"""Measure loading a landing folder into a fresh warehouse: rows/s and peak memory.

    python benchmarks/bench_load.py [--landing data/sample/landing]

Each measurement runs in its own subprocess so that peak RSS is that run's alone. Printed:
parse+load wall time, input rows per second, touchpoints per second, peak RSS; then a second
load of the same folder (the idempotent no-op every night repeats).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, resource, sys, time
from journeymine.ingest.load import load_landing
start = time.perf_counter()
report = load_landing(sys.argv[1], sys.argv[2])
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "touchpoints": report.touchpoints,
                  "persons": report.persons, **report.totals(),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(warehouse: Path, landing: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(warehouse), str(landing)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--landing", default="data/sample/landing", type=Path)
    args = parser.parse_args()
    size_mb = sum(p.stat().st_size for p in args.landing.rglob("*") if p.is_file()) / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        started = time.perf_counter()
        first = measure(db, args.landing)
        second = measure(db, args.landing)
        total = time.perf_counter() - started
    print(f"landing folder: {args.landing} ({size_mb:.1f} MB on disk)")
    print(
        f"first load : {first['seconds']:.2f} s, {first['rows_read']:,.0f} rows read "
        f"({first['rows_read'] / first['seconds']:,.0f} rows/s), "
        f"{first['touchpoints']:,.0f} touchpoints "
        f"({first['touchpoints'] / first['seconds']:,.0f}/s), {first['persons']:,.0f} persons, "
        f"peak RSS {first['peak_rss_mb']:.0f} MB"
    )
    print(
        f"second load (nothing new): {second['seconds']:.2f} s, "
        f"{second['rows_read']:,.0f} rows read, peak RSS {second['peak_rss_mb']:.0f} MB"
    )
    print(f"both, with interpreter start-up: {total:.1f} s")


if __name__ == "__main__":
    main()
