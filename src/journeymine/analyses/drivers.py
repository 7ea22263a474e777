"""What drives drop-off, and how journeys drift between two periods.

**Drivers** of a stage transition: for people who entered the stage and are decided (converted
or dropped) — or, for drivers of slowness, for people who converted, fast (at or under the
median time) vs slow — each candidate feature — a touchpoint done while in the stage, or a segment
value — is compared: base rate, rate with and without it, lift = rate with / base rate, a 95%
Wilson interval of the rate with, a two-sided Fisher exact test, and Benjamini–Hochberg
control of the false-discovery rate across all features (``finding`` = discovery at 5%).
Frequent touchpoints with no lift are flagged ``no_effect`` ("why do we do that?").

**Feelings** (docs/metrics.md): two person features, from feedback given *before the landmark*
(at any time before ``entered + horizon``, in the stage or earlier, so that nobody is credited
with an answer given after the people who dropped stopped being watched): ``felt: detractor``
(an NPS answer 0-6, ``nps_group = 'detractor'``, Typeform or the survey CSV) and ``felt: bad
CSAT`` (a Zendesk ``support.csat_rated`` with score ``bad``). And two outcomes (``outcome=``,
asked for by the spec's ``driver_outcomes``): ``detractor`` — among the people who entered the
stage and answered an NPS question at or after the landmark, is their first such answer a
detractor's; ``bad_csat`` — the same for their first CSAT rating being bad. The ``rate``
columns are then the detractor (bad-CSAT) share, and a lift above 1 marks a feature that goes
with unhappier customers.

**Drift** between two periods (or any two logs): directly-follows edges whose share of cases
changed, and stage conversion changes, each with a two-proportion test.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import duckdb
import numpy as np
import pandas as pd
from scipy import stats as sps

from journeymine.analyses.funnel import UNKNOWN, build_entries, entry_segments_sql
from journeymine.analyses.markers import marker_sql
from journeymine.analyses.stats import benjamini_hochberg, wilson
from journeymine.mining import discovery
from journeymine.mining.eventlog import log_from_touchpoints
from journeymine.spec import (
    DRIVER_OUTCOMES,
    OUTCOME_ACTIVITIES,
    JourneySpec,
    Segment,
    Stage,
    positions,
    step_label,
)
from journeymine.sql import glob_any, literal
from journeymine.warehouse import table_exists

POPULATIONS = {
    # Who is compared, and what counts as success, in a landmark design: everyone in the
    # population was still undecided at the landmark (entered + horizon), and features are
    # observed over [entered, landmark) for all of them alike.
    "conversion": """
        SELECT case_key, pos, entered_at, status = 'converted' AS success
        FROM stage_entries
        WHERE stage = $stage AND status IN ('converted', 'dropped')
          AND (converted_at IS NULL OR converted_at >= entered_at + to_seconds($horizon_s))
    """,
    "speed": """
        SELECT case_key, pos, entered_at,
               time_to_convert_s <= median(time_to_convert_s) OVER () AS success
        FROM stage_entries
        WHERE stage = $stage AND status = 'converted'
          AND converted_at >= entered_at + to_seconds($horizon_s)
    """,
    # The first feedback of the kind given at or after the landmark decides (event order).
    "detractor": """
        SELECT s.case_key, s.pos, s.entered_at,
               json_extract_string(t.attributes, '$.nps_group') = 'detractor' AS success
        FROM stage_entries s JOIN touchpoints t ON t.person_id = s.case_key
        WHERE s.stage = $stage AND t.activity = 'feedback.survey_answered'
          AND json_extract_string(t.attributes, '$.nps_group') IS NOT NULL
          AND t.occurred_at >= s.entered_at + to_seconds($horizon_s)
        QUALIFY row_number() OVER (PARTITION BY s.case_key, s.pos
                                   ORDER BY t.occurred_at, t.seq) = 1
    """,
    "bad_csat": """
        SELECT s.case_key, s.pos, s.entered_at,
               json_extract_string(t.attributes, '$.score') = 'bad' AS success
        FROM stage_entries s JOIN touchpoints t ON t.person_id = s.case_key
        WHERE s.stage = $stage AND t.activity = 'support.csat_rated'
          AND json_extract_string(t.attributes, '$.score') IN ('good', 'bad')
          AND t.occurred_at >= s.entered_at + to_seconds($horizon_s)
        QUALIFY row_number() OVER (PARTITION BY s.case_key, s.pos
                                   ORDER BY t.occurred_at, t.seq) = 1
    """,
}
assert tuple(POPULATIONS) == DRIVER_OUTCOMES  # the spec validates names against this list
# Feelings as features: feedback given before the landmark, in the stage or before it.
FELT = """
    SELECT DISTINCT d.case_key,
           CASE WHEN t.activity = 'feedback.survey_answered' THEN 'felt: detractor'
                ELSE 'felt: bad CSAT' END AS feature
    FROM decided d JOIN touchpoints t ON t.person_id = d.case_key
     AND t.occurred_at < d.entered_at + to_seconds($horizon_s)
    WHERE (t.activity = 'feedback.survey_answered'
           AND json_extract_string(t.attributes, '$.nps_group') = 'detractor')
       OR (t.activity = 'support.csat_rated'
           AND json_extract_string(t.attributes, '$.score') = 'bad')
