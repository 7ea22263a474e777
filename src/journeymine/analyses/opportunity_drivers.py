"""The candidate opportunities read from the ``drivers`` table, one builder per kind:
``stop_doing`` (a company touchpoint with no effect) and ``win_over_detractors`` /
``soothe_bad_csat`` (unhappy people converting less); the kinds are described in
``analyses.opportunities``. Both count people in the drivers' own landmark population."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

import duckdb

from journeymine.analyses.drivers import FELT, POPULATIONS
from journeymine.analyses.opportunity_kinds import amount, newcombe
from journeymine.spec import JourneySpec
from journeymine.vocabulary import SUPPORT
from journeymine.warehouse import table_exists

# --- stop doing ------------------------------------------------------------------------------


def _company_activities(
    con: duckdb.DuckDBPyConnection, spec: JourneySpec, activities: Iterable[str]
) -> set[str]:
    """Company actions the company could stop: activities named by the spec or mostly done by
    the company, less service the customer asked for (mostly in the support channel, where
    every ticket is the customer's request: solving it is no outreach to stop)."""
    wanted = sorted(set(activities))
    if not wanted:
        return set()
    rows = con.execute(
        "SELECT activity::VARCHAR, avg((actor = 'company')::INT), avg((channel = $support)::INT) "
        "FROM touchpoints WHERE list_contains($wanted, activity::VARCHAR) GROUP BY 1",
        {"wanted": wanted, "support": SUPPORT},
    ).fetchall()
    asked = {a for a, _, support in rows if support is not None and support > 0.5}
    by_spec = {a for a in wanted if any(fnmatch.fnmatchcase(a, p) for p in spec.company_activities)}
    by_actor = {a for a, share, _ in rows if share is not None and share > 0.5}
    return (by_spec | by_actor) - asked


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


def stop_doing(
    con: duckdb.DuckDBPyConnection, spec: JourneySpec, months: float
) -> list[dict[str, object]]:
    """``stop_doing``: company touchpoints ``drivers`` flags ``no_effect`` on converting."""
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
                    f"Stop or rethink {r.activity} in {r.stage}: {amount(per_month)} "
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


def unhappy(con: duckdb.DuckDBPyConnection, months: float) -> list[dict[str, object]]:
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
