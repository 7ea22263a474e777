"""The journey map: the most frequent steps, what is hidden, left to right."""

from __future__ import annotations

import itertools

import duckdb

from journeymine.dashboard.sections import map as journey
from journeymine.dashboard.style import label, missing_reason
from tests.dashboard.conftest import CALL, DEMO, PAID, SCRIPT, SIGNUP
from tests.dashboard.map_geometry import label_boxes, overlapping


def test_journey_map_keeps_the_top_and_says_what_is_hidden(con: duckdb.DuckDBPyConnection) -> None:
    fig = journey.journey_map(con, max_activities=4, max_edges=5)
    edges = [t for t in fig.data if t.mode == "lines+markers"]
    dfg = con.execute("SELECT * FROM dfg ORDER BY frequency DESC").df()
    kept = dfg[dfg.source_activity != "web.page_view:/blog"].head(5)
    assert [int(t.customdata[0][2]) for t in edges] == kept.frequency.tolist()
    assert [t.customdata[0][0] for t in edges] == [label(a) for a in kept.source_activity]
    widths = [t.line.width for t in edges]
    assert widths == sorted(widths, reverse=True)
    assert fig.layout.meta["hidden"] == {"activities": 1, "edges": 2}
    note = fig.layout.annotations[0].text
    assert "Hidden: 1 activities, 2 steps" in note
    nodes = next(t for t in fig.data if t.mode == "markers+text")
    names = [c[0] for c in nodes.customdata]
    assert sorted(names) == sorted(label(a) for a in (SIGNUP, DEMO, CALL, PAID))
    # labels are never cut: broken into lines, the whole name is on the page
    assert sorted(t.replace("<br>", "") for t in nodes.text) == sorted(names)
    counts = next(t for t in fig.data if t.name == "counts")
    assert [int(c.replace(",", "")) for c in counts.text] == kept.frequency.tolist()
    assert SCRIPT not in fig.to_json()
    # Left to right: sign-up first, payment last; the loop back is drawn as an arc.
    x = dict(zip(names, nodes.x, strict=True))
    assert x[label(SIGNUP)] < x[label(DEMO)] < x[label(CALL)] < x[label(PAID)]
    hover = edges[1].customdata[0]
    assert hover[4] == "10.0 h" and hover[5] == "30.0 h"


def test_empty_tables_say_so(con: duckdb.DuckDBPyConnection) -> None:
    empty = duckdb.connect()
    empty.execute(
        "CREATE TABLE dfg AS SELECT * FROM (SELECT 'a' AS source_activity, 'b' AS target_activity, 1 AS frequency, 1 AS cases, 1.0 AS wait_mean_s, 1.0 AS wait_median_s, 1.0 AS wait_p90_s) WHERE false"
    )
    assert "no edges" in missing_reason(journey.journey_map(empty))


def test_a_long_journey_map_keeps_every_label_clear() -> None:
    """Sixteen steps in a row with a parallel branch, long vendor names: the labels of level
    nodes in neighbouring layers go on opposite sides, and no two labels meet on the page."""
    main = [f"crm.stage_{i:02d}_opportunity_updated" for i in range(16)]
    side = [f"support.ticket_{i:02d}_agent_replied" for i in range(3, 11)]
    edges = [(a, b, 100 - i) for i, (a, b) in enumerate(itertools.pairwise(main))]
    edges += [(a, b, 40) for a, b in itertools.pairwise(side)]
    edges += [(main[2], side[0], 30), (side[-1], main[12], 30), (main[9], main[4], 5)]
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE dfg (source_activity VARCHAR, target_activity VARCHAR, frequency INT, "
        "cases INT, wait_mean_s DOUBLE, wait_median_s DOUBLE, wait_p90_s DOUBLE)"
    )
    con.executemany("INSERT INTO dfg VALUES (?, ?, ?, ?, 60, 60, 600)", [(*e, e[2]) for e in edges])
    fig = journey.journey_map(con, max_activities=40, max_edges=60)
    nodes = next(t for t in fig.data if t.mode == "markers+text")
    assert len(nodes.x) == 24 and max(nodes.x) == 15  # every node, sixteen layers
    side_of = {
        (x, y): where for x, y, where in zip(nodes.x, nodes.y, nodes.textposition, strict=True)
    }
    level = [(p, (p[0] + 1, p[1])) for p in side_of if (p[0] + 1, p[1]) in side_of]
    assert level and all(side_of[a] != side_of[b] for a, b in level)
    assert overlapping(label_boxes(fig)) == []
    # wrapped to the room there is, never cut
    assert [t.replace("<br>", "") for t in nodes.text] == [c[0] for c in nodes.customdata]
