"""Opportunities: planted effects found inside their intervals, noise never listed as certain."""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest

from journeymine.analyses.opportunities import (
    MONTH_S,
    OpportunityError,
    compute_opportunities,
    first_invoice_median,
    months_of_data,
    newcombe,
    rank_opportunities,
    write_opportunities,
)
from journeymine.analyses.runner import analyse
from journeymine.spec import FollowupRule, JourneySpec, Stage, load_spec
from journeymine.summary import opportunities_markdown
from journeymine.warehouse import connect, table_exists
from tests.fixtures import insert_rows

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Touch:
    person: int
    activity: str
    actor: str
    at: datetime
    channel: str = "web"
    owner_name: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


def warehouse(touches: list[Touch]) -> duckdb.DuckDBPyConnection:
    """An in-memory warehouse whose touchpoints are ``touches`` (seq = list order)."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE touchpoints (event_id BIGINT, person_id BIGINT, account_id BIGINT, "
        "deal_id VARCHAR, source VARCHAR, activity VARCHAR, actor VARCHAR, "
        "occurred_at TIMESTAMPTZ, seq BIGINT, channel VARCHAR, owner VARCHAR, "
        "owner_name VARCHAR, attributes JSON)"
    )
    columns = ("event_id", "person_id", "source", "activity", "actor", "occurred_at", "seq")
    columns += ("channel", "owner", "owner_name", "attributes")
    rows = [
        (i + 1, t.person, "test", t.activity, t.actor, t.at, i + 1, t.channel,
         t.owner_name, t.owner_name, json.dumps(t.attributes))
        for i, t in enumerate(touches)
    ]  # fmt: skip
    insert_rows(con, "touchpoints", columns, rows)
    return con


def analysed(touches: list[Touch], spec: JourneySpec, out: Path) -> duckdb.DuckDBPyConnection:
    """The warehouse after the nightly analyses (the tables opportunities read)."""
    con = warehouse(touches)
    analyse(con, spec, out)
    return con


DEMO_SPEC = JourneySpec(
    name="demo",
    window=timedelta(days=14),
    stages=(Stage("requested", ("web.demo_requested",)), Stage("demo", ("crm.meeting:demo",))),
    followups=(
        FollowupRule(
            "demo_request",
            ("web.demo_requested",),
            ("crm.call_completed",),
            timedelta(hours=4),
            business_hours=False,
            converts_to="demo",
        ),
    ),  # fmt: skip
    segments=("company_size",),
)
DAYS = 90  # first touchpoint to the cut-off marker: the months of data
MONTHS = DAYS * 86400 / MONTH_S


@dataclass
class Demo:
    """What the generator planted, per person."""

    size: str
    fast: bool
    converted: bool


def demo_log(
    seed: int, effect: float, base: dict[str, float], people: int = 800
) -> tuple[list[Touch], dict[int, Demo]]:
    """People ask for a demo over 60 days. Large companies are called back within the 4h SLA
    more often (70% vs 30%) and hold demos more often (``base``): a confounder. Being called
    within the SLA adds ``effect`` to the chance of holding the demo, in both sizes. Slow
    people are called after 30h or never. Owner names and a form field are e-mail addresses."""
    rng = np.random.default_rng(seed)
    touches, truth = [], {}
    for p in range(people):
        t0 = T0 + timedelta(days=60 * p / people)
        size = "large" if p % 2 == 0 else "small"
        fast = bool(rng.random() < (0.7 if size == "large" else 0.3))
        converted = bool(rng.random() < base[size] + (effect if fast else 0.0))
        truth[p] = Demo(size, fast, converted)
        form = {"company_size": size, "email": f"person{p}@example.com"}
        touches.append(Touch(p, "web.demo_requested", "customer", t0, attributes=form))
        rep = "ana@northwind.test" if fast else "Dev Patel"
        if fast or rng.random() < 0.5:
            call = t0 + timedelta(hours=1 if fast else 30)
            touches.append(Touch(p, "crm.call_completed", "company", call, "crm", rep))
        if converted:
            meeting = t0 + timedelta(days=3)
            touches.append(Touch(p, "crm.meeting:demo", "company", meeting, "crm", rep))
    touches.append(Touch(people, "web.page_view:/", "customer", T0 + timedelta(days=DAYS)))
    return touches, truth


def _no_email(frame: pd.DataFrame) -> None:
    for column in frame.columns:
        for value in frame[column]:
            items = value if isinstance(value, list | np.ndarray) else [value]
            assert not any("@" in str(v) for v in items), (column, value)


Planted = tuple[duckdb.DuckDBPyConnection, dict[int, Demo]]


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Planted:
    """Seed 7, answering within the SLA worth 25 points, analysed once for the tests that only
    compute from it (``compute_opportunities`` writes nothing)."""
    touches, truth = demo_log(seed=7, effect=0.25, base={"large": 0.45, "small": 0.15})
    return analysed(touches, DEMO_SPEC, tmp_path_factory.mktemp("planted")), truth


def test_a_planted_slow_answer_effect_is_found_adjusted_for_the_segment(planted: Planted) -> None:
    con, truth = planted
    found = compute_opportunities(con, DEMO_SPEC)
    faster = found[found.kind == "answer_faster"].iloc[0]
    slow = sorted(p for p, d in truth.items() if not d.fast)
    planted = 0.25 * len(slow) / MONTHS  # every slow person converting 25 points more often
    assert faster.gain_low < planted < faster.gain_high
    assert faster.gain_low > 0 and not faster.uncertain
    assert faster.method.startswith("adjusted for company_size")
    assert faster.people == len(slow) and faster.person_ids == slow
    assert faster.unit == "conversions to demo per month" and faster.stage == "demo"
    assert "Answer demo_request within 4h" in faster.title and "95%" in faster.title
    # Without the segment the same data over-state the gain: large companies are both called
    # fast and hold demos more. The unadjusted interval lies above the planted value.
    crude_spec = replace(DEMO_SPEC, segments=())
    crude = compute_opportunities(con, crude_spec)
    crude = crude[crude.kind == "answer_faster"].iloc[0]
    assert crude.method.startswith("not adjusted (the spec has no segment)")
    assert crude.gain_low > planted
    _no_email(found)


def test_fixes_sharing_people_for_the_same_gain_say_that_they_overlap(planted: Planted) -> None:
    """Answering the slow demo requests and lifting the small companies both count more demos,
    and most slow people are small: the two gains do not add up, and the lower one says so."""
    con, truth = planted
    found = compute_opportunities(con, DEMO_SPEC).set_index("kind")
    faster, weak = found.loc["answer_faster"], found.loc["lift_weak_segment"]
    slow = {p for p, d in truth.items() if not d.fast}
    small = {p for p, d in truth.items() if d.size == "small"}
    assert set(faster.person_ids) == slow and set(weak.person_ids) <= small
    assert slow & set(weak.person_ids) and faster.unit == weak.unit
    first, second = sorted([faster, weak], key=lambda r: r["rank"])
    assert list(first.overlaps) == [] and list(second.overlaps) == [first["rank"]]
    assert second.note == f"overlaps #{first['rank']}" and first.note == ""
    # the nightly table (written by the analyses) and the CLI's markdown carry the same note
    stored = con.execute("SELECT note FROM opportunities WHERE rank = ?", [int(second["rank"])])
    assert stored.fetchall() == [(second.note,)]
    assert f"({second.note})" in opportunities_markdown(con)


def test_a_stratum_too_small_to_adjust_gives_the_unadjusted_estimate_and_says_so(
    tmp_path: Path,
) -> None:
    touches, truth = demo_log(seed=3, effect=0.25, base={"large": 0.45, "small": 0.15})
    for p in range(900, 905):  # five slow "tiny" companies: no fast one to compare with
        at = T0 + timedelta(days=30, hours=p - 900)
        touches.append(
            Touch(p, "web.demo_requested", "customer", at, attributes={"company_size": "tiny"})
        )
        truth[p] = Demo("tiny", fast=False, converted=False)
    con = analysed(touches, DEMO_SPEC, tmp_path)
    row = compute_opportunities(con, DEMO_SPEC).query("kind == 'answer_faster'").iloc[0]
    assert row.method.startswith("not adjusted (company_size strata under 10")
    assert row.method.split("):")[0].endswith(": tiny")
    fast = [d.converted for d in truth.values() if d.fast]
    slow = [d.converted for d in truth.values() if not d.fast]
    expected = (sum(fast) / len(fast) - sum(slow) / len(slow)) * len(slow) / MONTHS
    assert row.gain == pytest.approx(expected) and row.people == len(slow)
    assert row.gain_low < expected < row.gain_high


def test_the_planted_weak_segment_is_listed_with_the_gain_computed_by_hand(
    planted: Planted,
) -> None:
    con, truth = planted
    weak = compute_opportunities(con, DEMO_SPEC).query("kind == 'lift_weak_segment'")
    assert len(weak) == 1  # large is above the rest: not a weak segment
    row = weak.iloc[0]
    small = [p for p, d in truth.items() if d.size == "small"]
    large = [p for p, d in truth.items() if d.size == "large"]
    rate_small = sum(truth[p].converted for p in small) / len(small)
    rate_large = sum(truth[p].converted for p in large) / len(large)
    assert row.stage == "requested" and "company_size=small" in row.title
    assert row.gain == pytest.approx((rate_large - rate_small) * len(small) / MONTHS)
    assert row.gain_low < row.gain < row.gain_high and not row.uncertain
    assert row.people == len(small) and row.person_ids == sorted(small)
    assert row.unit == "conversions to demo per month"


def test_a_log_with_no_planted_effect_lists_nothing_certain(tmp_path: Path) -> None:
    # Same confounded call-back pattern, but neither speed nor size changes holding a demo.
    touches, _ = demo_log(seed=11, effect=0.0, base={"large": 0.4, "small": 0.4})
    con = analysed(touches, DEMO_SPEC, tmp_path)
    found = compute_opportunities(con, DEMO_SPEC)
    assert "answer_faster" in set(found.kind)  # estimated, and honest about it
    assert not (found.gain_low > 0).any()
    assert found[found.kind != "stop_doing"].uncertain.all()


@pytest.mark.parametrize(
    ("counts", "published"),
    [
        ((56, 70, 48, 80), (0.0524, 0.3339)),
        ((9, 10, 3, 10), (0.1705, 0.8090)),
        ((6, 7, 2, 7), (0.0582, 0.8062)),
    ],
)
def test_newcombe_matches_the_published_hybrid_score_intervals(
    counts: tuple[int, int, int, int], published: tuple[float, float]
) -> None:
    # Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10
    diff, low, high = newcombe(*counts)
    assert diff == pytest.approx(counts[0] / counts[1] - counts[2] / counts[3])
    assert (round(low, 4), round(high, 4)) == published


def test_ranking_puts_intervals_reaching_zero_last() -> None:
    rows = pd.DataFrame(
        {
            "kind": ["answer_faster", "lift_weak_segment", "close_deviation",
                     "lift_weak_segment", "stop_doing", "answer_faster"],
            "title": list("ABCDEF"),
            "gain": [5.0, 5.0, 9.0, 3.0, 0.0, 2.0],
            "gain_low": [1.0, 2.0, -1.0, 0.5, 0.0, np.nan],
        }
    )  # fmt: skip
    ranked = rank_opportunities(rows)
    assert ranked.title.tolist() == ["B", "A", "D", "E", "C", "F"]
    assert ranked["rank"].tolist() == [1, 2, 3, 4, 5, 6]
    assert ranked.uncertain.tolist() == [False, False, False, False, True, True]


def _deviation_log() -> list[Touch]:
    """Visit -> signup -> paid. 100 people follow the design (60 pay), 50 go back to the
    website after signing up (10 pay), 40 only visit. Payers' first positive invoice is
    1000-1400 cents; five start with a 0-amount trial invoice."""
    touches, p = [], 0
    amounts = {}
    for group, size, payers in (("conform", 100, 60), ("back", 50, 10), ("visit", 40, 0)):
        for i in range(size):
            t0 = T0 + timedelta(hours=p)
            touches.append(Touch(p, "web.page_view:/", "customer", t0))
            if group != "visit":
                touches.append(Touch(p, "web.signed_up", "customer", t0 + timedelta(hours=1)))
            if group == "back":
                touches.append(Touch(p, "web.page_view:/docs", "customer", t0 + timedelta(hours=2)))
            if i < payers:
                if i < 5:
                    touches.append(_invoice(p, t0 + timedelta(hours=3), 0))
                amounts[p] = 1000 + 100 * (i % 5)
                touches.append(_invoice(p, t0 + timedelta(hours=4), amounts[p]))
                touches.append(_invoice(p, t0 + timedelta(days=30), 99999))  # not a first
            p += 1
    touches.append(Touch(p, "web.page_view:/", "customer", T0 + timedelta(days=60)))
    return touches


def _invoice(person: int, at: datetime, amount: int | str) -> Touch:
    paid = {"amount_paid": amount, "currency": "EUR"}
    return Touch(person, "billing.invoice_paid", "customer", at, "billing", attributes=paid)


DEVIATION_SPEC = JourneySpec(
    name="dev",
    window=timedelta(days=3),
    stages=(
        Stage("visit", ("web.page_view:*",)),
        Stage("signup", ("web.signed_up",)),
        Stage("paid", ("billing.invoice_paid",)),
    ),
)


def test_a_frequent_deviation_costs_its_completion_gap_and_revenue(tmp_path: Path) -> None:
    con = analysed(_deviation_log(), DEVIATION_SPEC, tmp_path)
    found = write_opportunities(con, DEVIATION_SPEC)
    deviations = found[found.kind == "close_deviation"].set_index("title")
    months = 60 * 86400 / MONTH_S
    # baseline: the 100 conforming people who reached two stages, 60 completed; the 40 who
    # only visited conform too but are no baseline. Deviating: 10 of 50.
    expected = (60 / 100 - 10 / 50) * 50 / months
    assert len(deviations) == 2  # the go-back is both "repeated visit" and "moved back to"
    assert {t.split("'")[1] for t in deviations.index} == {"repeated visit", "moved back to visit"}
    median = float(
        np.median(
            [1000 + 100 * (i % 5) for i in range(60)] + [1000 + 100 * (i % 5) for i in range(10)]
        )
    )
    back = list(range(100, 150))
    for row in deviations.itertuples():
        assert row.gain == pytest.approx(expected)
        assert row.gain_low < expected < row.gain_high and row.gain_low > 0
        assert row.people == 50 and list(row.person_ids) == back
        assert row.unit == "journeys reaching paid per month"
        assert row.revenue_gain == pytest.approx(expected * median) and row.currency == "eur"
        assert "EUR a month" in row.Index
    stored = con.execute("SELECT title, person_ids FROM opportunities ORDER BY rank").df()
    assert stored.title.tolist() == found.title.tolist()
    assert [list(ids) for ids in stored.person_ids] == [list(ids) for ids in found.person_ids]


def test_an_empty_report_is_stored_with_its_types(tmp_path: Path) -> None:
    spec = JourneySpec(name="e", stages=(Stage("visit", ("web.page_view:*",)),))
    con = analysed([Touch(1, "web.page_view:/", "customer", T0)], spec, tmp_path)
    assert write_opportunities(con, spec).empty
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_name = 'opportunities'").fetchall())  # fmt: skip
    assert (types["title"], types["person_ids"], types["gain"]) == ("VARCHAR", "BIGINT[]", "DOUBLE")


def test_the_revenue_median_takes_first_positive_invoices(tmp_path: Path) -> None:
    con = warehouse(_deviation_log())
    amounts = [1000 + 100 * (i % 5) for i in range(60)] + [1000 + 100 * (i % 5) for i in range(10)]
    assert first_invoice_median(con) == (float(np.median(amounts)), "eur")
    assert first_invoice_median(warehouse([Touch(1, "web.page_view:/", "customer", T0)])) is None


def test_a_non_integer_amount_is_an_error_naming_the_event() -> None:
    con = warehouse([_invoice(1, T0, 1200), _invoice(2, T0, "12.00")])
    with pytest.raises(OpportunityError, match="event_id 2 .*amount_paid"):
        first_invoice_median(con)


def _newsletter_log() -> list[Touch]:
    """100 visitors; the even ones get a newsletter an hour in (a company action), the odd ones
    scroll (a customer action) and have a support ticket solved. Pairs (0, 1), (4, 5), ... sign up two days later: with or
    without the newsletter, half sign up."""
    touches = []
    for p in range(100):
        t0 = T0 + timedelta(hours=p)
        touches.append(Touch(p, "web.page_view:/", "customer", t0))
        hour = t0 + timedelta(hours=1)
        if p % 2 == 0:
            touches.append(Touch(p, "email.delivered", "company", hour, "email", "newsletter"))
        else:
            touches.append(Touch(p, "web.scroll", "customer", hour))
            solved = hour + timedelta(minutes=5)  # their support ticket, solved by an agent
            touches.append(Touch(p, "support.ticket_solved", "company", solved, "support"))
        if (p // 2) % 2 == 0:
            touches.append(Touch(p, "web.signed_up", "customer", t0 + timedelta(days=2)))
    touches.append(Touch(100, "web.page_view:/", "customer", T0 + timedelta(days=30)))
    return touches


def test_a_company_touchpoint_with_no_effect_is_a_stop_doing(tmp_path: Path) -> None:
    spec = JourneySpec(
        name="n",
        window=timedelta(days=7),
        stages=(Stage("visit", ("web.page_view:*",)), Stage("signup", ("web.signed_up",))),
    )
    con = analysed(_newsletter_log(), spec, tmp_path)
    found = compute_opportunities(con, spec)
    stop = found[found.kind == "stop_doing"]
    # The scroll has no effect either, but it is the customer's doing; the solved ticket is the
    # company's, with no effect, but a service the customer asked for, not outreach to stop.
    no_effect = con.execute("SELECT feature FROM drivers WHERE no_effect AND stage = 'visit'").df()
    assert {"did: web.scroll", "did: support.ticket_solved"} <= set(no_effect.feature)
    assert len(stop) == 1
    row = stop.iloc[0]
    assert row.stage == "visit" and "email.delivered" in row.title
    assert row.people == 50 and list(row.person_ids) == list(range(0, 100, 2))
    assert row.touchpoints_per_month == pytest.approx(50 / (30 * 86400 / MONTH_S))
    assert row.gain == 0 and not row.uncertain and row.unit == "touchpoints per month"


ROOT = Path(__file__).resolve().parents[2]


def _demo_chance() -> list[tuple[float, float]]:
    """The generator's planted chance of holding a demo by hours waited for the first call."""
    path = ROOT / "scripts" / "make_sample.py"
    module_spec = importlib.util.spec_from_file_location("make_sample", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules["make_sample"] = module  # its dataclasses look their module up
    module_spec.loader.exec_module(module)
    chance: list[tuple[float, float]] = module.DEMO_CHANCE
    return chance


def test_on_the_sample_slow_demo_follow_ups_come_first_and_the_weak_segment_is_listed(
    sample_warehouse: Path,
) -> None:
    # The session's sample is loaded and analysed with this same spec (tests/conftest.py).
    spec = load_spec(ROOT / "data" / "sample" / "journey.toml")
    con = connect(sample_warehouse, read_only=True)
    found = compute_opportunities(con, spec)
    top = found.iloc[0]
    assert (top.kind, top.stage) == ("answer_faster", "demo_held")
    assert "demo_request" in top.title and not top.uncertain
    # The planted value: the generator's chance of a demo for each person's first decided
    # request, by the hours that person waited (never called: no demo); slow people given
    # the mean planted chance of those called within the SLA.
    chance = _demo_chance()
    first = con.execute(
        "SELECT latency_s, sla_breached FROM followups WHERE rule = 'demo_request' "
        "AND status <> 'open' QUALIFY row_number() OVER "
        "(PARTITION BY person_id ORDER BY triggered_at) = 1"
    ).df()
    first["chance"] = [
        0.0 if pd.isna(s) else next(c for edge, c in chance if s / 3600 < edge)
        for s in first.latency_s
    ]
    fast, slow = first[~first.sla_breached], first[first.sla_breached]
    months = months_of_data(con)
    planted = (fast.chance.mean() - slow.chance.mean()) * len(slow) / months
    assert top.gain_low < planted < top.gain_high
    weak = found[found.kind == "lift_weak_segment"]
    at_demo = weak[weak.stage == "demo_held"].title
    assert at_demo.str.contains("company_size=1-10", regex=False).any()
    assert not found.title.str.contains("utm_source=google").any()  # planted: no effect
    assert (found.revenue_gain.notna() == (found.kind != "stop_doing")).all()


def test_detractors_converting_less_are_an_opportunity_with_the_gain_computed_by_hand(
    tmp_path: Path,
) -> None:
    """Planted: a third of the visitors answered the NPS as detractors an hour after their
    visit; they sign up at 20% against 60% for the others."""
    spec = JourneySpec(
        name="n",
        window=timedelta(days=7),
        stages=(Stage("visit", ("web.page_view:*",)), Stage("signup", ("web.signed_up",))),
    )
    rng = np.random.default_rng(11)
    touches, truth = [], []
    for p in range(600):
        t0 = T0 + timedelta(days=60 * p / 600)
        touches.append(Touch(p, "web.page_view:/", "customer", t0))
        detractor = p % 3 == 0
        score = {"score": 2, "nps_group": "detractor"} if detractor else {"score": 9}
        score |= {} if detractor else {"nps_group": "promoter"}
        answered = t0 + timedelta(hours=1)
        touches.append(
            Touch(p, "feedback.survey_answered", "customer", answered, "survey", None, score)
        )
        signed = bool(rng.random() < (0.2 if detractor else 0.6))
        if signed:
            touches.append(Touch(p, "web.signed_up", "customer", t0 + timedelta(days=1)))
        truth.append({"person": p, "detractor": detractor, "signed": signed})
    touches.append(Touch(600, "web.page_view:/", "customer", T0 + timedelta(days=DAYS)))
    con = analysed(touches, spec, tmp_path)
    found = compute_opportunities(con, spec)
    [row] = found[found.kind == "win_over_detractors"].itertuples()
    frame = pd.DataFrame(truth)
    unhappy, rest = frame[frame.detractor], frame[~frame.detractor]
    diff = rest.signed.mean() - unhappy.signed.mean()
    assert row.stage == "visit" and row.people == len(unhappy) == 200
    assert list(row.person_ids) == unhappy.person.tolist()
    assert row.gain == pytest.approx(diff * len(unhappy) / MONTHS)
    planted = (0.6 - 0.2) * len(unhappy) / MONTHS
    assert row.gain_low < planted < row.gain_high and not row.uncertain
    share = len(unhappy) / len(frame)
    assert f"Win over the detractors at visit ({share:.0%} of those deciding there" in row.title
    assert found[found.kind == "soothe_bad_csat"].empty  # no CSAT was planted


def test_nothing_is_proposed_that_brings_more_people_to_an_outcome_stage(tmp_path: Path) -> None:
    """A cancellation ends a lifecycle; it is no goal. The planted demo log with the meeting
    turned into a cancellation: small companies cancel less often (15% vs 45%), which at a goal
    stage is a weak segment to lift, and here must not be proposed as one."""
    touches, truth = demo_log(seed=7, effect=0.25, base={"large": 0.45, "small": 0.15})
    cancel = "billing.subscription_canceled"
    touches = [
        replace(t, activity=cancel, channel="billing") if t.activity == "crm.meeting:demo" else t
        for t in touches
    ]
    spec = JourneySpec(
        name="churn",
        window=timedelta(days=14),
        stages=(Stage("requested", ("web.demo_requested",)), Stage("churned", (cancel,))),
        segments=("company_size",),
    )
    con = analysed(touches, spec, tmp_path)
    rates = dict(
        con.execute(
            "SELECT segment, converted / (converted + dropped) FROM stage_funnel "
            "WHERE stage = 'requested'"
        ).fetchall()
    )
    small = [d.converted for d in truth.values() if d.size == "small"]
    assert rates["company_size=small"] == pytest.approx(sum(small) / len(small))
    assert rates["company_size=small"] < rates["company_size=large"] - 0.2  # a real gap
    assert compute_opportunities(con, spec).empty
    # nor are drivers of "converting" (cancelling) there, which the dashboard would show as
    # what goes with dropping off: the drivers table holds no stage at all
    assert not table_exists(con, "drivers")
    # nor where people "drop out" of it (they stayed): no paths out of requested
    assert not table_exists(con, "paths")
