"""The follow-up section: waits per rule against the SLA, per owner, and the cost of waiting."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

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