"""
COLUMNS = [
    "feature", "people", "share_of_people", "base_rate", "rate_with", "rate_without", "lift",
    "ci_low", "ci_high", "p_value", "finding", "deterministic", "no_effect", "horizon_s",
]  # fmt: skip


def horizon(con: duckdb.DuckDBPyConnection, stage: str, spec: JourneySpec | None = None) -> float:
    """Seconds after entering ``stage`` over which drivers are observed: the stage's
    ``horizon`` in the spec, else the median time to convert out of it, never longer than
    the step's window (a landmark after the window would leave nobody undecided)."""
    row = con.execute(
        "SELECT quantile_cont(time_to_convert_s, 0.5) FILTER (WHERE status = 'converted'), "
        "max(window_s) FROM stage_entries WHERE stage = $stage",
        {"stage": stage},
    ).fetchone()
    median, window = (row or (None, None))[:2]
    set_in_spec = next((s.horizon for s in (spec.stages if spec else ()) if s.name == stage), None)
    chosen = set_in_spec.total_seconds() if set_in_spec else (median or 0.0)
    return float(min(chosen, window)) if window else float(chosen)


def _not_a_feature(con: duckdb.DuckDBPyConnection, stage: str, spec: JourneySpec | None) -> str:
    """SQL condition on ``t.activity``: the stage's own markers and every later stage's (they
    are progress, not a cause of it) and the outcome activities (a lost deal, a cancellation)."""
    if spec is None:
        return "false"
    steps = [group for group, _ in positions(spec)]
    pos = next((i for i, group in enumerate(steps) if stage in _labels(group)), 0)
    # A marker with ``where`` is progress only when its conditions hold (a renewal invoice),
    # so the same activity under other conditions can still be a feature.
    markers = [marker_sql(s, "t.activity", "t.attributes") for group in steps[pos:] for s in group]
    outcome = OUTCOME_ACTIVITIES + spec.outcome_activities
    return "(" + " OR ".join([*markers, glob_any("t.activity::VARCHAR", outcome)]) + ")"


def _labels(group: list[Stage]) -> set[str]:
    """The names a step goes by in ``stage_entries``: each stage's, and the group's label."""
    return {s.name for s in group} | {step_label(group)}


def _feature_counts(
    con: duckdb.DuckDBPyConnection,
    stage: str,
    segments: Sequence[str | Segment],
    horizon_s: float,
    outcome: str,
    excluded: str,
) -> pd.DataFrame:
    """Per feature: people with it and successes among them, in the outcome's population.
    A touchpoint is a feature when done in ``[entered, entered + horizon)``; a segment value
    when known at entry (``funnel.entry_segments_sql``)."""
    segment_sql = ""
    if segments:
        known = entry_segments_sql(segments, "first", "decided", "touchpoints", "person")
        segment_sql = (
            f"UNION ALL SELECT case_key, 'segment: ' || attribute || '=' || value "
            f"FROM ({known}) WHERE value <> {literal(UNKNOWN)}"
        )
    return con.execute(
        f"""
        WITH decided AS ({POPULATIONS[outcome]}), observed AS (
            SELECT d.case_key, t.activity, t.actor, t.channel, t.owner_name
            FROM decided d JOIN touchpoints t ON t.person_id = d.case_key
             AND t.occurred_at >= d.entered_at
             AND t.occurred_at < d.entered_at + to_seconds($horizon_s)
            WHERE NOT {excluded}
        ), features AS (
            SELECT DISTINCT case_key, 'did: ' || activity AS feature FROM observed
            UNION ALL  -- who on our side handled the person while in the stage
            SELECT DISTINCT case_key, 'handled by: ' || owner_name FROM observed
            WHERE actor = 'company' AND channel = 'crm' AND owner_name IS NOT NULL
            UNION ALL {FELT}
            {segment_sql}
        )
        SELECT f.feature, count(*) AS people, count(*) FILTER (WHERE d.success) AS converted
        FROM features f JOIN decided d USING (case_key)
        WHERE f.feature IS NOT NULL GROUP BY f.feature
        """,
        {"stage": stage, "horizon_s": horizon_s},
    ).df()


