"""Follow-up latency definitions pinned on hand-computed cases, the sample and a real log."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pandas as pd
import pytest

from journeymine.analyses import followups as fu
from journeymine.analyses.business_hours import business_seconds
from journeymine.analyses.stats import wilson
from journeymine.ingest.import_log import load_event_log
from journeymine.mining.eventlog import read_event_log
from journeymine.spec import Calendar, FollowupRule, JourneySpec, Stage, load_spec
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
    for r in cost[cost.bucket.isin(list(planted))].itertuples():
        assert r.conversion_rate == pytest.approx(planted[r.bucket]["rate"], abs=0.06), r.bucket
        assert r.ci_low <= planted[r.bucket]["rate"] <= r.ci_high
    slowest = cost[cost.bucket == ">48h"].conversion_rate.iloc[0]
    assert cost.conversion_rate.iloc[0] > slowest + 0.3


@pytest.mark.slow  # the pandas walk over every helpdesk case takes ~20 s
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


def test_holiday_and_dst_inside_business_latency_end_to_end(touchpoints) -> None:  # type: ignore[no-untyped-def]
    con = touchpoints(
        [
            # Friday 2026-10-02 15:00 UTC = 17:00 Berlin closing; Monday 10-05 is a holiday;
            # answered Tuesday 09:30 Berlin (07:30 UTC): 0.5 business hours.
            (1, "web.demo_requested", "customer", "2026-10-02 15:00+00"),
            (1, "crm.call_completed", "company", "2026-10-06 07:30+00"),
            # Friday 2026-10-23 16:00 CEST (14:00 UTC) -> Monday 10-26 10:00 CET (09:00 UTC):
            # 1h Friday + 1h Monday = 2 business hours; 67 wall-clock hours (25h Sunday).
            (2, "web.demo_requested", "customer", "2026-10-23 14:00+00"),
            (2, "crm.call_completed", "company", "2026-10-26 09:00+00"),
            # A response at the very same instant is not strictly after the trigger.
            (3, "web.demo_requested", "customer", "2026-10-27 09:00+00"),
            (3, "crm.call_completed", "company", "2026-10-27 09:00+00"),
            (4, "web.page_view:/", "customer", "2026-10-30 16:00+00"),  # the cut-off
        ]
    )
    rows = fu.compute_followups(con, SPEC).set_index("person_id")
    assert rows.loc[1, "business_latency_s"] == 1800 and not rows.loc[1, "sla_breached"]
    assert rows.loc[2, "latency_s"] == 67 * 3600 and rows.loc[2, "business_latency_s"] == 7200
    assert (rows.loc[3, "status"], rows.loc[3, "sla_breached"]) == ("unanswered", True)


def test_cutoff_hides_later_responses_and_sla_deadline_is_inclusive(touchpoints) -> None:  # type: ignore[no-untyped-def]
    rule = FollowupRule("r", ("web.x",), ("crm.*",), timedelta(hours=4), business_hours=False)
    spec = JourneySpec(name="t", followups=(rule,))
    con = touchpoints(
        [
            (1, "web.x", "customer", "2026-01-01 00:00+00"),
            (1, "crm.call_completed", "company", "2026-01-01 05:00+00"),
            (2, "web.x", "customer", "2026-01-01 00:30+00"),
            (3, "web.x", "customer", "2026-01-01 06:00+00"),  # after the cut-off: not a trigger
        ]
    )
    rows = fu.compute_followups(con, spec, cutoff=pd.Timestamp("2026-01-01 04:00+00"))
    by = rows.set_index("person_id")
    assert set(by.index) == {1, 2}
    # Person 1's deadline 04:00 is the cut-off itself: passed, so unanswered (the 05:00 call is
    # not seen yet); person 2's deadline 04:30 is still ahead: open.
    assert by.status.to_dict() == {1: "unanswered", 2: "open"}
    later = fu.compute_followups(con, spec).set_index("person_id")
    assert (later.loc[1, "status"], later.loc[1, "latency_s"], later.loc[1, "sla_breached"]) == (
        "answered",
        5 * 3600,
        True,
    )


def test_default_rule_is_next_company_touch(touchpoints) -> None:  # type: ignore[no-untyped-def]
    con = touchpoints(
        [
            (1, "web.page_view:/", "customer", "2026-01-01 00:00+00"),
            (1, "web.signed_up", "customer", "2026-01-01 01:00+00"),
            (1, "email.delivered", "company", "2026-01-01 02:00+00"),
            (1, "email.open", "customer", "2026-01-01 03:00+00"),
        ]
    )
    rows = fu.compute_followups(con, JourneySpec(name="t"))
    assert set(rows.rule) == {"next_company_touch"}
    assert rows.latency_s.tolist()[:2] == [7200.0, 3600.0] and len(rows) == 3
    assert rows.status.tolist()[2] == "open"


def test_summaries_by_owner_and_channel(touchpoints) -> None:  # type: ignore[no-untyped-def]
    con = touchpoints(
        [
            (1, "web.demo_requested", "customer", "2026-10-06 08:00+00", "ana"),
            (1, "crm.call_completed", "company", "2026-10-06 09:00+00"),
            (2, "web.demo_requested", "customer", "2026-10-06 08:00+00", "ana"),
            (2, "crm.call_completed", "company", "2026-10-06 11:00+00"),
            (3, "web.demo_requested", "customer", "2026-10-06 08:00+00", "dev"),
            (4, "web.page_view:/", "customer", "2026-10-09 08:00+00"),
        ]
    )
    rows = fu.compute_followups(con, SPEC)
    owner = fu.summarise_followups(rows, by="owner").set_index("owner")
    assert owner.loc["ana", "median_latency_h"] == 2.0
    assert owner.loc["ana", "p90_latency_h"] == pytest.approx(1 + 0.9 * 2)
    assert owner.loc["dev", "never_answered_rate"] == 1.0
    channel = fu.summarise_followups(rows, by="channel")
    assert channel.triggers.sum() == 3


def test_cost_of_waiting_by_latency_bucket_hand_computed(touchpoints) -> None:  # type: ignore[no-untyped-def]
    rule = FollowupRule(
        "demo", ("web.demo_requested",), ("crm.call_completed",), timedelta(hours=4), False, "held"
    )
    spec = JourneySpec(
        name="t",
        window=timedelta(days=3),
        stages=(Stage("requested", ("web.demo_requested",)), Stage("held", ("crm.meeting:demo",))),
        followups=(rule,),
    )
    rows = []
    for person, (wait_h, held) in enumerate([(0.5, True), (0.5, False), (2, True), (30, False)]):
        rows.append((person, "web.demo_requested", "customer", "2026-01-01 00:00+00"))
        rows.append((person, "crm.call_completed", "company", f"2026-01-01 00:00+00 +{wait_h}h"))
        if held:
            rows.append((person, "crm.meeting:demo", "company", "2026-01-03 00:00+00"))
    rows = [
        (p, a, who, str(pd.Timestamp(t.split(" +")[0]) + pd.Timedelta(t.split(" +")[1]))
         if " +" in t else t)
        for p, a, who, t in rows
    ]  # fmt: skip
    rows.append((5, "web.demo_requested", "customer", "2026-01-01 00:00+00"))  # never called
    rows.append((8, "web.demo_requested", "customer", "2026-01-09 23:00+00"))  # window still open
    rows.append((9, "web.page_view:/", "customer", "2026-01-10 00:00+00"))
    con = touchpoints(rows)
    found = fu.compute_followups(con, spec)
    cost = fu.rule_cost_of_waiting(con, spec, found, "demo").set_index("bucket")
    assert cost.loc["<1h", ["people", "converted"]].tolist() == [2, 1]
    assert cost.loc["1-4h", ["people", "converted"]].tolist() == [1, 1]
    assert cost.loc["24-48h", ["people", "converted"]].tolist() == [1, 0]
    assert cost.loc[">48h", "people"] == 0  # person 8 is still open: left out
    assert cost.loc["no reply", ["people", "converted"]].tolist() == [1, 0]  # its own bucket
    assert (cost.loc["<1h", "ci_low"], cost.loc["<1h", "ci_high"]) == pytest.approx(wilson(1, 2))


def test_the_owner_at_trigger_time_keeps_the_unanswered_triggers(touchpoints) -> None:  # type: ignore[no-untyped-def]
    # Web-form demo requests carry no owner. The CRM assigns each lead to a rep: Ana calls back
    # (2 within the SLA, 2 late), Dev never calls. Person 9 gets a lead only after asking.
    rows = []
    for person in range(1, 9):
        t0 = datetime(2026, 3, 2, 9, tzinfo=UTC) + timedelta(days=person)  # weekday mornings
        rep = "005ANA" if person <= 4 else "005DEV"
        rows.append(
            (person, "crm.lead_created", "company", (t0 - timedelta(days=1)).isoformat(), rep)
        )
        rows.append((person, "web.demo_requested", "customer", t0.isoformat()))
        if rep == "005ANA":
            wait = timedelta(hours=1 if person <= 2 else 30)
            rows.append((person, "crm.call_completed", "company", (t0 + wait).isoformat(), rep))
    t9 = datetime(2026, 3, 3, 10, tzinfo=UTC)
    rows.append((9, "web.demo_requested", "customer", t9.isoformat()))
    rows.append((9, "crm.lead_created", "company", (t9 + timedelta(hours=1)).isoformat(), "005DEV"))
    rows.append((99, "web.page_view:/", "customer", "2026-04-30 00:00+00"))  # the cut-off
    con = touchpoints(rows)
    rule = FollowupRule(
        "demo", ("web.demo_requested",), ("crm.call_completed",), timedelta(hours=4), False
    )
    spec = JourneySpec(name="t", followups=(rule,))
    rows_out = fu.compute_followups(con, spec).set_index("person_id")
    assert rows_out.loc[5, "status"] == "unanswered" and rows_out.loc[5, "owner"] == "005DEV"
    assert rows_out.loc[5, "owner_source"] == "crm_at_trigger" and pd.isna(
        rows_out.loc[5, "responder"]
    )
    assert rows_out.loc[1, "responder"] == "005ANA" and rows_out.loc[1, "owner"] == "005ANA"
    assert rows_out.loc[9, ["owner", "owner_source"]].tolist() == ["005DEV", "crm_after_trigger"]
    per_owner = fu.summarise_followups(fu.compute_followups(con, spec), by="owner").set_index(
        "owner"
    )
    assert per_owner.loc["005DEV", ["triggers", "answered", "unanswered", "breached"]].tolist() == [
        5,
        0,
        5,
        5,
    ]
    assert per_owner.loc["005ANA", ["triggers", "answered", "breached"]].tolist() == [4, 4, 2]
    worst = per_owner.sort_values("breach_rate", ascending=False).index[0]
    assert worst == "005DEV"  # the rep who never calls back ranks worst, not best
