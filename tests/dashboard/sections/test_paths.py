"""How journeys begin: the Sankey counts people per path."""

from __future__ import annotations

import duckdb

from journeymine.dashboard.sections import paths
from journeymine.dashboard.style import label
from tests.dashboard.conftest import CALL, DEMO, PAID, SIGNUP


def test_paths_sankey_counts_people(con: duckdb.DuckDBPyConnection) -> None:
    fig = paths.paths_sankey(con, steps=3)
    sankey = fig.data[0]
    labels = list(sankey.node.label)
    links = {
        (labels[s], labels[t]): v
        for s, t, v in zip(sankey.link.source, sankey.link.target, sankey.link.value, strict=True)
    }
    one, two, three = (f"{k}. {label(a)}" for k, a in ((1, SIGNUP), (2, DEMO), (3, CALL)))
    assert links[(one, two)] == 41
    assert links[(two, three)] == 32
    assert links[(two, f"3. {label(PAID)}")] == 6
    assert links[(two, "(journey ends)")] == 3
    started = paths.paths_sankey(con, steps=2, start=CALL).data[0]
    assert sum(started.link.value) == 32  # 18 pay after the call, 14 end there