def drivers(
    con: duckdb.DuckDBPyConnection,
    stage: str,
    segments: Sequence[str | Segment] = (),
    *,
    outcome: str = "conversion",
    spec: JourneySpec | None = None,
    horizon_s: float | None = None,
    min_people: int = 10,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Features associated with converting out of ``stage`` (``outcome="conversion"``), or,
    among those who converted, with converting faster than the median (``"speed"``: the
    ``rate`` columns are then the share of fast converters), or with later feedback being a
    detractor's or a bad CSAT (``"detractor"``, ``"bad_csat"``: the rates are those shares).
    Needs ``stage_entries``.

    Landmark design: the population is the people still undecided ``horizon_s`` after entering
    (default :func:`horizon`; for speed, half of it), and every feature is observed over that
    same stretch for everyone, so people who drop are not credited with touchpoints they
    received later just because they were watched longer. Given ``spec``, the stage's own and
    later stages' markers and the outcome activities are never features. A feature with which
    everyone converts, or nobody does, is ``deterministic``: reported, never a finding."""
    if outcome not in POPULATIONS:
        raise ValueError(f"outcome is one of {list(POPULATIONS)}, not {outcome!r}")
    if horizon_s is None:
        horizon_s = horizon(con, stage, spec) * (0.5 if outcome == "speed" else 1.0)
    total, converted = _population_size(con, stage, outcome, horizon_s)
    excluded = _not_a_feature(con, stage, spec)
    frame = _feature_counts(con, stage, segments, horizon_s, outcome, excluded)
    frame = frame[(frame.people >= min_people) & (frame.people < total)].reset_index(drop=True)
    if total == 0 or frame.empty:
        return pd.DataFrame(columns=COLUMNS).astype(
            {"finding": bool, "deterministic": bool, "no_effect": bool}
        )
    out = _flag_features(_feature_tests(frame, total, converted), alpha)
    out["horizon_s"] = horizon_s
    out = out.sort_values(["finding", "p_value"], ascending=[False, True])
    return out.reset_index(drop=True)[COLUMNS]


def _population_size(
    con: duckdb.DuckDBPyConnection, stage: str, outcome: str, horizon_s: float
) -> tuple[int, int]:
    """People in the outcome's population, and the successes among them."""
    params = {"stage": stage, "horizon_s": horizon_s}
    totals = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE success) FROM ({POPULATIONS[outcome]})", params
    ).fetchall()[0]
    return int(totals[0]), int(totals[1])


def _feature_tests(frame: pd.DataFrame, total: int, converted: int) -> pd.DataFrame:
    """Per feature (``_feature_counts`` rows): rates with and without it, lift, the Wilson
    interval of the rate with it, and the Fisher exact p-value against the rest."""
    base = converted / total
    rows = []
    for r in frame.itertuples():
        without_n, without_c = total - r.people, converted - r.converted
        _, p = sps.fisher_exact(
            [[r.converted, r.people - r.converted], [without_c, without_n - without_c]]
        )
        low, high = wilson(int(r.converted), int(r.people))
        rate = r.converted / r.people
        rows.append(
            {
                "feature": r.feature,
                "people": r.people,
                "share_of_people": r.people / total,
                "base_rate": base,
                "rate_with": rate,
                "rate_without": without_c / without_n,
                "lift": rate / base if base else np.nan,
                "ci_low": low,
                "ci_high": high,
                "p_value": p,
            }
        )
    return pd.DataFrame(rows)


