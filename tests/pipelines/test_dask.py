"""Sharded discovery as a Prefect flow on a Dask cluster of 2 worker processes gives the
single-machine figures, on the bundled sample's event log and on a real log; a cluster that
cannot be reached fails in seconds, naming its address."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import duckdb
import pytest

from journeymine.ingest.load import load_landing
from journeymine.mining import eventlog, sharded
from journeymine.pipelines import scale
from journeymine.spec import load_spec
from tests.mining.test_sharded import assert_same, single_machine

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"
LOGS = ROOT / "tests" / "data" / "eventlogs"
COLUMNS = "SELECT case_key, activity, ts, seq FROM "


def write_log(con: duckdb.DuckDBPyConnection, relation: str, path: Path) -> Path:
    con.sql(COLUMNS + relation).write_parquet(str(path))
    return path


def executed_per_worker(address: str) -> list[int]:
    from distributed import Client

    with Client(address, set_as_default=False) as client:
        counts = client.run(lambda dask_worker: dask_worker.state.executed_count)
    return sorted(counts.values())


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_local_cluster_on_the_sample_gives_the_single_machine_figures(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    load_landing(db, SAMPLE / "landing")
    con = duckdb.connect(str(db))
    relation = eventlog.log_from_touchpoints(con, case=load_spec(SAMPLE / "journey.toml").case)
    log = write_log(con, relation, tmp_path / "log.parquet")
    reference = single_machine(con, relation)
    assert len(reference.dfg) > 10 and reference.variants.cases.sum() > 1000
    ours = scale.run_sharded_discovery(log, 3, tmp_path / "out", dask="local:2")
    assert_same(ours, reference)


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_running_scheduler_on_a_real_log_gives_the_single_machine_figures(
    dask_scheduler: str, tmp_path: Path
) -> None:
    scheduler = dask_scheduler
    con = duckdb.connect()
    relation = eventlog.register_log(con, eventlog.read_event_log(LOGS / "helpdesk.xes.gz"))
    log = write_log(con, relation, tmp_path / "log.parquet")
    before = executed_per_worker(scheduler)
    ours = scale.run_sharded_discovery(log, 4, tmp_path / "out", dask=scheduler, buckets=2)
    assert_same(ours, single_machine(con, relation))
    after = executed_per_worker(scheduler)
    assert all(a > b for a, b in zip(after, before, strict=True))  # both workers did work


def mine_then_die_once(shard: Path, out: Path, buckets: int, marker: Path) -> Path:
    """The first attempt at a shard finishes its output, leaves a half-written folder beside it
    and then its worker process dies before reporting; Dask runs the task again elsewhere."""
    if shard.name == "shard=0" and not marker.exists():
        marker.touch()
        sharded.mine_shard(shard, out, buckets)
        (out / "partials" / "shard=0.tmp-dead").mkdir()
        os._exit(1)
    return sharded.mine_shard(shard, out, buckets)


@pytest.mark.slow
def test_a_worker_lost_mid_run_costs_a_rerun_not_the_answer(
    dask_scheduler: str, tmp_path: Path
) -> None:
    from distributed import Client

    con = duckdb.connect()
    relation = eventlog.register_log(con, eventlog.read_event_log(LOGS / "receipt.xes.gz"))
    shards = sharded.write_shards(con, relation, tmp_path / "shards", 3)
    with Client(dask_scheduler, set_as_default=False) as client:
        futures = client.map(
            mine_then_die_once, shards, out=tmp_path, buckets=2, marker=tmp_path / "died"
        )
        partials = client.gather(futures)
        reduced = client.gather(
            client.map(sharded.reduce_bucket, [partials] * 2, range(2), out=tmp_path)
        )
        folder = client.submit(sharded.merge_buckets, reduced, partials, tmp_path).result()
    assert (tmp_path / "died").exists()  # the worker really died once
    assert_same(sharded.read_discovery(folder), single_machine(con, relation))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed again: nothing listens there


def test_an_unreachable_scheduler_fails_fast_naming_the_address(tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    started = time.perf_counter()
    with pytest.raises(scale.ClusterUnreachableError) as caught:
        scale.run_sharded_discovery(tmp_path / "log.parquet", 2, tmp_path / "out", dask=address)
    assert time.perf_counter() - started < scale.CONNECT_TIMEOUT_S
    assert f"cannot reach the Dask scheduler at {address}" in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_a_scheduler_without_a_port_is_looked_for_on_dasks_default_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tried: list[tuple[str, int]] = []

    def refuse(address: tuple[str, int], timeout: float) -> None:
        tried.append(address)
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(scale.socket, "create_connection", refuse)
    with pytest.raises(scale.ClusterUnreachableError, match=r"at tcp://\[::1\]:8786 "):
        scale.check_scheduler("tcp://[::1]")
    assert tried == [("::1", 8786)]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("local:0", "local:N needs a number of workers of at least 1"),
        ("local:many", "local:N needs a number of workers of at least 1"),
        ("http://example.org:8786", "use tcp://host:port for a running scheduler or local:N"),
        ("tcp://127.0.0.1:port", "the port is not a number"),
    ],
)
def test_a_malformed_dask_option_is_refused(value: str, message: str) -> None:
    with pytest.raises(scale.ClusterAddressError, match=message):
        scale.task_runner(value)


def test_without_dask_the_default_local_threads_stay() -> None:
    from prefect.task_runners import ThreadPoolTaskRunner

    assert isinstance(scale.task_runner(None), ThreadPoolTaskRunner)
