"""Discovery on one machine against the sharded run on a local Dask cluster, phase by phase.

    python benchmarks/bench_dask.py --events 1000000 [--workers 2] [--shards 8] [--prefect]

For the generated log (benchmarks/generate_log.py, cached in benchmarks/data/), with integer
case keys already assigned (as the warehouse stores them), time:

* single machine: read the Parquet log and lay it out (ENUM, sorted), then dfg, variants and
  start/end activities — :mod:`journeymine.mining.discovery`, what the nightly run does today;
* sharded, in this process: the same four steps as on a cluster, one after the other — the
  cost of sharding itself;
* sharded on a ``LocalCluster`` of ``--workers`` processes (1 thread each): shard, mine the
  shards, reduce the buckets, merge — each phase submitted with ``Client.map`` on the functions
  the Prefect tasks call, so the figures are the work, not Prefect's bookkeeping;
* with ``--prefect``: the whole :func:`journeymine.pipelines.scale.sharded_discovery` flow on
  that cluster (a temporary Prefect API is started first and not timed);
* with ``--rows N``: staging a generated landing folder of N raw rows (benchmarks/bench_ingest.py's
  generator, cached in benchmarks/data/) on one machine (``load.stage_files``, one process per
  CPU) against batches on the cluster (the function of the ``stage-batch`` task), then the
  single writer's commit of the cluster's folders (``load.commit_load``): the part that does not
  scale with more machines. The two stagings' manifests must be identical.

Every sharded result is checked against the single-machine one (counts, quantiles, variants).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from journeymine import warehouse
from journeymine.ingest import load
from journeymine.mining import discovery, sharded
from journeymine.pipelines import scale

HERE = Path(__file__).resolve().parent


def keyed_log(events: int, folder: Path) -> Path:
    """The generated log with ``case_key`` (dense rank of ``case_id``), written once."""
    log = HERE / "data" / f"log_{events}.parquet"
    if not log.exists():
        log.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, str(HERE / "generate_log.py"), "--events", str(events)]
            + ["--out", str(log)],
            check=True,
            capture_output=True,
        )
    keyed = folder / "keyed.parquet"
    duckdb.sql(
        "SELECT dense_rank() OVER (ORDER BY case_id) AS case_key, activity, ts, seq "
        "FROM read_parquet($log)",
        params={"log": str(log)},
    ).write_parquet(str(keyed))
    return keyed


def timed(phases: dict[str, float], name: str, step: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    result = step()
    phases[name] = time.perf_counter() - start
    return result


def single_machine(log: Path) -> tuple[sharded.Discovery, dict[str, float]]:
    phases: dict[str, float] = {}
    con = duckdb.connect()
    con.read_parquet(str(log)).create_view("bench_log")
    table = timed(phases, "read + layout", lambda: discovery.materialise_log(con, "bench_log"))
    dfg = timed(phases, "dfg", lambda: discovery.discover_dfg(con, table))
    variants = timed(phases, "variants", lambda: discovery.discover_variants(con, table))
    start, end = timed(
        phases,
        "start/end",
        lambda: (discovery.start_activities(con, table), discovery.end_activities(con, table)),
    )
    return sharded.Discovery(dfg, variants, start, end), phases


def in_process(log: Path, out: Path, shards: int) -> tuple[sharded.Discovery, dict[str, float]]:
    phases: dict[str, float] = {}
    con = duckdb.connect()
    con.read_parquet(str(log)).create_view("bench_log")
    folders = timed(
        phases, "shard", lambda: sharded.write_shards(con, "bench_log", out / "shards", shards)
    )
    partials = timed(phases, "mine", lambda: [sharded.mine_shard(f, out, shards) for f in folders])
    reduced = timed(
        phases, "reduce", lambda: [sharded.reduce_bucket(partials, b, out) for b in range(shards)]
    )
    folder = timed(phases, "merge", lambda: sharded.merge_buckets(reduced, partials, out))
    return sharded.read_discovery(folder), phases


def _shard_from_parquet(log: str, out: Path, shards: int) -> list[Path]:
    con = duckdb.connect()
    con.read_parquet(log).create_view("bench_log")
    return sharded.write_shards(con, "bench_log", out / "shards", shards)


def on_cluster(
    client: Any, log: Path, out: Path, shards: int
) -> tuple[sharded.Discovery, dict[str, float]]:
    phases: dict[str, float] = {}
    folders = timed(
        phases, "shard", lambda: client.submit(_shard_from_parquet, str(log), out, shards).result()
    )
    partials = timed(
        phases,
        "mine",
        lambda: client.gather(client.map(sharded.mine_shard, folders, out=out, buckets=shards)),
    )
    reduced = timed(
        phases,
        "reduce",
        lambda: client.gather(
            client.map(sharded.reduce_bucket, [partials] * shards, range(shards), out=out)
        ),
    )
    folder = timed(
        phases,
        "merge",
        lambda: client.submit(sharded.merge_buckets, reduced, partials, out).result(),
    )
    return sharded.read_discovery(folder), phases


def same(ours: sharded.Discovery, reference: sharded.Discovery) -> str:
    """Counts, quantiles and variants identical; the mean wait within 1e-12 relative."""
    pd.testing.assert_frame_equal(
        ours.dfg.drop(columns="wait_mean_s"),
        reference.dfg.drop(columns="wait_mean_s"),
        check_exact=True,
    )
    relative = (ours.dfg.wait_mean_s - reference.dfg.wait_mean_s).abs() / reference.dfg.wait_mean_s
    assert relative.max() < 1e-12, relative.max()
    pd.testing.assert_frame_equal(ours.variants, reference.variants, check_exact=True)
    assert (ours.start, ours.end) == (reference.start, reference.end)
    return "identical"


def report(name: str, phases: dict[str, float], check: str = "") -> None:
    parts = ", ".join(f"{k} {v:.2f} s" for k, v in phases.items())
    print(f"{name:<28} {sum(phases.values()):7.2f} s  ({parts}) {check}", flush=True)


def prefect_flow(address: str, log: Path, out: Path, shards: int) -> tuple[Any, float]:
    from prefect.testing.utilities import prefect_test_harness

    from journeymine.pipelines import scale

    with prefect_test_harness(server_startup_timeout=120):
        start = time.perf_counter()
        result = scale.run_sharded_discovery(log, shards, out, dask=address)
        return result, time.perf_counter() - start


def landing(rows: int) -> Path:
    """A generated landing folder of ``rows`` raw rows, written once."""
    folder = HERE / "data" / f"landing-{rows}"
    if not folder.exists():
        sys.path.insert(0, str(HERE))
        from bench_ingest import generate

        generate(folder, rows, seed=11)
    return folder


def commit(db: Path, folders: list[Path]) -> load.LoadReport:
    """The single writer's load of staged folders into a new warehouse."""
    report_ = load.LoadReport(db.stem)
    with warehouse.transaction(db) as con:
        load.commit_load(con, folders, db.stem, report_)
    return report_


