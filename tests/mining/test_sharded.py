"""Sharded discovery equals single-machine discovery: on real logs, on generated logs with ties,
loops and gaps, and on a log small enough to compute by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeymine.errors import EventLogError
from journeymine.mining import discovery, eventlog, sharded
from tests.fixtures import PUBLIC_LOGS, public_log


def single_machine(con: duckdb.DuckDBPyConnection, relation: str) -> sharded.Discovery:
    log = discovery.materialise_log(con, relation, "jm_reference")
    return sharded.Discovery(
        discovery.discover_dfg(con, log),
        discovery.discover_variants(con, log),
        discovery.start_activities(con, log),
        discovery.end_activities(con, log),
    )


def assert_same(ours: sharded.Discovery, reference: sharded.Discovery) -> None:
    """Identical frames (values, dtypes, row order); the mean wait to 1e-12 relative, because the
    single machine sums doubles in an order of its choosing and we sum integer microseconds."""
    pd.testing.assert_frame_equal(
        ours.dfg.drop(columns="wait_mean_s"),
        reference.dfg.drop(columns="wait_mean_s"),
        check_exact=True,
    )
    assert ours.dfg.wait_mean_s.tolist() == pytest.approx(
        reference.dfg.wait_mean_s.tolist(), rel=1e-12
    )
    pd.testing.assert_frame_equal(ours.variants, reference.variants, check_exact=True)
    assert ours.start == reference.start
    assert ours.end == reference.end


@pytest.fixture(scope="module", params=PUBLIC_LOGS)
def real_log(request: pytest.FixtureRequest) -> pa.Table:
    return public_log(request.param)


@pytest.mark.parametrize("shards", [1, 4, 13])
def test_real_logs_give_the_single_machine_figures(
    real_log: pa.Table, shards: int, tmp_path: Path
) -> None:
    con = duckdb.connect()
    raw = eventlog.register_log(con, real_log)
    reference = single_machine(con, raw)
    ours = sharded.discover_sharded(con, raw, tmp_path, shards)
    assert_same(ours, reference)
    assert len(list((tmp_path / "shards" / "log").glob("shard=*"))) == shards
    assert (
        ours.variants.cases.sum()
        == con.execute(f"SELECT count(DISTINCT case_key) FROM {raw}").fetchone()[0]
    )  # type: ignore[index]


def generated_log(cases: int, seed: int) -> pd.DataFrame:
    """Cases of 1-12 events over 6 activities, timestamps on whole minutes (so ties occur and
    are broken by seq), rows of cases interleaved, some rows without activity or time."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 13, size=cases)
    case = np.repeat(np.arange(cases) * 7919 % 100_003, lengths)  # scattered, non-dense keys
    minutes = rng.integers(0, 40, size=len(case)).cumsum()
    frame = pd.DataFrame(
        {
            "case_key": case,
            "activity": rng.choice(list("abcdef"), size=len(case)).astype(object),
            "ts": pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(minutes % 600, "min"),
            "seq": np.arange(len(case)),
        }
    ).sample(frac=1.0, random_state=seed)
    frame.loc[frame.index[::97], "activity"] = None
    frame.loc[frame.index[::89], "ts"] = pd.NaT
    return frame


@pytest.mark.parametrize(("shards", "buckets"), [(3, 3), (8, 2), (2, 11)])
def test_a_generated_log_gives_the_single_machine_figures(
    shards: int, buckets: int, tmp_path: Path
) -> None:
    frame = generated_log(4000, seed=shards)
    con = duckdb.connect()
    con.register("generated", frame)
    reference = single_machine(con, "generated")
    assert len(reference.dfg) == 36 and reference.variants.cases.iloc[0] > 1  # ties merge variants
    assert_same(sharded.discover_sharded(con, "generated", tmp_path, shards, buckets), reference)


EVENT = st.tuples(
    st.integers(0, 6),
    st.sampled_from(["a", "b", "c", None]),
    st.one_of(st.none(), st.integers(0, 20)),
)


@pytest.mark.slow  # 25 generated logs, each sharded into files and merged back
@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(events=st.lists(EVENT, max_size=40), shards=st.integers(1, 5), buckets=st.integers(1, 4))
def test_any_small_log_gives_the_single_machine_figures(
    events: list[tuple[int, str | None, int | None]], shards: int, buckets: int, tmp_path: Path
) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    frame = pd.DataFrame(
        {
            "case_key": pd.Series([e[0] for e in events], dtype="int64"),
            "activity": pd.Series([e[1] for e in events], dtype=object),
            "ts": pd.Series(
                [None if e[2] is None else start + timedelta(hours=e[2]) for e in events],
                dtype="datetime64[us, UTC]",
            ),
            "seq": pd.Series(range(len(events)), dtype="int64"),
        }
    )
    con = duckdb.connect()
    con.register("small", frame)
    out = tmp_path / f"run-{len(list(tmp_path.iterdir()))}"
    assert_same(
        sharded.discover_sharded(con, "small", out, shards, buckets), single_machine(con, "small")
    )


