"""An incremental night against the full rebuild, on the same data.

    nice python benchmarks/bench_incremental.py --rows 1000000 [--reuse] [--profile] [--repeat N]

Writes the landing with :mod:`bench_ingest`'s generator (92 days of Segment, GA4 and SendGrid
files, monthly Salesforce and Stripe exports), loads everything but the last day's files as
night 1, copies that warehouse, then loads the last day (about 1 % of the rows) into each copy:
once incrementally, once with the full rebuild of identities and touchpoints. Prints the
seconds of each phase, checks the two warehouses hold the same persons, ids and touchpoints,
and the ratio the issue asks about (a 1 % night in at most 5 % of a full rebuild), in wall time
and in CPU time (all threads; steadier when other work shares the cores).
With ``--profile``, lists the seconds of each SQL statement of the stitch and the touchpoints
in both runs (statements named by their first words; the rest of a phase is Python, summed over
the rounds). ``--repeat N`` runs both nights N times, alternating, and reports each phase's best.
``--nights N`` (with a night 1 already built) runs only the incremental night, N times in one
process, each rolled back, and lists each statement's least wall and CPU milliseconds.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import duckdb

sys.path.insert(0, str(Path(__file__).parent))

from bench_ingest import START, generate  # noqa: E402

from journeymine import warehouse  # noqa: E402
from journeymine.canonical import identity, touchpoints
from journeymine.ingest import load
from journeymine.ingest.sources import TOUCHPOINT_FIXUPS

LAST_DAY = START + timedelta(days=91)
COMPARED = {  # table -> the columns two runs on the same data must agree on
    "identity_nodes": "node_type, node_id, person_id",
    "identity_conflicts": "*",
    "identity_policy": "*",
    "identity_joins": "*",
    "account_nodes": "node_type, node_id, account_id",
    "person_accounts": "*",
    "touchpoints": "*",
    "persons": "*",
}


def last_day_files(landing: Path) -> list[Path]:
    return [
        landing / "segment" / f"{LAST_DAY:%Y/%m/%d}" / "events.jsonl.gz",
        landing / "ga4" / f"events_{LAST_DAY:%Y%m%d}.json",
        landing / "sendgrid" / f"{LAST_DAY:%Y/%m/%d}" / "webhook-1.json",
    ]


def night_1_landing(landing: Path, target: Path) -> Path:
    """The landing without the last day: hard links, no copy."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(landing, target, copy_function=lambda s, d: Path(d).hardlink_to(s))
    for path in last_day_files(target):
        path.unlink()
    return target


class TimedConnection:
    """A connection that adds up the seconds of each statement it runs, by its first words.

    Relations from ``sql()`` run when read, so their reads are timed under the same name."""

    def __init__(self, con: duckdb.DuckDBPyConnection, cpu: bool = False) -> None:
        self._con = con
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.cpu: dict[str, float] | None = defaultdict(float) if cpu else None

    def _timed(self, label: str, call: Any, *args: Any) -> Any:
        start, cpu = time.perf_counter(), time.process_time()
        self.calls[label] += 1
        try:
            return call(*args)
        finally:
            self.seconds[label] += time.perf_counter() - start
            if self.cpu is not None:
                self.cpu[label] += time.process_time() - cpu

    def execute(self, sql: str, *params: Any) -> Any:
        return self._timed(statement_name(sql), self._con.execute, sql, *params)

    def sql(self, sql: str) -> Any:
        return TimedRelation(self, statement_name(sql), self._con.sql(sql))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


class TimedRelation:
    def __init__(self, owner: TimedConnection, label: str, relation: Any) -> None:
        self._owner, self._label, self._relation = owner, label, relation

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._relation, name)
        if not callable(method):
            return method
        return lambda *args: self._owner._timed(self._label, method, *args)


def statement_name(sql: str) -> str:
    """A statement's first 80 characters, whitespace and comments folded."""
    text = re.sub(r"--[^\n]*", " ", sql)
    return " ".join(text.split())[:80]


