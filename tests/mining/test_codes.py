"""The one-pass numpy core (mining/codes.py) equals independent computations: DuckDB's own
``quantile_cont`` to the bit, the set-based SQL it replaced (window ``lead`` over the stored log,
``list`` grouping), pandas on pm4py's formatted frame, and exact tuple grouping of variants."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeymine.mining import codes, discovery, edges, eventlog, pm4py_adapter, quantiles, variants

LOGS = Path(__file__).resolve().parents[1] / "data" / "eventlogs"

# The SQL the numpy core replaced, kept here as the reference: every pair from a window over
# the stored row order, quantiles from DuckDB's quantile_cont, variants grouped as lists.
PAIRS_SQL = """
    SELECT case_key, source_activity::VARCHAR AS source_activity,
           target_activity::VARCHAR AS target_activity, wait_s
    FROM (
        SELECT case_key, activity AS source_activity, lead(activity) OVER w AS target_activity,
               lead(case_key) OVER w AS next_case,
               (epoch_us(lead(ts) OVER w) - epoch_us(ts)) / 1e6 AS wait_s
        FROM {log} WINDOW w AS (ORDER BY rn)
    ) WHERE next_case = case_key
"""
DFG_SQL = """
    SELECT source_activity, target_activity, count(*) AS frequency,
           count(DISTINCT case_key) AS cases, avg(wait_s) AS wait_mean_s,
           quantile_cont(wait_s, 0.5) AS wait_median_s, quantile_cont(wait_s, 0.9) AS wait_p90_s
    FROM ({pairs}) GROUP BY ALL ORDER BY frequency DESC, source_activity, target_activity
"""
VARIANTS_SQL = """
    WITH traces AS (
        SELECT case_key, list(activity::VARCHAR ORDER BY rn) AS activities,
               (epoch_us(max(ts)) - epoch_us(min(ts))) / 1e6 AS duration_s
        FROM {log} GROUP BY case_key
    ), variants AS (
        SELECT activities, count(*) AS cases, median(duration_s) AS median_duration_s,
               min(case_key) AS first_case
        FROM traces GROUP BY activities
    )
    SELECT array_to_string(activities, ' → ') AS variant, activities, cases,
           cases / sum(cases) OVER () AS share,
           sum(cases) OVER (ORDER BY cases DESC, first_case ROWS UNBOUNDED PRECEDING)
               / sum(cases) OVER () AS coverage,
           len(activities) AS length, median_duration_s
    FROM variants ORDER BY cases DESC, first_case
"""
BOUNDARY_SQL = """
    SELECT activity, count(*) AS cases FROM (
        SELECT {pick}(activity::VARCHAR, rn) AS activity FROM {log} GROUP BY case_key
    ) GROUP BY activity ORDER BY cases DESC, activity
