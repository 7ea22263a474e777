"""Follow-up latency definitions pinned on hand-computed cases, the sample and a real log."""

from __future__ import annotations

import json
from datetime import date, time, timedelta
from pathlib import Path

import pandas as pd
import pytest

from journeymine.analyses import followups as fu
from journeymine.analyses.business_hours import business_seconds
from journeymine.load import load_landing
from journeymine.load_log import load_event_log
from journeymine.mining.eventlog import read_event_log
from journeymine.spec import Calendar, FollowupRule, JourneySpec, load_spec
from journeymine.warehouse import connect

ROOT = Path(__file__).resolve().parents[2]
BERLIN = Calendar("Europe/Berlin", (0, 1, 2, 3, 4), time(9), time(17), (date(2026, 10, 5),))
RULE = FollowupRule("demo", ("web.demo_requested",), ("crm.call_completed",), timedelta(hours=4))
SPEC = JourneySpec(name="t", followups=(RULE,), calendar=BERLIN)


def at(text: str) -> pd.Series:
    return pd.Series([pd.Timestamp(text)])


def test_business_hours_skip_nights_weekends_and_holidays() -> None:
    # Friday 2026-10-02 16:00 Berlin -> Tuesday 10:00: Fri 1h + Mon holiday 0 + Tue 1h = 2h.
    secs = business_seconds(BERLIN, at("2026-10-02 16:00+02:00"), at("2026-10-06 10:00+02:00"))
    assert secs.tolist() == [2 * 3600]


def test_business_hours_across_the_dst_change() -> None:
    # Clocks go back on Sunday 2026-10-25: Friday 16:00 CEST -> Monday 10:00 CET is 2 open hours.
    secs = business_seconds(BERLIN, at("2026-10-23 16:00+02:00"), at("2026-10-26 10:00+01:00"))
    assert secs.tolist() == [2 * 3600]


def test_first_response_after_the_trigger_and_status(touchpoints) -> None:  # type: ignore[no-untyped-def]
    con = touchpoints(
        [
            (1, "crm.call_completed", "company", "2026-10-06 08:00+00"),  # before: not a response
            (1, "web.demo_requested", "customer", "2026-10-06 09:00+00", "rep-a"),
            (1, "crm.call_completed", "company", "2026-10-06 10:30+00"),
            (1, "crm.call_completed", "company", "2026-10-06 11:00+00"),  # not the first
            (2, "web.demo_requested", "customer", "2026-10-06 09:00+00"),  # never answered
            (3, "web.demo_requested", "customer", "2026-10-09 14:00+00"),  # SLA not over at cut-off
            (4, "web.page_view:/", "customer", "2026-10-09 15:00+00"),  # the cut-off
        ]
    )
    rows = fu.compute_followups(con, SPEC).set_index("person_id")
    assert rows.loc[1, "latency_s"] == 5400 and rows.loc[1, "status"] == "answered"
    assert rows.loc[1, "business_latency_s"] == 5400 and not rows.loc[1, "sla_breached"]
    assert rows.loc[1, "owner"] == "rep-a"
    assert (rows.loc[2, "status"], rows.loc[2, "sla_breached"]) == ("unanswered", True)
    # Friday 16:00 -> 17:00 Berlin is 1 business hour < 4h SLA: still open.
    assert (rows.loc[3, "status"], rows.loc[3, "sla_breached"]) == ("open", False)
    summary = fu.summarise_followups(fu.compute_followups(con, SPEC)).iloc[0]
    assert (summary.triggers, summary.answered, summary.open) == (3, 1, 1)
    assert summary.never_answered_rate == 0.5 and summary.breach_rate == 0.5


@pytest.fixture(scope="module")
def sample_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("s") / "w.duckdb"
    load_landing(db, ROOT / "data" / "sample" / "landing")
    return db


def test_sample_reps_and_cost_of_waiting_come_back(sample_warehouse: Path) -> None:
    truths = json.loads((ROOT / "data" / "sample" / "truths.json").read_text())
    spec = load_spec(ROOT / "data" / "sample" / "journey.toml")
    con = connect(sample_warehouse, read_only=True)
    rows = fu.compute_followups(con, spec)
    by_owner = fu.summarise_followups(rows[rows.rule == "demo_request"], by="owner").set_index(
        "owner"
    )
    for owner, rep in truths["reps"].items():
        assert by_owner.loc[owner, "median_latency_h"] == pytest.approx(
            rep["median_latency_h"], abs=0.01
        )
    cost = fu.cost_of_waiting(con, rows, "demo_request", ("crm.meeting:demo",), timedelta(days=14))
    planted = truths["demo_held_by_latency_bucket"]
    for r in cost.itertuples():
        assert r.conversion_rate == pytest.approx(planted[r.bucket]["rate"], abs=0.06), r.bucket
        assert r.ci_low <= planted[r.bucket]["rate"] <= r.ci_high
    assert cost.conversion_rate.iloc[0] > cost.conversion_rate.iloc[-1] + 0.3


def test_helpdesk_latency_matches_an_independent_pandas_computation(tmp_path: Path) -> None:
    log = read_event_log(ROOT / "tests" / "data" / "eventlogs" / "helpdesk.xes.gz")
    db = tmp_path / "h.duckdb"
    load_event_log(db, log, "helpdesk.xes.gz")
    rule = FollowupRule(
        "take_in_charge",
        ("Assign seriousness",),
        ("Take in charge ticket",),
        timedelta(days=1),
        business_hours=False,
    )
    spec = JourneySpec(name="h", followups=(rule,), company_activities=("Take in charge ticket",))
    ours = fu.compute_followups(connect(db, read_only=True), spec)
    # Independent: per case, each trigger's first later response, in plain pandas.
    frame = log.to_pandas().sort_values(["case_id", "ts", "seq"])
    expected = []
    for _, case in frame.groupby("case_id"):
        for trig in case[case.activity == "Assign seriousness"].itertuples():
            later = case[(case.activity == "Take in charge ticket") & (case.ts > trig.ts)]
            expected.append((later.ts.iloc[0] - trig.ts).total_seconds() if len(later) else None)
    answered = [x for x in expected if x is not None]
    assert len(ours) == len(expected)
    assert (ours.status == "answered").sum() == len(answered)
    assert sorted(ours.latency_s.dropna().tolist()) == sorted(answered)
