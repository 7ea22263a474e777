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

import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb
import pyarrow.compute as pc
import pyarrow.parquet as pq
from prefect import flow, task, unmapped
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from journeymine.errors import JourneymineError
from journeymine.ingest import load
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


def _local_cluster_kwargs(workers: int) -> dict[str, Any]:
    # One thread per process: DuckDB parallelises inside a task, and the GIL would serialise
    # the Python around it anyway.
    return {
        "n_workers": workers,
        "threads_per_worker": 1,
        "processes": True,
        "dashboard_address": ":0",
    }


@contextmanager
def cluster(dask: str) -> Iterator[str]:
    """The scheduler address of a ``--dask`` value for a whole run: ``tcp://…`` once it
    answers; ``local:N`` starts one ``LocalCluster`` for every phase of the run and closes it
    on leaving, while the run's Prefect API is still up (workers report to it)."""
    if not dask.startswith("local:"):
        yield check_scheduler(dask)
        return
    workers = _local_workers(dask)
    from distributed import LocalCluster

    with LocalCluster(**_local_cluster_kwargs(workers)) as local:
        yield str(local.scheduler_address)


@contextmanager
def shared_api() -> Iterator[None]:
    """Make this process's Prefect API the workers' API too. Tasks carry the caller's
    settings to the workers; with no ``PREFECT_API_URL`` (a temporary API started by this
    process) each worker process would start a temporary API of its own, ~20 s each (on a
    busy machine it times out and fails the task), and its task runs would be recorded
    nowhere anyone looks. Within a flow run, its API; outside, the temporary one, started."""
    from prefect.context import FlowRunContext
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield
        return
    context = FlowRunContext.get()
    if context is not None and context.client is not None:
        url = str(context.client.api_url)
    else:
        from prefect.server.api.server import SubprocessASGIServer

        server = SubprocessASGIServer()  # the one Prefect itself starts (one per process)
        server.start()
        url = server.api_url
    with temporary_settings({PREFECT_API_URL: url}):
        yield


def task_runner(dask: str | None) -> TaskRunner[Any]:
    """The task runner for a ``--dask`` value: ``None`` (local threads, as without Dask),
    ``tcp://host:port`` (a running scheduler) or ``local:N`` (N worker processes here)."""
    if dask is None:
        return ThreadPoolTaskRunner()
    if dask.startswith("local:"):
        return _dask_runner(
            cluster_class="distributed.LocalCluster",
            cluster_kwargs=_local_cluster_kwargs(_local_workers(dask)),
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


# --- Staging the landing files on the workers -------------------------------------------

STAGE_BATCH_BYTES = 64 << 20  # input per staging task: enough to amortise a task's start-up

Batch = tuple[str, int, list[tuple[str, str]]]  # (source, index of its first file, files)


def plan_batches(
    landing: str | Path,
    files: dict[str, list[tuple[str, str]]],
    max_bytes: int = STAGE_BATCH_BYTES,
) -> list[Batch]:
    """Each source's planned ``(file, sha256)`` list cut into runs of consecutive files of up
    to ``max_bytes`` of input (a bigger file alone), sources by name (the order the commit
    loads them in): each batch knows where its first file stands in its source's list."""
    batches: list[Batch] = []
    for source, todo in sorted(files.items()):
        size = 0
        for index, entry in enumerate(todo):
            try:
                nbytes = (Path(landing) / entry[0]).stat().st_size
            except OSError:  # gone since the plan: staging names the file in its errors
                nbytes = 0
            if index == 0 or (size + nbytes > max_bytes and size > 0):
                batches.append((source, index, []))
                size = 0
            batches[-1][2].append(entry)
            size += nbytes
    return batches


def _shift_file_order(folder: Path, first: int) -> None:
    """Number a batch's files from ``first``, where they stand in their source's load order
    (``stage_files`` numbers from 0); written aside then renamed, so ``files.parquet`` is
    always whole."""
    path = folder / "files.parquet"
    table = pq.read_table(path, schema=load.FILES_SCHEMA)
    column = table.schema.get_field_index("file_ord")
    shifted = pc.add(table.column(column), first).cast(load.FILES_SCHEMA.field(column).type)
    aside = folder / "files.parquet.tmp"
    pq.write_table(table.set_column(column, "file_ord", shifted), aside)
    os.replace(aside, path)


def retry_on_io(task: Any, task_run: Any, state: Any) -> bool:
    """Retry transient I/O failures (a lost share, a worker's full disk) only; a file in the
    wrong format will not get better (and is reported, not raised, anyway)."""
    try:
        state.result()
    except OSError:
        return True
    except Exception:
        return False
    return False


@task(name="stage-batch", retries=2, retry_delay_seconds=[2, 10], retry_condition_fn=retry_on_io)
def stage_batch(
    landing: str,
    files: list[tuple[str, str]],
    folder: str,
    first: int,
    options: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Parse a batch of one source's files into its own staging folder, on a worker.

    A retry starts from an empty folder: what a failed attempt left is replaced, never added
    to. One process per task (``workers=1``): the cluster is the pool, and a Dask worker's
    process may not start children of its own."""
    target = Path(folder)
    shutil.rmtree(target, ignore_errors=True)
    root = Path(landing)
    landing_files = [  # hashed once, when planned: the manifest records that version
        load.LandingFile(f.split("/", 1)[0], root / f, f, sha) for f, sha in files
    ]
    result = load.stage_files(landing_files, target, workers=1, options=options)
    _shift_file_order(target, first)
    return {"folder": str(result.folder), "errors": result.errors}


@flow(name="journeymine-stage-on-cluster")
def stage_on_cluster(
    landing: str,
    files: dict[str, list[tuple[str, str]]],
    staging: str,
    max_bytes: int | None = None,
    options: dict[str, dict[str, Any]] | None = None,
) -> dict[str, list[str]]:
    """Stage the planned files as batches (of :data:`STAGE_BATCH_BYTES` unless told) on the
    task runner's workers, under ``staging`` (a folder every worker reaches); the staged
    ``folders`` for the single writer, in load order, and the ``errors`` (files not in their
    format, batches that failed)."""
    batches = plan_batches(landing, files, max_bytes or STAGE_BATCH_BYTES)
    futures = [
        stage_batch.submit(
            landing, todo, str(Path(staging) / source / f"from={first}"), first, options
        )
        for source, first, todo in batches
    ]
    folders: list[str] = []
    errors: list[str] = []
    for (source, _, todo), future in zip(batches, futures, strict=True):
        future.wait()
        if future.state.is_completed():
            staged = future.result()
            folders.append(staged["folder"])
            errors += staged["errors"]
        else:
            errors.append(f"{source} ({len(todo)} files from {todo[0][0]}): {future.state.message}")
    return {"folders": folders, "errors": errors}


def run_stage_on_cluster(
    landing: str | Path,
    files: dict[str, list[tuple[str, str]]],
    staging: str | Path,
    address: str,
    max_bytes: int | None = None,
    options: dict[str, dict[str, Any]] | None = None,
) -> dict[str, list[str]]:
    """:func:`stage_on_cluster` on the scheduler at ``address`` (from :func:`cluster`);
    ``options`` are the parsers' options from the journey spec (the survey's mapping)."""
    runner = task_runner(address)
    result: dict[str, list[str]] = stage_on_cluster.with_options(task_runner=runner)(
        str(landing), files, str(staging), max_bytes, options
    )
    return result
