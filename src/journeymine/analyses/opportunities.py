"""Opportunities: a ranked list of concrete fixes, each with a gain, a 95% interval and people.

Every estimate reads figures other analyses own (``followups`` and ``cost_of_waiting``,
``stage_funnel`` / ``stage_entries`` / ``stage_segments``, ``conformance`` /
``conformance_summary``, ``drivers``) and turns a gap between two groups into "how many more
conversions a month if the worse group did as well as the better one". These are
associations, not proven causes (docs/metrics.md, "Opportunities").

Kinds:

* ``answer_faster``: per follow-up rule with ``converts_to``: every person whose first decided
  trigger was answered later than the SLA (or never) converts at the rate of those answered
  within it; stratified by the spec's first segment (value known at the trigger) when every
  stratum is large enough, else unadjusted (``method`` says which and why);
* ``lift_weak_segment``: a segment value converting significantly below the rest of its
  attribute at a stage (Fisher exact test, Benjamini–Hochberg over all values of all stages)
  converts at the rest's rate;
* ``close_deviation``: people with a frequent deviation from the designed order complete the
  journey as often as conforming people;
* ``stop_doing``: a company touchpoint ``drivers`` flags ``no_effect`` (not a follow-up
  response, not support the customer asked for): no conversion lost by stopping it (gain 0);
  its cost is ``touchpoints_per_month``;
* ``win_over_detractors`` / ``soothe_bad_csat``: a stage whose people who felt unhappy before
  the drivers' landmark (``felt: detractor``, ``felt: bad CSAT``: an NPS 0-6 answer, a bad
  CSAT) convert significantly less (a ``drivers`` finding) converts them at the others' rate;
  the title gives that unhappy share of the stage's deciding people.

Nothing is proposed at a step whose next stage is an outcome (more people cancelling is no
gain), except ``answer_faster``: the funnel gives such a step no next stage to lift people to,
and the nightly drivers skip it (``spec.steps_before_outcomes``).

A month is 30.4375 days; gains per month divide by the months of data (first to last
touchpoint). ``uncertain``: the 95% interval reaches zero or below; such rows rank last.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from journeymine.analyses.feelings import EMAIL_MARK
from journeymine.analyses.followups import read_followups
from journeymine.analyses.opportunity_drivers import UNHAPPY, UNHAPPY_WHO, stop_doing, unhappy
from journeymine.analyses.opportunity_kinds import (
    BOOTSTRAP_DRAWS,
    MIN_DEVIATION_SHARE,
    MIN_PEOPLE,
    SEED,
    amount,
    answer_faster,
    deviations,
    newcombe,
    weak_segments,
)
from journeymine.errors import JourneymineError
from journeymine.privacy import scrub
from journeymine.spec import JourneySpec
from journeymine.warehouse import replace_table, require_tables
from journeymine.warehouse.schema import declared

# Public here before the candidates moved to ``opportunity_kinds`` / ``opportunity_drivers``:
# importers of ``analyses.opportunities`` keep every one of these names.
__all__ = [
    "BOOTSTRAP_DRAWS",
    "COLUMNS",
    "MIN_DEVIATION_SHARE",
    "MIN_PEOPLE",
    "MONTH_S",
    "REVENUE_ACTIVITY",
    "SEED",
    "UNHAPPY",
    "UNHAPPY_WHO",
    "ZERO_DECIMAL",
    "OpportunityError",
    "compute_opportunities",
    "first_invoice_median",
    "months_of_data",
    "newcombe",
    "rank_opportunities",
    "redact_emails",
    "write_opportunities",
]

MONTH_S = 30.4375 * 86400
REVENUE_ACTIVITY = "billing.invoice_paid"
# Stripe's zero-decimal currencies: their minor unit is the unit itself.
ZERO_DECIMAL = frozenset({
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
    "xaf", "xof", "xpf",
})  # fmt: skip
# The stored table's columns, as warehouse/schema_analyses.py declares them.
COLUMNS = [column.name for column in declared("opportunities").columns]


class OpportunityError(ValueError, JourneymineError):
    """An input of the opportunities report is unusable; the message names the event."""


def months_of_data(con: duckdb.DuckDBPyConnection, table: str = "touchpoints") -> float:
    """Months (of 30.4375 days) from the first to the last touchpoint; at least one day."""
    span = con.execute(
        f"SELECT epoch(max(occurred_at)) - epoch(min(occurred_at)) FROM {table}"
    ).fetchall()[0][0]
    return max(float(span or 0.0), 86400.0) / MONTH_S


def rank_opportunities(rows: pd.DataFrame) -> pd.DataFrame:
    """Mark ``uncertain`` (interval reaching zero or missing, except ``stop_doing``, whose
    claim is a saving, not a gain) and rank: certain first, then by gain, then by the
    interval's lower bound; ``rank`` starts at 1."""
    out = rows.copy()
    reaches_zero = ~(out.gain_low > 0) | out.gain_low.isna()
    out["uncertain"] = reaches_zero & (out.kind != "stop_doing")
    out = out.sort_values(
        ["uncertain", "gain", "gain_low"], ascending=[True, False, False], kind="stable"
    )
    out["rank"] = np.arange(1, len(out) + 1)
    return out.reset_index(drop=True)


