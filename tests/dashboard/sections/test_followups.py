"""The follow-up section: waits per rule against the SLA, per owner, and the cost of waiting."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from journeymine.analyses.followups import summarise_followups
from journeymine.analyses.stats import wilson
from journeymine.dashboard.sections import followups
from journeymine.dashboard.style import label
from tests.dashboard.conftest import Warehouse


def test_followup_latency_distribution_and_owners(con: duckdb.DuckDBPyConnection) -> None:
    fig = followups.followup_latency(con, sla_hours={"demo_request": 4}, min_triggers=1)
    box = fig.data[0]
    answered = np.array([0.25, 1, 5, 15] * 8)  # 32 answered, waits in business hours (half)
    assert list(box.y) == ["demo_request (business h)"]  # the open-only rule has none
    assert box.median[0] == pytest.approx(np.percentile(answered, 50))
    assert box.q1[0] == pytest.approx(np.percentile(answered, 25))
    assert box.upperfence[0] == pytest.approx(np.percentile(answered, 95))
    sla = next(t for t in fig.data if t.name == "SLA")
    assert list(sla.x) == [4]
    # Per owner responsible at trigger time: every trigger by outcome, counted independently.
    table = con.execute("SELECT * FROM followups WHERE owner IS NOT NULL").df()
    for name, mask in (
        ("within the SLA", (table.status == "answered") & ~table.sla_breached),
        ("answered late", (table.status == "answered") & table.sla_breached),
        ("no reply", table.status == "unanswered"),
    ):
        bars = next(t for t in fig.data if t.name == name)
        expected = table[mask].groupby("owner").size()
        shown = dict(zip(bars.y, bars.x, strict=True))
        assert shown == {label(o): n for o, n in expected.items()} | {
            y: 0 for y in shown if y not in {label(o) for o in expected.index}
        }
    assert "[email hidden]" in bars.y and not any("@" in y for y in bars.y)
    worst = table[table.status != "open"].groupby("owner").sla_breached.mean().idxmax()
    assert bars.y[0] == label(worst)  # the worst breach rate comes first


def test_cost_of_waiting_from_the_warehouse(
    con: duckdb.DuckDBPyConnection, warehouse: Warehouse
) -> None:
    fig = followups.cost_of_waiting(
        con, target_activities=["billing.invoice_paid*"], rule="demo_request"
    )
    bar = fig.data[0]
    shown = {x: (int(c), int(n)) for x, (c, n, *_) in zip(bar.x, bar.customdata, strict=True)}
    assert shown == warehouse.cost
    assert list(bar.x) == ["under 1 h", "1-4 h", "4-24 h", "1-2 days", "no reply"]
    for x, y in zip(bar.x, bar.y, strict=True):
        assert y == pytest.approx(warehouse.cost[x][0] / warehouse.cost[x][1])


def test_cost_of_waiting_from_a_frame() -> None:
    frame = pd.DataFrame({"bucket": ["<1h", ">48h"], "people": [20, 10], "converted": [15, 2]})
    fig = followups.cost_of_waiting(frame, target="paid")
    assert list(fig.data[0].y) == pytest.approx([0.75, 0.2])
    assert list(fig.data[0].x) == ["under 1 h", "over 2 days"]
    low, high = wilson(2, 10)
    assert fig.data[0].error_y.array[1] == pytest.approx(high - 0.2)
    assert fig.data[0].error_y.arrayminus[1] == pytest.approx(0.2 - low)


def _owners_by_pandas(frame: pd.DataFrame, top: int, min_triggers: int) -> pd.DataFrame:
    """The per-owner table as the dashboard computed it before SQL: the analysis's own
    ``summarise_followups`` over every trigger read into pandas."""
    table = summarise_followups(frame.dropna(subset=["owner_name"]), by="owner_name")
    table = table.rename(columns={"owner_name": "owner"})
    table = table[table.triggers >= min_triggers]
    order = table.sort_values(["breach_rate", "triggers"], ascending=[False, False])
    return order.head(top).reset_index(drop=True)


def _random_followups(seed: int, n: int) -> pd.DataFrame:
    """Triggers of two rules by a few owners (some unknown), with ties in breach rate and
    trigger count, even and odd answered counts and waits that are not round numbers."""
    rng = np.random.default_rng(seed)
    status = rng.choice(["answered", "unanswered", "open"], size=n, p=[0.6, 0.25, 0.15])
    answered = status == "answered"
    wait = np.where(answered, rng.lognormal(8, 2, size=n) / 7, np.nan)
    return pd.DataFrame(
        {
            "rule": rng.choice(["demo", "lead"], size=n),
            "owner_name": rng.choice(["Ann", "Bob", "Cy", "Dee", None], size=n),
            "status": status,
            "sla_breached": (status == "unanswered") | (answered & (rng.random(n) < 0.3)),
            "latency_s": wait,
            "business_latency_s": wait,
            "wait_s": wait,
        }
    )


@pytest.mark.parametrize(("seed", "n", "top", "least"), [(1, 40, 12, 1), (2, 400, 5, 30)])
def test_owner_counts_in_sql_equal_the_analysis_in_pandas(
    seed: int, n: int, top: int, least: int
) -> None:
    frame = _random_followups(seed, n)
    expected = _owners_by_pandas(frame, top, least)
    got = followups._owner_counts(frame, top, least)
    assert len(got) == len(expected) > 1
    for col in ("rule", "owner", "triggers", "answered", "open", "unanswered", "breached"):
        assert got[col].tolist() == expected[col].tolist(), col
    # Exactly, not approximately: the page must not change by a bit.
    assert got.breach_rate.tolist() == expected.breach_rate.tolist()
    assert got.median_wait_h.tolist() == expected.median_wait_h.tolist()


def test_owner_counts_tie_order_and_no_answer() -> None:
    # Hand-made: Bob and Ann both breach 1 of 2 decided with 3 triggers (tie -> name order);
    # Cy breaches none; Dee has only open triggers (no rate: last) and no answered wait.
    rows = [
        ("Bob", "answered", True, 7200.0),
        ("Bob", "answered", False, 100.0),
        ("Bob", "open", False, None),
        ("Ann", "answered", False, 60.0),
        ("Ann", "unanswered", True, None),
        ("Ann", "open", False, None),
        ("Cy", "answered", False, 30.0),
        ("Dee", "open", False, None),
    ]
    frame = pd.DataFrame(rows, columns=["owner_name", "status", "sla_breached", "wait_s"])
    frame["rule"] = "demo"
    got = followups._owner_counts(frame, 12, 1)
    assert got.owner.tolist() == ["Ann", "Bob", "Cy", "Dee"]
    assert got.breach_rate.tolist()[:3] == [0.5, 0.5, 0.0] and np.isnan(got.breach_rate[3])
    assert got.median_wait_h.tolist()[:3] == [60 / 3600, 3650 / 3600, 30 / 3600]
    assert np.isnan(got.median_wait_h[3])
    assert got["within the SLA"].tolist() == [1, 1, 1, 0]
    assert got["answered late"].tolist() == [0, 1, 0, 0]
    assert got["no reply"].tolist() == [1, 0, 0, 0]
    assert got["open"].tolist() == [1, 1, 0, 1]
