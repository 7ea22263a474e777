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
* ``stop_doing``: a company touchpoint ``drivers`` flags ``no_effect``: no conversion lost by
  stopping it (gain 0); its cost is ``touchpoints_per_month``;
* ``win_over_detractors`` / ``soothe_bad_csat``: a stage whose people who felt unhappy before
  the drivers' landmark (``felt: detractor``, ``felt: bad CSAT``: an NPS 0-6 answer, a bad
  CSAT) convert significantly less (a ``drivers`` finding) converts them at the others' rate;
  the title gives that unhappy share of the stage's deciding people.

A month is 30.4375 days; gains per month divide by the months of data (first to last
touchpoint). ``uncertain``: the 95% interval reaches zero or below; such rows rank last.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable
from datetime import timedelta

import duckdb
import numpy as np
import pandas as pd
from scipy import stats as sps

from journeymine.analyses.drivers import FELT, POPULATIONS
from journeymine.analyses.feelings import EMAIL_MARK
from journeymine.analyses.followups import read_followups, rule_cost_of_waiting
from journeymine.analyses.funnel import UNKNOWN, entry_segments_sql
from journeymine.analyses.stats import benjamini_hochberg, wilson
from journeymine.errors import JourneymineError
from journeymine.privacy import scrub
from journeymine.spec import FollowupRule, JourneySpec, positions
from journeymine.sql import ident
from journeymine.warehouse import require_tables, table_exists

MONTH_S = 30.4375 * 86400
MIN_PEOPLE = 10  # smallest group (or stratum) a rate is compared on
MIN_DEVIATION_SHARE = 0.05  # a deviation is frequent from this share of cases on
BOOTSTRAP_DRAWS = 4000
SEED = 20261129  # fixed: the same warehouse gives the same intervals every night
REVENUE_ACTIVITY = "billing.invoice_paid"
# Stripe's zero-decimal currencies: their minor unit is the unit itself.
ZERO_DECIMAL = frozenset({
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
    "xaf", "xof", "xpf",
})  # fmt: skip
# The stored table, declared: an empty report keeps its types.
SCHEMA = {
    "rank": "INTEGER", "kind": "VARCHAR", "stage": "VARCHAR", "title": "VARCHAR",
    "people": "BIGINT", "gain": "DOUBLE", "gain_low": "DOUBLE", "gain_high": "DOUBLE",
    "unit": "VARCHAR", "method": "VARCHAR", "uncertain": "BOOLEAN", "revenue_gain": "DOUBLE",
    "currency": "VARCHAR", "touchpoints_per_month": "DOUBLE", "person_ids": "BIGINT[]",
}  # fmt: skip
COLUMNS = list(SCHEMA)


class OpportunityError(ValueError, JourneymineError):
    """An input of the opportunities report is unusable; the message names the event."""


def newcombe(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float, float]:
    """Difference of two proportions k1/n1 - k2/n2 and its 95% Newcombe hybrid score
    interval (built from the two Wilson intervals; Newcombe 1998, method 10)."""
    if n1 <= 0 or n2 <= 0:
        return math.nan, math.nan, math.nan
    p1, p2 = k1 / n1, k2 / n2
    (l1, u1), (l2, u2) = wilson(k1, n1), wilson(k2, n2)
    diff = p1 - p2
    low = diff - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = diff + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return diff, low, high


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


def store(
    con: duckdb.DuckDBPyConnection, name: str, schema: dict[str, str], frame: pd.DataFrame
) -> None:
    """Replace table ``name`` (columns and types from ``schema``) with the rows of ``frame``."""
    columns = ", ".join(f"{ident(c)} {t}" for c, t in schema.items())
    con.execute(f"CREATE OR REPLACE TABLE {ident(name)} ({columns})")
    con.register("jm_store_frame", frame[list(schema)])
    try:
        con.execute(f"INSERT INTO {ident(name)} SELECT * FROM jm_store_frame")
    finally:
        con.unregister("jm_store_frame")


def _amount(x: float) -> str:
    """A figure for a sentence: whole numbers from 10 on, one decimal below."""
    return f"{x:.0f}" if abs(x) >= 10 else f"{x:.1f}"