"""


def reference(con: duckdb.DuckDBPyConnection, log: str) -> dict[str, pd.DataFrame]:
    return {
        "dfg": con.execute(DFG_SQL.format(pairs=PAIRS_SQL.format(log=log))).df(),
        "variants": con.execute(VARIANTS_SQL.format(log=log)).df(),
        "start_activities": con.execute(BOUNDARY_SQL.format(pick="arg_min", log=log)).df(),
        "end_activities": con.execute(BOUNDARY_SQL.format(pick="arg_max", log=log)).df(),
    }


def assert_equal_to_reference(
    con: duckdb.DuckDBPyConnection, ours: dict[str, pd.DataFrame], log: str
) -> None:
    """Every column identical, the mean wait to 1e-12 (we sum integer microseconds exactly,
    ``avg`` sums doubles in an order of its choosing)."""
    expected = reference(con, log)
    for name, frame in expected.items():
        mine = ours[name]
        if name == "dfg":
            assert mine.wait_mean_s.tolist() == pytest.approx(frame.wait_mean_s.tolist(), rel=1e-12)
            mine, frame = mine.drop(columns="wait_mean_s"), frame.drop(columns="wait_mean_s")
        pd.testing.assert_frame_equal(mine, frame, check_exact=True)


def stored(con: duckdb.DuckDBPyConnection) -> dict[str, pd.DataFrame]:
    names = ("dfg", "variants", "start_activities", "end_activities")
    return {name: con.execute(f"FROM {name}").df() for name in names}


@pytest.fixture(scope="module", params=["receipt", "helpdesk", "sepsis"])
def real_log(request: pytest.FixtureRequest) -> pa.Table:
    return eventlog.read_event_log(LOGS / f"{request.param}.xes.gz")


def test_every_figure_equals_the_sql_it_replaced_on_real_logs(real_log: pa.Table) -> None:
    con = duckdb.connect()
    log = discovery.materialise_log(con, eventlog.register_log(con, real_log))
    discovery.write_discovery(con, log)
    assert_equal_to_reference(con, stored(con), log)
    # The functions return the same rows as the stored tables.
    pd.testing.assert_frame_equal(discovery.discover_dfg(con, log), stored(con)["dfg"])
    pd.testing.assert_frame_equal(discovery.discover_variants(con, log), stored(con)["variants"])


def test_the_stored_logs_activity_codes_are_the_names_in_order(real_log: pa.Table) -> None:
    """The same log stores the same type on every run: codes follow the names' order, not the
    order in which a parallel DISTINCT happened to finish."""
    con = duckdb.connect()
    log = discovery.materialise_log(con, eventlog.register_log(con, real_log))
    names = con.execute(f"SELECT enum_range(NULL::{log}_activity)").fetchall()[0][0]
    assert names == sorted(set(real_log["activity"].to_pylist()) - {None})


def test_an_arrow_log_gives_the_stored_log_figures(real_log: pa.Table) -> None:
    """Sorting in memory (codes.from_arrow) equals the stored, DuckDB-sorted log: as read (rows
    already in time order inside a case), in time order across cases (scattered cases ranked,
    no three-key sort) and shuffled (the three-key fallback)."""
    con = duckdb.connect()
    log = discovery.materialise_log(con, eventlog.register_log(con, real_log))
    discovery.write_discovery(con, log)
    expected = stored(con)
    shuffled = real_log.take(np.random.default_rng(7).permutation(real_log.num_rows))
    by_time = real_log.take(np.lexsort((real_log["seq"], real_log["ts"])))
    for table in (real_log, by_time, shuffled):
        other = duckdb.connect()
        discovery.write_discovery_from_arrow(other, table)
        for name, frame in stored(other).items():
            pd.testing.assert_frame_equal(frame, expected[name], check_exact=True)


@pytest.mark.parametrize("batch", [1, 7, 1 << 15])
def test_variants_streamed_in_batches_are_stored_as_the_sql_figures(
    batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The variants reach DuckDB as a stream of batches (one variant each, seven, all): the
    stored table equals the reference SQL's, and the stream equals :func:`variants.discover`."""
    table = log_table(random_rows(11, n=400))
    con = duckdb.connect()
    log = discovery.materialise_log(con, eventlog.register_log(con, table))
    monkeypatch.setattr(variants, "BATCH", batch)
    other = duckdb.connect()
    discovery.write_discovery_from_arrow(other, table)
    assert_equal_to_reference(con, stored(other), log)
    sorted_log = codes.from_arrow(table)
    streamed = variants.batches(sorted_log).read_all()
    assert streamed.num_rows > 7
    assert streamed.equals(variants.discover(sorted_log))


def test_a_rolled_back_transaction_leaves_no_discovered_table() -> None:
    """The tables (the variants streamed in batches) are stored inside the caller's
    transaction, so a rollback takes every one of them away."""
    con = duckdb.connect()
    con.execute("BEGIN")
    discovery.write_discovery_from_arrow(con, log_table(random_rows(3, n=200)))
    assert con.execute("SELECT count(*) FROM variants").fetchall()[0][0] > 0
    con.execute("ROLLBACK")
    tables = con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
    assert tables == []


def test_storing_restores_the_callers_thread_count_even_on_error() -> None:
    """The tables are ingested with DuckDB at one thread; the caller's setting is back
    afterwards, also when a store fails half-way (here: a table name DuckDB rejects)."""
    con = duckdb.connect()
    con.execute("SET threads = 3")
    discovery.write_discovery_from_arrow(con, log_table(random_rows(5, n=200)))
    assert con.execute("SELECT current_setting('threads')").fetchall() == [(3,)]
    assert con.execute("SELECT count(*) FROM dfg").fetchall()[0][0] > 0
    with pytest.raises(duckdb.Error):
        discovery.store_tables(con, {"no such schema.t": pa.table({"x": [1]})})
    assert con.execute("SELECT current_setting('threads')").fetchall() == [(3,)]