def with_overlaps(ranked: pd.DataFrame) -> pd.DataFrame:
    """Add ``overlaps``: per fix, the ranks of better-ranked fixes in the same unit that concern
    some of the same people (their gains do not add up: one person converts once), and
    ``note``: ``uncertain`` and ``overlaps #k`` in words. ``ranked`` is in rank order
    (:func:`rank_opportunities`). ``stop_doing`` rows save different touchpoints, which do add
    up: they overlap nothing."""
    seen: list[tuple[int, str, set[int]]] = []
    overlaps, notes = [], []
    for r in ranked.itertuples():
        people = set(r.person_ids) if r.kind != "stop_doing" else set()
        over = [rank for rank, unit, ids in seen if unit == r.unit and ids & people]
        seen.append((int(r.rank), str(r.unit), people))
        words = (["uncertain"] if r.uncertain else []) + (
            [f"overlaps {', '.join(f'#{k}' for k in over)}"] if over else []
        )
        overlaps.append(over)
        notes.append("; ".join(words))
    return ranked.assign(overlaps=overlaps, note=notes)


def _redact(value: object) -> object:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, str):
        return scrub(value, EMAIL_MARK)
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    return value


def redact_emails(frame: pd.DataFrame) -> pd.DataFrame:
    """Every e-mail address in a text (or list of text) column replaced by ``[email]``: the
    output is shareable (an owner or a segment value may be an address)."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(_redact)
    return out


def _interval(low: float, high: float) -> str:
    return f"95%: {amount(low)} to {amount(high)}"


# --- revenue ---------------------------------------------------------------------------------


def first_invoice_median(
    con: duckdb.DuckDBPyConnection, table: str = "touchpoints"
) -> tuple[float, str] | None:
    """Median ``amount_paid`` (minor units) of each person's first positive paid invoice, in
    the currency most people paid in; None without billing amounts. A non-integer amount,
    or one without a currency, is an error naming the event."""
    checked = con.execute(
        f"""
        SELECT min(event_id) FILTER (  -- DuckDB would round '12.5' to 13: match digits
                   WHERE NOT regexp_full_match(attributes->>'amount_paid', '-?[0-9]+')),
               min(event_id) FILTER (WHERE attributes->>'currency' IS NULL)
        FROM {table}
        WHERE activity::VARCHAR = $a AND attributes->>'amount_paid' IS NOT NULL
        """,
        {"a": REVENUE_ACTIVITY},
    ).fetchall()[0]
    for event, problem in zip(checked, ("a non-integer amount_paid", "no currency"), strict=True):
        if event is not None:
            raise OpportunityError(
                f"{table}: event_id {event} ({REVENUE_ACTIVITY}) has {problem}; amounts are "
                "Stripe minor units (cents) with a currency"
            )
    row = con.execute(
        f"""
        WITH paid AS (
            SELECT person_id, occurred_at, seq, lower(attributes->>'currency') AS currency,
                   CAST(attributes->>'amount_paid' AS HUGEINT) AS amount
            FROM {table}
            WHERE activity::VARCHAR = $a AND person_id IS NOT NULL
              AND CAST(attributes->>'amount_paid' AS HUGEINT) > 0
        ), firsts AS (
            SELECT person_id, arg_min(currency, (occurred_at, seq)) AS currency,
                   arg_min(amount, (occurred_at, seq)) AS amount
            FROM paid GROUP BY person_id
        )
        SELECT currency, median(amount::DOUBLE) FROM firsts
        GROUP BY currency ORDER BY count(*) DESC, currency LIMIT 1
        """,
        {"a": REVENUE_ACTIVITY},
    ).fetchall()
    return (float(row[0][1]), str(row[0][0])) if row else None


def _money(minor: float, currency: str) -> str:
    units = minor if currency in ZERO_DECIMAL else minor / 100
    return f"{units:,.0f} {currency.upper()}"


# --- the report ------------------------------------------------------------------------------


def _titled(row: dict[str, object], revenue: tuple[float, str] | None) -> dict[str, object]:
    """Add the plain sentence and, for conversion gains, the revenue estimate."""
    if "title" in row:
        return row
    gain, low, high = (float(row[k]) for k in ("gain", "gain_low", "gain_high"))  # type: ignore[arg-type]
    said = f"about {amount(gain)} {row['gained']} a month" if gain > 0 else "no gain seen"
    title = f"{row['sentence']}: {said} ({_interval(low, high)})"
    if revenue is not None:
        median, currency = revenue
        row["revenue_gain"] = gain * median
        row["currency"] = currency
        if gain > 0:
            title += f", worth about {_money(gain * median, currency)} a month"
    return {**row, "title": title}


def compute_opportunities(
    con: duckdb.DuckDBPyConnection, spec: JourneySpec, *, followups: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The ranked opportunities (module docstring); needs the warehouse's analyses
    (``stage_funnel``, ``stage_entries``, ``stage_segments``; ``followups`` is read from the
    warehouse, or computed when absent, unless given). Columns: ``COLUMNS``."""
    require_tables(con, *("touchpoints", "stage_funnel", "stage_entries", "stage_segments"))
    if followups is None:
        followups = read_followups(con, spec)
    months = months_of_data(con)
    revenue = first_invoice_median(con)
    rows = answer_faster(con, spec, followups, months) + weak_segments(con, months)
    rows += deviations(con, spec, months) + stop_doing(con, spec, months)
    rows += unhappy(con, months)
    frame = pd.DataFrame([_titled(r, revenue) for r in rows], columns=COLUMNS)
    frame["person_ids"] = frame.person_ids.map(lambda ids: list(ids) if ids is not None else [])
    for column in ("gain", "gain_low", "gain_high", "revenue_gain", "touchpoints_per_month"):
        frame[column] = frame[column].astype(float)
    frame["people"] = frame.people.astype("int64")
    return redact_emails(with_overlaps(rank_opportunities(frame)))[COLUMNS]


def write_opportunities(
    con: duckdb.DuckDBPyConnection, spec: JourneySpec, *, followups: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Compute and store the ``opportunities`` table; return it."""
    frame = compute_opportunities(con, spec, followups=followups)
    replace_table(con, "opportunities", frame[COLUMNS])
    return frame