def _flag_features(out: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Add ``deterministic``, ``finding`` (BH at ``alpha``) and ``no_effect`` to the tests."""
    # Everyone with it converts (or nobody does): a step of the process itself (a booked
    # meeting converting the lead, an anonymous docs reader who can never sign up), not a lever.
    out["deterministic"] = out.rate_with.isin([0.0, 1.0])
    out["finding"] = benjamini_hochberg(out.p_value.to_numpy(), alpha) & ~out.deterministic
    out["no_effect"] = (
        out.feature.str.startswith("did: ")
        & (out.share_of_people >= 0.3)
        & ~out.finding
        & ((out.lift - 1).abs() < 0.05)
    )
    return out


def _two_proportions(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided p-value that two proportions are equal (pooled z-test)."""
    if min(n1, n2) == 0:
        return np.nan
    pooled = (k1 + k2) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    return float(2 * sps.norm.sf(abs(k1 / n1 - k2 / n2) / se))


def _count(frame: pd.DataFrame, stage: str, column: str) -> int:
    has = stage in frame.index and column in frame.columns
    return int(frame.loc[stage, column]) if has else 0


def compare_periods(
    con: duckdb.DuckDBPyConnection,
    spec: JourneySpec,
    before: tuple[datetime, datetime],
    after: tuple[datetime, datetime],
) -> dict[str, pd.DataFrame]:
    """Drift from ``before`` to ``after`` (each a [start, end) window): edges and stage
    conversion, each change with a two-proportion test and BH control."""
    edges, funnels, variants = [], [], []
    for label, (start, end) in (("before", before), ("after", after)):
        edge, funnel, variant = _period_counts(con, spec, label, start, end)
        edges.append(edge)
        funnels.append(funnel)
        variants.append(variant)
    return {
        "edges": _edge_shift(edges),
        "stages": _stage_shift(funnels),
        "variants": _variant_shift(variants),
        "latency": _latency_shift(con, spec, before, after),
    }


def _period_counts(
    con: duckdb.DuckDBPyConnection, spec: JourneySpec, label: str, start: datetime, end: datetime
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """One period's directly-follows edges (cases per edge and in all), stage statuses
    (people per stage and status) and variants (cases per variant and in all)."""
    view = log_from_touchpoints(con, since=str(start), until=str(end), name=f"jm_{label}_log")
    log = discovery.materialise_log(con, view, f"jm_{label}_events")
    cases = int(con.execute(f"SELECT count(DISTINCT case_key) FROM {log}").fetchall()[0][0])
    dfg = discovery.discover_dfg(con, log)[["source_activity", "target_activity", "cases"]]
    entries = build_entries(con, spec, log, cutoff=end)
    counts = (
        con.execute(  # the decided per stage, counted where the entries are
            f"SELECT stage, count(*) FILTER (WHERE status = 'converted') AS converted, "
            f"count(*) FILTER (WHERE status = 'dropped') AS dropped FROM {entries} GROUP BY stage"
        )
        .df()
        .set_index("stage")
    )
    top = discovery.discover_variants(con, log)[["variant", "cases"]]
    con.execute(f"DROP TABLE {log}")
    return (
        dfg.assign(period=label, total=cases),
        counts.assign(period=label),
        top.assign(total=cases),
    )


def _edge_shift(edges: list[pd.DataFrame]) -> pd.DataFrame:
    """Share of cases taking each directly-follows edge, before vs after, with a
    two-proportion test per edge and BH control across them."""
    merged = (
        edges[0]
        .merge(
            edges[1],
            on=["source_activity", "target_activity"],
            how="outer",
            suffixes=("_before", "_after"),
        )
        .fillna({"cases_before": 0, "cases_after": 0})
        .astype({"cases_before": "int64", "cases_after": "int64"})  # counts, as in drift_variants
    )
    nb, na = (
        edges[0].total.iloc[0] if len(edges[0]) else 0,
        edges[1].total.iloc[0] if len(edges[1]) else 0,
    )
    merged["share_before"] = merged.cases_before / nb if nb else np.nan
    merged["share_after"] = merged.cases_after / na if na else np.nan
    merged["change"] = np.select(
        [merged.cases_before == 0, merged.cases_after == 0], ["appeared", "vanished"], "changed"
    )
    merged["p_value"] = [
        _two_proportions(int(a), int(nb), int(b), int(na))
        for a, b in zip(merged.cases_before, merged.cases_after, strict=True)
    ]
    merged["significant"] = benjamini_hochberg(merged.p_value.fillna(1).to_numpy())
    edge_cols = [
        "source_activity",
        "target_activity",
        "cases_before",
        "cases_after",
        "share_before",
        "share_after",
        "change",
        "p_value",
        "significant",
    ]
    return merged[edge_cols].sort_values("p_value").reset_index(drop=True)


def _stage_shift(funnels: list[pd.DataFrame]) -> pd.DataFrame:
    """Conversion out of each stage among the decided, before vs after, with a
    two-proportion test."""
    stage_rows = []
    b, a = funnels
    for stage in sorted(set(b.index) | set(a.index)):
        kb, db_ = (_count(b, stage, c) for c in ("converted", "dropped"))
        ka, da = (_count(a, stage, c) for c in ("converted", "dropped"))
        stage_rows.append(
            {
                "stage": stage,
                "rate_before": kb / (kb + db_) if kb + db_ else np.nan,
                "rate_after": ka / (ka + da) if ka + da else np.nan,
                "decided_before": kb + db_,
                "decided_after": ka + da,
                "p_value": _two_proportions(kb, kb + db_, ka, ka + da),
            }
        )
    stage_columns = [
        "stage",
        "rate_before",
        "rate_after",
        "decided_before",
        "decided_after",
        "p_value",
    ]
    return pd.DataFrame(stage_rows, columns=stage_columns)


def _variant_shift(variants: list[pd.DataFrame], top: int = 20) -> pd.DataFrame:
    """Share of cases of the most frequent variants of either period, before vs after."""
    b, a = variants
    nb = int(b.total.iloc[0]) if len(b) else 0
    na = int(a.total.iloc[0]) if len(a) else 0
    keep = set(b.head(top).variant) | set(a.head(top).variant)
    both = (
        b[b.variant.isin(keep)][["variant", "cases"]]
        .merge(
            a[a.variant.isin(keep)][["variant", "cases"]],
            on="variant",
            how="outer",
            suffixes=("_before", "_after"),
        )
        .fillna(0)
    )
    both["share_before"] = both.cases_before / nb if nb else np.nan
    both["share_after"] = both.cases_after / na if na else np.nan
    both["p_value"] = [
        _two_proportions(int(x), nb, int(y), na)
        for x, y in zip(both.cases_before, both.cases_after, strict=True)
    ]
    return both.sort_values("p_value").reset_index(drop=True)


def _latency_shift(
    con: duckdb.DuckDBPyConnection,
    spec: JourneySpec,
    before: tuple[datetime, datetime],
    after: tuple[datetime, datetime],
) -> pd.DataFrame:
    """Follow-up latency per rule, before vs after: medians and a Mann-Whitney U test."""
    periods = [_answered_latencies(con, spec, start, end) for start, end in (before, after)]
    out = []
    for rule in sorted(set(periods[0]) | set(periods[1])):
        waits = [p.get(rule, pd.Series(dtype=float)) for p in periods]
        if min(len(x) for x in waits) < 2:
            continue
        test = sps.mannwhitneyu(waits[0], waits[1], alternative="two-sided")
        out.append(
            {
                "rule": rule,
                "answered_before": len(waits[0]),
                "median_h_before": waits[0].median() / 3600,
                "answered_after": len(waits[1]),
                "median_h_after": waits[1].median() / 3600,
                "p_value": float(test.pvalue),
            }
        )
    columns = [
        "rule",
        "answered_before",
        "median_h_before",
        "answered_after",
        "median_h_after",
        "p_value",
    ]
    return pd.DataFrame(out, columns=columns)


def _answered_latencies(
    con: duckdb.DuckDBPyConnection, spec: JourneySpec, start: datetime, end: datetime
) -> dict[str, pd.Series]:
    """Per rule, the wall-clock latencies of the answered triggers of [start, end): from
    tonight's stored ``followups`` when the analysis run wrote them (only these rows leave
    DuckDB, not the whole table), else from the follow-ups computed now."""
    from journeymine.analyses.followups import compute_followups

    source = "followups"
    if not table_exists(con, source):
        source = "jm_drift_followups"
        computed = compute_followups(con, spec)[["rule", "status", "triggered_at", "latency_s"]]
        con.register(source, computed)
    try:
        rows = con.execute(
            f"SELECT rule, list(latency_s) FROM {source} WHERE status = 'answered' "
            "AND triggered_at >= $start AND triggered_at < $end GROUP BY rule",
            {"start": start, "end": end},
        ).fetchall()
    finally:
        if source != "followups":
            con.unregister(source)
    return {rule: pd.Series(waits, dtype=float) for rule, waits in rows}