def test_the_pass_allocates_small_pages_and_restores_numpys_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Inside the discovery pass numpy does not ask for huge pages (the dfg sees the switch
    off); before and after, the caller's setting holds, also when the pass fails."""
    switch = codes._hugepage_switch()
    assert switch is not None
    seen: list[bool] = []
    dfg = edges.dfg

    def spy(log: codes.SortedLog) -> pa.Table:
        seen.append(switch(False))  # the setting in force (left off, as it was)
        return dfg(log)

    monkeypatch.setattr(edges, "dfg", spy)
    switch(True)
    discovery.write_discovery_from_arrow(duckdb.connect(), log_table(random_rows(9, n=200)))
    assert seen == [False]
    assert switch(True) is True
    with pytest.raises(KeyError):
        codes.from_arrow(pa.table({"case_id": ["a"], "activity": ["x"], "ts": [1]}))
    assert switch(True) is True


def test_cases_p90_and_durations_equal_pandas_on_real_logs(real_log: pa.Table) -> None:
    """What pm4py does not report, computed independently with pandas on its formatted frame:
    distinct cases per edge, p90 of the waits, median case duration per variant."""
    frame = pm4py_adapter.formatted(real_log.to_pandas())
    case, act, ts = pm4py_adapter.CASE, pm4py_adapter.ACTIVITY, pm4py_adapter.TIMESTAMP
    nxt = frame.groupby(case, sort=False).shift(-1)
    pairs = pd.DataFrame(
        {
            "case": frame[case],
            "source": frame[act],
            "target": nxt[act],
            "wait": (nxt[ts] - frame[ts]).dt.total_seconds(),
        }
    ).dropna(subset=["target"])
    edges = pairs.groupby(["source", "target"]).agg(
        cases=("case", "nunique"), p90=("wait", lambda w: np.percentile(w, 90))
    )
    con = duckdb.connect()
    discovery.write_discovery_from_arrow(con, real_log)
    dfg = con.execute("FROM dfg").df().set_index(["source_activity", "target_activity"])
    assert dict(dfg.cases) == dict(edges.cases)
    assert dfg.wait_p90_s.loc[edges.index].tolist() == pytest.approx(edges.p90.tolist(), abs=1e-6)
    traces = frame.groupby(case, sort=False).agg(
        activities=(act, tuple), duration=(ts, lambda t: (t.max() - t.min()).total_seconds())
    )
    durations: dict[tuple[str, ...], list[float]] = {}
    for activities, duration in zip(traces.activities, traces.duration, strict=True):
        durations.setdefault(tuple(activities), []).append(float(duration))
    variants = con.execute("FROM variants").df()
    ours = dict(zip(map(tuple, variants.activities), variants.median_duration_s, strict=True))
    assert set(ours) == set(durations)
    assert [ours[v] for v in durations] == pytest.approx(
        [float(np.median(d)) for d in durations.values()], abs=1e-6
    )


values = st.lists(
    st.tuples(st.integers(0, 5), st.one_of(st.integers(0, 10**10), st.integers(0, 2**60))),
    min_size=1,
    max_size=60,
)


