"""Each figure carries exactly the warehouse's numbers, escapes data strings, and degrades to a
plain-text note when its table is missing."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from journeymine.analyses.stats import wilson
from journeymine.dashboard import figures
from journeymine.dashboard.layout import layered_layout
from tests.dashboard.conftest import CALL, DEMO, IMG, PAID, SCRIPT, SIGNUP, Warehouse


def test_label_escapes_markup_and_masks_emails() -> None:
    assert figures.label(SCRIPT) == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert figures.label("call jane.doe@acme.io now") == "call [email hidden] now"


def test_kpi_header(con: duckdb.DuckDBPyConnection) -> None:
    fig = figures.kpi_header(con)
    shown = {t.title.text.replace("<br>", ""): t.value for t in fig.data}
    answered = con.execute(
        "SELECT median(latency_s) / 3600, avg(sla_breached::INT) FILTER (WHERE status <> 'open') FROM followups WHERE status <> 'open'"
    ).fetchone()
    assert shown["people"] == 41
    assert shown["journeys started"] == 41
    assert shown["reached paid"] == pytest.approx(26 / 41)
    (rule,) = con.execute(
        "SELECT DISTINCT rule FROM followups WHERE status = 'answered'"
    ).fetchone()
    # without a spec the rule is judged in wall-clock hours: median of 0.5, 2, 10, 30
    assert shown[figures.label(f"median wait for a reply: {rule} (h)")] == pytest.approx(6.0)
    assert shown["replies later than the SLA"] == pytest.approx(answered[1])


def test_kpi_header_shows_change_since_previous_run(tmp_path) -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE persons AS SELECT range AS person_id FROM range(12)")
    con.execute("CREATE TABLE run_history (run_id VARCHAR, finished_at TIMESTAMPTZ, figures JSON)")
    con.execute("INSERT INTO run_history VALUES ('a', now() - INTERVAL 1 DAY, '{\"persons\": 10}')")
    fig = figures.kpi_header(con)
    assert fig.data[0].delta.reference == 10 and fig.data[0].value == 12


def test_stage_funnel_carries_the_table(con: duckdb.DuckDBPyConnection) -> None:
    table = con.execute(
        "SELECT * FROM stage_funnel WHERE segment = 'all' ORDER BY entered DESC, converted DESC"
    ).df()
    fig = figures.stage_funnel(con)
    bars = {t.name: list(t.x) for t in fig.data if t.type == "bar"}
    assert set(bars) == {"converted", "dropped", "open", "reached the last stage"}
    for status in ("converted", "dropped", "open"):
        assert bars[status] == table[status].astype(float).tolist()
    assert list(fig.data[0].y) == ["signed up", figures.label(f"demo {IMG}"), "paid"]
    rates = next(t for t in fig.data if t.type == "scatter")
    assert rates.x[:2] == pytest.approx(table.conversion_rate[:2].tolist())
    assert rates.error_x.array[:2] == pytest.approx(
        (table.conversion_ci_high - table.conversion_rate)[:2].tolist()
    )
    assert rates.error_x.arrayminus[:2] == pytest.approx(
        (table.conversion_rate - table.conversion_ci_low)[:2].tolist()
    )


def test_stage_funnel_segments_side_by_side(con: duckdb.DuckDBPyConnection) -> None:
    segment = f"utm_source={SCRIPT}"
    fig = figures.stage_funnel(con, segments=["all", segment])
    stages, segments = fig.data[0].y
    assert list(segments) == ["all", figures.label(segment)] * 3
    assert SCRIPT not in fig.to_json()
    # A frame works as well as the warehouse.
    frame = con.execute("SELECT * FROM stage_funnel").df()
    assert figures.stage_funnel(frame).data[0].x == fig.data[0].x[::2]


def test_followup_latency_distribution_and_owners(con: duckdb.DuckDBPyConnection) -> None:
    fig = figures.followup_latency(con, sla_hours={"demo_request": 4}, min_triggers=1)
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
        assert shown == {figures.label(o): n for o, n in expected.items()} | {
            y: 0 for y in shown if y not in {figures.label(o) for o in expected.index}
        }
    assert "[email hidden]" in bars.y and not any("@" in y for y in bars.y)
    worst = table[table.status != "open"].groupby("owner").sla_breached.mean().idxmax()
    assert bars.y[0] == figures.label(worst)  # the worst breach rate comes first


def test_cost_of_waiting_from_the_warehouse(
    con: duckdb.DuckDBPyConnection, warehouse: Warehouse
) -> None:
    fig = figures.cost_of_waiting(
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
    fig = figures.cost_of_waiting(frame, target="paid")
    assert list(fig.data[0].y) == pytest.approx([0.75, 0.2])
    assert list(fig.data[0].x) == ["under 1 h", "over 2 days"]
    low, high = wilson(2, 10)
    assert fig.data[0].error_y.array[1] == pytest.approx(high - 0.2)
    assert fig.data[0].error_y.arrayminus[1] == pytest.approx(0.2 - low)


def test_journey_map_keeps_the_top_and_says_what_is_hidden(con: duckdb.DuckDBPyConnection) -> None:
    fig = figures.journey_map(con, max_activities=4, max_edges=5)
    edges = [t for t in fig.data if t.mode == "lines+markers"]
    dfg = con.execute("SELECT * FROM dfg ORDER BY frequency DESC").df()
    kept = dfg[dfg.source_activity != "web.page_view:/blog"].head(5)
    assert [int(t.customdata[0][2]) for t in edges] == kept.frequency.tolist()
    assert [t.customdata[0][0] for t in edges] == [figures.label(a) for a in kept.source_activity]
    widths = [t.line.width for t in edges]
    assert widths == sorted(widths, reverse=True)
    assert fig.layout.meta["hidden"] == {"activities": 1, "edges": 2}
    note = fig.layout.annotations[0].text
    assert "Hidden: 1 activities, 2 steps" in note
    nodes = next(t for t in fig.data if t.mode == "markers+text")
    names = [c[0] for c in nodes.customdata]
    assert sorted(names) == sorted(figures.label(a) for a in (SIGNUP, DEMO, CALL, PAID))
    # labels are never cut: broken into lines, the whole name is on the page
    assert sorted(t.replace("<br>", "") for t in nodes.text) == sorted(names)
    counts = next(t for t in fig.data if t.name == "counts")
    assert [int(c.replace(",", "")) for c in counts.text] == kept.frequency.tolist()
    assert SCRIPT not in fig.to_json()
    # Left to right: sign-up first, payment last; the loop back is drawn as an arc.
    x = dict(zip(names, nodes.x, strict=True))
    assert (
        x[figures.label(SIGNUP)]
        < x[figures.label(DEMO)]
        < x[figures.label(CALL)]
        < x[figures.label(PAID)]
    )
    hover = edges[1].customdata[0]
    assert hover[4] == "10.0 h" and hover[5] == "30.0 h"


def test_paths_sankey_counts_people(con: duckdb.DuckDBPyConnection) -> None:
    fig = figures.paths_sankey(con, steps=3)
    sankey = fig.data[0]
    labels = list(sankey.node.label)
    links = {
        (labels[s], labels[t]): v
        for s, t, v in zip(sankey.link.source, sankey.link.target, sankey.link.value, strict=True)
    }
    one, two, three = (f"{k}. {figures.label(a)}" for k, a in ((1, SIGNUP), (2, DEMO), (3, CALL)))
    assert links[(one, two)] == 41
    assert links[(two, three)] == 32
    assert links[(two, f"3. {figures.label(PAID)}")] == 6
    assert links[(two, "(journey ends)")] == 3
    started = figures.paths_sankey(con, steps=2, start=CALL).data[0]
    assert sum(started.link.value) == 32  # 18 pay after the call, 14 end there


def test_variants_table(con: duckdb.DuckDBPyConnection) -> None:
    fig = figures.variants_table(con, top=2)
    journeys, people, share, _ = fig.data[0].cells.values
    assert list(people) == ["18", "14"] and list(share) == ["43.9%", "34.1%"]
    assert journeys[0] == figures.label(" → ".join([SIGNUP, DEMO, CALL, PAID]))


@pytest.mark.parametrize(
    "draw",
    [
        figures.kpi_header,
        figures.stage_funnel,
        figures.conversion_by_segment,
        figures.followup_latency,
        figures.journey_map,
        figures.paths_sankey,
        figures.variants_table,
        lambda c: figures.cost_of_waiting(c, target_activities=["x"]),
    ],
)
def test_missing_tables_say_so(draw) -> None:  # type: ignore[no-untyped-def]
    fig = draw(duckdb.connect())
    reason = figures.missing_reason(fig)
    assert reason and ("table" in reason or "figures" in reason)
    assert fig.data == ()


def test_empty_tables_say_so(con: duckdb.DuckDBPyConnection) -> None:
    empty = duckdb.connect()
    empty.execute(
        "CREATE TABLE dfg AS SELECT * FROM (SELECT 'a' AS source_activity, 'b' AS target_activity, 1 AS frequency, 1 AS cases, 1.0 AS wait_mean_s, 1.0 AS wait_median_s, 1.0 AS wait_p90_s) WHERE false"
    )
    assert "no edges" in figures.missing_reason(figures.journey_map(empty))


def test_layout_layers_break_cycles_deterministically() -> None:
    edges = [
        ("a", "b", 10),
        ("b", "c", 8),
        ("c", "a", 1),
        ("a", "c", 2),
        ("c", "c", 3),
        ("b", "d", 1),
    ]
    layout = layered_layout(edges)
    assert layout.layers == {"a": 0, "b": 1, "c": 2, "d": 2}
    assert layout.back_edges == {("c", "a")}
    assert layout.width == 3 and layout.height == 2
    assert layered_layout(list(reversed(edges))).positions == layout.positions
    assert layered_layout([], nodes=["x"]).positions == {"x": (0.0, 0.0)}