def _people(n: int) -> str:
    return "1 person" if n == 1 else f"{n} people"


def _interval(low: float, high: float) -> str:
    return f"95%: {_amount(low)} to {_amount(high)}"


def _duration(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds / 3600:.1f}h"


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


# --- answer faster ---------------------------------------------------------------------------


def _first_decided(followups: pd.DataFrame, rule: str) -> pd.DataFrame:
    """Each person's first decided trigger of ``rule`` (as ``cost_of_waiting`` takes them),
    with ``slow`` = answered later than the SLA or never."""
    first = followups[
        (followups.rule == rule) & (followups.status != "open") & followups.person_id.notna()
    ]
    first = first.sort_values("triggered_at").drop_duplicates("person_id").copy()
    first["slow"] = first.sla_breached.astype(bool)
    return first


def _strata(con: duckdb.DuckDBPyConnection, first: pd.DataFrame, attribute: str) -> pd.Series:
    """Each trigger's value of ``attribute`` known at the trigger (``(unknown)`` if none)."""
    triggers = pd.DataFrame(
        {"case_key": first.person_id.astype("int64"), "pos": 0, "entered_at": first.triggered_at}
    )
    con.register("jm_opp_triggers", triggers)
    try:
        sql = entry_segments_sql((attribute,), "first", "jm_opp_triggers", "touchpoints", "person")
        values = con.execute(f"SELECT case_key, value FROM ({sql})").df()
    finally:
        con.unregister("jm_opp_triggers")
    known = dict(zip(values.case_key, values.value, strict=True))
    return first.person_id.map(lambda p: known.get(p, UNKNOWN))


def _rates(
    con: duckdb.DuckDBPyConnection, spec: JourneySpec, first: pd.DataFrame, rule: str
) -> tuple[int, int, int, int]:
    """(converted, decided) among fast, then slow triggers: ``rule_cost_of_waiting`` on the
    triggers recoded so that fast ones fall in its first bucket and slow ones in its last."""
    recoded = first.assign(latency_s=np.where(first.slow, np.nan, 0.0))
    buckets = rule_cost_of_waiting(con, spec, recoded, rule).set_index("bucket")
    fast, slow = buckets.iloc[0], buckets.iloc[-1]
    return int(fast.converted), int(fast.people), int(slow.converted), int(slow.people)


def _bootstrap(counts: list[tuple[int, int, int, int, int]], months: float) -> tuple[float, float]:
    """95% percentile interval of sum(slow people x (fast rate - slow rate)) / months,
    resampling each stratum's fast and slow outcomes (binomial draws, fixed seed)."""
    rng = np.random.default_rng(SEED)
    total = np.zeros(BOOTSTRAP_DRAWS)
    for kf, nf, ks, ns, people in counts:
        fast = rng.binomial(nf, kf / nf, BOOTSTRAP_DRAWS) / nf
        slow = rng.binomial(ns, ks / ns, BOOTSTRAP_DRAWS) / ns
        total += people * (fast - slow)
    low, high = np.percentile(total / months, [2.5, 97.5])
    return float(low), float(high)


def _estimate(
    con: duckdb.DuckDBPyConnection,
    spec: JourneySpec,
    first: pd.DataFrame,
    rule: str,
    months: float,
) -> tuple[float, float, float, str] | None:
    """Gain per month, its 95% interval and the method: stratified by the spec's first
    segment when every stratum holding slow people is large enough, else unadjusted."""
    attribute = spec.segments[0] if spec.segments else None
    strata = _strata(con, first, attribute) if attribute else pd.Series("", index=first.index)
    counts, too_small = [], []
    for value in sorted(set(strata[first.slow])):
        part = first[strata == value]
        kf, nf, ks, ns = _rates(con, spec, part, rule)
        counts.append((kf, nf, ks, ns, int(part.slow.sum())))
        if min(nf, ns) < MIN_PEOPLE:
            too_small.append(value)
    if attribute and len(counts) > 1 and not too_small:
        gain = sum(p * (a / b - c / d) for a, b, c, d, p in counts) / months
        low, high = _bootstrap(counts, months)
        return (
            gain,
            low,
            high,
            (
                f"adjusted for {attribute} (known at the trigger): per-stratum rate difference x "
                f"slow people, summed; 95% bootstrap interval ({BOOTSTRAP_DRAWS} draws, fixed seed)"
            ),
        )
    kf, nf, ks, ns = _rates(con, spec, first, rule)
    if min(nf, ns) == 0:
        return None
    diff, low, high = newcombe(kf, nf, ks, ns)
    scale = int(first.slow.sum()) / months
    if not attribute:
        why = "the spec has no segment"
    elif len(counts) <= 1:
        why = f"{attribute} has one stratum"
    else:
        small = ", ".join(map(str, too_small))
        why = f"{attribute} strata under {MIN_PEOPLE} decided fast or slow people: {small}"
    return (
        diff * scale,
        low * scale,
        high * scale,
        (f"not adjusted ({why}): rate difference x slow people; 95% Newcombe interval"),
    )


