"""Drivers with lift and false-discovery control; drift between two periods."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy.stats import mannwhitneyu

from journeymine.analyses.drift import _latency_shift, compare_periods
from journeymine.analyses.drivers import drivers
from journeymine.analyses.funnel import write_stage_funnel
from journeymine.analyses.stats import benjamini_hochberg
from journeymine.errors import SpecError
from journeymine.mining.eventlog import log_from_touchpoints
from journeymine.spec import JourneySpec, Stage, load_spec, spec_from_dict
from journeymine.warehouse import connect
from tests.fixtures import insert_rows

ROOT = Path(__file__).resolve().parents[2]


def test_benjamini_hochberg_on_a_textbook_case() -> None:
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216])
    # thresholds k/10*0.05: 0.005, 0.01, 0.015, 0.02 ... only the first two pass
    assert benjamini_hochberg(p, 0.05).tolist() == [True, True] + [False] * 8


def test_a_touchpoint_that_doubles_conversion_is_a_finding(touchpoints) -> None:  # type: ignore[no-untyped-def]
    rows = []
    rng = np.random.default_rng(1)
    for person in range(1, 201):
        t0 = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=person)
        rows.append((person, "visit", "customer", t0.isoformat()))
        called = person % 2 == 0
        if called:
            rows.append(
                (person, "crm.call_completed", "company", (t0 + timedelta(hours=2)).isoformat())
            )
        if rng.random() < (0.8 if called else 0.3):
            rows.append((person, "signup", "customer", (t0 + timedelta(days=1)).isoformat()))
        rows.append((person, "email.delivered", "company", (t0 + timedelta(hours=3)).isoformat()))
    rows.append((999, "visit", "customer", "2026-03-01 00:00+00"))  # sets the cut-off
    con = touchpoints(rows)
    spec = JourneySpec(
        name="t",
        window=timedelta(days=3),
        stages=(Stage("visit", ("visit",)), Stage("signup", ("signup",))),
    )
    write_stage_funnel(con, spec, log_from_touchpoints(con))
    found = drivers(con, "visit").set_index("feature")
    call = found.loc["did: crm.call_completed"]
    assert call.finding and call.lift > 1.4 and call.rate_with > call.rate_without
    assert call.ci_low <= call.rate_with <= call.ci_high
    # sent to everyone: no contrast, so it is not even a candidate
    assert "did: email.delivered" not in found.index


def test_sample_drivers_find_the_small_company_drop(sample_copy: Path) -> None:
    con = connect(sample_copy)  # a copy: the funnel is rewritten below
    spec = load_spec(ROOT / "data" / "sample" / "journey.toml")
    write_stage_funnel(con, spec, log_from_touchpoints(con))
    found = drivers(con, "demo_held", spec.segments, spec=spec).set_index("feature")
    small = found.loc["segment: company_size=1-10"]
    assert small.finding and small.lift < 0.6
    assert not found.loc["segment: utm_source=google"].finding  # planted: no effect
    # The planted reps: the fastest (Ana Ruiz) wins demos and wins them sooner. Among people
    # still waiting two days after asking (the landmark), the slowest (Dev Patel) converts
    # less, but on this sample's numbers that is no longer a discovery at 5% FDR.
    for outcome in ("conversion", "speed"):
        reps = drivers(con, "demo_requested", outcome=outcome, spec=spec).set_index("feature")
        fast = reps.loc["handled by: Ana Ruiz"]
        assert fast.finding and fast.lift > 1.1, outcome
    slow = (
        drivers(con, "demo_requested", spec=spec).set_index("feature").loc["handled by: Dev Patel"]
    )
    assert slow.lift < 1 and not slow.finding
    # No finding anywhere is a stage marker, an outcome activity or a process step.
    markers = {f"did: {p}" for s in spec.stages for p in s.activities}
    for stage in [s.name for s in spec.stages[:-1]]:
        for outcome in ("conversion", "speed"):
            table = drivers(con, stage, spec.segments, outcome=outcome, spec=spec)
            hits = table[table.finding]
            assert not set(hits.feature) & markers, (stage, outcome)
            assert not hits.feature.str.contains("Lost|canceled").any()
            assert not hits.rate_with.isin([0.0, 1.0]).any()
    drift = compare_periods(
        con,
        spec,
        (datetime(2026, 8, 1, tzinfo=UTC), datetime(2026, 9, 16, tzinfo=UTC)),
        (datetime(2026, 9, 16, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)),
    )
    edges = drift["edges"].set_index(["source_activity", "target_activity"])
    # renewals only exist once trials are old enough: a journey step that appeared
    assert edges.loc[("billing.invoice_paid", "billing.invoice_paid"), "change"] == "appeared"
    assert set(drift["stages"].stage) >= {"visit", "signup", "demo_held"}
    assert drift["stages"].p_value.dropna().between(0, 1).all()
    latency = drift["latency"].set_index("rule")
    assert latency.loc["demo_request", "answered_before"] > 100  # reps kept their pace:
    assert latency.loc["demo_request", "p_value"] > 0.01  # no planted shift, none found
    assert len(drift["variants"]) >= 20 and drift["variants"].share_before.max() <= 1


def _landmark_log(rng: np.random.Generator) -> list[tuple[int, str, str, str]]:
    """300 people enter `visit`. A call within the first day truly doubles signing up (a planted
    driver). The newsletter is a null touchpoint: it goes out every 3 days to whoever has not
    signed up yet, so the people who never sign up receive more of it, later."""
    rows: list[tuple[int, str, str, str]] = []
    for person in range(1, 301):
        t0 = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=person)
        rows.append((person, "visit", "customer", t0.isoformat()))
        called = person % 3 == 0
        if called:
            rows.append(
                (person, "crm.call_completed", "company", (t0 + timedelta(hours=2)).isoformat())
            )
        converts = rng.random() < (0.7 if called else 0.35)
        # converters take 2-12 days, so the median time to convert (the horizon) is ~7 days
        done = t0 + timedelta(days=float(rng.uniform(2, 12))) if converts else None
        for day in range(9, 30, 3):  # the newsletter, only to people still waiting
            sent = t0 + timedelta(days=day)
            if done is None or sent < done:
                rows.append((person, "email.newsletter", "company", sent.isoformat()))
        if done is not None:
            rows.append((person, "signup", "customer", done.isoformat()))
            # the stage's own marker comes back later: never a feature
            rows.append((person, "visit", "customer", (done + timedelta(hours=1)).isoformat()))
        else:
            rows.append(
                (
                    person,
                    "crm.opportunity_stage:Closed Lost",
                    "company",
                    (t0 + timedelta(days=20)).isoformat(),
                )
            )
    rows.append((999, "visit", "customer", "2026-04-01 00:00+00"))  # sets the cut-off
    return rows


def test_landmark_drivers_ignore_exposure_and_outcome_artefacts(touchpoints) -> None:  # type: ignore[no-untyped-def]
    con = touchpoints(_landmark_log(np.random.default_rng(7)))
    spec = JourneySpec(
        name="t",
        window=timedelta(days=30),
        stages=(Stage("visit", ("visit",)), Stage("signup", ("signup",))),
    )
    write_stage_funnel(con, spec, log_from_touchpoints(con))
    found = drivers(con, "visit", spec=spec).set_index("feature")
    times = con.execute(
        "SELECT time_to_convert_s FROM stage_entries WHERE stage = 'visit' AND status = 'converted'"
    ).df()
    assert found.horizon_s.iloc[0] == times.time_to_convert_s.median()
    call = found.loc["did: crm.call_completed"]
    assert call.finding and call.lift > 1.2
    # The newsletter: everyone still undecided at the horizon got it at day 9 at the latest
    # only if the horizon reaches day 9; either way it is no finding.
    assert (
        "did: email.newsletter" not in found.index or not found.loc["did: email.newsletter"].finding
    )
    assert "did: visit" not in found.index and "did: signup" not in found.index
    assert not any("Closed Lost" in f for f in found.index)
    # The trap is in the data: watched until they decide (30 days for those who drop), people
    # who got the newsletter convert far less than those who did not (independent pandas).
    frame = con.execute("SELECT person_id, activity FROM touchpoints").df()
    got = set(frame[frame.activity == "email.newsletter"].person_id)
    signed = set(frame[frame.activity == "signup"].person_id)
    people = set(frame[frame.activity == "visit"].person_id) - {999}
    rate_with = len(got & signed) / len(got & people)
    rate_without = len((people - got) & signed) / len(people - got)
    assert rate_with < 0.5 * rate_without


def test_segments_count_only_when_known_at_entry(touchpoints) -> None:  # type: ignore[no-untyped-def]
    rows = []
    for person in range(1, 101):
        t0 = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=person)
        rows.append((person, "visit", "customer", t0.isoformat()))
        if person % 2 == 0:  # half sign up; the size is only told at signup
            rows.append((person, "signup", "customer", (t0 + timedelta(days=1)).isoformat()))
    rows.append((999, "visit", "customer", "2026-03-01 00:00+00"))
    con = touchpoints(rows)
    con.execute(
        "UPDATE touchpoints SET attributes = '{\"size\": \"big\"}' WHERE activity = 'signup'"
    )
    spec = JourneySpec(
        name="t",
        window=timedelta(days=3),
        stages=(Stage("visit", ("visit",)), Stage("signup", ("signup",))),
        segments=("size",),
    )
    write_stage_funnel(con, spec, log_from_touchpoints(con))
    found = drivers(con, "visit", spec.segments, spec=spec, horizon_s=0.0)
    assert not any(found.feature.str.startswith("segment: "))  # known only after the step


# -- feelings as drivers and as outcomes ---------------------------------------------------------
T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY, HOUR = timedelta(days=1), timedelta(hours=1)
FeelingRow = tuple[int, str, str, datetime, dict[str, object]]
TWO_STAGES = JourneySpec(
    name="t",
    window=timedelta(days=3),
    stages=(Stage("visit", ("visit",)), Stage("signup", ("signup",))),
)


def feelings_warehouse(rows: list[FeelingRow]) -> duckdb.DuckDBPyConnection:
    """Touchpoints with attributes (person, activity, actor, time, attributes), and the funnel."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE touchpoints (event_id BIGINT, person_id BIGINT, activity VARCHAR, "
        "actor VARCHAR, occurred_at TIMESTAMPTZ, seq BIGINT, owner VARCHAR, owner_name VARCHAR, "
        "channel VARCHAR, attributes JSON, account_id BIGINT, deal_id VARCHAR, source VARCHAR)"
    )
    columns = ("event_id", "person_id", "activity", "actor", "occurred_at", "seq", "channel")
    columns += ("attributes", "source")
    values = [
        (i + 1, person, activity, actor, at, i + 1, "web", json.dumps(attrs), "t")
        for i, (person, activity, actor, at, attrs) in enumerate(rows)
    ]
    insert_rows(con, "touchpoints", columns, values)
    write_stage_funnel(con, TWO_STAGES, log_from_touchpoints(con))
    return con


