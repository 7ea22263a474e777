"""Peak memory of the analyses' writer, under the product's cap and under DuckDB's own limit.

    PYTHONPATH=src:. python benchmarks/bench_analyse_memory.py <loaded warehouse.duckdb> \
        --cap 1GB --cap 16GB

A warehouse loaded by ``bench_ingest.py`` or ``bench_e2e.py`` (``benchmarks/data/...``) is
copied once per cap, and every analysis of ``bench_e2e.py``'s journey spec runs on the copy in a
fresh process, inside one transaction that is rolled back (as ``runner.analyse_warehouse`` runs
them, minus the publish). Prints wall and CPU seconds and the process's peak RSS per cap, and
each analysis's time (``bench_e2e.py``'s steps) with the peak when it raised it.

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

CHILD = """
import json, resource, shutil, sys, time
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
clock = Clock()
wrap_analysis_steps(clock)
wall, cpu = time.perf_counter(), time.process_time()
if not in_place:
    con.begin()
runner.analyse(con, spec, work / "out")
if not in_place:
    con.rollback()
con.close()
print(json.dumps({"cap": cap, "wall_s": round(time.perf_counter() - wall, 1),
                  "cpu_s": round(time.process_time() - cpu, 1),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                  "steps": clock.steps}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse", type=Path, help="a loaded warehouse (not changed)")
    parser.add_argument("--cap", action="append", help="a memory cap (repeatable)")
    parser.add_argument("--in-place", action="store_true", help="no copy: rewrites its analyses")
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench-analyse-memory"))
    args = parser.parse_args()
    here = Path(__file__).parent
    for cap in args.cap or ["1GB", "16GB"]:
        work = args.work / cap
        work.mkdir(parents=True, exist_ok=True)
        env_path = f"{here.parent / 'src'}:{here}"
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
        result = json.loads(out.stdout.splitlines()[-1])
        steps = result.pop("steps")
        print(result)
        rss = 0.0
        for name, step in steps.items():  # in the order they first ended
            rise = f"peak -> {step['rss_mb']:,.0f} MB" if step["rss_mb"] > rss else ""
            rss = max(rss, step["rss_mb"])
            print(f"  {name:45} {step['seconds']:8.1f} s  {rise}")
        (work / "warehouse.duckdb").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
