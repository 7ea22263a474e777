"""XES and OCEL 2.0 exports of the sample journeys."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from journeymine.mining import export
from journeymine.mining.eventlog import read_event_log

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def con(sample_warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect(str(sample_warehouse), read_only=True) as con:
        yield con


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


@pytest.fixture(scope="module")
def ocel_path(con: duckdb.DuckDBPyConnection, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's OCEL 2.0 file, written once for the tests that only read it."""
    return export.write_ocel(con, tmp_path_factory.mktemp("ocel") / "journeys.sqlite")


def test_ocel_tables_and_counts(con: duckdb.DuckDBPyConnection, ocel_path: Path) -> None:
    db = sqlite3.connect(f"file:{ocel_path}?mode=ro", uri=True)  # shared: read it only
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


def test_ocel_reads_back_in_pm4py_with_every_event_object_and_relation(
    con: duckdb.DuckDBPyConnection, ocel_path: Path
) -> None:
    import pm4py

    ocel = pm4py.read_ocel2_sqlite(str(ocel_path))
    # Counted from the warehouse directly: objects per type, links per event, leads per person.
    per_type = dict(
        con.execute(
            """
            SELECT 'person', count(DISTINCT person_id) FROM touchpoints UNION ALL
            SELECT 'account', count(DISTINCT account_id) FROM touchpoints UNION ALL
            SELECT 'opportunity', count(DISTINCT deal_id) FROM touchpoints UNION ALL
            SELECT 'subscription', count(DISTINCT attributes->>'subscription') FROM touchpoints
            UNION ALL
            SELECT 'email message', count(DISTINCT attributes->>'sg_message_id') FROM touchpoints
            UNION ALL
            SELECT 'lead', count(*) FROM identity_nodes WHERE node_type = 'sf_lead'
            """
        ).fetchall()
    )
    links = con.execute(
        """
        SELECT count(person_id) + count(account_id) + count(deal_id)
               + count(attributes->>'subscription') + count(attributes->>'sg_message_id')
               + (SELECT count(*) FROM raw_events r JOIN touchpoints t ON t.event_id = r.seq
                  WHERE r.id_type = 'sf_lead')
        FROM touchpoints
        """
    ).fetchone()
    events = con.execute("SELECT count(*) FROM touchpoints").fetchone()
    assert events is not None and links is not None
    assert len(ocel.events) == events[0]
    assert ocel.objects["ocel:type"].value_counts().to_dict() == per_type
    assert len(ocel.relations) == links[0]
    assert ocel.o2o is not None and len(ocel.o2o) == per_type["lead"]
    first = con.execute(
        "SELECT activity, occurred_at FROM touchpoints ORDER BY occurred_at, seq LIMIT 1"
    ).fetchone()
    assert first is not None
    assert ocel.events.iloc[0]["ocel:activity"] == first[0]
    assert ocel.events.iloc[0]["ocel:timestamp"] == first[1]


def test_xes_is_written_to_exactly_the_path_without_nan(
    con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    path = export.write_xes(con, tmp_path / "journeys.out")
    assert path == tmp_path / "journeys.out"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journeys.out"]
    text = path.read_text()
    owners = con.execute("SELECT count(owner), count(*) FROM touchpoints").fetchone()
    assert owners is not None and 0 < owners[0] < owners[1]  # the sample has both kinds
    assert 'value="nan"' not in text
    assert text.count('key="org:resource"') == owners[0]


HOSTILE = {
    "activity": "email.sent:jane.doe@acme.com",
    "owner": "bob.smith@corp.example",
    "message": "<ann@mail.example.org>",
    "lead": "lead-of-ann@mail.example.org",
}


@pytest.fixture
def leaky() -> duckdb.DuckDBPyConnection:
    """A hand-built warehouse whose names, owners and ids carry email addresses."""
    db = duckdb.connect()
    db.execute(
        """
        CREATE TABLE touchpoints AS SELECT * FROM (VALUES
          (1, 7, NULL::BIGINT, NULL, 'web.signed_up', TIMESTAMPTZ '2026-01-01 10:00:00+00', 1,
           NULL, '{}'::JSON),
          (2, 7, NULL, NULL, $activity, TIMESTAMPTZ '2026-01-01 11:00:00+00', 2, $owner,
           json_object('sg_message_id', $message)),
          (3, 7, NULL, NULL, 'crm.lead_created', TIMESTAMPTZ '2026-01-01 12:00:00+00', 3,
           $owner, '{}'::JSON))
          t(event_id, person_id, account_id, deal_id, activity, occurred_at, seq, owner,
            attributes)
        """,
        {k: HOSTILE[k] for k in ("activity", "owner", "message")},
    )
    db.execute(
        "CREATE TABLE raw_events AS SELECT 3 AS seq, 'sf_lead' AS id_type, ? AS id_value",
        [HOSTILE["lead"]],
    )
    db.execute(
        "CREATE TABLE identity_nodes AS "
        "SELECT 'sf_lead' AS node_type, ? AS node_id, 7 AS person_id",
        [HOSTILE["lead"]],
    )
    return db


def assert_no_email(text: str) -> None:
    from journeymine.privacy import EMAIL, EMAIL_MASK

    assert EMAIL.search(text) is None
    assert not any(value in text for value in HOSTILE.values())
    assert EMAIL_MASK in text


def test_no_email_in_xes_or_ocel(leaky: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    assert_no_email(export.write_xes(leaky, tmp_path / "j.xes").read_text())
    db = sqlite3.connect(export.write_ocel(leaky, tmp_path / "j.sqlite"))
    dump = "\n".join(db.iterdump())
    db.close()
    assert_no_email(dump)
    assert "'email message:<[email hidden]>'" in dump and "'lead:[email hidden]'" in dump


def test_no_email_in_bpmn_or_pnml(tmp_path: Path) -> None:
    import pandas as pd

    from journeymine.mining import pm4py_adapter

    activity = HOSTILE["activity"]
    dfg = pd.DataFrame(
        {
            "source_activity": ["web.signed_up", activity],
            "target_activity": [activity, "crm.lead_created"],
            "frequency": [5, 5],
        }
    )
    tree = pm4py_adapter.discover_model(dfg, {"web.signed_up": 5}, {"crm.lead_created": 5})
    paths = pm4py_adapter.write_model(tree, tmp_path)
    for path in paths.values():
        assert_no_email(path.read_text())
    assert activity in str(tree)  # the caller's model itself is left as it was