def nps(score: int) -> dict[str, object]:
    group = "detractor" if score <= 6 else "promoter" if score >= 9 else "passive"
    return {"score": score, "nps_group": group}


def expected(frame: pd.DataFrame, feature: str) -> tuple[int, float, float]:
    """(people with the feature, rate with, rate without), computed by pandas."""
    with_it = frame[frame[feature]]
    without = frame[~frame[feature]]
    return len(with_it), with_it.success.mean(), without.success.mean()


def test_a_detractor_or_a_bad_csat_before_the_landmark_is_a_feature() -> None:
    rng = np.random.default_rng(3)
    rows: list[FeelingRow] = []
    people = []
    for person in range(1, 301):
        t0 = T0 + timedelta(hours=person)
        rows.append((person, "visit", "customer", t0, {}))
        detractor, bad_csat = person % 3 == 0, person % 5 == 0
        if detractor:  # before entering the stage counts too: before the landmark
            rows.append((person, "feedback.survey_answered", "customer", t0 - DAY, nps(3)))
        elif person % 3 == 1:
            rows.append((person, "feedback.survey_answered", "customer", t0 + 1 * HOUR, nps(9)))
        if bad_csat:
            rows.append((person, "support.csat_rated", "customer", t0 + 2 * HOUR, {"score": "bad"}))
        elif person % 5 == 1:
            rows.append(
                (person, "support.csat_rated", "customer", t0 + 2 * HOUR, {"score": "good"})
            )
        converted = rng.random() < (0.15 if detractor else 0.35 if bad_csat else 0.6)
        if converted:
            rows.append((person, "signup", "customer", t0 + DAY, {}))
        late = t0 + 2 * DAY  # after the landmark: never a feature
        rows.append((person, "feedback.survey_answered", "customer", late, nps(0)))
        rows.append((person, "support.csat_rated", "customer", late, {"score": "bad"}))
        people.append({"detractor": detractor, "bad_csat": bad_csat, "success": converted})
    rows.append((999, "visit", "customer", T0 + 60 * DAY, {}))  # the cut-off
    con = feelings_warehouse(rows)
    found = drivers(con, "visit", spec=TWO_STAGES, horizon_s=DAY.total_seconds())
    found = found.set_index("feature")
    frame = pd.DataFrame(people)
    for feature, column in (("felt: detractor", "detractor"), ("felt: bad CSAT", "bad_csat")):
        n, rate_with, rate_without = expected(frame, column)
        got = found.loc[feature]
        assert (got.people, got.rate_with, got.rate_without) == (n, rate_with, rate_without)
        assert got.lift == rate_with / frame.success.mean()
        assert got.finding and got.lift < 1  # planted: unhappy people convert less
    assert found.loc["felt: detractor"].people == 100  # the late answers count for nobody