def manifest_row(f: load.FileReport) -> tuple[Any, ...]:
    return (f.source, f.file, f.rows_read, f.rows_loaded, f.duplicates, f.quarantined)


def staging(client: Any, rows: int, folder: Path, batch_mb: int) -> None:
    """Stage one landing on one machine and on the cluster, commit the cluster's staging."""
    root = landing(rows)
    files = load.scan_landing(root).files
    plan: dict[str, list[tuple[str, str]]] = {}
    for f in files:
        plan.setdefault(f.source, []).append((f.file, f.sha256))
    size_mb = sum(f.path.stat().st_size for f in files) / 1e6
    print(f"\nstaging {rows:,} raw rows: {len(files)} files, {size_mb:.0f} MB", flush=True)
    phases: dict[str, float] = {}
    timed(phases, "stage", lambda: load.stage_files(files, folder / "single"))
    report("single machine", phases)
    batches = scale.plan_batches(root, plan, batch_mb << 20)
    phases = {}
    staged = timed(
        phases,
        "stage",
        lambda: client.gather(
            client.map(
                scale.stage_batch.fn,
                [str(root)] * len(batches),
                [todo for _, _, todo in batches],
                [str(folder / "cluster" / s / f"from={first}") for s, first, _ in batches],
                [first for _, first, _ in batches],
            )
        ),
    )
    start = time.perf_counter()
    ours = commit(folder / "cluster.duckdb", [Path(s["folder"]) for s in staged])
    phases["commit (single writer)"] = time.perf_counter() - start
    reference = commit(folder / "single.duckdb", [folder / "single"])
    same_files = [manifest_row(f) for f in ours.files] == [manifest_row(f) for f in reference.files]
    t = ours.totals()
    report(
        f"{len(batches)} batches on the cluster",
        phases,
        f"{t['rows_read']:,} rows read; manifest {'identical' if same_files else 'DIFFERENT'}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--prefect", action="store_true", help="also time the Prefect flow")
    parser.add_argument("--rows", type=int, default=0, help="also time staging N raw rows")
    parser.add_argument("--batch-mb", type=int, default=8, help="staging batch size for --rows")
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    with tempfile.TemporaryDirectory(prefix="bench-dask-") as tmp:
        folder = Path(tmp)
        log = keyed_log(args.events, folder)
        print(f"{args.events:,} events, {args.shards} shards, {args.workers} workers")
        reference, phases = single_machine(log)
        report("single machine", phases)
        result, phases = in_process(log, folder / "in_process", args.shards)
        report("sharded, one process", phases, same(result, reference))
        with (
            LocalCluster(
                n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=":0"
            ) as cluster,
            Client(cluster) as client,
        ):
            client.run(lambda: __import__("journeymine.mining.sharded"))  # warm the imports
            result, phases = on_cluster(client, log, folder / "cluster", args.shards)
            report(f"sharded, {args.workers} workers", phases, same(result, reference))
            if args.prefect:
                flow_result, seconds = prefect_flow(
                    cluster.scheduler_address, log, folder / "flow", args.shards
                )
                report(f"prefect flow, {args.workers} workers", {"flow": seconds})
                print(f"{'':<28} {same(flow_result, reference)}")
            if args.rows:
                staging(client, args.rows, folder / "staging", args.batch_mb)


if __name__ == "__main__":
    main()
