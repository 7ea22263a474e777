"""Retention cohorts: of the people who started in a month (or week), how many are still active
1, 2, ... N periods later, and how much of their billing revenue is retained.

Definitions (docs/metrics.md, "Retention"):

* a person's **start** is its first touchpoint matching one of ``start`` (glob patterns), or its
  ``entered_at`` in ``stage_entries`` for ``stage``; the **cohort** is the UTC calendar month
  (or ISO week from Monday, or day) of the start;
* period ``k`` of a person is ``[start + k·P, start + (k+1)·P)`` with ``P`` one ``period``
  (months added on the calendar: Jan 31 + 1 month = Feb 28), in UTC;
* a person is **at risk** in period ``k`` when that whole period is at or before the cut-off
  (it can be observed) and **active** when it has a touchpoint matching ``active`` in it;
  ``rate`` = active / at_risk. A cell nobody can observe yet is absent, never a zero;
* **churned** (given ``churn`` activities): at-risk people whose first churn activity at or
  after the start is before the end of period ``k`` (cumulative, even if they came back);
* **revenue** (where touchpoints of ``revenue_activity`` carry ``amount_paid`` and
  ``currency``, as the Stripe parser stores them): the at-risk people's ``amount_paid`` in
  period ``k``, in the currency's minor unit (cents), per currency; ``revenue_base`` the same
  people's amount in period 0; ``revenue_retained`` = revenue / revenue_base.

All of it is one SQL statement over the whole touchpoints table.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from journeymine.analyses.paths import no_match_message, stage_message
from journeymine.errors import JourneymineError
from journeymine.sql import data_cutoff

PERIODS = {"day": "to_days", "week": "to_weeks", "month": "to_months"}
CASE_COLUMNS = {"person": "person_id", "account": "account_id"}
REVENUE_ACTIVITY = "billing.invoice_paid"
COLUMNS = ["cohort", "period", "cohort_size", "at_risk", "active", "rate"]
CHURN_COLUMNS = ["churned", "churn_rate"]
REVENUE_COLUMNS = ["currency", "revenue", "revenue_base", "revenue_retained"]


class RetentionError(ValueError, JourneymineError):
    """Retention cannot be computed as asked; the message says which parameter or field."""


def _starts_sql(case: str, by_stage: bool) -> str:
    """One row per case: ``case_key, s`` (start time as a UTC TIMESTAMP)."""
    if by_stage:
        return (
            "SELECT case_key, min(entered_at) AT TIME ZONE 'UTC' AS s FROM {entries} "
            "WHERE stage = $stage AND entered_at <= $cutoff GROUP BY case_key"
        )
    return (
        f"SELECT t.{case} AS case_key, min(t.occurred_at) AT TIME ZONE 'UTC' AS s "
        "FROM {table} t SEMI JOIN start_acts a ON t.activity::VARCHAR = a.activity "
        f"WHERE t.{case} IS NOT NULL AND t.occurred_at <= $cutoff GROUP BY t.{case}"
    )


def _matched(name: str, parameter: str) -> str:
    """Distinct activities of the table matching any glob of ``parameter`` (a small set, so
    the big scans below are a hash semi-join, not a GLOB per event and pattern)."""
    return (
        f"{name} AS (SELECT DISTINCT a.activity FROM "
        "(SELECT DISTINCT activity::VARCHAR AS activity FROM {table}) a "
        f"JOIN unnest(${parameter}::VARCHAR[]) g(p) ON a.activity GLOB g.p)"
    )


def _cells_sql(case: str, by_stage: bool, add: str) -> str:
    """Every observable (person, period) with its active flag and period bounds."""
    return f"""
        {_matched("start_acts", "start")}, {_matched("active_acts", "active")},
        {_matched("churn_acts", "churn")},
        starts AS ({_starts_sql(case, by_stage)}),
        churns AS (
            SELECT s.case_key, min(t.occurred_at) AT TIME ZONE 'UTC' AS churned_at
            FROM starts s JOIN {{table}} t ON t.{case} = s.case_key
            WHERE t.activity::VARCHAR IN (SELECT activity FROM churn_acts)
              AND t.occurred_at AT TIME ZONE 'UTC' >= s.s AND t.occurred_at <= $cutoff
            GROUP BY s.case_key
        ),
        cells AS (
            SELECT s.case_key, s.s, k, s.s + {add}(k) AS lo, s.s + {add}(k + 1) AS hi
            FROM starts s CROSS JOIN range(1, $periods + 1) r(k)
            WHERE s.s + {add}(k + 1) <= $cutoff_utc
        ),
        acts AS (
            SELECT t.{case} AS case_key, t.occurred_at AT TIME ZONE 'UTC' AS t
            FROM {{table}} t SEMI JOIN active_acts a ON t.activity::VARCHAR = a.activity
            WHERE t.{case} IS NOT NULL AND t.occurred_at <= $cutoff
        ),
        hit AS (
            SELECT DISTINCT c.case_key, c.k FROM cells c JOIN acts a
              ON a.case_key = c.case_key AND a.t >= c.lo AND a.t < c.hi
        )
    """


def _counts_sql(unit: str) -> str:
    return f"""
        , sizes AS (SELECT date_trunc('{unit}', s) AS cohort, count(*) AS cohort_size
                    FROM starts GROUP BY 1)
        SELECT date_trunc('{unit}', c.s) AS cohort, c.k AS period, z.cohort_size,
               count(*) AS at_risk, count(h.case_key) AS active,
               count(h.case_key) / count(*) AS rate,
               count(*) FILTER (WHERE ch.churned_at < c.hi) AS churned,
               count(*) FILTER (WHERE ch.churned_at < c.hi) / count(*) AS churn_rate
        FROM cells c LEFT JOIN hit h USING (case_key, k) LEFT JOIN churns ch USING (case_key)
        JOIN sizes z ON z.cohort = date_trunc('{unit}', c.s)
        GROUP BY ALL ORDER BY cohort, period
    """


def _revenue_sql(case: str, unit: str, add: str) -> str:
    """Per cohort, period and currency: the at-risk people's paid amounts in period k and in
    period 0 (minor units)."""
    return f"""
        , paid AS (
            SELECT t.{case} AS case_key, t.occurred_at AT TIME ZONE 'UTC' AS t,
                   lower(t.attributes->>'currency') AS currency,
                   TRY_CAST(t.attributes->>'amount_paid' AS HUGEINT) AS amount
            FROM {{table}} t
            WHERE t.activity::VARCHAR = $revenue_activity AND t.{case} IS NOT NULL
              AND t.occurred_at <= $cutoff AND t.attributes->>'amount_paid' IS NOT NULL
        )
        SELECT date_trunc('{unit}', c.s) AS cohort, c.k AS period, p.currency,
               sum(p.amount) FILTER (WHERE p.t >= c.lo AND p.t < c.hi) AS revenue,
               sum(p.amount) FILTER (WHERE p.t >= c.s AND p.t < c.s + {add}(1)) AS revenue_base
        FROM cells c JOIN paid p ON p.case_key = c.case_key
        GROUP BY ALL
    """


def _check_amounts(con: duckdb.DuckDBPyConnection, table: str, activity: str) -> bool:
    """True when billing amounts exist; a non-integer ``amount_paid`` is an error naming the
    event (a silently dropped payment would understate revenue)."""
    rows = con.execute(
        f"""
        SELECT count(*) FILTER (WHERE TRY_CAST(attributes->>'amount_paid' AS HUGEINT) IS NULL),
               min(event_id) FILTER (WHERE TRY_CAST(attributes->>'amount_paid' AS HUGEINT)
                                     IS NULL),
               count(*), count(*) FILTER (WHERE attributes->>'currency' IS NULL)
        FROM {table} WHERE activity::VARCHAR = $a AND attributes->>'amount_paid' IS NOT NULL
        """,
        {"a": activity},
    ).fetchall()[0]
    bad, event, total, no_currency = rows
    if bad:
        raise RetentionError(
            f"{table}: {bad} {activity} event(s) with a non-integer attribute amount_paid "
            f"(first: event_id {event}); amounts are Stripe minor units (cents)"
        )
    if no_currency:
        raise RetentionError(
            f"{table}: {no_currency} {activity} event(s) with amount_paid but no currency"
        )
    return bool(total)


def _validate(
    start: Sequence[str] | None, stage: str | None, active: Sequence[str], period: str, n: int
) -> None:
    if (start is None) == (stage is None):
        raise RetentionError("give exactly one of start (activity patterns) or stage")
    if start is not None and not list(start):
        raise RetentionError("start: no activity pattern given")
    if not list(active):
        raise RetentionError("active: no activity pattern given")
    if period not in PERIODS:
        raise RetentionError(f"period is one of {sorted(PERIODS)}, not {period!r}")
    if n < 1:
        raise RetentionError(f"periods must be at least 1, not {n}")


def _check_names(
    con: duckdb.DuckDBPyConnection,
    table: str,
    entries: str,
    start: Sequence[str] | None,
    stage: str | None,
    active: Sequence[str],
) -> None:
    """A start or active pattern set that matches nothing, or an unknown stage, is a typo:
    say so instead of answering with empty or all-zero cohorts."""
    problems = [no_match_message(con, table, active, "active")]
    if start is not None:
        problems.append(no_match_message(con, table, start, "start"))
    if stage is not None:
        problems.append(stage_message(con, entries, stage))
    found = [p for p in problems if p]
    if found:
        raise RetentionError("; ".join(found))


def retention(
    con: duckdb.DuckDBPyConnection,
    *,
    active: Sequence[str],
    start: Sequence[str] | None = None,
    stage: str | None = None,
    churn: Sequence[str] = (),
    period: str = "month",
    periods: int = 12,
    cutoff: datetime | None = None,
    case: str = "person",
    table: str = "touchpoints",
    entries: str = "stage_entries",
    revenue_activity: str = REVENUE_ACTIVITY,
) -> pd.DataFrame:
    """Retention per cohort × period ``k = 1..periods``: ``cohort, period, cohort_size,
    at_risk, active, rate`` (+ ``churned, churn_rate`` given ``churn`` activities; +
    ``currency, revenue, revenue_base, revenue_retained`` when ``revenue_activity`` events
    carry ``amount_paid``: then one row per currency).

    Start at the first ``start`` activity (globs) or at entering ``stage`` (``entries``);
    ``active`` activities (globs) make a period active. Cells not observable at ``cutoff``
    (default: the latest touchpoint) are absent. See the module docstring for definitions.
    """
    _validate(start, stage, active, period, periods)
    if case not in CASE_COLUMNS:
        raise RetentionError(f"case is one of {sorted(CASE_COLUMNS)}, not {case!r}")
    _check_names(con, table, entries, start, stage, active)
    if cutoff is None:
        cutoff = data_cutoff(con, table, "occurred_at")
    unit, add, column = period, PERIODS[period], CASE_COLUMNS[case]
    cells = _cells_sql(column, stage is not None, add).format(table=table, entries=entries)
    params: dict[str, Any] = {
        "start": list(start or []),
        "active": list(active),
        "churn": list(churn),
        "periods": periods,
        "cutoff": cutoff,
        "cutoff_utc": _utc_naive(cutoff),
    }
    if stage is not None:
        params["stage"] = stage
    counts = _counts(con, f"WITH {cells} {_counts_sql(unit)}", params)
    counts = counts[COLUMNS + (CHURN_COLUMNS if churn else [])]
    if not _check_amounts(con, table, revenue_activity):
        return counts
    revenue_sql = _revenue_sql(column, unit, add).format(table=table)
    money = con.execute(
        f"WITH {cells} {revenue_sql}", {**params, "revenue_activity": revenue_activity}
    ).df()
    return _with_revenue(counts, money)


def _counts(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any]) -> pd.DataFrame:
    frame = con.execute(sql, params).df()
    counts = ("period", "cohort_size", "at_risk", "active", "churned")
    return frame.astype({c: "int64" for c in counts})


def _utc_naive(moment: datetime) -> datetime:
    """The cut-off as a UTC wall-clock time (periods are computed on UTC timestamps); a naive
    cut-off is read as UTC, like every time in the warehouse."""
    stamp = pd.Timestamp(moment)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    result: datetime = stamp.tz_localize(None).to_pydatetime()
    return result


def _with_revenue(counts: pd.DataFrame, money: pd.DataFrame) -> pd.DataFrame:
    """One row per cell and currency seen in the data; no payment in an observable cell is a
    real zero (the cell is observable), not a missing value."""
    currencies = pd.DataFrame({"currency": sorted(money.currency.dropna().unique())})
    out = counts.merge(currencies, how="cross").merge(
        money, on=["cohort", "period", "currency"], how="left"
    )
    for column in ("revenue", "revenue_base"):
        out[column] = out[column].fillna(0).astype("int64")
    base = out.revenue_base.where(out.revenue_base > 0)
    out["revenue_retained"] = out.revenue / base
    return out[[*counts.columns, *REVENUE_COLUMNS]].reset_index(drop=True)