def _answer_faster_one(
    con: duckdb.DuckDBPyConnection,
    spec: JourneySpec,
    followups: pd.DataFrame,
    rule: FollowupRule,
    months: float,
) -> dict[str, object] | None:
    first = _first_decided(followups, rule.name)
    slow = first[first.slow]
    if slow.empty or first.slow.all():  # nobody slow, or nobody to compare them with
        return None
    estimate = _estimate(con, spec, first, rule.name, months)
    if estimate is None:
        return None
    gain, low, high, method = estimate
    hours = " business" if rule.business_hours else ""
    return {
        "kind": "answer_faster",
        "stage": rule.converts_to,
        "rule": rule.name,
        "people": len(slow),
        "gain": gain,
        "gain_low": low,
        "gain_high": high,
        "unit": f"conversions to {rule.converts_to} per month",
        "method": method,
        "person_ids": sorted(slow.person_id.astype("int64").tolist()),
        "sentence": (
            f"Answer {rule.name} within {_duration(rule.sla)}{hours} "
            f"({_people(len(slow))} answered later or never)"
        ),
        "gained": f"more reaching {rule.converts_to}",
    }


def _answer_faster(
    con: duckdb.DuckDBPyConnection, spec: JourneySpec, followups: pd.DataFrame, months: float
) -> list[dict[str, object]]:
    rows = []
    for rule in spec.followups:
        if rule.converts_to is not None:
            row = _answer_faster_one(con, spec, followups, rule, months)
            if row is not None:
                rows.append(row)
    return rows


# --- weak segments ---------------------------------------------------------------------------


def _next_stages(funnel: pd.DataFrame) -> dict[int, str]:
    """Position -> the label of the stage after it."""
    labels = funnel.drop_duplicates("position").set_index("position").stage
    return {int(p): str(labels[p + 1]) for p in labels.index if p + 1 in labels.index}


def _segment_candidates(funnel: pd.DataFrame) -> pd.DataFrame:
    """Each known segment value of each stage against the rest of its attribute there."""
    overall = funnel[funnel.segment == "all"].set_index("position")
    parts = funnel[(funnel.segment != "all") & ~funnel.segment.str.endswith("=" + UNKNOWN)]
    rows = []
    for r in parts.itertuples():
        kv, nv = int(r.converted), int(r.converted + r.dropped)
        kr = int(overall.loc[r.position, "converted"]) - kv
        nr = int(overall.loc[r.position, "converted"] + overall.loc[r.position, "dropped"]) - nv
        if nv < MIN_PEOPLE or nr < MIN_PEOPLE:
            continue
        _, p = sps.fisher_exact([[kv, nv - kv], [kr, nr - kr]])
        rows.append((int(r.position), r.stage, r.segment, kv, nv, kr, nr, float(p)))
    columns = ["position", "stage", "segment", "kv", "nv", "kr", "nr", "p_value"]
    return pd.DataFrame(rows, columns=columns)


def _segment_people(con: duckdb.DuckDBPyConnection, position: int, segment: str) -> list[int]:
    attribute, value = segment.split("=", 1)
    ids = con.execute(
        """
        SELECT DISTINCT e.case_key FROM stage_entries e
        JOIN stage_segments s USING (case_key, pos)
        WHERE e.pos = $pos AND s.attribute = $attribute AND s.value = $value
          AND e.status IN ('converted', 'dropped')
        ORDER BY 1
        """,
        {"pos": position, "attribute": attribute, "value": value},
    ).fetchall()
    return [int(i) for (i,) in ids]


