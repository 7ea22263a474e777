"""Run journeymine's per-shard work on a Dask cluster through Prefect (the ``dask`` extra).

* :func:`task_runner` turns the ``--dask`` option into a Prefect task runner: ``None`` keeps
  today's local threads; ``tcp://host:port`` attaches to a running scheduler (checked first, so
  an unreachable cluster fails in seconds with its address in the message); ``local:N`` starts
  a ``LocalCluster`` of N worker processes for the run.
* :func:`sharded_discovery` is a Prefect flow over :mod:`journeymine.mining.sharded`: shard the
  event log, mine each shard as a task, reduce each bucket as a task, merge. Tasks pass paths
  only, so every path must be one that every worker can reach (shared storage; on one machine,
  a local folder). :func:`run_sharded_discovery` runs it with the runner of a ``--dask`` value.

Tasks retry twice: a worker lost mid-run costs a re-run of its tasks, whose outputs replace
(never add to) what a failed attempt left.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb
from prefect import flow, task, unmapped
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from journeymine.errors import JourneymineError
from journeymine.mining import sharded

CONNECT_TIMEOUT_S = 5.0
DEFAULT_PORT = 8786  # dask scheduler's default


class ClusterAddressError(ValueError, JourneymineError):
    """The ``--dask`` value is neither ``tcp://host:port`` nor ``local:N``."""


class ClusterUnreachableError(ConnectionError, JourneymineError):
    """No Dask scheduler answers at the given address."""


def _dask_runner(**kwargs: Any) -> TaskRunner[Any]:
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        raise JourneymineError(
            "running on Dask needs the dask extra: pip install 'journeymine[dask]'"
        ) from None
    runner: TaskRunner[Any] = DaskTaskRunner(**kwargs)
    return runner


def _local_workers(value: str) -> int:
    count = value.removeprefix("local:")
    if not count.isdigit() or int(count) < 1:
        raise ClusterAddressError(
            f"--dask {value!r}: local:N needs a number of workers of at least 1, e.g. local:4"
        )
    return int(count)


def check_scheduler(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> str:
    """``address`` as ``scheme://host:port`` once something accepts connections there."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme not in ("tcp", "tls") or not parts.hostname:
        raise ClusterAddressError(
            f"--dask {address!r}: use tcp://host:port for a running scheduler or local:N"
        )
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ClusterAddressError(f"--dask {address!r}: the port is not a number") from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname  # IPv6
    normalised = f"{parts.scheme}://{host}:{port}"
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ClusterUnreachableError(
            f"cannot reach the Dask scheduler at {normalised} ({exc.strerror or exc}); start "
            f"one with `dask scheduler` and workers with `dask worker {normalised}`, "
            "or use --dask local:N"
        ) from None
    return normalised


def task_runner(dask: str | None) -> TaskRunner[Any]:
    """The task runner for a ``--dask`` value: ``None`` (local threads, as without Dask),
    ``tcp://host:port`` (a running scheduler) or ``local:N`` (N worker processes here)."""
    if dask is None:
        return ThreadPoolTaskRunner()
    if dask.startswith("local:"):
        return _dask_runner(
            cluster_class="distributed.LocalCluster",
            # One thread per process: DuckDB parallelises inside a task, and the GIL would
            # serialise the Python around it anyway.
            cluster_kwargs={
                "n_workers": _local_workers(dask),
                "threads_per_worker": 1,
                "processes": True,
                "dashboard_address": ":0",
            },
        )
    address = check_scheduler(dask)
    return _dask_runner(address=address, client_kwargs={"timeout": f"{CONNECT_TIMEOUT_S}s"})


@task(name="shard-log", retries=2, retry_delay_seconds=1)
def shard_log(log_parquet: str, out: str, shards: int) -> list[str]:
    """Write the event log Parquet (``case_key, activity, ts, seq``) as shards by case."""
    con = duckdb.connect()
    try:
        con.read_parquet(log_parquet).create_view("jm_log_parquet")
        folders = sharded.write_shards(con, "jm_log_parquet", Path(out) / "shards", shards)
    finally:
        con.close()
    return [str(f) for f in folders]


@task(name="mine-shard", retries=2, retry_delay_seconds=1)
def mine_shard(shard: str, out: str, buckets: int) -> str:
    """Partial discovery of one shard."""
    return str(sharded.mine_shard(Path(shard), Path(out), buckets))


@task(name="reduce-bucket", retries=2, retry_delay_seconds=1)
def reduce_bucket(partials: list[str], bucket: int, out: str) -> str:
    """Exact merge of one bucket of edges and variants."""
    return str(sharded.reduce_bucket([Path(p) for p in partials], bucket, Path(out)))


@task(name="merge-discovery", retries=2, retry_delay_seconds=1)
def merge_buckets(reduced: list[str], partials: list[str], out: str) -> str:
    """The final dfg, variants, start and end activities as Parquet files."""
    folder = sharded.merge_buckets(
        [Path(r) for r in reduced], [Path(p) for p in partials], Path(out)
    )
    return str(folder)


@flow(name="journeymine-sharded-discovery")
def sharded_discovery(
    log_parquet: str, shards: int = 8, out: str = "out/sharded", buckets: int | None = None
) -> str:
    """Discovery of an event log Parquet file (or glob), sharded by case over the task runner's
    workers; returns the folder with ``dfg``, ``variants``, ``start_activities`` and
    ``end_activities`` Parquet files (read them with :func:`sharded.read_discovery`)."""
    n_buckets = buckets or shards
    folders = shard_log.submit(log_parquet, out, shards).result()
    partials = mine_shard.map(folders, unmapped(out), unmapped(n_buckets)).result()
    reduced = reduce_bucket.map(unmapped(partials), range(n_buckets), unmapped(out)).result()
    folder: str = merge_buckets.submit(reduced, partials, out).result()
    return folder


def run_sharded_discovery(
    log_parquet: str | Path,
    shards: int,
    out: str | Path,
    *,
    dask: str | None = None,
    buckets: int | None = None,
) -> sharded.Discovery:
    """:func:`sharded_discovery` on the runner of a ``--dask`` value; the merged results."""
    runner = task_runner(dask)
    folder = sharded_discovery.with_options(task_runner=runner)(
        str(log_parquet), shards, str(out), buckets
    )
    return sharded.read_discovery(Path(folder))


def discover_on_cluster(
    warehouse_path: str | Path, case: str, out: str | Path, dask: str, shards: int = 64
) -> Path:
    """The warehouse's event log (case notion ``case``) written as Parquet under ``out`` and
    mined on the cluster of ``dask``; returns the merged discovery folder, for
    ``analyse(..., discovery=folder)``. ``out`` must be reachable by every worker."""
    from journeymine.mining.eventlog import log_from_touchpoints
    from journeymine.warehouse import connect

    runner = task_runner(dask)  # an unreachable cluster fails here, before any work
    work = Path(out) / "sharded"
    work.mkdir(parents=True, exist_ok=True)
    con = connect(warehouse_path, read_only=True)
    try:
        log = log_from_touchpoints(con, case=case)
        con.sql(f"SELECT case_key, activity, ts, seq FROM {log}").write_parquet(
            str(work / "event_log.parquet")
        )
    finally:
        con.close()
    folder = sharded_discovery.with_options(task_runner=runner)(
        str(work / "event_log.parquet"), shards, str(work)
    )
    return Path(folder)
