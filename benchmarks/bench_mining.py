"""Our mining core against pm4py on the same log, in the same run.

    python benchmarks/bench_mining.py --events 1000000 [--events 10000000] [--skip-pm4py-above N]
    python benchmarks/bench_mining.py --events 10000000 --only ours   # iterate on ours alone
    python benchmarks/bench_mining.py --events 10000000 --profile 5   # ours step by step
    python benchmarks/bench_mining.py --events 10000000 --memory      # the runner's peak RSS
    python benchmarks/bench_mining.py --memory --warehouse copy.duckdb  # ... on its event_log

For each size: generate the log (benchmarks/generate_log.py, cached in benchmarks/data/),
then in separate subprocesses (so each peak RSS is its own) time
* ours, the discovery pass: Parquet (memory-mapped, ``discovery.read_parquet_log``) -> Arrow
  -> cases grouped in memory,
  rows moved only if the log is not already grouped by case (``codes.from_arrow``) -> the
  dfg (frequency, distinct cases, waiting times mean, median, p90), variants (with median
  case duration) and start/end activity tables stored in DuckDB, as
  ``discovery.write_discovery_from_arrow`` does, phase by phase;
* ours on the nightly run's path (analyses/runner.py), which also stores the sorted log as a DuckDB
  table (integer case keys, ENUM activities) for the other analyses, then mines it;
* pm4py: pandas read -> format_dataframe -> discover_dfg + discover_performance_dfg +
  get_variants (its whole pass, as DESIGN §7 measured it);
and check that frequencies, variant counts, start/end activities and mean/median waits of all
three are identical (fetching our tables into Python for the comparison happens after the clock
stops, as pm4py's results are already Python objects).
"""

from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# What the timed part of each script leaves behind is compared after the clock stops: the four
# tables fetched back from DuckDB (ours), the Python objects pm4py returns (pm4py).
FETCH = """
cpu = time.process_time() - cpu_start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the comparison fetch
dfg, variants = con.execute("FROM dfg").df(), con.execute("FROM variants").df()
starts = dict(con.execute("FROM start_activities").fetchall())
ends = dict(con.execute("FROM end_activities").fetchall())
result = {"dfg": {(r.source_activity, r.target_activity):
                  (int(r.frequency), r.wait_mean_s, r.wait_median_s) for r in dfg.itertuples()},
          "variants": {tuple(a): int(n) for a, n in zip(variants.activities, variants.cases)},
          "start": starts, "end": ends}
pickle.dump(result, open(sys.argv[2], "wb"))
print(json.dumps({"load_s": loaded - start, "mine_s": done - loaded, "total_s": done - start,
                  "cpu_s": cpu, "rss_mb": rss, "phases": phases,
                  "phases_cpu": phases_cpu}))
"""

PHASES = """
import json, pickle, resource, sys, time
import duckdb
from journeymine.mining import codes, discovery, eventlog
phases, phases_cpu, cpu_at = {}, {}, [time.process_time()]
def lap(name, since):
    now, cpu_now = time.perf_counter(), time.process_time()
    phases[name], phases_cpu[name] = now - since, cpu_now - cpu_at[0]
    cpu_at[0] = cpu_now
    return now
"""

# The discovery pass: Parquet -> Arrow (activities and case ids dictionary-encoded by the
# reader) -> rows grouped by case in memory -> the four tables stored in DuckDB
# (discovery.write_discovery_from_arrow, phase by phase).
OURS = (
    PHASES
    + """
cpu_start, start = time.process_time(), time.perf_counter()
cpu_at[0] = cpu_start
con = duckdb.connect()
table = discovery.read_parquet_log(sys.argv[1])
t = lap("read", start)
sorted_log = codes.from_arrow(table)
loaded = lap("group cases", t)
del table
discovery.store_discovered(con, sorted_log)
done = lap("mine + store", loaded)
"""
    + FETCH
)