def _weak_segments(con: duckdb.DuckDBPyConnection, months: float) -> list[dict[str, object]]:
    funnel = con.execute("SELECT * FROM stage_funnel").df()
    candidates = _segment_candidates(funnel)
    if candidates.empty:
        return []
    candidates["finding"] = benjamini_hochberg(candidates.p_value.to_numpy())
    following = _next_stages(funnel[funnel.segment == "all"])
    rows: list[dict[str, object]] = []
    for r in candidates[candidates.finding].itertuples():
        if r.kv / r.nv >= r.kr / r.nr or r.position not in following:
            continue
        diff, low, high = newcombe(r.kr, r.nr, r.kv, r.nv)
        scale = r.nv / months
        nxt = following[r.position]
        rows.append(
            {
                "kind": "lift_weak_segment",
                "stage": r.stage,
                "people": r.nv,
                "gain": diff * scale,
                "gain_low": low * scale,
                "gain_high": high * scale,
                "unit": f"conversions to {nxt} per month",
                "method": (
                    f"{r.segment} vs the rest of its attribute at {r.stage}: Fisher exact "
                    f"p = {r.p_value:.2g}, Benjamini-Hochberg over {len(candidates)} segment "
                    "values; rate difference x its decided people; 95% Newcombe interval"
                ),
                "person_ids": _segment_people(con, r.position, r.segment),
                "sentence": (
                    f"Lift {r.segment} at {r.stage} to the others' rate "
                    f"({r.kv / r.nv:.0%} vs {r.kr / r.nr:.0%})"
                ),
                "gained": f"more reaching {nxt}",
            }
        )
    return rows


# --- deviations ------------------------------------------------------------------------------


def _deviation_people(con: duckdb.DuckDBPyConnection, label: str) -> list[int]:
    ids = con.execute(
        "SELECT case_key FROM conformance WHERE list_contains(deviations, $label) ORDER BY 1",
        {"label": label},
    ).fetchall()
    return [int(i) for (i,) in ids]


