"""Alerts on hand-made warehouses: bounds crossed or not, significant changes, missing tables."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pytest
from scipy import stats

from journeymine.analyses.alerts import (
    EVENT,
    Alert,
    alert_event,
    evaluate_alerts,
    load_alerts,
    write_alerts,
)
from journeymine.analyses.headlines import compute_headlines
from journeymine.errors import SpecError
from journeymine.spec import load_spec


def _funnel(con: duckdb.DuckDBPyConnection, stages: list[tuple[str, int, int]]) -> None:
    """``stage_funnel`` rows of segment 'all': (stage, converted, dropped)."""
    con.execute(
        "CREATE TABLE stage_funnel (segment VARCHAR, position INT, stage VARCHAR, entered INT, "
        "converted INT, dropped INT, conversion_rate DOUBLE)"
    )
    for i, (stage, converted, dropped) in enumerate(stages):
        decided = converted + dropped
        con.execute(
            "INSERT INTO stage_funnel VALUES ('all', ?, ?, ?, ?, ?, ?)",
            [i, stage, decided, converted, dropped, converted / decided if decided else None],
        )


def _two_proportion_p(k1: int, n1: int, k2: int, n2: int) -> float:
    """The pooled two-proportion z-test, written out here independently of the analyses."""
    table = np.array([[k1, n1 - k1], [k2, n2 - k2]])
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)  # chi2 = z² for 2x2
    return float(p)


def _by_name(con: duckdb.DuckDBPyConnection, alerts: list[Alert]) -> dict[str, dict[str, object]]:
    frame = evaluate_alerts(con, alerts)
    return {row["name"]: row for row in frame.to_dict("records")}


def test_a_conversion_below_its_bound_fires_and_one_above_does_not() -> None:
    con = duckdb.connect()
    _funnel(con, [("visit", 10, 0), ("demo", 3, 7)])  # demo: 3 of 10 decided converted
    rows = _by_name(
        con,
        [
            Alert("low", "conversion", "demo", below=0.4, severity="critical"),
            Alert("fine", "conversion", "demo", below=0.25),
            Alert("high", "conversion", "visit", above=0.99),
        ],
    )
    assert rows["low"]["value"] == pytest.approx(0.3)
    assert rows["low"]["fired"] and rows["low"]["bound"] == 0.4
    assert rows["low"]["severity"] == "critical"
    assert rows["low"]["message"] == (
        "Conversion at stage demo is 30.0%, below the bound of 40.0%."
    )
    assert not rows["fine"]["fired"] and rows["fine"]["evaluated"]
    assert "not below 25.0%" in str(rows["fine"]["message"])
    assert rows["high"]["fired"] and rows["high"]["value"] == 1.0


def _followups(con: duckdb.DuckDBPyConnection) -> None:
    # rule demo: answered in 1 h (in SLA), answered in 5 h (late), unanswered, open.
    # Decided = 3, breached = 2 -> 2/3; answered waits 1 h and 5 h -> median 3 h.
    # rule other: one answered in 10 h, in SLA: must not leak into demo's figures.
    con.execute(
        "CREATE TABLE followups (rule VARCHAR, person_id BIGINT, status VARCHAR, "
        "sla_breached BOOLEAN, latency_s DOUBLE, wait_s DOUBLE, sla_unit VARCHAR)"
    )
    rows = [
        ("demo", 1, "answered", False, 3600.0),
        ("demo", 2, "answered", True, 5 * 3600.0),
        ("demo", 3, "unanswered", True, None),
        ("demo", 4, "open", False, None),
        ("other", 5, "answered", False, 10 * 3600.0),
    ]
    for rule, person, status, breached, wait in rows:
        con.execute(
            "INSERT INTO followups VALUES (?, ?, ?, ?, ?, ?, 'hours')",
            [rule, person, status, breached, wait, wait],
        )


def test_a_rules_breach_rate_and_median_wait_match_the_headline_definition() -> None:
    con = duckdb.connect()
    _followups(con)
    rows = _by_name(
        con,
        [
            Alert("late", "breach_rate", "demo", above=0.5),
            Alert("slow", "median_wait", "demo", above=4.0),
            Alert("all_late", "breach_rate", above=0.9),
        ],
    )
    assert rows["late"]["value"] == pytest.approx(2 / 3) and rows["late"]["fired"]
    assert rows["late"]["message"] == (
        "The share of demo triggers answered later than the SLA is 66.7%, above the bound of 50.0%."
    )
    assert rows["slow"]["value"] == pytest.approx(3.0) and not rows["slow"]["fired"]
    assert "3.0 h, not above 4.0 h" in str(rows["slow"]["message"])
    # Over all rules (a headline): 2 breached of 4 decided.
    assert rows["all_late"]["value"] == pytest.approx(0.5) and not rows["all_late"]["fired"]
    figures = {h.key: h.value for h in compute_headlines(con)}
    assert rows["late"]["value"] == pytest.approx(figures["breach_rate:demo"])
    assert rows["slow"]["value"] == pytest.approx(figures["median_wait:demo"])


def test_a_significant_drop_in_conversion_fires_from_the_drift_test() -> None:
    con = duckdb.connect()
    _funnel(con, [("demo", 70, 130), ("trial", 60, 40)])
    p_demo = _two_proportion_p(50, 100, 20, 100)  # 50% -> 20%: a real drop
    p_trial = _two_proportion_p(30, 50, 30, 50)  # 60% -> 60%: nothing
    con.execute(
        "CREATE TABLE drift_stages AS SELECT * FROM (VALUES "
        "('demo', 0.5, 0.2, 100, 100, ?), ('trial', 0.6, 0.6, 50, 50, ?)) "
        "t(stage, rate_before, rate_after, decided_before, decided_after, p_value)",
        [p_demo, p_trial],
    )
    rows = _by_name(
        con,
        [
            Alert("demo_moved", "conversion", "demo", change=True),
            Alert("trial_moved", "conversion", "trial", change=True),
        ],
    )
    assert p_demo < 0.05 < p_trial
    demo = rows["demo_moved"]
    assert demo["fired"] and demo["previous"] == 0.5 and demo["value"] == pytest.approx(0.35)
    assert "20.0% in the last 30 days against 50.0%" in str(demo["message"])
    assert f"p = {p_demo:.3f}" in str(demo["message"])
    assert not rows["trial_moved"]["fired"] and rows["trial_moved"]["evaluated"]


def _history(con: duckdb.DuckDBPyConnection, runs: list[dict[str, float]]) -> None:
    """``run_history`` with one row per run (oldest first) and the latest as ``headlines``."""
    con.execute("CREATE TABLE run_history (run_id VARCHAR, finished_at TIMESTAMPTZ, figures JSON)")
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for i, figures in enumerate(runs):
        con.execute(
            "INSERT INTO run_history VALUES (?, ?, ?)",
            [f"run{i}", start + timedelta(days=i), json.dumps(figures)],
        )
    con.execute(
        "CREATE TABLE headlines AS SELECT 'persons' AS key, 'people' AS label, ?::DOUBLE AS value, "
        "'count' AS unit, true AS higher_is_better",
        [runs[-1]["persons"]],
    )


def test_a_headline_change_is_judged_against_the_previous_run() -> None:
    con = duckdb.connect()
    _history(con, [{"persons": 90.0}, {"persons": 100.0}, {"persons": 130.0}])
    rows = _by_name(
        con,
        [
            Alert("jump", "persons", change=True),  # 100 -> 130: +30% > 10%
            Alert("calm", "persons", change=True, tolerance=0.5),
            Alert("few", "persons", below=50),
        ],
    )
    assert rows["jump"]["fired"] and rows["jump"]["previous"] == 100.0
    assert rows["jump"]["value"] == 130.0
    assert "a significant change: 100 at the previous run" in str(rows["jump"]["message"])
    assert not rows["calm"]["fired"] and rows["calm"]["evaluated"]
    assert not rows["few"]["fired"]


def test_missing_tables_and_names_give_a_cannot_evaluate_row_not_a_crash() -> None:
    con = duckdb.connect()
    alerts = [
        Alert("conv", "conversion", "demo", below=0.4),
        Alert("late", "breach_rate", "demo", above=0.5),
        Alert("people", "persons", below=10),
        Alert("moved", "conversion", "visit", change=True),
    ]
    frame = evaluate_alerts(con, alerts)
    assert len(frame) == 4 and not frame.fired.any() and not frame.evaluated.any()
    messages = dict(zip(frame.name, frame.message, strict=True))
    assert messages["conv"].startswith(
        "Cannot evaluate alert conv: the warehouse has no stage_funnel"
    )
    assert "no followups table" in messages["late"]
    assert "no headline figure 'persons'" in messages["people"]
    _funnel(con, [("visit", 4, 1)])
    again = _by_name(con, alerts)
    assert "stage_funnel has no stage 'demo'" in str(again["conv"]["message"])
    # The stage has a rate but there is no drift table: the change alone cannot be judged.
    assert not again["moved"]["evaluated"] and again["moved"]["value"] == 0.8
    assert "the change cannot be judged: the warehouse has no drift_stages" in str(
        again["moved"]["message"]
    )


def test_write_alerts_keeps_every_night_and_the_view_shows_tonight() -> None:
    con = duckdb.connect()
    _funnel(con, [("demo", 3, 7)])
    alerts = [Alert("low", "conversion", "demo", below=0.4), Alert("x", "persons", below=1)]
    night = datetime(2026, 3, 1, 2, tzinfo=UTC)
    write_alerts(con, evaluate_alerts(con, alerts), "run1", night)
    con.execute("UPDATE stage_funnel SET conversion_rate = 0.5")
    write_alerts(con, evaluate_alerts(con, alerts), "run2", night + timedelta(days=1))
    assert con.execute("SELECT count(*) FROM alerts").fetchall() == [(4,)]
    latest = con.execute(
        "SELECT run_id, name, fired, value FROM latest_alerts ORDER BY name"
    ).fetchall()
    assert latest == [("run2", "low", False, 0.5), ("run2", "x", False, None)]
    first = con.execute("SELECT fired, value FROM alerts WHERE run_id = 'run1' AND name = 'low'")
    assert first.fetchall() == [(True, 0.3)]


def test_a_fired_alert_becomes_one_prefect_event() -> None:
    con = duckdb.connect()
    _funnel(con, [("demo", 3, 7)])
    row = evaluate_alerts(con, [Alert("low", "conversion", "demo", below=0.4)]).iloc[0]
    event = alert_event(row.to_dict())
    assert event["event"] == EVENT == "journeymine.alert.fired"
    assert event["resource"]["prefect.resource.id"] == "journeymine.alert.low"
    assert event["payload"]["value"] == pytest.approx(0.3)
    assert event["payload"]["bound"] == 0.4 and event["payload"]["previous"] is None
    json.dumps(event)  # the payload travels as JSON: NaN must have become null


SPEC = """
name = "t"
[[stages]]
name = "visit"
activities = ["web.page_view:*"]
[[stages]]
name = "demo"
activities = ["web.demo_requested"]
[[followups]]
name = "demo_call"
triggers = ["web.demo_requested"]
responses = ["crm.call_completed"]
sla = "4h"
"""


def _spec(tmp_path: Path, alerts: str) -> Path:
    path = tmp_path / "journey.toml"
    path.write_text(SPEC + alerts)
    return path


def test_load_alerts_reads_the_spec_and_the_spec_loader_accepts_them(tmp_path: Path) -> None:
    path = _spec(
        tmp_path,
        '[[alerts]]\nname = "demo-low"\nmetric = "conversion"\nstage = "demo"\nbelow = 0.4\n'
        'change = "significant"\nseverity = "critical"\n'
        '[[alerts]]\nname = "slow"\nmetric = "median_wait"\nrule = "demo_call"\nabove = 8\n'
        '[[alerts]]\nname = "people"\nmetric = "persons"\nchange = "significant"\n',
    )
    assert load_alerts(path) == [
        Alert("demo-low", "conversion", "demo", below=0.4, change=True, severity="critical"),
        Alert("slow", "median_wait", "demo_call", above=8.0),
        Alert("people", "persons", change=True),
    ]
    assert [s.name for s in load_spec(path).stages] == ["visit", "demo"]
    assert load_alerts(_spec(tmp_path, "")) == []


@pytest.mark.parametrize(
    ("alert", "error"),
    [
        ('name = "a"\nmetric = "conversion"\nstage = "demo"\nbelow = 0.4\nbellow = 1\n',
         r"alerts\[0\]: unknown key\(s\) \['bellow'\]"),
        ('name = "a"\nmetric = "conversion"\nstage = "dmeo"\nbelow = 0.4\n',
         r"alerts\[0\]\.stage: no stage 'dmeo'; the spec declares \['visit', 'demo'\]"),
        ('name = "a"\nmetric = "median_wait"\nrule = "nope"\nabove = 1\n',
         r"alerts\[0\]\.rule: no rule 'nope'"),
        ('name = "a"\nmetric = "conversion"\nstage = "demo"\nbelow = 0.4\nabove = 0.9\n',
         r"alerts\[0\]: give one of below / above"),
        ('name = "a"\nmetric = "conversions"\nbelow = 0.4\n',
         r"alerts\[0\]\.metric: 'conversions'"),
        ('name = "a"\nmetric = "conversion"\nstage = "demo"\n', r"alerts\[0\]: no condition"),
        ('name = "a b"\nmetric = "persons"\nbelow = 1\n', r"alerts\[0\]\.name: 'a b'"),
        ('name = "a"\nmetric = "persons"\nbelow = "1"\n', r"alerts\[0\]\.below: expected a number"),
        ('name = "a"\nmetric = "persons"\nchange = "big"\n', r"alerts\[0\]\.change: 'big'"),
        ('name = "a"\nmetric = "persons"\nbelow = 1\nseverity = "panic"\n',
         r"alerts\[0\]\.severity: 'panic'"),
        ('name = "a"\nmetric = "persons"\nstage = "demo"\nbelow = 1\n',
         r"alerts\[0\]: metric 'persons' takes no stage or rule"),
    ],
)  # fmt: skip
def test_a_bad_alert_is_a_spec_error_naming_file_and_key(
    tmp_path: Path, alert: str, error: str
) -> None:
    path = _spec(tmp_path, "[[alerts]]\n" + alert)
    with pytest.raises(SpecError, match=f"^{str(path)}: {error}"):
        load_alerts(path)


def test_repeated_alert_names_are_a_spec_error(tmp_path: Path) -> None:
    one = '[[alerts]]\nname = "a"\nmetric = "persons"\nbelow = 1\n'
    path = _spec(tmp_path, one + one)
    with pytest.raises(SpecError, match=r"alerts: names repeat: \['a', 'a'\]"):
        load_alerts(path)
