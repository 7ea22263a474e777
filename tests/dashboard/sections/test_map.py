"""The journey map: the most frequent steps, what is hidden, left to right."""

from __future__ import annotations

import duckdb

from journeymine.dashboard.sections import map as journey
from journeymine.dashboard.style import label, missing_reason
from tests.dashboard.conftest import CALL, DEMO, PAID, SCRIPT, SIGNUP


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