def _baseline(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(completed, cases) among cases that stayed on the designed path (no order deviation,
    finished or not) and reached at least two stages: every order deviation needs two, so
    people who left at the first stage are no baseline. ("conforms" means finished on the path:
    comparing completion with it would be circular.)"""
    row = con.execute(
        "SELECT count(*) FILTER (WHERE completed), count(*) FROM conformance "
        "WHERE NOT deviates AND len(list_distinct(stages)) >= 2"
    ).fetchall()[0]
    return int(row[0]), int(row[1])


def _deviations(
    con: duckdb.DuckDBPyConnection, spec: JourneySpec, months: float
) -> list[dict[str, object]]:
    if not (table_exists(con, "conformance_summary") and table_exists(con, "conformance")):
        return []
    summary = con.execute("SELECT * FROM conformance_summary").df()
    total = int(con.execute("SELECT count(*) FROM conformance").fetchall()[0][0])
    k0, n0 = _baseline(con)
    last = " | ".join(s.name for s in positions(spec)[-1][0]) if spec.stages else "the end"
    frequent = summary[
        ~summary.deviation.str.startswith(("(", "never reached"))
        & (summary.cases >= max(MIN_PEOPLE, MIN_DEVIATION_SHARE * total))
    ]
    rows: list[dict[str, object]] = []
    for r in frequent.itertuples():
        n1 = int(r.cases)
        k1 = round(float(r.completion_rate) * n1)
        diff, low, high = newcombe(k0, n0, k1, n1)
        if not diff > 0:  # deviating costs nothing here: not an opportunity
            continue
        scale = n1 / months
        rows.append(
            {
                "kind": "close_deviation",
                "stage": r.deviation.split(" ")[-1] if r.deviation != "out of order" else None,
                "people": n1,
                "gain": diff * scale,
                "gain_low": low * scale,
                "gain_high": high * scale,
                "unit": f"journeys reaching {last} per month",
                "method": (
                    "completion of conforming cases that reached two stages or more minus "
                    "completion of cases with the deviation, x those cases; 95% Newcombe interval"
                ),
                "person_ids": _deviation_people(con, r.deviation),
                "sentence": (
                    f"Close '{r.deviation}' ({n1} journeys reach {last} {k1 / n1:.0%} of the "
                    f"time, conforming ones {k0 / n0:.0%})"
                ),
                "gained": f"more reaching {last}",
            }
        )
    return rows


# --- stop doing ------------------------------------------------------------------------------


def _company_activities(
    con: duckdb.DuckDBPyConnection, spec: JourneySpec, activities: Iterable[str]
) -> set[str]:
    """Activities that are company actions: named by the spec, or mostly done by the company."""
    wanted = sorted(set(activities))
    if not wanted:
        return set()
    rows = con.execute(
        "SELECT activity::VARCHAR, avg((actor = 'company')::INT) FROM touchpoints "
        "WHERE list_contains($wanted, activity::VARCHAR) GROUP BY 1",
        {"wanted": wanted},
    ).fetchall()
    by_spec = {a for a in wanted if any(fnmatch.fnmatchcase(a, p) for p in spec.company_activities)}
    return by_spec | {a for a, share in rows if share is not None and share > 0.5}


def _received(
    con: duckdb.DuckDBPyConnection, stage: str, activity: str, horizon_s: float
) -> tuple[list[int], int]:
    """Who received ``activity`` in the drivers' observation stretch of ``stage`` (the same
    landmark population as ``drivers``), and how many such touchpoints."""
    rows = con.execute(
        f"""
        WITH decided AS ({POPULATIONS["conversion"]})
        SELECT d.case_key, count(*) FROM decided d
        JOIN touchpoints t ON t.person_id = d.case_key AND t.activity::VARCHAR = $activity
         AND t.occurred_at >= d.entered_at
         AND t.occurred_at < d.entered_at + to_seconds($horizon_s)
        GROUP BY 1 ORDER BY 1
        """,
        {"stage": stage, "horizon_s": horizon_s, "activity": activity},
    ).fetchall()
    return [int(k) for k, _ in rows], sum(int(n) for _, n in rows)


def _stop_doing(
    con: duckdb.DuckDBPyConnection, spec: JourneySpec, months: float
) -> list[dict[str, object]]:
    if not table_exists(con, "drivers"):
        return []
    found = con.execute(
        "SELECT stage, feature, people, lift, horizon_s FROM drivers "
        "WHERE no_effect AND outcome = 'conversion' AND feature LIKE 'did: %' "
        "ORDER BY stage, feature"
    ).df()
    found["activity"] = found.feature.str.removeprefix("did: ")
    # A rule's response is an answer the spec asks for: its worth is judged by answer_faster.
    responses = tuple(p for rule in spec.followups for p in rule.responses)
    company = _company_activities(con, spec, found.activity) - {
        a for a in found.activity if any(fnmatch.fnmatchcase(a, p) for p in responses)
    }
    rows: list[dict[str, object]] = []
    for r in found[found.activity.isin(company)].itertuples():
        ids, sent = _received(con, r.stage, r.activity, float(r.horizon_s))
        per_month = sent / months
        rows.append(
            {
                "kind": "stop_doing",
                "stage": r.stage,
                "people": len(ids),
                "gain": 0.0,
                "gain_low": 0.0,
                "gain_high": 0.0,
                "unit": "touchpoints per month",
                "method": (
                    f"drivers: no effect on converting out of {r.stage} (lift {r.lift:.2f}, "
                    "not a finding); touchpoints in the drivers' observation stretch"
                ),
                "person_ids": ids,
                "touchpoints_per_month": per_month,
                "title": (
                    f"Stop or rethink {r.activity} in {r.stage}: {_amount(per_month)} "
                    f"touchpoints a month to {len(ids)} people with no effect on conversion "
                    f"(lift {r.lift:.2f})"
                ),
            }
        )
    return rows


# --- feelings ----------------------------------------------------------------------------------

UNHAPPY = {"felt: detractor": "win_over_detractors", "felt: bad CSAT": "soothe_bad_csat"}
UNHAPPY_WHO = {"felt: detractor": "detractors", "felt: bad CSAT": "people with a bad CSAT"}


def _felt(con: duckdb.DuckDBPyConnection, stage: str, feature: str, horizon_s: float) -> list[int]:
    """Who had ``feature`` (``felt: ...``) in the drivers' landmark population of ``stage``."""
    rows = con.execute(
        f"""
        WITH decided AS ({POPULATIONS["conversion"]}), felt AS ({FELT})
        SELECT DISTINCT case_key FROM felt WHERE feature = $feature ORDER BY 1
        """,
        {"stage": stage, "horizon_s": horizon_s, "feature": feature},
    ).fetchall()
    return [int(k) for (k,) in rows]