def test_figures_by_hand(tmp_path: Path) -> None:
    """Four cases a→b with waits 10, 20, 30, 40 s; case 4 goes on to c after 60 s."""
    rows = [(1, "a", 0), (1, "b", 10), (2, "a", 0), (2, "b", 20), (3, "a", 0), (3, "b", 30)]
    rows += [(4, "a", 0), (4, "b", 40), (4, "c", 100)]
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t AS SELECT c AS case_key, a AS activity, "
        "TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(s) AS ts, row_number() OVER () AS seq "
        "FROM (VALUES " + ", ".join(f"({c}, '{a}', {s})" for c, a, s in rows) + ") v(c, a, s)"
    )
    result = sharded.discover_sharded(con, "t", tmp_path, shards=3)
    assert len(list((tmp_path / "shards" / "log").glob("shard=*"))) > 1  # really split
    edges = result.dfg.set_index(["source_activity", "target_activity"])
    ab = edges.loc[("a", "b")]
    assert (ab.frequency, ab.cases) == (4, 4)
    assert ab.wait_mean_s == 25.0
    assert ab.wait_median_s == 25.0  # (20 + 30) / 2
    assert ab.wait_p90_s == pytest.approx(37.0)  # rank 0.9 * 3 = 2.7: 30 + 0.7 * (40 - 30)
    bc = edges.loc[("b", "c")]
    assert (bc.frequency, bc.cases, bc.wait_median_s, bc.wait_p90_s) == (1, 1, 60.0, 60.0)
    assert result.variants[["variant", "cases", "median_duration_s"]].values.tolist() == [
        ["a → b", 3, 20.0],
        ["a → b → c", 1, 100.0],
    ]
    assert result.variants.coverage.tolist() == [0.75, 1.0]
    assert result.start == {"a": 4} and result.end == {"b": 3, "c": 1}


def test_a_retried_shard_replaces_its_output_instead_of_adding_to_it(tmp_path: Path) -> None:
    con = duckdb.connect()
    raw = eventlog.register_log(con, public_log("receipt"))
    shards = sharded.write_shards(con, raw, tmp_path / "shards", 3)
    partials = [sharded.mine_shard(s, tmp_path, 2) for s in shards]
    sharded.mine_shard(shards[0], tmp_path, 2)  # the same shard again, as after a lost worker
    reduced = [sharded.reduce_bucket(partials, b, tmp_path) for b in range(2)]
    sharded.reduce_bucket(partials, 1, tmp_path)
    result = sharded.read_discovery(sharded.merge_buckets(reduced, partials, tmp_path))
    assert_same(result, single_machine(con, raw))
    assert not list(tmp_path.rglob("*.tmp-*"))


def test_an_empty_log_gives_empty_results(tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (case_key BIGINT, activity VARCHAR, ts TIMESTAMPTZ, seq BIGINT)")
    con.execute("INSERT INTO t VALUES (1, NULL, now(), 1), (2, 'a', NULL, 2)")
    result = sharded.discover_sharded(con, "t", tmp_path, 4)
    assert result.dfg.empty and result.variants.empty
    assert list(result.dfg.columns) == list(single_machine(con, "t").dfg.columns)
    assert result.start == {} and result.end == {}


def test_zero_shards_is_refused(tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (case_key BIGINT, activity VARCHAR, ts TIMESTAMPTZ, seq BIGINT)")
    with pytest.raises(EventLogError, match="number of shards must be at least 1, not 0"):
        sharded.write_shards(con, "t", tmp_path, 0)


def test_stored_tables_equal_the_single_machine_tables(tmp_path: Path) -> None:
    con = duckdb.connect()
    raw = eventlog.register_log(con, public_log("sepsis"))
    discovery.write_discovery(con, discovery.materialise_log(con, raw))
    expected = {
        t: con.execute(f"FROM {t}").df() for t in ("variants", "start_activities", "end_activities")
    }
    expected_dfg = con.execute("FROM dfg").df()
    sharded.discover_sharded(con, raw, tmp_path, 5)
    sharded.store_discovery(con, tmp_path / "discovery")
    for table, frame in expected.items():
        pd.testing.assert_frame_equal(con.execute(f"FROM {table}").df(), frame, check_exact=True)
    stored_dfg = con.execute("FROM dfg").df()
    pd.testing.assert_frame_equal(
        stored_dfg.drop(columns="wait_mean_s"), expected_dfg.drop(columns="wait_mean_s")
    )
    assert stored_dfg.wait_mean_s.tolist() == pytest.approx(
        expected_dfg.wait_mean_s.tolist(), rel=1e-12
    )


def test_workers_that_hash_differently_are_caught(tmp_path: Path) -> None:
    """Simulated: one shard's partials are put in the wrong bucket, as a worker with another
    hash function would; the merge refuses instead of splitting the counts."""
    con = duckdb.connect()
    raw = eventlog.register_log(con, public_log("receipt"))
    shards = sharded.write_shards(con, raw, tmp_path / "shards", 2)
    partials = [sharded.mine_shard(s, tmp_path, 2) for s in shards]
    for kind in sharded.PARTIALS:  # swap bucket 0 and 1 of the first shard
        folder = partials[0] / kind
        (folder / "bucket=0").rename(folder / "swap")
        (folder / "bucket=1").rename(folder / "bucket=0")
        (folder / "swap").rename(folder / "bucket=1")
    reduced = [sharded.reduce_bucket(partials, b, tmp_path) for b in range(2)]
    with pytest.raises(
        EventLogError, match=r"edges and \d+ variants came out of more than one bucket"
    ):
        sharded.merge_buckets(reduced, partials, tmp_path)