# The nightly run's path (analyse.py): the log is also stored as a DuckDB table with integer
# case keys and ENUM activities in (case, time, seq) order, for the analyses that read it.
WAREHOUSE = (
    PHASES
    + """
cpu_start, start = time.process_time(), time.perf_counter()
cpu_at[0] = cpu_start
con = duckdb.connect()
con.execute("SET memory_limit = '16GB'")
con.read_parquet(sys.argv[1]).create_view("parquet")
con.execute(f"CREATE TABLE raw AS {eventlog.with_case_keys('parquet')}")
t = lap("case keys", start)
log = discovery.materialise_log(con, "raw")
loaded = lap("enum + sort + store log", t)
con.execute("DROP TABLE raw")
sorted_log = codes.read_sorted(con, log)
t = lap("read codes", loaded)
discovery.store_discovered(con, sorted_log)
done = lap("mine + store", t)
"""
    + FETCH
)

# Where ours spends its time, step by step in one process: each step's first call (cold: fresh
# memory) and its best of --repeat calls (warm), CPU seconds. Steps are the functions the
# discovery pass calls, so the figures add up to about the pass, without its threads.
PROFILE = """
import json, sys, time
import duckdb
from journeymine.mining import codes, discovery, edges, variants
path, repeat = sys.argv[1], int(sys.argv[3])
def timed(name, step):
    times, result = [], None
    for _ in range(repeat):
        cpu = time.process_time()
        result = step()
        times.append(time.process_time() - cpu)
    print(json.dumps({"step": name, "cold": times[0], "warm": min(times)}), flush=True)
    return result
read = lambda columns=None: discovery.read_parquet_log(path, columns)
table = timed("read", read)
for column in table.column_names:
    timed(f"  read {column} alone", lambda: read([column]))
timed("  case_runs (in group cases)", lambda: codes.case_runs(table.column("case_id")))
log = timed("group cases (codes.from_arrow)", lambda: codes.from_arrow(table))
timed("dfg", lambda: edges.dfg(log))
timed("  variant ids (in variants)", lambda: variants.variant_ids(log))
found = timed("variants", lambda: variants.discover(log))
timed("start/end", lambda: (edges.boundary_counts(log, True), edges.boundary_counts(log, False)))
con = duckdb.connect()
timed("store variants", lambda: discovery.store_tables(con, {"variants": found}))
timed("mine + store (store_discovered, threads)", lambda: discovery.store_discovered(con, log))
"""

# The analyses' discovery step alone, as the nightly run takes it (runner: the stored log in a
# warehouse file, DuckDB under the product's 1GB cap, ``discovery.write_discovery``): in a fresh
# process, the peak RSS of each step (a thread samples /proc/self/statm every 2 ms; the
# variants' grouping runs beside the dfg, so their two peaks overlap) and what stays after it.
# The log is materialised once per run in a scratch DuckDB file, outside the measured process.
MEMORY_BUILD = """
import sys, duckdb
from journeymine.mining import discovery, eventlog
con = duckdb.connect(sys.argv[2])
con.read_parquet(sys.argv[1]).create_view("parquet")
con.execute(f"CREATE TABLE raw AS {eventlog.with_case_keys('parquet')}")
discovery.materialise_log(con, "raw", "event_log")
con.execute("DROP TABLE raw")
con.execute("CHECKPOINT")
"""

MEMORY = """
import json, os, resource, sys, threading, time
import duckdb
from journeymine.mining import codes, discovery, edges, variants
PAGE, peak, steps, lock = os.sysconf("SC_PAGE_SIZE"), [0.0], {}, threading.Lock()
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20
def sample():  # under the lock: a step's reset of the peak is never overwritten
    while True:
        with lock:
            peak[0] = max(peak[0], rss())
        time.sleep(0.002)
threading.Thread(target=sample, daemon=True).start()
def measured(module, name, label):  # the step's own peak (the outer steps' kept too)
    inner = getattr(module, name, None)
    if inner is None:  # an older tree without this step
        return
    def wrapper(*args, **kwargs):
        start, cpu = time.perf_counter(), time.process_time()
        with lock:
            outer, before = peak[0], rss()
            peak[0] = before
        try:
            return inner(*args, **kwargs)
        finally:
            with lock:
                mine = max(peak[0], rss())
                peak[0] = max(outer, mine)
            steps[label] = {"s": round(time.perf_counter() - start, 3),
                            "cpu_s": round(time.process_time() - cpu, 3),
                            "rss_before_mb": round(before), "peak_mb": round(mine),
                            "after_mb": round(rss())}
    setattr(module, name, wrapper)
measured(codes, "read_sorted", "read codes (codes.read_sorted)")
measured(edges, "dfg", "  dfg (edges.dfg, beside variants.columns)")
measured(variants, "columns", "  variants grouped (variants.columns, thread)")
measured(discovery, "store_tables", "  store the four tables (store_tables)")
measured(discovery, "store_discovered", "mine + store (discovery.store_discovered)")
measured(discovery, "discovered", "mine (discovery.discovered)")
con = duckdb.connect(sys.argv[1], read_only=False)
con.execute("SET memory_limit = '1GB'")
start_rss = rss()
wall, cpu = time.perf_counter(), time.process_time()
con.begin()
discovery.write_discovery(con, "event_log")
seconds, cpu = time.perf_counter() - wall, time.process_time() - cpu
con.rollback()
print(json.dumps({"s": round(seconds, 2), "cpu_s": round(cpu, 2), "start_mb": round(start_rss),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                  "steps": steps}))
"""

