"""DuckDB discovery equals pm4py on real logs: DFG, start/end activities, variants, waits."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from journeymine.mining import discovery, eventlog, pm4py_adapter
from tests.fixtures import PUBLIC_LOGS, public_log


@pytest.fixture(scope="module", params=PUBLIC_LOGS)
def real_log(request: pytest.FixtureRequest) -> tuple[duckdb.DuckDBPyConnection, str, dict]:
    table = public_log(request.param)
    con = duckdb.connect()
    log = discovery.materialise_log(con, eventlog.register_log(con, table))
    reference = pm4py_adapter.reference_figures(pm4py_adapter.formatted(table.to_pandas()))
    return con, log, reference


def test_dfg_equals_pm4py(real_log: tuple[duckdb.DuckDBPyConnection, str, dict]) -> None:
    con, log, ref = real_log
    dfg = discovery.discover_dfg(con, log)
    ours = {(r.source_activity, r.target_activity): r.frequency for r in dfg.itertuples()}
    assert ours == ref["dfg"]


def test_waiting_times_equal_pm4py_to_the_second(
    real_log: tuple[duckdb.DuckDBPyConnection, str, dict],
) -> None:
    con, log, ref = real_log
    dfg = discovery.discover_dfg(con, log).set_index(["source_activity", "target_activity"])
    assert set(dfg.index) == set(ref["performance"])
    for edge, perf in ref["performance"].items():
        assert dfg.loc[edge, "wait_mean_s"] == pytest.approx(perf["mean"], abs=1.0)
        assert dfg.loc[edge, "wait_median_s"] == pytest.approx(perf["median"], abs=1.0)


def test_start_end_and_variants_equal_pm4py(
    real_log: tuple[duckdb.DuckDBPyConnection, str, dict],
) -> None:
    con, log, ref = real_log
    assert discovery.start_activities(con, log) == ref["start"]
    assert discovery.end_activities(con, log) == ref["end"]
    variants = discovery.discover_variants(con, log)
    assert {
        tuple(a): int(n) for a, n in zip(variants.activities, variants.cases, strict=True)
    } == ref["variants"]
    assert variants.share.sum() == pytest.approx(1.0)
    assert variants.coverage.iloc[-1] == pytest.approx(1.0)


def test_a_case_called_NA_stays_a_case() -> None:
    table = public_log("sepsis").to_pandas()
    assert (table.case_id == "NA").sum() == 24 and table.case_id.isna().sum() == 0


def test_csv_logs_keep_NA_and_convert_offsets(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(
        "case;act;time\n"
        "NA;Register;2026-03-29 01:30:00+01:00\n"
        "NA;Triage;2026-03-29 03:30:00+02:00\n"  # an hour later: the clocks went forward
    )
    mapping = eventlog.EventLogMapping(case="case", activity="act", timestamp="time")
    table = eventlog.read_event_log(path, mapping).to_pandas()
    assert list(table.case_id) == ["NA", "NA"]
    assert (table.ts.iloc[1] - table.ts.iloc[0]) == pd.Timedelta(hours=1)
    with pytest.raises(Exception, match="no column 'who' for the resource"):
        eventlog.read_event_log(
            path, eventlog.EventLogMapping("case", "act", "time", resource="who")
        )


def test_ties_keep_file_order() -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t AS SELECT * FROM (VALUES (1, 'b', TIMESTAMPTZ '2026-01-01 10:00+00', 0),"
        "(1, 'a', TIMESTAMPTZ '2026-01-01 10:00+00', 1), (1, 'c', TIMESTAMPTZ '2026-01-01 11:00+00', 2))"
        " v(case_key, activity, ts, seq)"
    )
    log = discovery.materialise_log(con, "t")
    assert discovery.discover_variants(con, log).variant.tolist() == ["b → a → c"]


def test_stored_tables_equal_the_functions(
    real_log: tuple[duckdb.DuckDBPyConnection, str, dict],
) -> None:
    con, log, ref = real_log
    discovery.write_discovery(con, log)
    assert dict(con.execute("FROM start_activities").fetchall()) == ref["start"]
    assert dict(con.execute("FROM end_activities").fetchall()) == ref["end"]
    stored = con.execute("SELECT source_activity, target_activity, frequency FROM dfg").fetchall()
    assert {(a, b): n for a, b, n in stored} == ref["dfg"]


def test_stored_dfg_counts_cases_like_the_function(
    real_log: tuple[duckdb.DuckDBPyConnection, str, dict],
) -> None:
    con, log, _ = real_log
    discovery.write_discovery(con, log)
    stored = con.execute("FROM dfg ORDER BY ALL").df()
    direct = (
        discovery.discover_dfg(con, log).sort_values(list(stored.columns)).reset_index(drop=True)
    )
    assert stored.drop(columns=["wait_mean_s", "wait_median_s", "wait_p90_s"]).equals(
        direct.drop(columns=["wait_mean_s", "wait_median_s", "wait_p90_s"])
    )
    assert stored.wait_median_s.tolist() == pytest.approx(direct.wait_median_s.tolist())
