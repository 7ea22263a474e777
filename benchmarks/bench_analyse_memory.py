"""Peak memory of the analyses' writer, under the product's cap and under DuckDB's own limit.

    PYTHONPATH=src:. python benchmarks/bench_analyse_memory.py <loaded warehouse.duckdb> \
        --cap 1GB --cap 16GB

A warehouse loaded by ``bench_ingest.py`` or ``bench_e2e.py`` (``benchmarks/data/...``) is
copied once per cap, and every analysis of ``bench_e2e.py``'s journey spec runs on the copy in a
fresh process, inside one transaction that is rolled back (as ``runner.analyse_warehouse`` runs
them, minus the publish). Prints wall and CPU seconds and the process's peak RSS per cap, and
each analysis's time (``bench_e2e.py``'s steps) with the RSS as it started and the peak RSS
while it ran (the kernel's high-water mark, reset as each step starts). ``--src`` runs
another checkout's sources (``git archive <rev> src | tar -x -C <dir>``) with these scripts:
the same command for a before and an after.

``--in-place`` runs them on the warehouse itself instead, each statement committed as in the
working copy of a nightly run, and so rewrites its analyses tables (with what a night would
write): for a size whose copy does not fit on the disk beside DuckDB's spill (100M raw rows).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

# Marks the child's result among whatever else it prints (DuckDB's progress bar, no newline).
RESULT = "bench_analyse_memory: "
CHILD = (
    f"RESULT = {RESULT!r}\n"
    + """
import json, os, shutil, sys, time
from contextlib import contextmanager
from pathlib import Path
from bench_e2e import Clock, wrap_analysis_steps, write_spec
from journeymine import warehouse
from journeymine.analyses import runner
from journeymine.spec import load_spec
from journeymine.warehouse import settings
source, work, cap, in_place = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
db = source if in_place else work / "warehouse.duckdb"
if not in_place:
    shutil.copyfile(source, db)
spec = load_spec(write_spec(work / "journey.toml"))
con = warehouse.connect(db)
settings.apply_memory_limit(con, cap)


def rss_mb(field):  # VmRSS now, or VmHWM: the peak since the last reset
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith(field)) / 1024


class StepPeaks(Clock):
    # Each step's own peak RSS: the kernel's high-water mark is reset as a step starts (ru_maxrss
    # only grows, so it shows only the steps that raised it); a step's peak counts for the
    # steps around it, and everything between steps for the process's peak.
    def __init__(self):
        super().__init__()
        self.open, self.peak, self.peaks = [], 0.0, {}

    def mark(self):
        seen = rss_mb("VmHWM:")
        self.peak = max(self.peak, seen)
        if self.open:
            self.open[-1] = max(self.open[-1], seen)

    @contextmanager
    def step(self, name):
        self.mark()
        start = rss_mb("VmRSS:")
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        self.open.append(start)
        try:
            with super().step(name):
                yield
        finally:
            self.mark()
            peak = self.open.pop()
            if self.open:
                self.open[-1] = max(self.open[-1], peak)
            entry = self.peaks.setdefault(name, {"start_mb": start, "peak_mb": 0.0})
            entry["peak_mb"] = max(entry["peak_mb"], peak)


clock = StepPeaks()
wrap_analysis_steps(clock)
wall, cpu = time.perf_counter(), time.process_time()
if not in_place:
    con.begin()
runner.analyse(con, spec, work / "out")
if not in_place:
    con.rollback()
con.close()
clock.mark()
for name, entry in clock.peaks.items():
    clock.steps[name].update(entry)
print("\\n" + RESULT + json.dumps({"cap": cap, "wall_s": round(time.perf_counter() - wall, 1),
                  "cpu_s": round(time.process_time() - cpu, 1),
                  "peak_rss_mb": round(clock.peak), "steps": clock.steps}))
"""
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse", type=Path, help="a loaded warehouse (not changed)")
    parser.add_argument("--cap", action="append", help="a memory cap (repeatable)")
    parser.add_argument("--in-place", action="store_true", help="no copy: rewrites its analyses")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-analyse-memory"))
    parser.add_argument(
        "--src", type=Path, help="the journeymine sources to run (default: this checkout's src)"
    )
    args = parser.parse_args()
    here = Path(__file__).parent
    for cap in args.cap or ["1GB", "16GB"]:
        work = args.work / cap
        work.mkdir(parents=True, exist_ok=True)
        env_path = f"{(args.src or here.parent / 'src').resolve()}:{here}"
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD,
                str(args.warehouse),
                str(work),
                cap,
                str(int(args.in_place)),
            ],
            check=True,
            capture_output=True,
            text=True,
            env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
        )
        (work / "child.out").write_text(out.stdout)
        result = json.loads(out.stdout.rsplit(RESULT, 1)[1])
        steps = result.pop("steps")
        print(result)
        print(f"  {'step':45} {'seconds':>10} {'RSS at start':>14} {'peak in it':>12}")
        for name, step in steps.items():  # in the order they first ended
            print(
                f"  {name:45} {step['seconds']:8.1f} s {step['start_mb']:11,.0f} MB"
                f" {step['peak_mb']:9,.0f} MB"
            )
        (work / "warehouse.duckdb").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