PM4PY = """
import json, pickle, resource, sys, time, warnings
warnings.simplefilter("ignore")
import pandas as pd
import pm4py
pm4py.util.constants.SHOW_PROGRESS_BAR = False
cpu_start, start = time.process_time(), time.perf_counter()
df = pd.read_parquet(sys.argv[1])
df = df.rename(columns={"case_id": "case:concept:name", "activity": "concept:name",
                        "ts": "time:timestamp"})
df = pm4py.format_dataframe(df)
loaded = time.perf_counter()
dfg, starts, ends = pm4py.discover_dfg(df)
perf, _, _ = pm4py.discover_performance_dfg(df)
variants = pm4py.get_variants(df)
done = time.perf_counter()
cpu = time.process_time() - cpu_start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
result = {"dfg": {k: (int(v), perf[k]["mean"], perf[k]["median"]) for k, v in dfg.items()},
          "variants": {tuple(k): (v if isinstance(v, int) else len(v))
                       for k, v in variants.items()},
          "start": dict(starts), "end": dict(ends)}
pickle.dump(result, open(sys.argv[2], "wb"))
print(json.dumps({"load_s": loaded - start, "mine_s": done - loaded, "total_s": done - start,
                  "cpu_s": cpu, "rss_mb": rss}))
"""


def run(code: str, log: Path, out: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", code, str(log), str(out)], capture_output=True, text=True, check=True
    )
    figures: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return figures


def same(a: dict, b: dict) -> tuple[bool, str]:  # type: ignore[type-arg]
    if a["start"] != b["start"] or a["end"] != b["end"]:
        return False, "start/end activities differ"
    if a["variants"] != b["variants"]:
        return False, f"variants differ ({len(a['variants'])} vs {len(b['variants'])})"
    if set(a["dfg"]) != set(b["dfg"]):
        return False, "dfg edges differ"
    for edge, (freq, mean, median) in a["dfg"].items():
        f2, m2, md2 = b["dfg"][edge]
        if freq != f2 or abs(mean - m2) > 1 or abs(median - md2) > 1:
            return False, f"edge {edge} differs: {(freq, mean, median)} vs {(f2, m2, md2)}"
    return True, "identical (frequencies, variants, start/end; waits within 1 s)"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, action="append", help="log size (repeatable)")
    parser.add_argument(
        "--skip-pm4py-above",
        type=int,
        default=20_000_000,
        help="only time ours above this size (pm4py needs ~18 GB at 50M)",
    )
    parser.add_argument(
        "--only",
        choices=["ours", "stored", "pm4py"],
        action="append",
        help="run only these (repeatable); results are compared only when all three run",
    )
    parser.add_argument(
        "--memory",
        action="store_true",
        help="instead: the runner's discovery step alone, peak RSS step by step",
    )
    parser.add_argument(
        "--warehouse",
        type=Path,
        help="with --memory: a warehouse whose event_log is measured instead (a copy: it is "
        "opened for writing, the step rolled back)",
    )
    parser.add_argument(
        "--profile",
        type=int,
        metavar="REPEAT",
        help="instead: ours step by step in one process, first call and best of REPEAT",
    )
    args = parser.parse_args()
    only = set(args.only or ["ours", "stored", "pm4py"])
    if args.memory and args.warehouse:
        show_memory(args.warehouse.name, run(MEMORY, args.warehouse, args.warehouse))
        return
    for events in args.events or [1_000_000]:
        log = HERE / "data" / f"log_{events}.parquet"
        if not log.exists():
            subprocess.run(
                [
                    sys.executable,
                    str(HERE / "generate_log.py"),
                    "--events",
                    str(events),
                    "--out",
                    str(log),
                ],
                check=True,
                capture_output=True,
            )
        if args.profile:
            profile(events, log, args.profile)
            continue
        if args.memory:
            memory(events, log)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            figures = {
                name: run(code, log, Path(tmp) / f"{name}.pkl")
                for name, code in (("ours", OURS), ("stored", WAREHOUSE), ("pm4py", PM4PY))
                if name in only and (name != "pm4py" or events <= args.skip_pm4py_above)
            }
            if len(figures) == 3:
                compare(events, figures, Path(tmp))
            report(events, figures)