def test_detractor_and_bad_csat_as_outcomes_of_what_happened_in_the_stage() -> None:
    rng = np.random.default_rng(5)
    rows: list[FeelingRow] = []
    nps_people, csat_people = [], []
    for person in range(1, 401):
        t0 = T0 + timedelta(hours=person)
        rows.append((person, "visit", "customer", t0, {}))
        called = person % 2 == 0
        if called:
            rows.append((person, "crm.call_completed", "company", t0 + 2 * HOUR, {}))
        if person % 4 != 3:  # three in four answer the NPS survey after the landmark
            detractor = rng.random() < (0.15 if called else 0.6)
            first = nps(2) if detractor else nps(10)
            rows.append((person, "feedback.survey_answered", "customer", t0 + 5 * DAY, first))
            opposite = nps(10) if detractor else nps(2)  # a later answer does not decide
            rows.append((person, "feedback.survey_answered", "customer", t0 + 9 * DAY, opposite))
            nps_people.append({"called": called, "success": detractor})
        else:  # an answer before the landmark only: not in the population
            rows.append((person, "feedback.survey_answered", "customer", t0 + HOUR, nps(1)))
        if person % 3 == 0:
            bad = rng.random() < (0.2 if called else 0.5)
            score = {"score": "bad" if bad else "good"}
            rows.append((person, "support.csat_rated", "customer", t0 + 4 * DAY, score))
            csat_people.append({"called": called, "success": bad})
        else:  # rated, but without a score: no rating (offered, unanswered)
            rows.append((person, "support.csat_rated", "customer", t0 + 4 * DAY, {}))
    con = feelings_warehouse(rows)
    for outcome, people in (("detractor", nps_people), ("bad_csat", csat_people)):
        found = drivers(
            con, "visit", outcome=outcome, spec=TWO_STAGES, horizon_s=DAY.total_seconds()
        )
        call = found.set_index("feature").loc["did: crm.call_completed"]
        frame = pd.DataFrame(people)
        n, rate_with, rate_without = expected(frame, "called")
        assert (call.people, call.rate_with, call.rate_without) == (n, rate_with, rate_without)
        assert call.base_rate == frame.success.mean()
        assert call.lift < 1, outcome  # planted: a call goes with fewer unhappy customers
    assert len(nps_people) == 300 and len(csat_people) == 133