def night_2(
    db: Path, landing: Path, incremental: bool, profile: dict[str, float] | None = None
) -> dict[str, float]:
    """Load the files ``db`` lacks, phase by phase, as :func:`load.commit_load` does; with
    ``profile``, add each stitch and touchpoints statement's seconds to it."""
    times: dict[str, float] = {}
    start, cpu = time.perf_counter(), time.process_time()

    def lap(name: str) -> None:
        nonlocal start, cpu
        times[name] = time.perf_counter() - start
        # CPU seconds of all the process's threads: steadier than wall time on a shared machine
        times[f"{name} (cpu)"] = time.process_time() - cpu
        start, cpu = time.perf_counter(), time.process_time()

    con = warehouse.connect(db)
    files = load.pending_files(con, load.scan_landing(landing).files)
    staged = load.stage_files(files, db.parent / (db.name + ".stage"))
    lap("scan + stage")
    con.begin()
    run_id = "night-2-" + ("incremental" if incremental else "full")
    load.load_staged(con, [staged.folder], run_id)
    load.commit_phase(con)
    lap("load_staged")
    timed = TimedConnection(con)
    canon = cast(duckdb.DuckDBPyConnection, timed) if profile is not None else con
    result = identity.stitch(canon, run_id, incremental=incremental)
    load.commit_phase(con)
    lap("identity.stitch")
    stitch_sql = sum(timed.seconds.values())
    touchpoints.build(canon, TOUCHPOINT_FIXUPS)
    lap("touchpoints")
    if profile is not None:
        python = {
            "(python in identity.stitch)": times["identity.stitch"] - stitch_sql,
            "(python in touchpoints)": times["touchpoints"]
            - sum(timed.seconds.values())
            + stitch_sql,
        }
        for name, seconds in [*timed.seconds.items(), *python.items()]:
            profile[name] = profile.get(name, 0.0) + seconds
    con.commit()
    con.close()
    lap("commit")
    shutil.rmtree(staged.folder)
    print(f"  {'incremental' if incremental else 'full'}: {result.mode}; {len(files)} files")
    return times


def differences(a: Path, b: Path) -> dict[str, int]:
    """Rows in one warehouse and not the other, per compared table (both ways)."""
    con = warehouse.connect(a, read_only=True)
    con.execute(f"ATTACH '{b}' AS other (READ_ONLY)")
    out = {}
    for table, columns in COMPARED.items():
        one = f"SELECT {columns} FROM {table}"
        two = f"SELECT {columns} FROM other.{table}"
        rows = con.execute(
            f"SELECT (SELECT count(*) FROM ({one} EXCEPT ALL {two})) "
            f"+ (SELECT count(*) FROM ({two} EXCEPT ALL {one}))"
        ).fetchall()
        out[table] = int(rows[0][0])
    con.close()
    return out


def print_profile(profiles: dict[str, dict[str, float]], top: int = 40) -> None:
    """The statements of both runs, slowest (in either) first."""
    names = set(profiles["incremental"]) | set(profiles["full"])
    ranked = sorted(names, key=lambda n: -max(p.get(n, 0.0) for p in profiles.values()))
    print(f"{'incremental':>11} {'full':>7}  statement (s)")
    for name in ranked[:top]:
        inc, ful = (profiles[m].get(name) for m in ("incremental", "full"))
        cells = [f"{v:.2f}" if v is not None else "-" for v in (inc, ful)]
        print(f"{cells[0]:>11} {cells[1]:>7}  {name}")


