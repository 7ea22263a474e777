"""Peak memory of the dashboard export, section by section.

    PYTHONPATH=src:. python benchmarks/bench_export_memory.py <warehouse.duckdb> \
        --journey journey.toml --out /tmp/export-out [--src other/src] [--repeat 2]

Exports the dashboard of a warehouse whose analyses are done (``dashboard.export_report``, as
``journeymine report``, the nightly flow and ``bench_e2e.py`` run it) in a fresh child process,
the warehouse opened read-only (never changed). Prints wall and CPU seconds and the process's
peak RSS (``ru_maxrss``), then per section the seconds it took to draw and the highest RSS
sampled while it drew (a thread reads ``/proc/self/statm`` every 5 ms: RSS counts DuckDB's
buffers too, which ``tracemalloc`` would not see), and the same for writing the page.

``--src`` runs another source tree (e.g. ``git archive <tag> src | tar -x -C /tmp/base``) to
compare before and after on the same warehouse; ``--repeat`` alternates the trees given.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, os, resource, sys, threading, time
from pathlib import Path
from journeymine.dashboard import page

PAGE = os.sysconf("SC_PAGE_SIZE")
peak = [0]

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20

def sample():
    while True:
        peak[0] = max(peak[0], rss_mb())
        time.sleep(0.005)

threading.Thread(target=sample, daemon=True).start()
sections = {}
draw = page._draw

def timed(section, con, spec):
    peak[0] = rss_mb()
    t = time.perf_counter()
    try:
        return draw(section, con, spec)
    finally:
        sections[section.anchor] = {"seconds": round(time.perf_counter() - t, 2),
                                    "rss_mb": round(max(peak[0], rss_mb()))}

page._draw = timed
MARK = "bench-export-memory: "
warehouse, journey, out = sys.argv[1], sys.argv[2] or None, Path(sys.argv[3])
wall, cpu = time.perf_counter(), time.process_time()
start_rss = rss_mb()
path = page.export_report(warehouse, journey, out)
print("\\n" + MARK + json.dumps({"wall_s": round(time.perf_counter() - wall, 1),
                  "cpu_s": round(time.process_time() - cpu, 1),
                  "rss_at_start_mb": round(start_rss),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                  "html_bytes": path.stat().st_size, "sections": sections}))
"""


def run_once(src: Path, warehouse: Path, journey: Path | None, out: Path) -> dict[str, object]:
    """One export in a fresh process with ``src`` first on the path; its figures."""
    here = Path(__file__).parent
    out.mkdir(parents=True, exist_ok=True)
    env = {"PYTHONPATH": f"{src}:{here}", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(warehouse), str(journey or ""), str(out)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    # DuckDB's progress bar (a query longer than 2 s) writes to stdout too: the figures are
    # the line the child marks.
    mark = "bench-export-memory: "
    last = [line[len(mark) :] for line in done.stdout.splitlines() if line.startswith(mark)]
    if not last:
        raise SystemExit(f"the export printed no figures:\n{done.stdout[-2000:]}")
    result: dict[str, object] = json.loads(last[-1])
    return result


def show(src: Path, result: dict[str, object]) -> None:
    sections = result.pop("sections")
    assert isinstance(sections, dict)
    print(f"{src}: {result}")
    for name, step in sections.items():  # in page order
        print(f"  {name:15} {step['seconds']:7.2f} s  RSS up to {step['rss_mb']:,} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse", type=Path, help="a warehouse with its analyses (read only)")
    parser.add_argument("--journey", type=Path, help="the journey spec (the waiting section)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-export-memory"))
    parser.add_argument("--src", type=Path, action="append", help="source tree(s) to compare")
    parser.add_argument("--repeat", type=int, default=1, help="rounds over the trees")
    args = parser.parse_args()
    trees = args.src or [Path(__file__).parent.parent / "src"]
    for round_ in range(args.repeat):
        for k, src in enumerate(trees):
            out = args.out / f"tree{k}-round{round_}"
            show(src, run_once(src.resolve(), args.warehouse, args.journey, out))
            print(f"  html: {out / 'dashboard.html'}")


if __name__ == "__main__":
    main()
