"""The headline figures: the warehouse's numbers and the change since the previous run."""

from __future__ import annotations

import duckdb
import pytest

from journeymine.dashboard.sections import headline
from journeymine.dashboard.style import label


def test_kpi_header(con: duckdb.DuckDBPyConnection) -> None:
    fig = headline.kpi_header(con)
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
    assert shown[label(f"median wait for a reply: {rule} (h)")] == pytest.approx(6.0)
    assert shown["replies later than the SLA"] == pytest.approx(answered[1])


def test_kpi_header_shows_change_since_previous_run(tmp_path) -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE persons AS SELECT range AS person_id FROM range(12)")
    con.execute("CREATE TABLE run_history (run_id VARCHAR, finished_at TIMESTAMPTZ, figures JSON)")
    con.execute("INSERT INTO run_history VALUES ('a', now() - INTERVAL 1 DAY, '{\"persons\": 10}')")
    fig = headline.kpi_header(con)
    assert fig.data[0].delta.reference == 10 and fig.data[0].value == 12
