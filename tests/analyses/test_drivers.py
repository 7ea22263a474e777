"""Drivers with lift and false-discovery control; drift between two periods."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from journeymine.analyses.drivers import compare_periods, drivers
from journeymine.analyses.funnel import write_stage_funnel
from journeymine.analyses.stats import benjamini_hochberg
from journeymine.load import load_landing
from journeymine.mining.eventlog import log_from_touchpoints
from journeymine.spec import JourneySpec, Stage, load_spec
from journeymine.warehouse import connect

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


def test_sample_drivers_find_the_small_company_drop(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    load_landing(db, ROOT / "data" / "sample" / "landing")
    con = connect(db)
    spec = load_spec(ROOT / "data" / "sample" / "journey.toml")
    write_stage_funnel(con, spec, log_from_touchpoints(con))
    found = drivers(con, "demo_held", spec.segments).set_index("feature")
    small = found.loc["segment: company_size=1-10"]
    assert small.finding and small.lift < 0.6
    assert not found.loc["segment: utm_source=google"].finding  # planted: no effect
    # The planted reps: the slowest (Dev Patel) loses demos and is slow, the fastest wins both.
    for outcome in ("conversion", "speed"):
        reps = drivers(con, "demo_requested", outcome=outcome).set_index("feature")
        slow, fast = reps.loc["handled by: Dev Patel"], reps.loc["handled by: Ana Ruiz"]
        assert slow.finding and slow.lift < 0.7, outcome
        assert fast.finding and fast.lift > 1.1, outcome
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
