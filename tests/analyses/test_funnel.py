"""Stage funnel definitions pinned on hand-computed tiny logs."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from journeymine.analyses import funnel
from journeymine.analyses.stats import kaplan_meier, wilson
from journeymine.errors import SpecError
from journeymine.mining.eventlog import log_from_touchpoints
from journeymine.spec import JourneySpec, Stage, load_spec

SPEC = JourneySpec(
    name="t",
    window=timedelta(days=2),
    stages=(
        Stage("visit", ("web.page_view:*",)),
        Stage("signup", ("web.signed_up",)),
        Stage("paid", ("billing.invoice_paid",)),
    ),
)


def test_enter_convert_drop_open(touchpoints) -> None:  # type: ignore[no-untyped-def]
    con = touchpoints(
        [
            (1, "web.page_view:/", "customer", "2026-01-01 00:00+00"),
            (1, "web.signed_up", "customer", "2026-01-03 00:00+00"),  # exactly at the window edge
            (2, "web.page_view:/", "customer", "2026-01-01 00:00+00"),
            (2, "web.signed_up", "customer", "2026-01-03 00:00:01+00"),  # one second too late
            (3, "web.page_view:/pricing", "customer", "2026-01-09 12:00+00"),  # window not over
            (4, "web.signed_up", "customer", "2026-01-02 00:00+00"),  # signup without a visit
            (5, "web.page_view:/", "customer", "2026-01-10 00:00+00"),  # the cut-off
        ]
    )
    entries = funnel.compute_entries(con, SPEC, log_from_touchpoints(con))
    status = {(r.case_key, r.stage): r.status for r in entries.itertuples()}
    assert status == {
        (1, "visit"): "converted",
        (2, "visit"): "dropped",
        (3, "visit"): "open",
        (5, "visit"): "open",
        (1, "signup"): "dropped",
    }
    rows = funnel.summarise(entries).set_index("stage")
    assert rows.loc["visit", ["entered", "converted", "dropped", "open"]].tolist() == [4, 1, 1, 2]
    assert rows.loc["visit", "conversion_rate"] == 0.5
    assert rows.loc["visit", "time_to_convert_p50_s"] == 2 * 86400


def test_any_order_counts_every_stage_reached(touchpoints) -> None:  # type: ignore[no-untyped-def]
    con = touchpoints(
        [
            (4, "web.signed_up", "customer", "2026-01-02 00:00+00"),
            (4, "billing.invoice_paid", "customer", "2026-01-02 05:00+00"),
            (9, "web.page_view:/", "customer", "2026-02-01 00:00+00"),
        ]
    )
    entries = funnel.compute_entries(con, SPEC, log_from_touchpoints(con), mode="any")
    signup = entries[entries.stage == "signup"].iloc[0]
    assert (signup.case_key, signup.status) == (4, "converted")


def test_optional_stage_can_be_skipped(touchpoints) -> None:  # type: ignore[no-untyped-def]
    spec = JourneySpec(
        name="t",
        window=timedelta(days=2),
        stages=(
            Stage("visit", ("web.page_view:*",)),
            Stage("demo", ("crm.meeting:*",), optional=True),
            Stage("paid", ("billing.invoice_paid",)),
        ),
    )
    con = touchpoints(
        [
            (1, "web.page_view:/", "customer", "2026-01-01 00:00+00"),
            (1, "billing.invoice_paid", "customer", "2026-01-01 06:00+00"),
            (2, "web.page_view:/", "customer", "2026-01-01 00:00+00"),
            (2, "crm.meeting:demo", "company", "2026-01-01 03:00+00"),
            (2, "billing.invoice_paid", "customer", "2026-01-02 00:00+00"),
            (3, "web.page_view:/", "customer", "2026-01-20 00:00+00"),
        ]
    )
    rows = funnel.summarise(funnel.compute_entries(con, spec, log_from_touchpoints(con)))
    by = rows.set_index("stage")
    assert by.loc["visit", "converted"] == 2 and by.loc["demo", "entered"] == 1
    assert by.loc["paid", "entered"] == 2


def test_segment_breakdown_first_and_last_touch(touchpoints) -> None:  # type: ignore[no-untyped-def]
    con = touchpoints([(1, "web.page_view:/", "customer", "2026-01-01 00:00+00")])
    con.execute('UPDATE touchpoints SET attributes = \'{"size": "small"}\'')
    con.execute(
        "INSERT INTO touchpoints SELECT 2, 1, 'web.x', 'customer', "
        "TIMESTAMPTZ '2026-01-02 00:00+00', 2, NULL, NULL, 'web', '{\"size\": \"big\"}', NULL, NULL, 't'"
    )
    assert funnel.segment_values(con, ("size",), "first")["size"].tolist() == ["small"]
    assert funnel.segment_values(con, ("size",), "last")["size"].tolist() == ["big"]


def test_wilson_interval_against_a_hand_computed_value() -> None:
    # 8 of 10: centre (0.8 + 1.92/10)/(1 + 3.84/10) = 0.7167; half-width 0.2267 (z = 1.96).
    low, high = wilson(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    assert all(math.isnan(x) for x in wilson(0, 0))


def test_kaplan_meier_treats_open_people_as_censored() -> None:
    curve = kaplan_meier([1, 2, 2, 3, 4], [True, True, False, False, True])
    # at t=1: 1 of 5 -> 0.8; t=2: 1 of 4 -> 0.6; t=4: 1 of 1 -> 0.0
    assert curve.time_s.tolist() == [1.0, 2.0, 4.0]
    assert curve.survival.round(4).tolist() == [0.8, 0.6, 0.0]


def test_spec_errors_name_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "j.toml"
    bad.write_text('[[stages]]\nname = "a"\nactivities = ["x"]\nwindow = "3 dayz"\n')
    with pytest.raises(SpecError, match=r"j.toml: stages\[0\].window: bad duration '3 dayz'"):
        load_spec(bad)
    bad.write_text(
        '[[stages]]\nname = "a"\nactivities = ["x"]\n[[stages]]\nname = "b"\nactivities = ["x"]\n'
    )
    with pytest.raises(SpecError, match="overlap"):
        load_spec(bad)
    bad.write_text('case = "planet"\n')
    with pytest.raises(SpecError, match="case = 'planet'"):
        load_spec(bad)
    bad.write_text('[calendar]\ntimezone = "Mars/Olympus"\n')
    with pytest.raises(SpecError, match="unknown time zone"):
        load_spec(bad)
    bad.write_text('colour = "blue"\n')
    with pytest.raises(SpecError, match="unknown key"):
        load_spec(bad)


def test_the_sample_spec_loads() -> None:
    spec = load_spec(Path(__file__).resolve().parents[2] / "data" / "sample" / "journey.toml")
    assert [s.name for s in spec.stages][:3] == ["visit", "signup", "demo_requested"]
    assert spec.followups[0].sla == timedelta(hours=4)


@pytest.mark.slow  # the pandas walk over every helpdesk case takes ~20 s
def test_helpdesk_funnel_matches_an_independent_pandas_computation(tmp_path: Path) -> None:
    from journeymine.ingest.import_log import load_event_log
    from journeymine.mining.eventlog import read_event_log
    from journeymine.warehouse import connect

    root = Path(__file__).resolve().parents[2]
    log = read_event_log(root / "tests" / "data" / "eventlogs" / "helpdesk.xes.gz")
    db = tmp_path / "h.duckdb"
    load_event_log(db, log, "helpdesk.xes.gz")
    spec = JourneySpec(
        name="h",
        window=timedelta(days=10),
        stages=(
            Stage("assigned", ("Assign seriousness",)),
            Stage("taken", ("Take in charge ticket",)),
            Stage("resolved", ("Resolve ticket",)),
        ),
    )
    con = connect(db, read_only=True)
    ours = funnel.summarise(funnel.compute_entries(con, spec, log_from_touchpoints(con)))
    ours = ours.set_index("stage")
    # Independent pandas: walk each case's events in file order, as the definition reads.
    frame = log.to_pandas().sort_values(["case_id", "ts", "seq"])
    cutoff, window = frame.ts.max(), pd.Timedelta(days=10)
    names = ["Assign seriousness", "Take in charge ticket", "Resolve ticket"]
    expected = {s: {"entered": 0, "converted": 0, "dropped": 0, "open": 0} for s in names[:2]}
    for _, case in frame.groupby("case_id"):
        entered = case.ts[case.activity == names[0]].min()
        for k in range(2):
            if pd.isna(entered):
                break
            expected[names[k]]["entered"] += 1
            nxt = case.ts[
                (case.activity == names[k + 1])
                & (case.ts >= entered)
                & (case.ts <= entered + window)
            ].min()
            status = (
                "converted"
                if not pd.isna(nxt)
                else ("open" if entered + window > cutoff else "dropped")
            )
            expected[names[k]][status] += 1
            entered = nxt
    for stage, name in (("assigned", names[0]), ("taken", names[1])):
        got = ours.loc[stage, ["entered", "converted", "dropped", "open"]].to_dict()
        assert got == expected[name], stage


def test_conversion_by_weekly_cohort(touchpoints) -> None:  # type: ignore[no-untyped-def]
    con = touchpoints([
        (1, "web.page_view:/", "customer", "2026-01-05 10:00+00"),  # Monday, week 1
        (1, "web.signed_up", "customer", "2026-01-06 10:00+00"),
        (2, "web.page_view:/", "customer", "2026-01-07 10:00+00"),  # week 1, drops
        (3, "web.page_view:/", "customer", "2026-01-12 10:00+00"),  # week 2
        (3, "web.signed_up", "customer", "2026-01-12 11:00+00"),
        (4, "web.page_view:/", "customer", "2026-01-30 10:00+00"),  # the cut-off
    ])  # fmt: skip
    entries = funnel.compute_entries(con, SPEC, log_from_touchpoints(con))
    cohorts = funnel.conversion_by_cohort(entries, "visit", "W")
    assert cohorts[["entered", "converted", "dropped"]].values.tolist()[:2] == [
        [2, 1, 1],
        [1, 1, 0],
    ]
    assert cohorts.conversion_rate.tolist()[:2] == [0.5, 1.0]


def test_strict_order_and_exclusion_steps(touchpoints) -> None:  # type: ignore[no-untyped-def]
    con = touchpoints([
        (1, "web.page_view:/", "customer", "2026-01-01 00:00+00"),
        (1, "billing.invoice_paid", "customer", "2026-01-01 01:00+00"),  # paid before signup
        (1, "web.signed_up", "customer", "2026-01-01 02:00+00"),
        (2, "web.page_view:/", "customer", "2026-01-01 00:00+00"),
        (2, "crm.call_completed", "company", "2026-01-01 00:30+00"),  # talked to sales
        (2, "web.signed_up", "customer", "2026-01-01 01:00+00"),
        (3, "web.page_view:/", "customer", "2026-01-01 00:00+00"),
        (3, "web.signed_up", "customer", "2026-01-01 01:00+00"),
        (9, "web.page_view:/", "customer", "2026-02-01 00:00+00"),
    ])  # fmt: skip
    log = log_from_touchpoints(con)
    ordered = funnel.compute_entries(con, SPEC, log).set_index(["case_key", "stage"]).status
    strict = (
        funnel.compute_entries(con, SPEC, log, mode="strict")
        .set_index(["case_key", "stage"])
        .status
    )
    assert ordered[(1, "visit")] == "converted" and strict[(1, "visit")] == "dropped"
    assert strict[(2, "visit")] == "converted" and strict[(3, "visit")] == "converted"
    excluded = funnel.compute_entries(con, SPEC, log, exclude=("crm.*",))
    by = excluded.set_index(["case_key", "stage"]).status
    assert by[(2, "visit")] == "excluded" and (2, "signup") not in by.index
    row = funnel.summarise(excluded).set_index("stage").loc["visit"]
    assert (row.entered, row.converted, row.excluded) == (4, 2, 1)


def test_ties_break_by_seq_and_events_after_the_cutoff_are_ignored(touchpoints) -> None:  # type: ignore[no-untyped-def]
    con = touchpoints([
        (1, "web.signed_up", "customer", "2026-01-01 00:00+00"),  # same instant, loaded first
        (1, "web.page_view:/", "customer", "2026-01-01 00:00+00"),
        (2, "web.page_view:/", "customer", "2026-01-01 00:00+00"),
        (2, "web.signed_up", "customer", "2026-01-01 00:00+00"),  # same instant, loaded after
        (3, "web.page_view:/", "customer", "2026-01-01 00:00+00"),
        (3, "web.signed_up", "customer", "2026-01-01 12:00+00"),  # after the cut-off below
        (9, "web.page_view:/", "customer", "2026-01-10 00:00+00"),
    ])  # fmt: skip
    log = log_from_touchpoints(con)
    status = funnel.compute_entries(con, SPEC, log).set_index(["case_key", "stage"]).status
    assert status[(1, "visit")] == "dropped"  # the signup came before the visit in seq order
    assert status[(2, "visit")] == "converted"
    assert status[(3, "visit")] == "converted"
    cut = pd.Timestamp("2026-01-01 06:00+00")
    early = funnel.compute_entries(con, SPEC, log, cutoff=cut).set_index(["case_key", "stage"])
    assert early.status[(3, "visit")] == "open" and (9, "visit") not in early.index


def test_write_stage_funnel_stores_the_contract_columns_per_segment(touchpoints) -> None:  # type: ignore[no-untyped-def]
    con = touchpoints([
        (1, "web.page_view:/", "customer", "2026-01-01 00:00+00"),
        (1, "web.signed_up", "customer", "2026-01-01 01:00+00"),
        (2, "web.page_view:/", "customer", "2026-01-01 00:00+00"),
        (2, "web.signed_up", "customer", "2026-01-01 03:00+00"),
        (3, "web.page_view:/", "customer", "2026-01-01 00:00+00"),
        (9, "web.page_view:/", "customer", "2026-02-01 00:00+00"),
    ])  # fmt: skip
    con.execute(
        "UPDATE touchpoints SET attributes = CASE WHEN person_id IN (1, 3) "
        "THEN '{\"size\": \"small\"}' ELSE '{}' END"
    )
    spec = JourneySpec(name="t", window=timedelta(days=2), stages=SPEC.stages, segments=("size",))
    out = funnel.write_stage_funnel(con, spec, log_from_touchpoints(con))
    stored = con.execute("SELECT * FROM stage_funnel").df()
    contract = ["segment", "stage", "entered", "converted", "dropped", "open", "conversion_rate",
                "conversion_ci_low", "conversion_ci_high"]  # fmt: skip
    assert set(contract) <= set(stored.columns) and len(stored) == len(out)
    visit = stored[stored.stage == "visit"].set_index("segment")
    assert visit.loc["all", ["entered", "converted", "dropped", "open"]].tolist() == [4, 2, 1, 1]
    assert visit.loc["size=small", ["entered", "converted", "dropped"]].tolist() == [2, 1, 1]
    assert visit.loc["size=(unknown)", ["entered", "converted", "open"]].tolist() == [2, 1, 1]
    # p50 of 1h and 3h is 2h; p90 interpolates linearly (quantile_cont): 1h + 0.9 * 2h.
    assert visit.loc["all", "time_to_convert_p50_s"] == 7200
    assert visit.loc["all", "time_to_convert_p90_s"] == pytest.approx(3600 + 0.9 * 7200)
    low, high = wilson(2, 3)
    assert visit.loc["all", "conversion_ci_low"] == pytest.approx(low)
    assert visit.loc["all", "conversion_ci_high"] == pytest.approx(high)
    assert con.execute("SELECT count(*) FROM stage_entries").fetchone() == (6,)


def test_kaplan_meier_curve_censors_open_and_dropped_people(touchpoints) -> None:  # type: ignore[no-untyped-def]
    con = touchpoints([
        (1, "web.page_view:/", "customer", "2026-01-01 00:00+00"),
        (1, "web.signed_up", "customer", "2026-01-01 12:00+00"),  # converts after 12h
        (2, "web.page_view:/", "customer", "2026-01-01 00:00+00"),  # dropped: censored at 2d
        (3, "web.page_view:/", "customer", "2026-01-09 18:00+00"),  # open: followed 6h
        (4, "web.page_view:/", "customer", "2026-01-10 00:00+00"),  # the cut-off: followed 0h
    ])  # fmt: skip
    entries = funnel.compute_entries(con, SPEC, log_from_touchpoints(con))
    curve = funnel.time_to_convert_curve(entries, "visit")
    # At 12h the at-risk set is persons 1 and 2 (3 and 4 were censored earlier): 1 - 1/2.
    assert curve[["time_s", "at_risk", "events"]].values.tolist() == [[43200.0, 2, 1]]
    assert curve.converted.tolist() == [0.5]


def test_a_segment_counts_only_from_the_step_where_it_was_known(touchpoints) -> None:  # type: ignore[no-untyped-def]
    # Company size is told at signup. Out of the visit step it was not known yet: every visitor
    # is (unknown), so no size can "convert 100% out of visit". From signup on it is known.
    con = touchpoints([
        (1, "web.page_view:/", "customer", "2026-01-01 00:00+00"),
        (1, "web.signed_up", "customer", "2026-01-01 01:00+00"),
        (2, "web.page_view:/", "customer", "2026-01-01 00:00+00"),
        (2, "web.signed_up", "customer", "2026-01-01 02:00+00"),
        (3, "web.page_view:/", "customer", "2026-01-01 00:00+00"),
        (4, "web.page_view:/", "customer", "2026-01-01 00:00+00"),
        (4, "web.signed_up", "customer", "2026-01-01 03:00+00"),
        (9, "web.page_view:/", "customer", "2026-02-01 00:00+00"),
    ])  # fmt: skip
    sizes = {1: "11-50", 2: "2", 4: "101-500"}  # numeric-looking: sorted 2, 11-50, 101-500
    for person, size in sizes.items():
        con.execute(
            "UPDATE touchpoints SET attributes = json_object('size', ?) "
            "WHERE person_id = ? AND activity = 'web.signed_up'",
            [size, person],
        )
    stages = (*SPEC.stages, Stage("onboarded", ("web.onboarded",)))
    spec = JourneySpec(name="t", window=timedelta(days=2), stages=stages, segments=("size",))
    funnel.write_stage_funnel(con, spec, log_from_touchpoints(con))
    stored = con.execute("SELECT * FROM stage_funnel").df()
    visit = stored[stored.stage == "visit"]
    assert visit.segment.tolist() == ["all", "size=(unknown)"]
    assert visit.set_index("segment").loc["size=(unknown)", "entered"] == 5
    signup = stored[stored.stage == "signup"].segment.tolist()
    assert signup == ["all", "size=2", "size=11-50", "size=101-500"]
    # the drill-down table holds the same value per person and step
    per_step = con.execute(
        "SELECT case_key, pos, value FROM stage_segments ORDER BY case_key, pos"
    ).fetchall()
    assert (1, 0, "(unknown)") in per_step and (1, 1, "11-50") in per_step
    last = funnel.write_stage_funnel(con, spec, log_from_touchpoints(con), touch="last")
    assert last[last.stage == "visit"].segment.tolist() == ["all", "size=(unknown)"]
