"""Staging alone, per source, two checkouts side by side: rows/s and identical output.

    python benchmarks/bench_stage.py LANDING --before SRC_A --after SRC_B [--rounds 3]

``SRC_A`` / ``SRC_B`` are ``src`` folders of two checkouts (e.g. ``git archive main src`` unpacked
somewhere, and this worktree's ``src``). For each round and each source, staging (parse and
Parquet, all workers, as ``journeymine load`` does it) runs in a fresh child process of each
checkout in turn, A B A B, so that a drift of the shared machine hits both alike; the median
rows/s of each is printed. The last round keeps both staging folders and compares them table by
table (rows sorted by lineage, Parquet part names ignored): the script fails unless every staged
table is identical.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import duckdb

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from benchmarks.bench_ingest import SURVEY_MAPPING  # noqa: E402

# One source staged in the child: prints [rows read, wall seconds, CPU seconds of it and its
# workers] (scanning and hashing the landing is not counted).
CHILD = """
import json, resource, sys, time
from pathlib import Path
import pyarrow.parquet as pq
from journeymine.ingest import load
from journeymine.spec import SurveyMapping
landing, source, folder = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
options = {"survey": {"mapping": SurveyMapping(**json.loads(sys.argv[4]))}}
def cpu():
    use = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in use)
files = [f for f in load.scan_landing(landing).files if f.source == source]
start, cpu_start = time.perf_counter(), cpu()
staged = load.stage_files(files, folder, options=options)
seconds, cpu_seconds = time.perf_counter() - start, cpu() - cpu_start
rows = sum(pq.read_table(staged.folder / "files.parquet")["rows_read"].to_pylist())
print(json.dumps([rows, seconds, cpu_seconds]))
"""

TABLES = ("files", "rows", "events", "edges", "labels", "rejected")


Run = tuple[int, float, float]  # rows read, wall seconds, CPU seconds


def stage(src: Path, landing: Path, source: str, folder: Path) -> Run:
    env = {**os.environ, "PYTHONPATH": str(src)}
    args = [sys.executable, "-c", CHILD, str(landing), source, str(folder)]
    out = subprocess.run(
        [*args, json.dumps(SURVEY_MAPPING)], env=env, check=True, capture_output=True, text=True
    ).stdout
    rows, seconds, cpu = json.loads(out.strip().splitlines()[-1])
    return int(rows), float(seconds), float(cpu)


def differences(a: Path, b: Path) -> list[str]:
    """Tables whose rows differ between two staging folders (as multisets of whole rows)."""
    con = duckdb.connect()
    found = []
    for table in TABLES:
        pattern = "files.parquet" if table == "files" else f"{table}/*.parquet"
        scans = [f"read_parquet('{folder / pattern}')" for folder in (a, b)]
        counts = con.execute(f"SELECT (SELECT count(*) FROM {scans[0]}), "
                             f"(SELECT count(*) FROM {scans[1]})").fetchall()[0]  # fmt: skip
        extra = con.execute(
            f"SELECT count(*) FROM ((FROM {scans[0]} EXCEPT ALL FROM {scans[1]}) "
            f"UNION ALL (FROM {scans[1]} EXCEPT ALL FROM {scans[0]}))"
        ).fetchall()[0][0]
        if extra or counts[0] != counts[1]:
            found.append(f"{table}: {counts[0]} vs {counts[1]} rows, {extra} differ")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("landing", type=Path)
    parser.add_argument("--before", type=Path, required=True, help="src folder A")
    parser.add_argument("--after", type=Path, required=True, help="src folder B")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-stage"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--source", action="append", help="only these sources (repeatable)")
    args = parser.parse_args()
    sources = args.source or [p.name for p in sorted(args.landing.iterdir()) if p.is_dir()]
    runs: dict[str, dict[str, list[Run]]] = {s: {"A": [], "B": []} for s in sources}
    bad: list[str] = []
    for number in range(args.rounds):
        last = number == args.rounds - 1
        for source in sources:
            for side, src in (("A", args.before), ("B", args.after)):
                folder = args.work / side / source
                shutil.rmtree(folder, ignore_errors=True)
                runs[source][side].append(stage(src, args.landing, source, folder))
                if not last:
                    shutil.rmtree(folder)
            if last:
                a, b = args.work / "A" / source, args.work / "B" / source
                bad += [f"{source} {d}" for d in differences(a, b)]
                shutil.rmtree(a), shutil.rmtree(b)
    report(runs)
    print("staged output identical" if not bad else "DIFFERENT: " + "; ".join(bad))
    sys.exit(1 if bad else 0)


def report(runs: dict[str, dict[str, list[Run]]]) -> None:
    """Per source: rows/s of wall and of CPU time (all processes), medians; then all sources."""
    print("rows/s by wall time (both workers) and by CPU time (sum of the processes), medians")
    total = {side: [0, 0.0, 0.0] for side in ("A", "B")}
    for source, sides in runs.items():
        line = []
        for side in ("A", "B"):
            rows = sides[side][0][0]
            wall = statistics.median(r[1] for r in sides[side])
            cpu = statistics.median(r[2] for r in sides[side])
            total[side] = [total[side][0] + rows, total[side][1] + wall, total[side][2] + cpu]
            line.append(f"{side} {rows / wall:>8,.0f}/s wall {rows / cpu:>8,.0f}/s CPU")
        ratio = statistics.median(a[2] / b[2] for a, b in zip(*sides.values(), strict=True))
        print(f"{source:<11} {rows:>9,} rows  " + "  ".join(line) + f"  CPU A/B x{ratio:.2f}")
    rows = total["A"][0]
    rate = {side: (rows / wall, rows / cpu) for side, (_, wall, cpu) in total.items()}
    (wall_a, cpu_a), (wall_b, cpu_b) = rate["A"], rate["B"]
    print(f"{'all':<11} {rows:>9,} rows  "
          + "  ".join(f"{s} {w:>8,.0f}/s wall {c:>8,.0f}/s CPU" for s, (w, c) in rate.items())
          + f"  B/A x{wall_b / wall_a:.2f} wall, x{cpu_b / cpu_a:.2f} CPU")  # fmt: skip


if __name__ == "__main__":
    main()
