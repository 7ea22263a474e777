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

Drift between two periods is in :mod:`journeymine.analyses.drift`.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import numpy as np
import pandas as pd
from scipy import stats as sps

from journeymine.analyses.funnel import UNKNOWN, entry_segments_sql
from journeymine.analyses.markers import marker_sql
from journeymine.analyses.stats import benjamini_hochberg, wilson
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
