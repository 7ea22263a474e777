"""The writer's commit phases on a loaded warehouse: time and peak RSS of a full identity
stitch and touchpoints rebuild, under the default writer memory cap.

    PYTHONPATH=src:. python benchmarks/bench_commit.py <warehouse.duckdb> [--memory-limit 512MB]
        [--stitch-only]

Each runs in its own transaction, as ``load.commit_load`` runs them: the stitch is committed (a
full stitch of the same raw rows writes the same tables again), the rebuild rolled back, so the
warehouse's content is left as it was; run each size in a fresh process (the peak is the
process's). A thread samples ``VmRSS`` every 10 ms; after each step the script prints what
DuckDB's buffer manager holds (``duckdb_memory()``). Use a loaded warehouse of each size, e.g.
the ingest or end-to-end benchmark's.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable

import duckdb

from journeymine import warehouse
from journeymine.canonical import identity, touchpoints
from journeymine.ingest import load
from journeymine.ingest.sources import TOUCHPOINT_FIXUPS
from journeymine.warehouse import settings


def rss_mb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024
    return 0


def held(con: duckdb.DuckDBPyConnection) -> str:
    """What DuckDB's buffer manager holds, by kind, in MB (``duckdb_memory()``): temp tables
    are ``IN_MEMORY_TABLE``, dropped ones included until their transaction ends."""
    rows = con.execute(
        "SELECT tag, memory_usage_bytes // 1000000, temporary_storage_bytes // 1000000 "
        "FROM duckdb_memory() WHERE memory_usage_bytes + temporary_storage_bytes >= 1000000 "
        "ORDER BY 2 DESC"
    ).fetchall()
    return ", ".join(f"{tag} {mb:,} MB (spilled {spill:,})" for tag, mb, spill in rows) or "-"


def main(path: str, memory_limit: str | None, stitch_only: bool = False) -> None:
    peak, stop = [0], threading.Event()

    def poll() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.01)

    threading.Thread(target=poll, daemon=True).start()
    con = warehouse.connect(path)
    cap = settings.apply_memory_limit(con, memory_limit)
    events = con.execute("SELECT count(*) FROM raw_events").fetchall()[0][0]
    print(f"{path}: {events:,} raw events, cap {cap / 1e6:,.0f} MB, start RSS {rss_mb()} MB")
    steps: dict[str, Callable[[], object]] = {
        "identity stitch": lambda: identity.stitch(con, "bench", incremental=False),
        "commit": lambda: load.commit_phase(con),  # as commit_load does after the stitch
        "touchpoints rebuild": lambda: touchpoints.build(con, TOUCHPOINT_FIXUPS),
    }
    if stitch_only:  # the stitch alone, rolled back like the rest
        steps = {"identity stitch": steps["identity stitch"]}
    con.begin()
    try:
        for name, step in steps.items():
            peak[0] = rss_mb()
            started = time.perf_counter()
            try:
                step()
            except duckdb.OutOfMemoryException as exc:  # the figure a too-small cap gives
                first = str(exc).splitlines()[0]
                print(f"{name}: out of memory after {time.perf_counter() - started:.1f} s: {first}")
                return
            seconds = time.perf_counter() - started
            print(f"{name}: {seconds:.1f} s, peak RSS {peak[0]:,} MB; DuckDB holds {held(con)}")
    finally:
        con.rollback()
        stop.set()
        con.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("warehouse")
    parser.add_argument("--memory-limit", help="the writer's cap (default: the product's)")
    parser.add_argument("--stitch-only", action="store_true", help="the stitch alone, rolled back")
    args = parser.parse_args()
    main(args.warehouse, args.memory_limit, args.stitch_only)
