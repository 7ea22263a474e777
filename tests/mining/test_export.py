"""XES and OCEL 2.0 exports of the sample journeys."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import duckdb
import pytest

from journeymine.load import load_landing
from journeymine.mining import export
from journeymine.mining.eventlog import read_event_log

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    db = tmp_path_factory.mktemp("x") / "w.duckdb"
    load_landing(db, ROOT / "data" / "sample" / "landing")
    return duckdb.connect(str(db), read_only=True)


def test_xes_round_trip(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = export.write_xes(con, tmp_path / "journeys.xes")
    back = read_event_log(path).to_pandas()
    counts = con.execute("SELECT count(*), count(DISTINCT person_id) FROM touchpoints").fetchall()[
        0
    ]
    assert (len(back), back.case_id.nunique()) == counts
    person = con.execute(
        "SELECT person_id, list(activity ORDER BY occurred_at, seq) FROM touchpoints "
        "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
    ).fetchall()[0]
    assert back[back.case_id == str(person[0])].activity.tolist() == person[1]


def test_ocel_tables_and_counts(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    path = export.write_ocel(con, tmp_path / "journeys.sqlite")
    db = sqlite3.connect(path)
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {
        "event",
        "object",
        "event_object",
        "object_object",
        "event_map_type",
        "object_map_type",
    } <= tables
    events = db.execute("SELECT count(*) FROM event").fetchone()[0]
    assert events == con.execute("SELECT count(*) FROM touchpoints").fetchone()[0]
    types = dict(db.execute("SELECT ocel_type, count(*) FROM object GROUP BY 1").fetchall())
    assert (
        types["person"]
        == con.execute("SELECT count(DISTINCT person_id) FROM touchpoints").fetchone()[0]
    )
    assert (
        types["opportunity"]
        == con.execute("SELECT count(DISTINCT deal_id) FROM touchpoints").fetchone()[0]
    )
    assert {"account", "subscription", "email message", "lead"} <= set(types)
    for ocel_type, suffix in db.execute("SELECT ocel_type, ocel_type_map FROM event_map_type"):
        n = db.execute(f'SELECT count(*) FROM "event_{suffix}"').fetchone()[0]
        assert (
            n
            == db.execute("SELECT count(*) FROM event WHERE ocel_type = ?", [ocel_type]).fetchone()[
                0
            ]
        )
    assert db.execute("SELECT count(*) FROM object WHERE ocel_id LIKE '%@%'").fetchone()[0] == 0
