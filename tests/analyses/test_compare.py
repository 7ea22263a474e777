"""Comparing two groups' journeys: a planted difference is found, a null one is not; every
count, p-value and discovery checked against an independent pandas / scipy computation."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from journeymine.analyses.compare import CompareError, compare_groups, compare_segments

CALL, MAIL = "crm.call_completed", "email.opened"


def _journey(case: int) -> list[str]:
    """Group a = cases 1-60, b = 61-120. Planted: 45 of 60 in a get a call after signing up,
    15 of 60 in b. Null: exactly half of each group lands on the pricing page first."""
    index = (case - 1) % 60
    first = "web.page_view:/pricing" if index % 2 == 0 else "web.page_view:/"
    planted = index < (45 if case <= 60 else 15)
    last = CALL if planted else MAIL
    # Every tenth case signs up again: its edges repeat, and still count the case once.
    return [first, "web.signed_up", last] + (["web.signed_up", last] if index % 10 == 0 else [])


def _warehouse() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE touchpoints (person_id BIGINT, activity VARCHAR, occurred_at TIMESTAMPTZ, "
        "seq BIGINT, attributes JSON)"
    )
    rows, seq = [], 0
    for case in range(1, 121):
        plan = "enterprise" if case <= 60 else ("smb" if case % 2 else "starter")
        for step, activity in enumerate(_journey(case)):
            seq += 1
            attrs = {"plan": plan} if step == 1 else {}
            at = pd.Timestamp("2026-02-01", tz="UTC") + pd.Timedelta(hours=case + step)
            rows.append((case, activity, at.to_pydatetime(), seq, json.dumps(attrs)))
    rows.append((121, "web.page_view:/", pd.Timestamp("2026-02-01", tz="UTC"), 0, "{}"))
    frame = pd.DataFrame(rows, columns=["person_id", "activity", "at", "seq", "attrs"])
    con.register("rows_frame", frame)
    con.execute("INSERT INTO touchpoints SELECT * FROM rows_frame")
    con.unregister("rows_frame")
    con.execute(
        "CREATE VIEW jm_log AS SELECT person_id AS case_key, activity, occurred_at AS ts, seq "
        "FROM touchpoints"
    )
    return con


def _expected(con: duckdb.DuckDBPyConnection, a: list[int], b: list[int]) -> pd.DataFrame:
    """Edge and variant counts per group in pandas, p from scipy's chi-square on the 2×2 table
    (no continuity correction: the same test as the pooled z-test), BH from scipy."""
    log = con.execute("SELECT * FROM jm_log ORDER BY case_key, ts, seq").df()
    traces = log.groupby("case_key").activity.agg(list)
    groups = {**{c: "a" for c in a}, **{c: "b" for c in b}}
    rows = []
    for case, acts in traces.items():
        if case not in groups:
            continue
        pairs = set(zip(acts[:-1], acts[1:], strict=True))
        rows += [("edge", f"{x} → {y}", groups[case]) for x, y in pairs]
        rows.append(("variant", " → ".join(acts), groups[case]))
    frame = pd.DataFrame(rows, columns=["kind", "item", "grp"])
    table = frame.groupby(["kind", "item"]).grp.value_counts().unstack(fill_value=0)
    n_a = sum(1 for c in traces.index if groups.get(c) == "a")
    n_b = sum(1 for c in traces.index if groups.get(c) == "b")
    p = []
    for ka, kb in zip(table.a, table.b, strict=True):
        both = np.array([[ka, n_a - ka], [kb, n_b - kb]])
        varies = both.sum(axis=0).min() > 0
        p.append(sps.chi2_contingency(both, correction=False).pvalue if varies else 1.0)
    table["p_value"] = p
    table["significant"] = sps.false_discovery_control(table.p_value) <= 0.05
    table["share_a"], table["share_b"] = table.a / n_a, table.b / n_b
    return table.rename(columns={"a": "cases_a", "b": "cases_b"})


def test_planted_difference_found_and_null_not() -> None:
    con = _warehouse()
    a, b = list(range(1, 61)), list(range(61, 121))
    got = compare_groups(con, "jm_log", a, b, labels=("enterprise", "smb"))
    edges = got[got.kind == "edge"].set_index("item")
    planted = edges.loc[f"web.signed_up → {CALL}"]
    assert (planted.cases_a, planted.cases_b) == (45, 15)
    assert (planted.share_a, planted.share_b, planted.difference) == (0.75, 0.25, 0.5)
    assert planted.significant and planted.p_value < 1e-6
    null = edges.loc["web.page_view:/pricing → web.signed_up"]
    assert (null.cases_a, null.cases_b, null.p_value) == (30, 30, 1.0)
    assert not null.significant
    assert got.iloc[0]["item"] in {f"web.signed_up → {CALL}", f"web.signed_up → {MAIL}"}
    assert (got.group_a == "enterprise").all() and (got.group_b == "smb").all()


def test_every_row_matches_independent_computation() -> None:
    con = _warehouse()
    a, b = list(range(1, 41)) + [999], list(range(70, 121))  # 999 has no events: not counted
    got = compare_groups(con, "jm_log", a, b).set_index(["kind", "item"]).sort_index()
    expected = _expected(con, a, b).sort_index()
    columns = ["cases_a", "cases_b", "share_a", "share_b", "p_value", "significant"]
    pd.testing.assert_frame_equal(
        got[columns], expected[columns], check_dtype=False, check_names=False
    )
    assert got.significant.any() and not got.significant.all()


def test_top_variants_limits_variants_not_edges() -> None:
    con = _warehouse()
    got = compare_groups(con, "jm_log", range(1, 61), range(61, 121), top_variants=2)
    assert (got.kind == "variant").sum() == 2
    assert (got.kind == "edge").sum() == 6  # 4 + back to signing up after a call or a mail


def test_segments_equal_the_explicit_groups() -> None:
    con = _warehouse()
    by_segment = compare_segments(con, "jm_log", "plan", "enterprise", ["smb", "starter"])
    explicit = compare_groups(con, "jm_log", range(1, 61), range(61, 121))
    columns = ["kind", "item", "cases_a", "cases_b", "p_value", "significant"]
    pd.testing.assert_frame_equal(by_segment[columns], explicit[columns])
    assert by_segment.group_a.iloc[0] == "plan=enterprise"
    assert by_segment.group_b.iloc[0] == "plan=smb|starter"
    smb = compare_segments(con, "jm_log", "plan", "smb", "starter")
    assert smb.cases_a.max() == 30 and smb.cases_b.max() == 30  # odd vs even cases of b


def test_overlapping_or_empty_groups_are_refused() -> None:
    con = _warehouse()
    with pytest.raises(CompareError, match="1 case"):
        compare_groups(con, "jm_log", [1, 2], [2, 3])
    with pytest.raises(CompareError, match="group 'b' has no case"):
        compare_groups(con, "jm_log", [1, 2], [998])
    with pytest.raises(CompareError, match="in both groups"):
        compare_segments(con, "jm_log", "plan", ["smb"], ["smb", "starter"])
