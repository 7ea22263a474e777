"""The journey grid: each touchpoint in the stage its person was in, counted per channel."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from journeymine.analyses.journey_grid import CHANNELS, compute_journey_grid, write_journey_grid
from journeymine.errors import WarehouseError
from journeymine.spec import FollowupRule, JourneySpec, Stage
from tests.analyses.test_opportunities import T0, Touch, analysed, warehouse

SPEC = JourneySpec(
    name="grid",
    window=timedelta(days=5),
    stages=(
        Stage("visit", ("web.page_view:*",)),
        Stage("signup", ("web.signed_up",)),
        Stage("demo", ("crm.meeting:demo",)),
    ),
    followups=(
        FollowupRule(
            "demo_request",
            ("crm.lead_created",),
            ("crm.call_completed",),
            timedelta(hours=4),
            business_hours=False,
        ),
    ),  # fmt: skip
    company_activities=("crm.meeting:*",),
)
DEV = "dev@northwind.test"  # an owner known only by an address: never shown


def _log() -> list[Touch]:
    h = timedelta(hours=1)
    d = timedelta(days=1)
    return [
        # 1: visits, gets a newsletter, signs up a day later, asks, called back 2h later, demo
        Touch(1, "web.page_view:/", "customer", T0),
        Touch(1, "email.delivered", "company", T0 + h, "email", "newsletter"),
        Touch(1, "web.signed_up", "customer", T0 + d),
        Touch(1, "crm.lead_created", "customer", T0 + d + h, "crm", "Ana Ruiz"),
        Touch(1, "crm.email_sent", "company", T0 + d + 2 * h, "crm", "Ana Ruiz"),
        Touch(1, "crm.call_completed", "company", T0 + d + 3 * h, "crm", "Ana Ruiz"),
        # a meeting the source calls a customer action: the spec says it is the company's
        Touch(1, "crm.meeting:demo", "customer", T0 + 3 * d, "crm", "Ana Ruiz"),
        # 2: signs up two days in, asks, called back after 10h, never holds a demo
        Touch(2, "web.page_view:/pricing", "customer", T0 + h),
        Touch(2, "web.signed_up", "customer", T0 + 2 * d),
        Touch(2, "crm.lead_created", "customer", T0 + 2 * d + h, "crm", DEV),
        Touch(2, "crm.call_completed", "company", T0 + 2 * d + 11 * h, "crm", DEV),
        # 3: visits and answers a survey (Typeform's channel is drawn as feedback)
        Touch(3, "web.page_view:/", "customer", T0 + 2 * h),
        Touch(3, "feedback.survey_answered", "customer", T0 + 3 * h, "survey"),
        # 4: an email before any stage belongs to none
        Touch(4, "email.delivered", "company", T0, "email", "newsletter"),
        Touch(4, "web.page_view:/", "customer", T0 + h),
        # 5: sets the cut-off, 20 days later
        Touch(5, "web.page_view:/", "customer", T0 + 20 * d),
    ]


def test_grid_cells_count_touchpoints_in_the_stage_people_were_in(tmp_path: Path) -> None:
    con = analysed(_log(), SPEC, tmp_path)
    grid = write_journey_grid(con, SPEC)
    assert len(grid) == 3 * len(CHANNELS)  # every stage x channel, empty cells included
    cell = grid.set_index(["stage", "channel"])
    visit_web = cell.loc[("visit", "web")]
    assert (visit_web.events, visit_web.people, visit_web.customer_events) == (5, 5, 5)
    assert visit_web.customer_activities == ["web.page_view:/", "web.page_view:/pricing"]
    visit_email = cell.loc[("visit", "email")]  # person 4's email came before any stage
    assert (visit_email.events, visit_email.company_events) == (1, 1)
    assert visit_email.top_owner == "newsletter"
    assert cell.loc[("visit", "feedback")].customer_activities == ["feedback.survey_answered"]
    crm = cell.loc[("signup", "crm")]
    assert (crm.events, crm.people, crm.customer_events, crm.company_events) == (5, 2, 2, 3)
    assert crm.company_activities == ["crm.call_completed", "crm.email_sent"]
    assert crm.top_owner == "Ana Ruiz" and crm.owners == ["Ana Ruiz", "[email]"]
    assert crm.followup_rules == ["demo_request"] and crm.followup_triggers == [2]
    assert crm.followup_median_wait_s == [pytest.approx((2 + 10) / 2 * 3600)]
    demo = cell.loc[("demo", "crm")]
    assert (demo.company_events, demo.customer_events) == (1, 0)
    empty = cell.loc[("demo", "billing")]
    assert (empty.events, empty.people, empty.owners, empty.followup_rules) == (0, 0, [], [])
    assert pd.isna(empty.top_owner)
    # the stage's own figures: of 5 visitors, 1 and 2 converted, 3 and 4
    # dropped (5 is still open); signup: 1 converted, 2 dropped
    visit = grid[grid.stage == "visit"]
    assert visit.stage_drop_off_rate.tolist() == [pytest.approx(0.5)] * len(CHANNELS)
    assert visit.stage_median_time_s.iloc[0] == pytest.approx((1 * 86400 + 2 * 86400 - 3600) / 2)
    signup = grid[grid.stage == "signup"].iloc[0]
    assert signup.stage_drop_off_rate == pytest.approx(0.5)
    assert con.execute("SELECT count(*) FROM journey_grid").fetchall()[0][0] == len(grid)
    stored = con.execute(
        "SELECT followup_triggers, followup_median_wait_s, owners FROM journey_grid "
        "WHERE stage = 'signup' AND channel = 'crm'"
    ).fetchall()
    assert stored == [([2], [6 * 3600.0], ["Ana Ruiz", "[email]"])]
    for column in grid.columns:
        for value in grid[column]:
            items = value if isinstance(value, list | np.ndarray) else [value]
            assert not any("@" in str(v) for v in items), (column, value)


def test_the_grid_needs_the_funnel_first() -> None:
    con = warehouse(_log())
    with pytest.raises(WarehouseError, match="no stage_entries table"):
        compute_journey_grid(con, SPEC)
