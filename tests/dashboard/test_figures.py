"""The registry of figures by name, the names ``journeymine.dashboard.figures`` keeps, and every
figure degrading to a plain-text note when its table is missing."""

from __future__ import annotations

import duckdb
import pytest

from journeymine.dashboard import figures
from journeymine.dashboard.page import SECTIONS
from journeymine.dashboard.sections import funnel
from journeymine.errors import UsageError


def test_every_section_of_the_page_draws_a_registered_figure() -> None:
    assert [s.anchor for s in SECTIONS] == list(figures.FIGURES)


def test_a_figure_by_name_is_the_section_builder(con: duckdb.DuckDBPyConnection) -> None:
    assert figures.figure("funnel", con).to_json() == funnel.stage_funnel(con).to_json()
    by_name = figures.figure("funnel", con, segments=["all"])
    assert by_name.to_json() == figures.stage_funnel(con, segments=["all"]).to_json()
    with pytest.raises(UsageError, match="No dashboard figure 'funel'.*'funnel'"):
        figures.figure("funel", con)


@pytest.mark.parametrize("name", list(figures.FIGURES))
def test_missing_tables_say_so(name: str) -> None:
    fig = figures.figure(name, duckdb.connect())
    reason = figures.missing_reason(fig)
    assert reason and ("table" in reason or "figures" in reason)
    assert fig.data == ()
