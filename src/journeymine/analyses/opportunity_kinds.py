"""The candidate opportunities read from the journeys themselves, one builder per kind
(``answer_faster``, ``lift_weak_segment``, ``close_deviation``; the kinds are described in
``analyses.opportunities``), and the interval they share: each returns rows with a gain per
month, its 95% interval, the people concerned and a sentence; ``analyses.opportunities``
titles, ranks and stores them."""

from __future__ import annotations

import math
from datetime import timedelta

import duckdb
import numpy as np
import pandas as pd
from scipy import stats as sps

from journeymine.analyses.followups import rule_cost_of_waiting
from journeymine.analyses.funnel import UNKNOWN, entry_segments_sql
from journeymine.analyses.stats import benjamini_hochberg, wilson
from journeymine.spec import FollowupRule, JourneySpec, step_labels
from journeymine.warehouse import table_exists

MIN_PEOPLE = 10  # smallest group (or stratum) a rate is compared on
MIN_DEVIATION_SHARE = 0.05  # a deviation is frequent from this share of cases on
BOOTSTRAP_DRAWS = 4000
SEED = 20261129  # fixed: the same warehouse gives the same intervals every night


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


def amount(x: float) -> str:
    """A figure for a sentence: whole numbers from 10 on, one decimal below."""
    return f"{x:.0f}" if abs(x) >= 10 else f"{x:.1f}"


def _people(n: int) -> str:
    return "1 person" if n == 1 else f"{n} people"


def _duration(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds / 3600:.1f}h"


# --- answer faster ---------------------------------------------------------------------------


def _first_decided(followups: pd.DataFrame, rule: str) -> pd.DataFrame:
    """Each person's first decided trigger of ``rule`` (as ``cost_of_waiting`` takes them),
    with ``slow`` = answered later than the SLA or never."""
    decided = (followups.rule == rule) & (followups.status != "open") & followups.person_id.notna()
    # Only the columns the estimate reads (``rule_cost_of_waiting`` among them): not a copy of
    # every column of the rule's triggers.
    used = ["rule", "status", "person_id", "triggered_at", "sla_breached"]
    first = followups.loc[decided, used].sort_values("triggered_at").drop_duplicates("person_id")
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


def answer_faster(
    con: duckdb.DuckDBPyConnection, spec: JourneySpec, followups: pd.DataFrame, months: float
) -> list[dict[str, object]]:
    """``answer_faster``: one row per follow-up rule with ``converts_to`` and slow answers."""
    rows = []
    for rule in spec.followups:
        if rule.converts_to is not None:
            row = _answer_faster_one(con, spec, followups, rule, months)
            if row is not None:
                rows.append(row)
    return rows


# --- weak segments ---------------------------------------------------------------------------


def _next_stages(funnel: pd.DataFrame) -> dict[int, str]:
    """Position -> the label of the stage after it; none where that one is an outcome stage
    (``stage_funnel.outcome``): more people cancelling is no gain."""
    goals = funnel[~funnel.outcome.astype(bool)]
    labels = goals.drop_duplicates("position").set_index("position").stage
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


def weak_segments(con: duckdb.DuckDBPyConnection, months: float) -> list[dict[str, object]]:
    """``lift_weak_segment``: segment values converting significantly below the rest."""
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


def deviations(
    con: duckdb.DuckDBPyConnection, spec: JourneySpec, months: float
) -> list[dict[str, object]]:
    """``close_deviation``: frequent deviations completing less often than conforming cases."""
    if not (table_exists(con, "conformance_summary") and table_exists(con, "conformance")):
        return []
    summary = con.execute("SELECT * FROM conformance_summary").df()
    total = int(con.execute("SELECT count(*) FROM conformance").fetchall()[0][0])
    k0, n0 = _baseline(con)
    last = step_labels(spec)[-1] if spec.stages else "the end"
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