def test_the_spec_asks_for_feelings_outcomes_by_name() -> None:
    assert spec_from_dict({}).driver_outcomes == ("conversion", "speed")
    asked = spec_from_dict({"driver_outcomes": ["conversion", "detractor", "bad_csat"]})
    assert asked.driver_outcomes == ("conversion", "detractor", "bad_csat")
    with pytest.raises(SpecError, match=r"driver_outcomes: unknown \['nps'\]"):
        spec_from_dict({"driver_outcomes": ["nps"]})
    with pytest.raises(ValueError, match="outcome is one of"):
        drivers(duckdb.connect(), "visit", outcome="happy")


def test_drift_latency_takes_each_period_s_answered_waits_from_the_stored_followups(
    sample_warehouse: Path,
) -> None:
    """Only the answered waits of the two periods leave DuckDB; the medians and the test are
    those of the whole stored table filtered in pandas, exactly."""
    con = connect(sample_warehouse, read_only=True)
    spec = load_spec(ROOT / "data" / "sample" / "journey.toml")
    periods = [
        (datetime(2026, 8, 1, tzinfo=UTC), datetime(2026, 9, 16, tzinfo=UTC)),
        (datetime(2026, 9, 16, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)),
    ]
    found = _latency_shift(con, spec, periods[0], periods[1])

    stored = con.execute("SELECT * FROM followups").df()
    answered = stored[stored.status == "answered"]
    rows = []
    for rule in sorted(set(answered.rule)):
        waits = [
            answered[
                (answered.rule == rule) & (answered.triggered_at >= pd.Timestamp(start))
                & (answered.triggered_at < pd.Timestamp(end))
            ].latency_s
            for start, end in periods
        ]  # fmt: skip
        if min(len(w) for w in waits) >= 2:
            p = mannwhitneyu(waits[0], waits[1], alternative="two-sided").pvalue
            rows.append(
                (rule, len(waits[0]), waits[0].median() / 3600, len(waits[1]),
                 waits[1].median() / 3600, float(p))
            )  # fmt: skip
    assert len(rows) >= 2
    assert [tuple(r) for r in found.itertuples(index=False)] == rows
