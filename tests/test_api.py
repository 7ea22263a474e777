from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import duckdb
import pytest

import journeymine as jm
from journeymine.errors import UsageError, WarehouseError
from journeymine.ingest import stage
from tests.ingest import fake_source


def test_notebook_api_returns_frames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stage, "parser_for", lambda source: fake_source.parse_file)
    (tmp_path / "l" / "segment").mkdir(parents=True)
    (tmp_path / "l" / "segment" / "a.txt").write_text(
        "k1,1785000000,anonymous_id,a1,web.page_view:/,user_id,u1\n"
        "k2,1785000100,user_id,u1,web.signed_up\n"
        "k3,1785000200,user_id,u2,web.signed_up\n"
    )
    db = tmp_path / "w.duckdb"
    jm.load_landing(db, tmp_path / "l")
    with jm.open_warehouse(db) as wh:
        one = wh.touchpoints(person_id=1)
        assert list(one.activity) == ["web.page_view:/", "web.signed_up"]
        assert len(wh.touchpoints(since="2026-07-25 17:21:00+00")) == 2
        assert len(wh.persons()) == 2
        assert set(wh.explain_person(1).rule) == {"fake_link"}
        with pytest.raises(WarehouseError, match="no 'dfg' yet"):
            wh.view("dfg")
        with pytest.raises(WarehouseError, match="unknown view"):
            wh.view("secrets")


def test_every_documented_table_is_served_whole(sample_warehouse: Path) -> None:
    """``view`` gives each table of docs/warehouse.md as stored: its columns and row count
    read back over a connection of our own."""
    with duckdb.connect(str(sample_warehouse), read_only=True) as con:
        stored = {
            name: (
                [
                    c
                    for (c,) in con.execute(
                        f'SELECT column_name FROM (DESCRIBE "{name}")'
                    ).fetchall()
                ],
                con.execute(f'SELECT count(*) FROM "{name}"').fetchall()[0][0],
            )
            for name in jm.TABLES
        }
    with jm.open_warehouse(sample_warehouse) as wh:
        assert wh.tables() == list(jm.TABLES)  # a full run builds every documented table
        for name in jm.TABLES:
            frame = wh.view(name)
            assert (list(frame.columns), len(frame)) == stored[name], name


def test_an_unknown_table_is_named_with_the_known_ones(sample_warehouse: Path) -> None:
    with jm.open_warehouse(sample_warehouse) as wh, pytest.raises(WarehouseError) as error:
        wh.view("accounts")
    message = str(error.value)
    assert message.startswith("unknown view 'accounts'; the tables are: raw_rows, raw_events")
    assert all(name in message for name in jm.TABLES)


def test_the_public_names_are_the_documented_functions() -> None:
    """``jm.load`` / ``jm.analyse`` are the workflow functions, not modules."""
    from journeymine import api

    assert all(hasattr(jm, name) for name in jm.__all__)
    assert jm.load is api.load and jm.analyse is api.analyse
    assert jm.__version__ == version("journeymine")
    assert issubclass(WarehouseError, jm.JourneymineError)


LOG = """case,activity,time,who
1,register,2026-01-05T09:00:00Z,ann
1,approve,2026-01-05T10:00:00Z,bob
2,register,2026-01-06T09:00:00Z,ann
2,approve,2026-01-06T12:00:00Z,bob
3,register,2026-01-07T09:00:00Z,ann
3,reject,2026-01-07T09:30:00Z,cid
"""


def test_import_analyse_draw_and_export_through_the_public_api(tmp_path: Path) -> None:
    log = tmp_path / "claims.csv"
    log.write_text(LOG)
    db = tmp_path / "w.duckdb"
    report = jm.import_log(
        db, log, case="case", activity="activity", timestamp="time", resource="who"
    )
    assert report.totals()["rows_loaded"] == 6
    assert (
        jm.import_log(db, log, case="case", activity="activity", timestamp="time").skipped_files
        == 1
    )
    result = jm.analyse(db, None, tmp_path)
    assert (result.cases, result.variants, result.dfg_edges) == (3, 2, 2)
    with jm.open_warehouse(db) as wh:
        dfg = wh.view("dfg").set_index(["source_activity", "target_activity"])
        # by hand: two claims approved (waits 1 h and 3 h), one rejected after 30 min
        assert dfg.frequency.to_dict() == {("register", "approve"): 2, ("register", "reject"): 1}
        assert dfg.loc[("register", "approve"), "wait_median_s"] == 2 * 3600
        fig = jm.figure("journey_map", wh)
        labels = {str(t) for trace in fig.data for t in (trace.text or ())}
        assert {"register", "approve", "reject"} <= {label.split(" (")[0] for label in labels}
        page = jm.export_dashboard(wh, tmp_path / "d.html", title="Claims")
    assert "<title>Claims</title>" in page.read_text()
    with pytest.raises(
        UsageError, match="unknown figure .funnel.; the figures are: opportunities_table"
    ):
        jm.figure("funnel", db)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="nope.csv: no such file"):
        jm.import_log(db, tmp_path / "nope.csv")


def test_every_dashboard_figure_is_drawn_by_name(sample_warehouse: Path) -> None:
    """jm.FIGURES is the page's registry: one name per section figure, each drawn by
    jm.figure with the same traces the page's own section function draws."""
    from journeymine.dashboard.sections import FIGURES as SECTIONS

    assert len(jm.FIGURES) == len(SECTIONS)
    with jm.open_warehouse(sample_warehouse) as wh:
        for name, build in zip(jm.FIGURES, SECTIONS.values(), strict=True):
            drawn = jm.figure(name, wh)
            assert len(drawn.data) > 0, name
            assert drawn.to_json() == build(wh.con).to_json(), name


def test_followup_summaries_by_owner_count_every_trigger(sample_warehouse: Path) -> None:
    with duckdb.connect(str(sample_warehouse), read_only=True) as con:
        expected = dict(
            con.execute(
                "SELECT rule, avg(sla_breached::INT) FILTER (WHERE status <> 'open') "
                "FROM followups GROUP BY rule"
            ).fetchall()
        )
        triggers = con.execute("SELECT count(*) FROM followups").fetchall()[0][0]
    with jm.open_warehouse(sample_warehouse) as wh:
        by_rule = wh.followups().set_index("rule").breach_rate.to_dict()
        assert by_rule == pytest.approx(expected)
        assert wh.followups(by="owner").triggers.sum() == triggers
        with pytest.raises(UsageError, match="unknown breakdown 'team'; the breakdowns are: rule"):
            wh.followups(by="team")