def profile(events: int, log: Path, repeat: int) -> None:
    """Print ours step by step (see PROFILE), CPU seconds cold and warm."""
    proc = subprocess.run(
        [sys.executable, "-c", PROFILE, str(log), "-", str(max(repeat, 1))],
        capture_output=True,
        text=True,
        check=True,
    )
    print(f"{events:>11,} events, ours step by step (CPU s, first call / best of {repeat}):")
    for line in proc.stdout.strip().splitlines():
        step = json.loads(line)
        print(f"{'':>11}   {step['step']:<40} {step['cold']:6.3f} / {step['warm']:6.3f}")


def memory(events: int, log: Path) -> None:
    """Print the runner's discovery step alone (see MEMORY): peak RSS step by step."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "log.duckdb"
        subprocess.run([sys.executable, "-c", MEMORY_BUILD, str(log), str(db)], check=True)
        figures = run(MEMORY, db, Path(tmp) / "unused")
    show_memory(f"{events:,} events", figures)


def show_memory(what: str, figures: dict[str, Any]) -> None:
    steps = figures.pop("steps")
    print(f"{what:>11}, the runner's discovery step alone: {figures}")
    for name, step in steps.items():  # in the order they ended
        print(f"{'':>11}   {name:<48} {step}")


def compare(events: int, figures: dict[str, dict[str, Any]], tmp: Path) -> None:
    """Ours against pm4py, and the stored-log path against ours: stop if any differ."""
    ours, theirs = figures["ours"], figures["pm4py"]
    ok, why = same(
        pickle.loads((tmp / "ours.pkl").read_bytes()),
        pickle.loads((tmp / "pm4py.pkl").read_bytes()),
    )
    both, why_stored = same(
        pickle.loads((tmp / "stored.pkl").read_bytes()),
        pickle.loads((tmp / "ours.pkl").read_bytes()),
    )
    print(
        f"{events:>11,} events | ours: {ours['total_s']:7.2f} s "
        f"(load+layout {ours['load_s']:.2f} s, mining {ours['mine_s']:.2f} s), "
        f"peak RSS {ours['rss_mb']:,.0f} MB"
        f" | pm4py: {theirs['total_s']:7.2f} s (read+format {theirs['load_s']:.2f}"
        f" s, mining {theirs['mine_s']:.2f} s), peak RSS {theirs['rss_mb']:,.0f} MB"
        f" | speed-up x{theirs['total_s'] / ours['total_s']:.1f} whole, "
        f"x{theirs['mine_s'] / ours['mine_s']:.1f} mining; CPU time "
        f"{ours['cpu_s']:.2f} s vs {theirs['cpu_s']:.2f} s "
        f"(x{theirs['cpu_s'] / ours['cpu_s']:.1f}) | results: {why}"
        f" | stored-log path vs ours: {why_stored}",
        flush=True,
    )
    if not ok or not both:
        raise SystemExit(1)


def report(events: int, figures: dict[str, dict[str, Any]]) -> None:
    """Each run's wall and CPU time, peak RSS and (ours) its phases."""
    labels = {"ours": "ours", "stored": "with the stored log", "pm4py": "pm4py"}
    for name, f in figures.items():
        phases = ", ".join(
            f"{k} {v:.3f} (CPU {f['phases_cpu'][k]:.3f})" for k, v in f.get("phases", {}).items()
        )
        print(
            f"{events:>11,}   {labels[name]}: {f['total_s']:.2f} s (CPU {f['cpu_s']:.2f} s), "
            f"peak RSS {f['rss_mb']:,.0f} MB" + (f"; by phase (s): {phases}" if phases else ""),
            flush=True,
        )


if __name__ == "__main__":
    main()