@pytest.mark.slow  # 150 generated samples, each checked against DuckDB
@given(values)
@settings(max_examples=150, deadline=None)
def test_quantiles_are_duckdb_quantile_cont_to_the_bit(rows: list[tuple[int, int]]) -> None:
    """Both ways of picking (selection per run, one sort of all groups), small and huge values
    (the 63-bit combined sort key and its lexsort fallback), against DuckDB itself."""
    groups = np.array([g for g, _ in rows])
    _, dense = np.unique(groups, return_inverse=True)
    us = np.array([v for _, v in rows], dtype=np.int64)
    expected = (
        duckdb.connect()
        .execute(
            "SELECT g, quantile_cont(v / 1e6, 0.5), quantile_cont(v / 1e6, 0.9) FROM "
            "(SELECT unnest($g) AS g, unnest($v) AS v) GROUP BY g ORDER BY g",
            {"g": dense.tolist(), "v": us.tolist()},
        )
        .fetchall()
    )
    n_groups = int(dense.max()) + 1
    by_sort = quantiles.grouped_quantiles(dense, us, n_groups)
    order = np.argsort(dense, kind="stable")
    counts = np.bincount(dense, minlength=n_groups)
    by_run = quantiles.run_quantiles(us[order], counts)
    grouped = us[order]
    in_place = quantiles.run_quantiles(grouped, counts, in_place=True)
    assert by_sort.tolist() == [[m, p] for _, m, p in expected]
    assert by_run.tolist() == [[m, p] for _, m, p in expected]
    assert in_place.tolist() == [[m, p] for _, m, p in expected]
    # Reordered only inside its runs: each run holds the same values.
    bounds = np.cumsum(counts)[:-1]
    for before, after in zip(np.split(us[order], bounds), np.split(grouped, bounds), strict=True):
        assert sorted(before.tolist()) == sorted(after.tolist())


def log_table(rows: list[tuple[int, int, int]]) -> pa.Table:
    """A small log: (case, activity, minute) per row, in the given (file) order."""
    return pa.table(
        {
            "case_id": pa.array([f"c{c}" for c, _, _ in rows], pa.string()),
            "activity": pa.array([f"a{a}" for _, a, _ in rows], pa.string()),
            "ts": pa.array(
                [pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(minutes=m) for *_, m in rows],
                pa.timestamp("us", tz="UTC"),
            ),
            "seq": pa.array(range(len(rows)), pa.int64()),
        }
    )


small_logs = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 3), st.integers(0, 5)), min_size=0, max_size=40
)


@pytest.mark.slow  # 60 generated logs, each mined twice and compared with the SQL
@given(small_logs)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_small_log_gives_the_figures_of_the_sql(rows: list[tuple[int, int, int]]) -> None:
    """Ties, loops, single-event cases, empty logs; through the stored log and from Arrow."""
    con = duckdb.connect()
    table = log_table(rows)
    log = discovery.materialise_log(con, eventlog.register_log(con, table))
    discovery.write_discovery(con, log)
    assert_equal_to_reference(con, stored(con), log)
    other = duckdb.connect()
    discovery.write_discovery_from_arrow(other, table)
    for name, frame in stored(other).items():
        pd.testing.assert_frame_equal(frame, stored(con)[name], check_exact=True)


def exact_variants(log: codes.SortedLog) -> dict[tuple[str, ...], int]:
    """Cases per activity sequence, by grouping Python tuples (the independent reference)."""
    sequences = [
        tuple(log.names[a] for a in log.activity[s : s + n])
        for s, n in zip(log.starts.tolist(), log.lengths.tolist(), strict=True)
    ]
    return dict(pd.Series(sequences, dtype=object).value_counts())


def found_variants(table: pa.Table) -> dict[tuple[str, ...], int]:
    pairs = zip(
        map(tuple, table["activities"].to_pylist()), table["cases"].to_pylist(), strict=True
    )
    return dict(pairs)


@given(small_logs)
@settings(max_examples=60, deadline=None)
def test_variants_are_the_exact_sequences(rows: list[tuple[int, int, int]]) -> None:
    """Cases per variant equal a grouping of Python tuples; labels and lengths match them."""
    log = codes.from_arrow(log_table(rows))
    found = variants.discover(log)
    assert found_variants(found) == exact_variants(log)
    lists = found["activities"].to_pylist()
    assert found["variant"].to_pylist() == [" → ".join(a) for a in lists]
    assert found["length"].to_pylist() == [len(a) for a in lists]


@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 299)), max_size=40))
@settings(max_examples=40, deadline=None)
def test_variants_stay_exact_with_codes_wider_than_a_byte(rows: list[tuple[int, int]]) -> None:
    """300 activities: codes are two bytes each, so a0 and a256 share a low byte, and a
    sequence's bytes could be read shifted if the width were wrong; the variants still equal
    the tuples'. Case 99 holds every activity, so that all 300 are in the log."""
    everything = [(99, a, a) for a in range(300)]
    log = codes.from_arrow(log_table(everything + [(c, a, 0) for c, a in rows]))
    assert len(log.names) == 300
    assert found_variants(variants.discover(log)) == exact_variants(log)


