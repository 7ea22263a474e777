"""Retention cohorts pinned on hand-made logs, checked against an independent pandas count."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd
import pytest

from journeymine.analyses.retention import RetentionError, retention
from tests.fixtures import insert_rows

PAID = "billing.invoice_paid"
CUTOFF = "2026-05-20 00:00+00"
CUTOFF_NAIVE = datetime(2026, 5, 20)  # read as UTC

# (person, activity, time, attributes)
ROWS: list[tuple[int, str, str, dict[str, Any]]] = [
    # January cohort: 1 renews in Feb, Mar and Apr; 2 in Feb only; 3 never.
    (1, "web.signed_up", "2026-01-10 09:00+00", {}),
    (1, PAID, "2026-01-10 10:00+00", {"amount_paid": 4900, "currency": "eur"}),
    (1, PAID, "2026-02-10 10:00+00", {"amount_paid": 4900, "currency": "eur"}),
    (1, PAID, "2026-03-10 10:00+00", {"amount_paid": 9900, "currency": "eur"}),
    (1, PAID, "2026-04-10 10:00+00", {"amount_paid": 9900, "currency": "eur"}),
    (2, "web.signed_up", "2026-01-31 12:00+00", {}),  # Jan 31 + 1 month = Feb 28
    (2, PAID, "2026-01-31 13:00+00", {"amount_paid": 1000, "currency": "eur"}),
    (2, PAID, "2026-02-28 12:00+00", {"amount_paid": 1000, "currency": "eur"}),  # period 1
    (2, PAID, "2026-03-28 11:59+00", {"amount_paid": 1000, "currency": "eur"}),  # still period 1
    (3, "web.signed_up", "2026-01-05 00:00+00", {}),
    (3, "web.page_view:/", "2026-02-06 00:00+00", {}),  # not an active activity
    # March cohort: 4 active in period 1 only; period 2 ends 2026-06-15, after the cut-off.
    (4, "web.signed_up", "2026-03-15 00:00+00", {}),
    (4, PAID, "2026-04-20 00:00+00", {"amount_paid": 500, "currency": "usd"}),
    (4, PAID, "2026-05-19 00:00+00", {"amount_paid": 500, "currency": "usd"}),
    # April cohort: period 1 ends after the cut-off -> nothing observable, no row at all.
    (5, "web.signed_up", "2026-04-25 00:00+00", {}),
    (5, PAID, "2026-05-19 00:00+00", {"amount_paid": 700, "currency": "eur"}),
    (6, "web.page_view:/", CUTOFF, {}),  # only sets the cut-off
]


def _warehouse(rows: list[tuple[int, str, str, dict[str, Any]]]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE touchpoints (event_id BIGINT, person_id BIGINT, account_id BIGINT, "
        "activity VARCHAR, occurred_at TIMESTAMPTZ, seq BIGINT, attributes JSON)"
    )
    columns = ("event_id", "person_id", "activity", "occurred_at", "seq", "attributes")
    values = [(i, p, a, t, i, json.dumps(attrs)) for i, (p, a, t, attrs) in enumerate(rows, 1)]
    insert_rows(con, "touchpoints", columns, values)
    return con


def _frame(rows: list[tuple[int, str, str, dict[str, Any]]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["person", "activity", "t", "attrs"])
    frame["t"] = pd.to_datetime(frame.t, utc=True, format="ISO8601").dt.tz_localize(None)
    return frame


def _expected(
    rows: list[tuple[int, str, str, dict[str, Any]]], periods: int, period: str = "month"
) -> pd.DataFrame:
    """The same cells counted person by person in pandas, months added with DateOffset."""
    frame = _frame(rows)
    cutoff = frame.t.max()
    offset = pd.DateOffset(months=1) if period == "month" else pd.DateOffset(weeks=1)
    cohort_of = "M" if period == "month" else "W-SUN"  # pandas weeks ending Sunday: from Monday
    starts = frame[frame.activity == "web.signed_up"].groupby("person").t.min()
    out = []
    for person, start in starts.items():
        paid = frame[(frame.person == person) & (frame.activity == PAID)].t
        for k in range(1, periods + 1):
            lo, hi = start + k * offset, start + (k + 1) * offset
            if hi <= cutoff:
                active = bool(((paid >= lo) & (paid < hi)).any())
                out.append((start.to_period(cohort_of).start_time, k, active))
    cells = pd.DataFrame(out, columns=["cohort", "period", "active"])
    table = cells.groupby(["cohort", "period"]).active.agg(at_risk="size", active="sum")
    table["rate"] = table.active / table.at_risk
    return table.reset_index()


@pytest.mark.parametrize(("period", "periods"), [("month", 6), ("week", 20)])
def test_cells_match_independent_pandas_count(period: str, periods: int) -> None:
    con = _warehouse(ROWS)
    got = retention(con, start=["web.signed_up"], active=[PAID], period=period, periods=periods)
    got = got[got.currency == "eur"].drop(columns="currency")  # counts repeat per currency
    expected = _expected(ROWS, periods, period)
    columns = ["cohort", "period", "at_risk", "active", "rate"]
    got = got[columns].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected[columns], check_dtype=False)
    assert expected.active.sum() >= 5 and len(expected) >= 4  # enough to mean something


def test_cells_by_hand() -> None:
    got = retention(_warehouse(ROWS), start=["web.signed_up"], active=[PAID], periods=6)
    got = got[got.currency == "eur"]
    # By hand: January has 3 people; period 1 active = 1 and 2; April has no row at all.
    jan1 = got[(got.cohort == "2026-01-01") & (got.period == 1)].iloc[0]
    assert (jan1.at_risk, jan1.active, jan1.rate) == (3, 2, pytest.approx(2 / 3))
    assert set(got.cohort.dt.month) == {1, 3}


def test_open_cells_are_absent_never_zero() -> None:
    got = retention(
        _warehouse(ROWS), start=["web.signed_up"], active=[PAID], periods=6, cutoff=CUTOFF_NAIVE
    )
    cells = set(zip(got.cohort.dt.month, got.period, strict=True))
    # January period 3 ends 2026-05-05 for person 3 and 05-10 for person 1 (observable), but
    # 2026-05-31 for person 2 (after the cut-off): 2 at risk out of 3.
    assert (1, 3) in cells and (1, 4) not in cells
    jan3 = got[(got.cohort.dt.month == 1) & (got.period == 3)].iloc[0]
    assert jan3.at_risk == 2 and jan3.cohort_size == 3
    assert (3, 1) in cells and (3, 2) not in cells  # March period 2 not over at the cut-off
    assert not any(month == 4 for month, _ in cells)  # April: nothing observable yet
    assert (got.at_risk > 0).all()


def test_revenue_retained_per_currency() -> None:
    got = retention(_warehouse(ROWS), start=["web.signed_up"], active=[PAID], periods=2)
    got = got.set_index([got.cohort.dt.month, "period", "currency"])
    # January period 1, eur: 1 pays 4900 (base 4900), 2 pays 1000 + 1000 (base 1000).
    assert got.loc[(1, 1, "eur"), ["revenue", "revenue_base"]].tolist() == [6900, 5900]
    assert got.loc[(1, 1, "eur"), "revenue_retained"] == pytest.approx(6900 / 5900)
    # January period 2 (all three observable): only 1 pays, 9900.
    assert got.loc[(1, 2, "eur"), "revenue"] == 9900
    # March, usd: 4 paid 500 in period 1 and nothing in period 0.
    assert got.loc[(3, 1, "usd"), "revenue"] == 500
    assert pd.isna(got.loc[(3, 1, "usd"), "revenue_retained"])
    assert got.loc[(1, 1, "usd"), "revenue"] == 0  # observable, and really nobody paid in usd


def test_churned_is_cumulative_up_to_the_end_of_each_period() -> None:
    cancel = "billing.subscription_canceled"
    rows = [
        *ROWS,
        (2, cancel, "2026-03-15 00:00+00", {}),  # in 2's period 1: churned from period 1 on
        (3, cancel, "2026-01-04 00:00+00", {}),  # before 3's start: not a churn of this start
        (1, cancel, "2026-04-10 12:00+00", {}),  # 1's period 3 starts 2026-04-10 09:00
    ]
    got = retention(_warehouse(rows), start=["web.signed_up"], active=[PAID], churn=[cancel])
    jan = got[(got.cohort.dt.month == 1) & (got.currency == "eur")].set_index("period")
    assert jan.churned.tolist() == [1, 1, 1]  # person 2; person 2; person 1 (2 not at risk)
    assert jan.churn_rate.tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 2])
    no_churn = retention(_warehouse(rows), start=["web.signed_up"], active=[PAID])
    assert "churned" not in no_churn.columns


def test_start_at_a_stage_from_stage_entries() -> None:
    con = _warehouse(ROWS)
    con.execute(
        "CREATE TABLE stage_entries AS SELECT * FROM (VALUES "
        "(1, 'paid', '2026-01-10 10:00+00'::TIMESTAMPTZ), "
        "(2, 'paid', '2026-01-31 13:00+00'::TIMESTAMPTZ), "
        "(2, 'trial', '2025-12-01 00:00+00'::TIMESTAMPTZ)) t(case_key, stage, entered_at)"
    )
    got = retention(con, stage="paid", active=[PAID], periods=1)
    row = got[got.currency == "eur"].iloc[0]
    assert (row.cohort.month, row.cohort_size, row.at_risk, row.active) == (1, 2, 2, 2)


def test_without_billing_amounts_no_revenue_columns() -> None:
    rows = [(p, a, t, {}) for p, a, t, _ in ROWS]
    got = retention(_warehouse(rows), start=["web.*"], active=[PAID], period="week", periods=2)
    assert list(got.columns) == ["cohort", "period", "cohort_size", "at_risk", "active", "rate"]
    assert (got.cohort.dt.day_of_week == 0).all()  # ISO weeks start on Monday


def test_bad_amount_names_the_event() -> None:
    rows = [*ROWS, (7, PAID, "2026-02-01 00:00+00", {"amount_paid": "49,00", "currency": "eur"})]
    with pytest.raises(RetentionError, match=r"amount_paid.*event_id 18"):
        retention(_warehouse(rows), start=["web.signed_up"], active=[PAID])


def test_patterns_matching_nothing_and_unknown_stages_are_named() -> None:
    con = _warehouse(ROWS)
    with pytest.raises(RetentionError, match=r"active \['billing.invoice_payed'\] matches no"):
        retention(con, start=["web.signed_up"], active=["billing.invoice_payed"])
    with pytest.raises(RetentionError, match="compute the stage funnel first"):
        retention(con, stage="paid", active=[PAID])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"active": [PAID]}, "exactly one of start"),
        ({"active": [PAID], "start": ["a"], "stage": "b"}, "exactly one of start"),
        ({"active": [], "start": ["a"]}, "active"),
        ({"active": [PAID], "start": ["a"], "period": "year"}, "period is one of"),
        ({"active": [PAID], "start": ["a"], "periods": 0}, "at least 1"),
    ],
)
def test_bad_parameters_are_named(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(RetentionError, match=message):
        retention(_warehouse(ROWS), **kwargs)
