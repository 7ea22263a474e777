"""The most frequent journeys, as a table."""

from __future__ import annotations

import duckdb

from journeymine.dashboard.sections import variants
from journeymine.dashboard.style import label
from tests.dashboard.conftest import CALL, DEMO, PAID, SIGNUP


def test_variants_table(con: duckdb.DuckDBPyConnection) -> None:
    fig = variants.variants_table(con, top=2)
    journeys, people, share, _ = fig.data[0].cells.values
    assert list(people) == ["18", "14"] and list(share) == ["43.9%", "34.1%"]
    # The journey is wrapped into lines that fit its column; every character is kept.
    assert journeys[0].replace("<br>", "") == label(" → ".join([SIGNUP, DEMO, CALL, PAID]))