def test_more_than_255_activities_give_the_sql_figures() -> None:
    """Edge ids no longer fit 16 bits as ``source * k + target``: they are renumbered, and
    every figure still equals the SQL's on the stored log."""
    rng = np.random.default_rng(11)
    everything = [(999, a, a) for a in range(300)]
    rows = [(int(c), int(a), int(m)) for c, a, m in rng.integers(0, [100, 300, 50], (4000, 3))]
    table = log_table(everything + sorted(rows))
    con = duckdb.connect()
    log = discovery.materialise_log(con, eventlog.register_log(con, table))
    other = duckdb.connect()
    discovery.write_discovery_from_arrow(other, table)
    assert_equal_to_reference(con, stored(other), log)
    assert len(stored(other)["dfg"]) > 1000


def test_variants_with_64_bit_offsets_are_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond 2 GB of codes the sequences are ``large_binary``: forced here on a small log,
    the variants table is identical to the ``binary`` one, on one-byte and two-byte codes."""
    for extra in ([], [(99, a, a) for a in range(300)]):
        log = codes.from_arrow(log_table(extra + random_rows(4)))
        expected = variants.discover(log)
        with monkeypatch.context() as patch:
            patch.setattr(variants, "LARGE_BYTES", 0)
            assert pa.types.is_large_binary(variants.sequences(log).type)
            assert variants.discover(log).equals(expected)


def test_sequences_sharing_a_low_byte_are_different_variants() -> None:
    """a0 and a256 (codes 0 and 256 with 300 activities, bytes 00 00 and 00 01 once the
    names are numbered) are two variants of one case each, not one of two."""
    everything = [(99, a, a) for a in range(300)]
    log = codes.from_arrow(log_table([*everything, (1, 0, 0), (2, 256, 0)]))
    found = found_variants(variants.discover(log))
    assert found[("a0",)] == 1 and found[("a256",)] == 1


@given(st.lists(st.integers(0, 2**40), max_size=200))
@settings(max_examples=80, deadline=None)
def test_the_radix_order_is_numpys_stable_order(keys: list[int]) -> None:
    array = np.array(keys, dtype=np.int64)
    n_keys = int(array.max()) + 1 if keys else 0
    assert codes._radix_order(array, n_keys).tolist() == np.argsort(array, kind="stable").tolist()


@given(st.lists(st.integers(0, 40), max_size=300), st.sampled_from([1, 7, 64, 1 << 20]))
@settings(max_examples=80, deadline=None)
def test_values_grouped_block_by_block_are_in_numpys_stable_order(
    ids: list[int], block: int
) -> None:
    """Sorted block by block (blocks of 1 row, 7 rows, ... the whole log) and scattered, the
    values come out in numpy's stable argsort order of their ids, for 16-bit and 64-bit ids
    and for the row numbers themselves (which gives the order) as for other values."""
    rng = np.random.default_rng(len(ids))
    for dtype in (np.uint16, np.int64):
        array = np.array(ids, dtype=dtype)
        counts = np.bincount(array, minlength=41).astype(np.int64)
        expected = np.argsort(array, kind="stable")
        values = rng.integers(-(2**62), 2**62, size=len(ids))
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(edges, "BLOCK", block)  # edges' own name: it imported the constant
            rows = edges._grouped(array, counts, np.arange(len(ids)))
            grouped = edges._grouped(array, counts, values)
        assert rows.tolist() == expected.tolist()
        assert grouped.tolist() == values[expected].tolist()


@pytest.mark.parametrize("insertion_order", [True, False])
def test_materialised_rows_are_numbered_in_case_time_seq_order(insertion_order: bool) -> None:
    """Also when the connection does not preserve insertion order (rowids then say nothing)."""
    rng = np.random.default_rng(3)
    rows = [(int(c), int(a), int(m)) for c, a, m in rng.integers(0, [50, 5, 30], size=(2000, 3))]
    table = log_table(rows)
    con = duckdb.connect()
    con.execute(f"SET preserve_insertion_order = {str(insertion_order).lower()}")
    log = discovery.materialise_log(con, eventlog.register_log(con, table))
    got = con.execute(f"SELECT case_key, ts, seq FROM {log} ORDER BY rn").df()
    frame = table.to_pandas()
    frame["case_key"] = frame.case_id.rank(method="dense").astype("int64")
    expected = frame.sort_values(["case_key", "ts", "seq"])[["case_key", "ts", "seq"]]
    assert got.seq.tolist() == expected.seq.tolist()
    assert con.execute(f"SELECT min(rn), max(rn), count(*) FROM {log}").fetchall() == [
        (1, 2000, 2000)
    ]
    if insertion_order:  # stored in rn order, so that read_sorted needs no sort
        assert con.execute(f"SELECT bool_and(rn = rowid + 1) FROM {log}").fetchall() == [(True,)]


def test_stored_variants_are_plain_strings_not_enums() -> None:
    """Stored, the variants' lists are VARCHAR[] and the names VARCHAR (the SQL other analyses
    run on them expects strings, not ENUMs or codes)."""
    con = duckdb.connect()
    discovery.write_discovery_from_arrow(con, log_table(random_rows(2)))
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE variants)").fetchall())
    assert types["activities"] == "VARCHAR[]" and types["variant"] == "VARCHAR"
    dfg = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE dfg)").fetchall())
    assert dfg["source_activity"] == "VARCHAR" and dfg["target_activity"] == "VARCHAR"


def test_an_empty_log_stores_empty_tables_with_their_columns() -> None:
    con = duckdb.connect()
    log = discovery.materialise_log(con, eventlog.register_log(con, log_table([])))
    discovery.write_discovery(con, log)
    for name, frame in stored(con).items():
        assert len(frame) == 0, name
    assert list(stored(con)["dfg"].columns) == [
        "source_activity",
        "target_activity",
        "frequency",
        "cases",
        "wait_mean_s",
        "wait_median_s",
        "wait_p90_s",
    ]


def test_case_runs_join_a_case_cut_by_a_chunk_end_and_see_a_returning_case() -> None:
    """Runs are compared across chunk ends; a case that comes back later is not grouped."""
    column = pa.chunked_array([["c1", "c1"], ["c1", "c2"], ["c1"]])
    runs = codes.case_runs(column)
    assert runs.starts.tolist() == [0, 3, 4]
    assert runs.code.tolist() == [0, 1, 0]
    assert runs.keys.to_pylist() == ["c1", "c2"]
    assert not runs.grouped
    assert codes.case_runs(pa.chunked_array([["c2", "c2"], ["c2", "c1"]])).grouped


def test_a_log_grouped_out_of_key_order_ties_variants_by_the_lowest_key() -> None:
    """Cases c2, c1, c10 each one run (no sort needed); the three one-case variants tie and
    are listed by their case id's order as text: c1, c10, c2."""
    table = log_table([(2, 0, 0), (1, 1, 0), (10, 2, 0), (10, 2, 1)])
    assert codes.case_runs(table.column("case_id")).grouped
    found = variants.discover(codes.from_arrow(table))
    assert found["activities"].to_pylist() == [["a1"], ["a2", "a2"], ["a0"]]