def _unhappy(con: duckdb.DuckDBPyConnection, months: float) -> list[dict[str, object]]:
    """Unhappy people converting less (a drivers finding), converting at the others' rate."""
    if not table_exists(con, "drivers"):
        return []
    found = con.execute(
        "SELECT stage, feature, people, share_of_people, rate_with, rate_without, p_value, "
        "horizon_s FROM drivers WHERE outcome = 'conversion' AND finding "
        "AND list_contains($features, feature) AND rate_with < rate_without "
        "ORDER BY stage, feature",
        {"features": list(UNHAPPY)},
    ).df()
    rows: list[dict[str, object]] = []
    for r in found.itertuples():
        n_with = int(r.people)
        n_rest = round(n_with / r.share_of_people) - n_with  # everyone decided, minus them
        k_with, k_rest = round(r.rate_with * n_with), round(r.rate_without * n_rest)
        diff, low, high = newcombe(k_rest, n_rest, k_with, n_with)
        scale = n_with / months
        who = UNHAPPY_WHO[r.feature]
        rows.append(
            {
                "kind": UNHAPPY[r.feature],
                "stage": r.stage,
                "people": n_with,
                "gain": diff * scale,
                "gain_low": low * scale,
                "gain_high": high * scale,
                "unit": f"conversions out of {r.stage} per month",
                "method": (
                    f"drivers: {r.feature} before the landmark at {r.stage} (Fisher exact "
                    f"p = {r.p_value:.2g}, a finding); rate difference x its people; "
                    "95% Newcombe interval"
                ),
                "person_ids": _felt(con, r.stage, r.feature, float(r.horizon_s)),
                "sentence": (
                    f"Win over the {who} at {r.stage} ({r.share_of_people:.0%} of those "
                    f"deciding there; {r.rate_with:.0%} convert vs {r.rate_without:.0%})"
                ),
                "gained": f"more converting out of {r.stage}",
            }
        )
    return rows


# --- the report ------------------------------------------------------------------------------


def _titled(row: dict[str, object], revenue: tuple[float, str] | None) -> dict[str, object]:
    """Add the plain sentence and, for conversion gains, the revenue estimate."""
    if "title" in row:
        return row
    gain, low, high = (float(row[k]) for k in ("gain", "gain_low", "gain_high"))  # type: ignore[arg-type]
    said = f"about {_amount(gain)} {row['gained']} a month" if gain > 0 else "no gain seen"
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
    rows = _answer_faster(con, spec, followups, months) + _weak_segments(con, months)
    rows += _deviations(con, spec, months) + _stop_doing(con, spec, months)
    rows += _unhappy(con, months)
    frame = pd.DataFrame([_titled(r, revenue) for r in rows], columns=COLUMNS)
    frame["person_ids"] = frame.person_ids.map(lambda ids: list(ids) if ids is not None else [])
    for column in ("gain", "gain_low", "gain_high", "revenue_gain", "touchpoints_per_month"):
        frame[column] = frame[column].astype(float)
    frame["people"] = frame.people.astype("int64")
    return redact_emails(rank_opportunities(frame))[COLUMNS]


def write_opportunities(
    con: duckdb.DuckDBPyConnection, spec: JourneySpec, *, followups: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Compute and store the ``opportunities`` table; return it."""
    frame = compute_opportunities(con, spec, followups=followups)
    store(con, "opportunities", SCHEMA, frame)
    return frame
