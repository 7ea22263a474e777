"""Export the journeys for other process-mining tools: XES and OCEL 2.0 (SQLite).

* **XES** (via pm4py): one trace per person, ``concept:name`` = activity, ``time:timestamp``,
  ``org:resource`` = owner; events of a trace in (time, seq) order.
* **OCEL 2.0 SQLite**, following the standard's relational layout: ``event``, ``object``,
  ``event_object``, ``object_object``, ``event_map_type``, ``object_map_type`` and one
  ``event_<type>`` / ``object_<type>`` table per type. Object types: ``person``, ``account``,
  ``opportunity``, ``subscription``, ``email message`` (linked to the events that name them)
  and ``lead`` (linked to its person). Only ids and times are exported: no emails, no names.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import duckdb

from journeymine.mining import pm4py_adapter

EVENT_OBJECTS = {  # object type -> SQL expression over touchpoints naming the object
    "person": "person_id::VARCHAR",
    "account": "account_id::VARCHAR",
    "opportunity": "deal_id",
    "subscription": "attributes->>'subscription'",
    "email message": "attributes->>'sg_message_id'",
}


def write_xes(con: duckdb.DuckDBPyConnection, path: str | Path) -> Path:
    """All touchpoints as an XES file, one trace per person."""
    frame = con.execute(
        "SELECT person_id::VARCHAR AS case_id, activity, occurred_at AS ts, owner AS resource "
        "FROM touchpoints ORDER BY person_id, occurred_at, seq"
    ).df()
    pm4py_adapter.write_xes(frame, path)
    return Path(path)


def _map_name(value: str) -> str:
    """OCEL table suffix for a type: letters and digits only, as the standard's tools expect."""
    return re.sub(r"[^0-9A-Za-z]+", "", value.title()) or "Type"


def _unique_maps(types: list[str]) -> dict[str, str]:
    maps: dict[str, str] = {}
    for t in types:
        name, n = _map_name(t), 1
        while name in maps.values():
            n += 1
            name = f"{_map_name(t)}{n}"
        maps[t] = name
    return maps


def write_ocel(con: duckdb.DuckDBPyConnection, path: str | Path) -> Path:
    """All touchpoints as an OCEL 2.0 SQLite file."""
    path = Path(path)
    path.unlink(missing_ok=True)
    links = " UNION ALL ".join(
        f"SELECT 'e' || event_id AS event_id, '{kind}' AS type, {expr} AS object_id "
        f"FROM touchpoints WHERE {expr} IS NOT NULL"
        for kind, expr in EVENT_OBJECTS.items()
    )
    event_objects = con.execute(
        f"SELECT event_id, type, type || ':' || object_id AS object_id FROM ({links})"
    ).fetchall()
    leads = con.execute(
        "SELECT 'person:' || person_id, 'lead:' || node_id FROM identity_nodes "
        "WHERE node_type = 'sf_lead'"
    ).fetchall()
    events = con.execute(
        "SELECT 'e' || event_id, activity, occurred_at FROM touchpoints ORDER BY occurred_at, seq"
    ).fetchall()
    objects = sorted({(o, t) for _, t, o in event_objects} | {(lead, "lead") for _, lead in leads})
    event_maps = _unique_maps(sorted({a for _, a, _ in events}))
    object_maps = _unique_maps(sorted({t for _, t in objects}))
    db = sqlite3.connect(path)
    with db:
        db.executescript(
            """
            CREATE TABLE event (ocel_id TEXT PRIMARY KEY, ocel_type TEXT);
            CREATE TABLE object (ocel_id TEXT PRIMARY KEY, ocel_type TEXT);
            CREATE TABLE event_object (ocel_event_id TEXT, ocel_object_id TEXT,
                                       ocel_qualifier TEXT);
            CREATE TABLE object_object (ocel_source_id TEXT, ocel_target_id TEXT,
                                        ocel_qualifier TEXT);
            CREATE TABLE event_map_type (ocel_type TEXT, ocel_type_map TEXT);
            CREATE TABLE object_map_type (ocel_type TEXT, ocel_type_map TEXT);
            """
        )
        db.executemany("INSERT INTO event VALUES (?, ?)", [(e, a) for e, a, _ in events])
        db.executemany("INSERT INTO object VALUES (?, ?)", objects)
        db.executemany("INSERT INTO event_object VALUES (?, ?, ?)", event_objects)
        db.executemany(
            "INSERT INTO object_object VALUES (?, ?, 'has lead')", [(p, lead) for p, lead in leads]
        )
        db.executemany("INSERT INTO event_map_type VALUES (?, ?)", list(event_maps.items()))
        db.executemany("INSERT INTO object_map_type VALUES (?, ?)", list(object_maps.items()))
        for activity, suffix in event_maps.items():
            db.execute(
                f'CREATE TABLE "event_{suffix}" (ocel_id TEXT PRIMARY KEY, ocel_time TIMESTAMP)'
            )
            db.executemany(
                f'INSERT INTO "event_{suffix}" VALUES (?, ?)',
                [(e, ts.isoformat()) for e, a, ts in events if a == activity],
            )
        for kind, suffix in object_maps.items():
            db.execute(
                f'CREATE TABLE "object_{suffix}" (ocel_id TEXT, ocel_time TIMESTAMP, '
                "ocel_changed_field TEXT)"
            )
            db.executemany(
                f"INSERT INTO \"object_{suffix}\" VALUES (?, '1970-01-01T00:00:00', NULL)",
                [(o,) for o, t in objects if t == kind],
            )
    db.close()
    return path