def bench(
    rows: int,
    data: Path,
    seed: int,
    reuse: bool,
    profile: bool = False,
    repeat: int = 1,
    landing_from: Path | None = None,
) -> None:
    landing = data / f"landing-{rows}"
    base = data / f"night-1-{rows}.duckdb"  # kept, so that --reuse can skip night 1
    night, full = data / f"incremental-{rows}.duckdb", data / f"full-{rows}.duckdb"
    for stale in [*data.glob(f"incremental-{rows}.duckdb*"), *data.glob(f"full-{rows}.duckdb*")]:
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    if not (reuse and base.exists()):
        base.unlink(missing_ok=True)
        if landing_from is None:
            generate(landing, rows, seed)
        else:  # generated before with these rows and seed (bench_ingest.py's): linked, not copied
            shutil.rmtree(landing, ignore_errors=True)
            shutil.copytree(
                landing_from, landing, copy_function=lambda s, d: Path(d).hardlink_to(s)
            )
        first = night_1_landing(landing, data / f"landing-{rows}-night-1")
        started = time.perf_counter()
        load.load_landing(base, first)
        print(f"night 1 (full load of {rows:,} rows minus the last day): "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
    con = warehouse.connect(base, read_only=True)
    before = con.execute("SELECT count(*) FROM raw_rows").fetchall()[0][0]
    con.close()
    profiles: dict[str, dict[str, float]] = {"incremental": {}, "full": {}}
    rounds = []
    stitch = ("identity.stitch", "touchpoints")
    for round_ in range(repeat):  # the two alternate: a busy spell hits both alike
        shutil.copy(base, night)
        shutil.copy(base, full)
        rounds.append(
            {
                mode: night_2(
                    db, landing, mode == "incremental", profiles[mode] if profile else None
                )
                for mode, db in (("incremental", night), ("full", full))
            }
        )
        inc, ful = (sum(rounds[-1][m][p] for p in stitch) for m in ("incremental", "full"))
        cpu_inc, cpu_ful = (
            sum(rounds[-1][m][f"{p} (cpu)"] for p in stitch) for m in ("incremental", "full")
        )
        print(f"  round {round_ + 1}: stitch+touchpoints {inc:.2f} s against {ful:.2f} s "
              f"({inc / ful:.1%}); CPU {cpu_inc:.2f} s against {cpu_ful:.2f} s "
              f"({cpu_inc / cpu_ful:.1%})")  # fmt: skip
    # Each phase's best of the rounds: the least disturbed by other work on the machine.
    phases = {
        m: {name: min(r[m][name] for r in rounds) for name in rounds[0][m]}
        for m in ("incremental", "full")
    }
    con = warehouse.connect(night, read_only=True)
    after = con.execute("SELECT count(*) FROM raw_rows").fetchall()[0][0]
    con.close()
    print(f"night 2 adds {after - before:,} raw rows to {before:,} "
          f"({(after - before) / before:.2%})")  # fmt: skip
    print(f"best of {repeat} round(s):")
    print(f"{'phase (s)':<24}{'incremental':>12}{'full':>10}{'ratio':>9}")
    for name in phases["full"]:
        inc, ful = phases["incremental"][name], phases["full"][name]
        print(f"{name:<24}{inc:>12.2f}{ful:>10.2f}{inc / ful:>9.1%}")
    for suffix in ("", " (cpu)"):
        inc, ful = (sum(phases[m][p + suffix] for p in stitch) for m in ("incremental", "full"))
        print(f"{'stitch+touchpoints' + suffix:<24}{inc:>12.2f}{ful:>10.2f}{inc / ful:>9.1%}")
        inc, ful = (
            sum(v for k, v in phases[m].items() if k.endswith("(cpu)") == bool(suffix))
            for m in ("incremental", "full")
        )
        print(f"{'whole night' + suffix:<24}{inc:>12.2f}{ful:>10.2f}{inc / ful:>9.1%}")
    diff = differences(night, full)
    print("rows differing between the two warehouses: "
          + ", ".join(f"{t} {n}" for t, n in diff.items()))  # fmt: skip
    if profile:
        print_profile(profiles)


def nights_in_one_process(rows: int, data: Path, nights: int) -> None:
    """The incremental night alone, ``nights`` times in one process, each in a transaction
    rolled back (night 1's warehouse copied once): each night's wall and CPU seconds, then each
    statement's least seconds (wall, then CPU) and how many statements ran. The statements'
    minima are steadier than one night's total on a shared machine."""
    db = data / f"nights-{rows}.duckdb"
    shutil.copy(data / f"night-1-{rows}.duckdb", db)
    con = warehouse.connect(db)
    files = load.pending_files(con, load.scan_landing(data / f"landing-{rows}").files)
    staged = load.stage_files(files, db.parent / (db.name + ".stage"))
    least: dict[str, tuple[float, float]] = {}
    for night in range(nights):
        con.begin()
        load.load_staged(con, [staged.folder], "night-2")
        timed = TimedConnection(con, cpu=True)
        canon = cast(duckdb.DuckDBPyConnection, timed)
        start, cpu = time.perf_counter(), time.process_time()
        identity.stitch(canon, "night-2", incremental=True)
        touchpoints.build(canon, TOUCHPOINT_FIXUPS)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        con.rollback()
        calls = sum(timed.calls.values())
        print(f"  night {night + 1}: {wall:.3f} s, CPU {cpu:.3f} s, {calls} statements")
        used = timed.cpu or {}
        for name, seconds in timed.seconds.items():
            old = least.get(name, (seconds, used[name]))
            least[name] = (min(old[0], seconds), min(old[1], used[name]))
    con.close()
    shutil.rmtree(staged.folder)
    print(f"{'wall ms':>8} {'CPU ms':>7}  statement (least of {nights} nights)")
    for name, (wall, cpu) in sorted(least.items(), key=lambda kv: -kv[1][0]):
        print(f"{wall * 1000:8.1f} {cpu * 1000:7.1f}  {name}")
    walls, cpus = (sum(v[i] for v in least.values()) * 1000 for i in (0, 1))
    print(f"{walls:8.1f} {cpus:7.1f}  all {len(least)} statements")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000, help="raw rows in all")
    parser.add_argument("--data", type=Path, default=Path(__file__).parent / "data")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--reuse", action="store_true", help="reuse the last night 1")
    parser.add_argument("--profile", action="store_true", help="time each SQL statement")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of both nights")
    parser.add_argument(
        "--nights", type=int, default=0, help="only the incremental night, N times (rolled back)"
    )
    parser.add_argument(
        "--landing-from",
        type=Path,
        help="a landing generated before with the same --rows and --seed (bench_ingest.py's), "
        "hard-linked instead of generated again",
    )
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    if args.nights:
        nights_in_one_process(args.rows, args.data, args.nights)
        return
    bench(args.rows, args.data, args.seed, args.reuse, args.profile, args.repeat, args.landing_from)


if __name__ == "__main__":
    main()
