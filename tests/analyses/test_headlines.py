"""One definition of every headline figure, shared by the run summary and the dashboard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from journeymine.analyses import headlines
from journeymine.analyses.followups import write_followups
from journeymine.analyses.funnel import write_stage_funnel
from journeymine.dashboard import figures
from journeymine.ingest.load import LoadReport
from journeymine.mining.eventlog import log_from_touchpoints
from journeymine.spec import Calendar, FollowupRule, JourneySpec, Stage
from journeymine.summary import markdown_summary, run_figures

RULE = FollowupRule(
    "demo", ("web.demo_requested",), ("crm.call_completed",), timedelta(hours=4), True
)
SPEC = JourneySpec(
    name="t",
    window=timedelta(days=2),
    stages=(Stage("visit", ("web.page_view:*",)), Stage("demo", ("web.demo_requested",))),
    followups=(RULE,),
    calendar=Calendar("UTC"),
)


def _night(con, extra: int) -> None:  # type: ignore[no-untyped-def]
    write_stage_funnel(con, SPEC, log_from_touchpoints(con))
    write_followups(con, SPEC)
    headlines.write_headlines(con, SPEC, run_id=f"run{extra}")


def test_headlines_use_the_rules_unit_and_compare_with_the_previous_run(touchpoints) -> None:  # type: ignore[no-untyped-def]
    # Friday 16:00 request, call Monday 10:00: 66 wall-clock hours but 2 business hours (9-17).
    friday = datetime(2026, 3, 6, 16, tzinfo=UTC)
    rows = [
        (1, "web.page_view:/", "customer", friday.isoformat()),
        (1, "web.demo_requested", "customer", friday.isoformat()),
        (1, "crm.call_completed", "company", (friday + timedelta(hours=66)).isoformat()),
        (2, "web.page_view:/", "customer", friday.isoformat()),
        (9, "web.page_view:/", "customer", "2026-03-20 00:00+00"),
    ]
    con = touchpoints(rows)
    _night(con, 1)
    first = headlines.read_headlines(con).set_index("key")
    assert first.loc["median_wait:demo", ["value", "unit"]].tolist() == [2.0, "business hours"]
    assert first.loc["journeys_started", "value"] == 3
    assert first.loc["reached_last_stage", "value"] == pytest.approx(1 / 3)
    assert first.loc["cutoff", "value"] == datetime(2026, 3, 20, tzinfo=UTC).timestamp()
    assert headlines.previous_figures(con) == {}  # the first run has nothing to compare with
    # A second night with a new visitor: the change is against the first night, not itself.
    con.execute(
        "INSERT INTO touchpoints VALUES (99, 5, 'web.page_view:/', 'customer', "
        "TIMESTAMPTZ '2026-03-21 00:00+00', 99, NULL, NULL, 'web', '{}', NULL, NULL, 'test')"
    )
    _night(con, 2)
    figures_now, previous = run_figures(con)
    assert previous["journeys_started"] == 3
    assert figures_now.set_index("key").loc["journeys_started", "value"] == 4
    text = markdown_summary(LoadReport(run_id="run2"), figures_now, previous)
    assert "| journeys started | 4 | +1 |" in text
    assert "| median wait for a reply: demo | 2.0 business h | +0.0 business h |" in text
    assert "cut-off 2026-03-21 00:00 UTC" in text
    # The dashboard header draws the same numbers, with the same previous run.
    shown = {
        t.title.text.replace("<br>", ""): (t.value, t.delta.reference if t.delta else None)
        for t in figures.kpi_header(con).data
    }
    assert shown["journeys started"] == (4, 3)
    assert shown["median wait for a reply: demo (business h)"] == (2.0, 2.0)


def test_the_summary_names_what_was_not_loaded_without_leaking_or_breaking_markdown() -> None:
    report = LoadReport(run_id="r")
    report.errors = ["sendgrid/jane.doe@acme.io|<img src=x onerror=alert(1)>.json: not JSON"]
    report.unknown_folders = ["Segment"]
    report.gone_files = ["segment/2026/08/01/a.jsonl"]
    text = markdown_summary(report, headlines.as_frame([]), {})
    assert "jane.doe@acme.io" not in text and "<img" not in text and "&lt;img" in text
    assert "\\|" in text  # a pipe in a file name cannot open a table cell
    assert "`Segment/`" in text and "segment/2026/08/01/a.jsonl" in text


def test_the_summary_reports_identity_quality_and_its_warnings() -> None:
    quality = {
        "persons": 12, "accounts": 3, "person_merges": 2, "account_merges": 1,
        "refusals_by_rule": {"person": {"max_user_ids_per_person=1": 4}, "account": {}},
        "anonymous_only_touchpoint_share": 0.25,
        "warnings": ["person 7 holds 41 identifiers (50.6% of all)"],
    }  # fmt: skip
    text = markdown_summary(LoadReport(run_id="r"), headlines.as_frame([]), {}, identity=quality)
    assert "12 persons, 3 accounts" in text and "4 by max_user_ids_per_person=1" in text
    assert "25.0%" in text and "**Identity warning:** person 7 holds 41 identifiers" in text


def test_opportunities_markdown_ranks_and_escapes() -> None:
    import duckdb

    from journeymine.summary import opportunities_markdown

    con = duckdb.connect()
    assert "run `journeymine report` first" in opportunities_markdown(con)
    con.execute(
        "CREATE TABLE opportunities AS SELECT * FROM (VALUES "
        "(2, 'Lift a | b', 3.0, -1.0, 7.0, 'per month', 'uncertain; overlaps #1'), "
        "(1, 'Call ann@acme.io back <b>sooner</b>', 12.5, 7.0, 18.0, 'per month', '')"
        ") v(rank, title, gain, gain_low, gain_high, unit, note)"
    )
    text = opportunities_markdown(con)
    rows = [line for line in text.splitlines() if line.startswith("| 1") or line.startswith("| 2")]
    assert rows[0].startswith("| 1 |") and "12.5" in rows[0] and "7.0 to 18.0" in rows[0]
    assert "ann@acme.io" not in text and "<b>" not in text and "a \\| b" in text
    assert rows[1].endswith("| per month |") and "(uncertain; overlaps #1)" in rows[1]
    assert "()" not in rows[0]  # an empty note adds nothing


def test_the_goal_headline_skips_a_churn_stage(touchpoints) -> None:  # type: ignore[no-untyped-def]
    rows = [(p, "web.page_view:/", "customer", f"2026-03-0{p} 10:00+00") for p in range(1, 5)]
    rows += [(p, "web.demo_requested", "customer", f"2026-03-0{p} 11:00+00") for p in (1, 2)]
    rows += [(1, "billing.subscription_canceled", "customer", "2026-03-05 11:00+00")]
    con = touchpoints(rows)
    churn = Stage("churned", ("billing.subscription_canceled",))
    spec = JourneySpec(name="t", window=timedelta(days=9), stages=(*SPEC.stages, churn))
    write_stage_funnel(con, spec, log_from_touchpoints(con))
    frame = headlines.as_frame(headlines.compute_headlines(con, spec)).set_index("key")
    # the goal is the last stage that is not an outcome: 2 of 4 reached demo, not 1 churned
    assert frame.loc["reached_last_stage", ["label", "value"]].tolist() == ["reached demo", 0.5]