def random_rows(seed: int, n: int = 3000) -> list[tuple[int, int, int]]:
    """Rows of 200 cases, grouped by case (cases in random order), minutes with ties."""
    rng = np.random.default_rng(seed)
    rows = [(int(c), int(a), int(m)) for c, a, m in rng.integers(0, [200, 6, 40], size=(n, 3))]
    rank = {c: r for r, c in enumerate(rng.permutation(200).tolist())}
    return sorted(rows, key=lambda row: (rank[row[0]], row[2]))


@pytest.mark.parametrize("shuffle", [False, True])
def test_dictionary_chunks_of_several_row_groups_give_the_sql_figures(
    tmp_path: Path, shuffle: bool
) -> None:
    """A Parquet log read with ``read_dictionary`` arrives as chunks with one dictionary per
    row group (cases cut by row-group ends); grouped by case (no sort) or shuffled (runs
    sorted), the figures equal the SQL's on the stored log."""
    table = log_table(random_rows(5))
    if shuffle:
        table = table.take(np.random.default_rng(9).permutation(table.num_rows))
    path = tmp_path / "log.parquet"
    pq.write_table(table, path, row_group_size=700)
    read = pq.read_table(path, read_dictionary=["case_id", "activity"])
    dictionaries = {tuple(c.dictionary.to_pylist()) for c in read.column("case_id").chunks}
    assert len(dictionaries) >= 4
    assert codes.case_runs(read.column("case_id")).grouped is not shuffle
    con = duckdb.connect()
    log = discovery.materialise_log(con, eventlog.register_log(con, table))
    other = duckdb.connect()
    discovery.write_discovery_from_arrow(other, read)
    assert_equal_to_reference(con, stored(other), log)
    # The library's own read (its memory pool, the dataset API) gives the same chunks.
    assert discovery.read_parquet_log(path).equals(read)
    third = duckdb.connect()
    discovery.write_discovery_from_parquet(third, path)
    assert_equal_to_reference(con, stored(third), log)


