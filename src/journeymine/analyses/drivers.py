"""What drives drop-off, and how journeys drift between two periods.

**Drivers** of a stage transition: for people who entered the stage and are decided (converted
or dropped) — or, for drivers of slowness, for people who converted, fast (at or under the
median time) vs slow — each candidate feature — a touchpoint done while in the stage, or a segment
value — is compared: base rate, rate with and without it, lift = rate with / base rate, a 95%
Wilson interval of the rate with, a two-sided Fisher exact test, and Benjamini–Hochberg
control of the false-discovery rate across all features (``finding`` = discovery at 5%).
Frequent touchpoints with no lift are flagged ``no_effect`` ("why do we do that?").

**Drift** between two periods (or any two logs): directly-follows edges whose share of cases
changed, and stage conversion changes, each with a two-proportion test.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import numpy as np
import pandas as pd
from scipy import stats as sps

from journeymine.analyses.funnel import compute_entries
from journeymine.analyses.stats import benjamini_hochberg, wilson
from journeymine.mining import discovery
from journeymine.mining.eventlog import log_from_touchpoints
from journeymine.spec import JourneySpec

POPULATIONS = {
    # who is compared, and what counts as success
    "conversion": """
        SELECT case_key, entered_at, status = 'converted' AS success,
               coalesce(converted_at, entered_at + INTERVAL 1000 DAY) AS decided_at
        FROM stage_entries WHERE stage = $stage AND status IN ('converted', 'dropped')
    """,
    "speed": """
        SELECT case_key, entered_at, converted_at AS decided_at,
               epoch(converted_at - entered_at) <= median(epoch(converted_at - entered_at))
                   OVER () AS success
        FROM stage_entries WHERE stage = $stage AND status = 'converted'
    """,
}


def _feature_counts(
    con: duckdb.DuckDBPyConnection,
    stage: str,
    segments: tuple[str, ...],
    lead_s: float,
    outcome: str,
) -> pd.DataFrame:
    """Per feature: people with it and successes among them, in the outcome's population.
    Touchpoints in the last ``lead_s`` seconds before converting are left out: they are part
    of converting (the Stripe customer created seconds before the trial), not a driver; a
    segment value counts only if it was known by then (a company size first told at signup
    says nothing about who signs up)."""
    segment_sql = " UNION ALL ".join(
        f"SELECT d.case_key, 'segment: {a}=' || (arg_min(t.attributes->>'{a}', "
        f"(t.occurred_at, t.seq)) FILTER (WHERE t.attributes->>'{a}' IS NOT NULL)) AS feature "
        f"FROM decided d JOIN touchpoints t ON t.person_id = d.case_key "
        f"AND t.occurred_at < d.decided_at - to_seconds($lead_s) GROUP BY d.case_key"
        for a in (s.replace("'", "") for s in segments)
    )
    return con.execute(
        f"""
        WITH decided AS ({POPULATIONS[outcome]}), features AS (
            SELECT DISTINCT d.case_key, 'did: ' || t.activity AS feature
            FROM decided d JOIN touchpoints t ON t.person_id = d.case_key
             AND t.occurred_at >= d.entered_at
             AND t.occurred_at < d.decided_at - to_seconds($lead_s)
            UNION ALL  -- who on our side handled the person while in the stage
            SELECT DISTINCT d.case_key, 'handled by: ' || t.owner_name
            FROM decided d JOIN touchpoints t ON t.person_id = d.case_key
             AND t.actor = 'company' AND t.channel = 'crm' AND t.owner_name IS NOT NULL
             AND t.occurred_at >= d.entered_at AND t.occurred_at < d.decided_at
            {"UNION ALL " + segment_sql if segment_sql else ""}
        )
        SELECT f.feature, count(*) AS people, count(*) FILTER (WHERE d.success) AS converted
        FROM features f JOIN decided d USING (case_key)
        WHERE f.feature IS NOT NULL GROUP BY f.feature
        """,
        {"stage": stage, "lead_s": lead_s},
    ).df()


def drivers(
    con: duckdb.DuckDBPyConnection,
    stage: str,
    segments: tuple[str, ...] = (),
    *,
    outcome: str = "conversion",
    min_people: int = 10,
    alpha: float = 0.05,
    lead_time: timedelta = timedelta(hours=1),
) -> pd.DataFrame:
    """Features associated with converting out of ``stage`` (``outcome="conversion"``), or,
    among those who converted, with converting faster than the median (``"speed"``: the
    ``rate`` columns are then the share of fast converters). Needs ``stage_entries``."""
    if outcome not in POPULATIONS:
        raise ValueError(f"outcome is one of {list(POPULATIONS)}, not {outcome!r}")
    totals = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE success) FROM ({POPULATIONS[outcome]})",
        {"stage": stage},
    ).fetchall()[0]
    total, converted = int(totals[0]), int(totals[1])
    frame = _feature_counts(con, stage, segments, lead_time.total_seconds(), outcome)
    frame = frame[(frame.people >= min_people) & (frame.people < total)].reset_index(drop=True)
    if total == 0 or frame.empty:
        return frame.assign(base_rate=np.nan)
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
    out = pd.DataFrame(rows)
    out["finding"] = benjamini_hochberg(out.p_value.to_numpy(), alpha)
    out["no_effect"] = (
        out.feature.str.startswith("did: ")
        & (out.share_of_people >= 0.3)
        & ~out.finding
        & ((out.lift - 1).abs() < 0.05)
    )
    return out.sort_values(["finding", "p_value"], ascending=[False, True]).reset_index(drop=True)


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
        view = log_from_touchpoints(con, since=str(start), until=str(end), name=f"jm_{label}_log")
        log = discovery.materialise_log(con, view, f"jm_{label}_events")
        cases = int(con.execute(f"SELECT count(DISTINCT case_key) FROM {log}").fetchall()[0][0])
        dfg = discovery.discover_dfg(con, log)[["source_activity", "target_activity", "cases"]]
        edges.append(dfg.assign(period=label, total=cases))
        entries = compute_entries(con, spec, log, cutoff=end)
        counts = entries.groupby("stage").status.value_counts().unstack(fill_value=0)
        funnels.append(counts.assign(period=label))
        top = discovery.discover_variants(con, log)[["variant", "cases"]]
        variants.append(top.assign(total=cases))
        con.execute(f"DROP TABLE {log}")
    merged = (
        edges[0]
        .merge(
            edges[1],
            on=["source_activity", "target_activity"],
            how="outer",
            suffixes=("_before", "_after"),
        )
        .fillna({"cases_before": 0, "cases_after": 0})
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
    stages = pd.DataFrame(stage_rows, columns=stage_columns)
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
    return {
        "edges": merged[edge_cols].sort_values("p_value").reset_index(drop=True),
        "stages": stages,
        "variants": _variant_shift(variants),
        "latency": _latency_shift(con, spec, before, after),
    }


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
    from journeymine.analyses.followups import compute_followups

    rows = compute_followups(con, spec)
    rows = rows[rows.status == "answered"]
    out = []
    for rule, part in rows.groupby("rule"):
        periods = [
            part[
                (part.triggered_at >= pd.Timestamp(s)) & (part.triggered_at < pd.Timestamp(e))
            ].latency_s
            for s, e in (before, after)
        ]
        if min(len(x) for x in periods) < 2:
            continue
        test = sps.mannwhitneyu(periods[0], periods[1], alternative="two-sided")
        out.append(
            {
                "rule": rule,
                "answered_before": len(periods[0]),
                "median_h_before": periods[0].median() / 3600,
                "answered_after": len(periods[1]),
                "median_h_after": periods[1].median() / 3600,
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
