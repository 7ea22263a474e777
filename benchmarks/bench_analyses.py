"""Time the stage funnel, follow-up latency, paths and retention on a large synthetic log.

    python benchmarks/bench_analyses.py --events 10000000

Uses the benchmark log (benchmarks/generate_log.py) as touchpoints: case = person, every
third activity a company action. A five-stage funnel with two-day windows, and one follow-up
rule with a 4-business-hour SLA in Europe/Berlin. Prints wall time and peak RSS of each step.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import duckdb

from journeymine.analyses.followups import compute_followups
from journeymine.analyses.funnel import compute_entries, summarise, write_stage_funnel
from journeymine.analyses.paths import paths
from journeymine.analyses.retention import retention
from journeymine.mining import discovery
from journeymine.spec import Calendar, FollowupRule, JourneySpec, Stage

HERE = Path(__file__).resolve().parent
SPEC = JourneySpec(
    name="bench",
    window=timedelta(days=2),
    stages=tuple(Stage(f"s{k}", (f"activity {3 * k:02d}",)) for k in range(5)),
    followups=(FollowupRule("r", ("activity 01",), ("activity 02",), timedelta(hours=4), True),),
    calendar=Calendar("Europe/Berlin"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    log = HERE / "data" / f"log_{args.events}.parquet"
    if not log.exists():
        subprocess.run(
            [
                sys.executable,
                str(HERE / "generate_log.py"),
                "--events",
                str(args.events),
                "--out",
                str(log),
            ],
            check=True,
        )
    con = duckdb.connect()
    start = time.perf_counter()
    con.execute(
        "CREATE TABLE touchpoints AS SELECT row_number() OVER () AS event_id, "
        "dense_rank() OVER (ORDER BY case_id) AS person_id, activity, ts AS occurred_at, seq, "
        "CASE WHEN activity IN ('activity 02', 'activity 05', 'activity 08') THEN 'company' "
        "ELSE 'customer' END AS actor, 'rep' AS owner, 'Rep' AS owner_name, 'web' AS channel, "
        "'{}'::JSON AS attributes "
        f"FROM read_parquet('{log}') ORDER BY person_id, ts, seq"
    )
    con.execute(
        "CREATE VIEW bench_log AS SELECT person_id AS case_key, activity, occurred_at AS ts, seq "
        "FROM touchpoints"
    )
    stored = discovery.materialise_log(con, "bench_log")
    loaded = time.perf_counter()
    entries = compute_entries(con, SPEC, stored)
    funnel = summarise(entries)
    funnelled = time.perf_counter()
    followups = compute_followups(con, SPEC)
    followed = time.perf_counter()
    write_stage_funnel(con, SPEC, stored)  # stage_entries for paths and retention
    ready = time.perf_counter()
    dropped = paths(con, "s1", "dropped", steps=3, top=20, log=stored)
    after = paths(con, "activity 01", "after", steps=3, top=20, log=stored)
    pathed = time.perf_counter()
    cohorts = retention(con, active=("activity 12",), stage="s4", period="week", periods=4)
    done = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{args.events:,} events: layout {loaded - start:.2f} s | "
        f"funnel {funnelled - loaded:.2f} s "
        f"({len(entries):,} stage entries, {funnel.entered.sum():,} entered) | follow-ups "
        f"{followed - funnelled:.2f} s ({len(followups):,} triggers, business hours included) | "
        f"stored funnel {ready - followed:.2f} s | paths (dropped + after) "
        f"{pathed - ready:.2f} s ({len(dropped) + len(after)} paths) | retention "
        f"{done - pathed:.2f} s ({len(cohorts)} cells) | peak RSS {rss:,.0f} MB"
    )


if __name__ == "__main__":
    main()