def test_a_grouped_log_orders_time_ties_by_seq_not_by_row() -> None:
    """Grouped by case (no sort), in several chunks, but ``seq`` says tied rows came the
    other way round: c1 is a1 (seq 1) then a0 (seq 2) at minute 0, then a2; c2 in row order."""
    rows = log_table([(1, 0, 0), (1, 1, 0), (1, 2, 1), (2, 0, 0), (2, 1, 0)])
    table = rows.set_column(3, "seq", pa.array([2, 1, 0, 3, 4], pa.int64()))
    table = pa.Table.from_batches(table.to_batches(max_chunksize=2))
    assert table.column("seq").num_chunks == 3
    found = variants.discover(codes.from_arrow(table))
    assert found["activities"].to_pylist() == [["a1", "a0", "a2"], ["a0", "a1"]]


def keyed_log(rows: list[tuple[int, int, int]], key: Callable[[int], int]) -> pa.Table:
    """``random_rows`` as a log whose case keys are ``key(case)`` (spread, negative, ...)."""
    return pa.table(
        {
            "case_key": pa.array([key(c) for c, _, _ in rows], pa.int64()),
            "activity": pa.array([f"a{a}" for _, a, _ in rows], pa.string()),
            "ts": log_table(rows)["ts"],
            "seq": pa.array(range(len(rows)), pa.int64()),
        }
    )


