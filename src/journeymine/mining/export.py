"""Export the journeys for other process-mining tools: XES and OCEL 2.0 (SQLite).

* **XES** (via pm4py): one trace per person, ``concept:name`` = activity, ``time:timestamp``,
  ``org:resource`` = owner; events of a trace in (time, seq) order.
* **OCEL 2.0 SQLite**, following the standard's relational layout: ``event``, ``object``,
  ``event_object``, ``object_object``, ``event_map_type``, ``object_map_type`` and one
  ``event_<type>`` / ``object_<type>`` table per type. Object types: ``person``, ``account``,
  ``opportunity``, ``subscription``, ``email message``, ``lead``, each linked to the events
  that name it (a lead to its own CRM events, and to its person object to object). Only
  ids and times are exported: no names, and any email in an activity name, resource or
  object id is masked with the dashboard's rule.
"""

from __future__ import annotations

import os
import re
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from journeymine import warehouse
from journeymine.errors import WarehouseError
from journeymine.mining import pm4py_adapter
from journeymine.privacy import scrub

EVENT_OBJECTS = {  # object type -> SQL naming the object, over touchpoints t + raw_events r
    "person": "t.person_id::VARCHAR",
    "account": "t.account_id::VARCHAR",
    "opportunity": "t.deal_id",
    "subscription": "t.attributes->>'subscription'",
    "email message": "t.attributes->>'sg_message_id'",
    "lead": "CASE WHEN r.id_type = 'sf_lead' THEN r.id_value END",  # the lead's own events
}
# touchpoints.event_id is the seq of the raw event it came from: one raw row per touchpoint.
EVENTS_WITH_RAW = "touchpoints t LEFT JOIN raw_events r ON r.seq = t.event_id"


def _require_touchpoints(con: duckdb.DuckDBPyConnection) -> None:
    if not warehouse.table_exists(con, "touchpoints"):
        raise WarehouseError("the warehouse has no touchpoints yet; run `journeymine load` first")


def _masked(values: pd.Series) -> pd.Series:
    """Emails masked by the dashboard's own rule; missing values stay missing (None), so no
    ``nan`` string reaches a file. Masked once per distinct value: there are few."""
    masks = {v: scrub(v) for v in values.dropna().unique()}
    return pd.Series([masks.get(v) for v in values], index=values.index, dtype=object)


def write_xes(con: duckdb.DuckDBPyConnection, path: str | Path) -> Path:
    """All touchpoints as an XES file at exactly ``path``, one trace per person; emails in
    activity names and resources masked, events without an owner have no resource."""
    _require_touchpoints(con)
    frame = con.execute(
        "SELECT person_id::VARCHAR AS case_id, activity, occurred_at AS ts, owner AS resource "
        "FROM touchpoints ORDER BY person_id, occurred_at, seq"
    ).df()
    frame["activity"] = _masked(frame["activity"])
    frame["resource"] = _masked(frame["resource"])
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


Row = tuple[Any, ...]


def _ocel_rows(con: duckdb.DuckDBPyConnection) -> dict[str, list[Row]]:
    """Events, objects, event-object and object-object rows, every text masked."""
    links = " UNION ALL ".join(
        f"SELECT t.event_id, ? AS type, {expr} AS object_id FROM {EVENTS_WITH_RAW} "
        f"WHERE {expr} IS NOT NULL"
        for expr in EVENT_OBJECTS.values()
    )
    pairs = con.execute(
        f"SELECT DISTINCT 'e' || event_id, type, type || ':' || object_id FROM ({links})",
        list(EVENT_OBJECTS),
    ).fetchall()
    leads = con.execute(
        "SELECT DISTINCT 'person:' || person_id, 'lead:' || node_id FROM identity_nodes "
        "WHERE node_type = 'sf_lead'"
    ).fetchall()
    events = con.execute(
        "SELECT 'e' || event_id, activity, "
        "strftime(occurred_at AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M:%S.%f') "
        "FROM touchpoints ORDER BY occurred_at, seq"
    ).fetchall()
    e2o = [(e, scrub(o), t) for e, t, o in pairs]  # qualifier: the object's type
    o2o = [(scrub(p), scrub(lead), "has lead") for p, lead in leads]
    objects = {(o, t) for _, o, t in e2o}  # every lead has events: o2o adds no object
    return {
        "event": [(e, scrub(a), ts) for e, a, ts in events],
        "object": sorted(objects),
        "event_object": e2o,
        "object_object": o2o,
    }


def write_ocel(con: duckdb.DuckDBPyConnection, path: str | Path) -> Path:
    """All touchpoints as an OCEL 2.0 SQLite file at ``path`` (replaced whole, never half
    written); emails in activity names and object ids masked."""
    _require_touchpoints(con)
    path = Path(path)
    rows = _ocel_rows(con)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        _write_ocel_db(Path(name), rows)
        os.replace(name, path)
    finally:
        Path(name).unlink(missing_ok=True)
    return path


def _write_ocel_db(path: Path, rows: dict[str, list[Row]]) -> None:
    event_maps = _unique_maps(sorted({a for _, a, _ in rows["event"]}))
    object_maps = _unique_maps(sorted({t for _, t in rows["object"]}))
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
        db.executemany("INSERT INTO event VALUES (?, ?)", [(e, a) for e, a, _ in rows["event"]])
        db.executemany("INSERT INTO object VALUES (?, ?)", rows["object"])
        db.executemany("INSERT INTO event_object VALUES (?, ?, ?)", rows["event_object"])
        db.executemany("INSERT INTO object_object VALUES (?, ?, ?)", rows["object_object"])
        db.executemany("INSERT INTO event_map_type VALUES (?, ?)", list(event_maps.items()))
        db.executemany("INSERT INTO object_map_type VALUES (?, ?)", list(object_maps.items()))
        for activity, suffix in event_maps.items():  # suffixes are [0-9A-Za-z]+ (_map_name)
            db.execute(
                f'CREATE TABLE "event_{suffix}" (ocel_id TEXT PRIMARY KEY, ocel_time TIMESTAMP)'
            )
            db.executemany(
                f'INSERT INTO "event_{suffix}" VALUES (?, ?)',
                [(e, ts) for e, a, ts in rows["event"] if a == activity],
            )
        for kind, suffix in object_maps.items():
            db.execute(
                f'CREATE TABLE "object_{suffix}" (ocel_id TEXT, ocel_time TIMESTAMP, '
                "ocel_changed_field TEXT)"
            )
            db.executemany(
                f"INSERT INTO \"object_{suffix}\" VALUES (?, '1970-01-01 00:00:00', NULL)",
                [(o,) for o, t in rows["object"] if t == kind],
            )
    db.close()