@pytest.mark.parametrize("step", [(1 << 63) // 200, 1])
def test_case_keys_too_far_apart_to_pack_with_waits_give_the_sql_figures(step: int) -> None:
    """The dfg carries each pair's case and wait as one packed integer when both fit in 63
    bits; case keys spread over the whole int64 range do not fit, and the separate gathers
    give the same figures as the SQL. Negative keys close together (step 1) are packed
    relative to the lowest key, with the same figures."""
    table = keyed_log(random_rows(7), lambda c: (c - 100) * step)
    con = duckdb.connect()
    con.register("far_keys", table)
    log = discovery.materialise_log(con, "far_keys")
    sorted_log = codes.read_sorted(con, log)
    case_bits = (int(sorted_log.case.max()) - int(sorted_log.case.min())).bit_length()
    assert case_bits == (63 if step > 1 else 8)  # 63: too wide to pack with any wait above 0
    assert int(sorted_log.case.min()) < 0
    discovery.write_discovery(con, log)
    assert_equal_to_reference(con, stored(con), log)


def _expected_arrays(con: duckdb.DuckDBPyConnection, log: str) -> tuple[list[int], ...]:
    """The log's case keys, activity names and microseconds in ``rn`` order, by SQL."""
    rows = con.execute(
        f"SELECT case_key, activity::VARCHAR, epoch_us(ts) FROM {log} ORDER BY rn"
    ).fetchall()
    return tuple(list(column) for column in zip(*rows, strict=True))


def _as_lists(log: codes.SortedLog) -> tuple[list[object], ...]:
    return log.case.tolist(), [log.names[c] for c in log.activity.tolist()], log.us.tolist()


def test_read_sorted_streams_a_log_of_many_batches() -> None:
    """A log longer than several Arrow batches is read batch by batch into the same arrays
    (and case starts) as the whole-table read, and the figures equal the SQL's."""
    rng = np.random.default_rng(11)
    n = 3 * codes.BATCH_ROWS + 123
    rows = [(int(c), int(a), int(m)) for c, a, m in rng.integers(0, [9000, 7, 5000], (n, 3))]
    con = duckdb.connect()
    log = discovery.materialise_log(con, eventlog.register_log(con, log_table(rows)))
    batches = con.sql(f"SELECT rn FROM {log}").to_arrow_reader(codes.BATCH_ROWS)
    assert sum(1 for _ in batches) > 3
    got = codes.read_sorted(con, log)
    assert _as_lists(got) == _expected_arrays(con, log)
    whole = codes._read_whole(con, log)
    assert got.starts.tolist() == whole.starts.tolist() and got.names == whole.names
    assert got.activity.dtype == np.uint8
    discovery.write_discovery(con, log)
    assert_equal_to_reference(con, stored(con), log)


def test_read_sorted_falls_back_when_the_scan_is_not_in_rn_order() -> None:
    """A log table whose rows are stored out of ``rn`` order (written by another tool) is
    read whole and sorted on ``rn``: the same arrays as in ``rn`` order."""
    rng = np.random.default_rng(12)
    rows = [(int(c), int(a), int(m)) for c, a, m in rng.integers(0, [40, 5, 300], (3000, 3))]
    con = duckdb.connect()
    log = discovery.materialise_log(con, eventlog.register_log(con, log_table(rows)))
    con.execute(f"CREATE TABLE shuffled AS SELECT * FROM {log} ORDER BY hash(rn)")
    first = con.execute("SELECT rn FROM shuffled LIMIT 2").fetchall()
    assert first != [(1,), (2,)]  # really out of order
    assert _as_lists(codes.read_sorted(con, "shuffled")) == _expected_arrays(con, log)


def test_read_sorted_of_an_empty_log() -> None:
    con = duckdb.connect()
    log = discovery.materialise_log(con, eventlog.register_log(con, log_table([])))
    got = codes.read_sorted(con, log)
    assert len(got.case) == len(got.activity) == len(got.us) == len(got.starts) == 0


@pytest.mark.parametrize(
    ("block", "step", "packed_bits"),
    [(7, 1, 63), (64, 1, 63), (5, (1 << 63) // 200, 63), (5, 1, 8), (64, 1, 8)],
)
def test_waits_made_block_by_block_give_the_sql_figures(
    block: int, step: int, packed_bits: int
) -> None:
    """The dfg's waits are made per block of pairs (never an array of the whole log) and its
    distinct cases counted per block: with blocks of a few rows, cases cut by every block end
    and pairs across cases inside blocks, the figures still equal the SQL's, the waits packed
    with their case numbers (keys close or far apart) or, when they do not fit, not."""
    table = keyed_log(random_rows(13, 2000), lambda c: c * step)
    con = duckdb.connect()
    con.register("blocks", table)
    log = discovery.materialise_log(con, "blocks")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(edges, "BLOCK", block)
        patch.setattr(edges, "BIG_BLOCK", block + 3)  # the distinct cases, counted per block
        patch.setattr(edges, "PACKED_BITS", packed_bits)  # 8: too few, cases grouped apart
        discovery.write_discovery(con, log)
    assert_equal_to_reference(con, stored(con), log)


@pytest.mark.parametrize("block", [1, 7, 1 << 20])
def test_exact_sums_of_huge_values_block_by_block(block: int) -> None:
    """Sums that overflow int64 are exact (Python integers, by hand), with groups cut by
    every block end, groups of one value and a group longer than several blocks."""
    rng = np.random.default_rng(17)
    counts = np.array([1, 30, 1, 2, 57, 1, 9])
    values = rng.integers(1 << 61, 1 << 63, size=int(counts.sum()), dtype=np.int64)
    offsets = (np.cumsum(counts) - counts).astype(np.int64)
    expected = [
        sum(int(v) for v in values[o : o + c]) for o, c in zip(offsets, counts, strict=True)
    ]
    assert max(expected) > 1 << 63  # the int64 sum would overflow
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(quantiles, "SUM_BLOCK", block)
        assert quantiles.exact_sums(values, offsets).tolist() == expected
