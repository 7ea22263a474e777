"""The canonical layer: ``touchpoints`` (one event per row, stitched) and ``persons``.

``touchpoints`` is built from the raw layer after every load, stored sorted by
``(person_id, occurred_at, seq)`` so that per-person window functions read it in order
(DESIGN §7). When a record arrives in several versions (a Salesforce export of a changed
Lead), the event from the newest version wins: the version its record key names
(``Id@SystemModstamp``), else the one loaded last — so an older export loaded later never
overwrites a newer record.

:func:`build` rebuilds both tables, or after an incremental
:func:`journeymine.canonical.identity.stitch` only the rows of the persons that night changed
(:func:`refresh`): the same rows either way.
A refreshed ``touchpoints`` holds the same rows but is no longer stored in person order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import duckdb

from journeymine.canonical.identity_graph import scalar
from journeymine.sql import create_in_parts, in_partition, literal
from journeymine.vocabulary import OWNER_LABEL, SF_OPPORTUNITY
from journeymine.warehouse import settings, table_names

log = logging.getLogger(__name__)

# A source's correction of rebuilt touchpoints; returns the persons whose rows it changed.
# During a night's refresh the temp tables ``night_touchpoints`` (the rows rebuilt or added, as
# built from the raw events) and ``night_raw_rows`` (the night's raw rows) exist: a fix-up may
# restrict itself to what they can change. A full build runs without them.
Fixup = Callable[[duckdb.DuckDBPyConnection], list[int]]

# {latest}: the winning versions (``LATEST`` over {events}, the raw events to consider, every
# version of each record among them, and {rows}, the raw rows holding them, those of a record's
# versions at least); {persons}: a condition on the
# person id; {owners}: a condition on the owner ids whose names are wanted; {nodes}: the
# identity nodes (a night's own events: only theirs, ``stitch_event_persons``).
# Only the records that came more than once are ranked: the rest stream through, where a window
# over every event sorted all of them with their attributes (10M events: 155 s -> 22 s, the sort
# spilling under the writer's cap). The older versions go by their (unique) seq.
# ``latest`` is NOT MATERIALIZED: DuckDB 2.0 materialises a CTE whole by default, and at 100M
# raw rows under the 1GB cap that copy of every event was what ran out of memory.
OLDER = """
    SELECT e.seq FROM {events} e
    SEMI JOIN (SELECT source, event_key FROM {events} GROUP BY ALL HAVING count(*) > 1) again
         ON again.source = e.source AND again.event_key IS NOT DISTINCT FROM e.event_key
    LEFT JOIN {rows} r USING (source, file, line)
    QUALIFY row_number() OVER (
        PARTITION BY e.source, e.event_key
        ORDER BY TRY_CAST(nullif(split_part(r.record_key, '@', 2), '') AS TIMESTAMPTZ)
                 DESC NULLS LAST, e.seq DESC) > 1
"""
LATEST = f"SELECT * FROM {{events}} ANTI JOIN ({OLDER}) older USING (seq)"
SELECT_TOUCHPOINTS = f"""
WITH latest AS NOT MATERIALIZED (  -- the newest version of a record wins, whatever the order
    {{latest}}
)
SELECT e.seq AS event_id, n.person_id, coalesce(acc.account_id, pa.account_id) AS account_id,
       CASE WHEN e.id_type = {literal(SF_OPPORTUNITY)} THEN e.id_value END AS deal_id,
       e.source, e.event_type, e.activity, e.actor, e.occurred_at, e.seq, e.channel, e.owner,
       coalesce(o.name, e.owner) AS owner_name, e.attributes, e.file, e.line
FROM latest e
LEFT JOIN (SELECT id, arg_max(name, line) AS name FROM raw_labels
           WHERE kind = {literal(OWNER_LABEL)} AND {{owners}} GROUP BY id) o ON o.id = e.owner
JOIN {{nodes}} n ON n.node_type = e.id_type AND n.node_id = e.id_value
LEFT JOIN account_nodes acc
       ON acc.node_type = e.account_type AND acc.node_id = e.account_value
LEFT JOIN person_accounts pa ON pa.person_id = n.person_id  -- the account of the time
      AND (pa.valid_from IS NULL OR e.occurred_at >= pa.valid_from)
      AND (pa.valid_to IS NULL OR e.occurred_at < pa.valid_to)
WHERE {{persons}}
"""

SELECT_PERSONS = """
WITH ids AS (
    SELECT person_id, list({{'type': node_type, 'id': node_id}} ORDER BY node_type, node_id)
           AS identifiers
    FROM identity_nodes WHERE {persons} GROUP BY person_id
), activity AS ({activity})
SELECT i.person_id, a.first_seen, a.last_seen, coalesce(a.events, 0) AS events,
       pa.account_id, i.identifiers
FROM ids i LEFT JOIN activity a USING (person_id)
LEFT JOIN (SELECT person_id, account_id FROM person_accounts WHERE valid_to IS NULL) pa
       USING (person_id)  -- the current account
"""

ACTIVITY = """
SELECT person_id, min(occurred_at) AS first_seen, max(occurred_at) AS last_seen,
       count(*) AS events
FROM touchpoints WHERE {persons} GROUP BY person_id
"""


def _build_touchpoints(con: duckdb.DuckDBPyConnection) -> None:
    """Every touchpoint, in order of person, time and seq: in ranges of person id when the
    events are many for the writer's cap (at 100M raw rows under 1GB the one statement, its
    join with every identity node and its sort, fails on some runs and passes on others).
    The older versions of records are then found first, in hash partitions of the record
    (a GROUP BY over every event's key: ~100M groups of strings at 100M raw rows)."""
    parts = settings.partitions(con, scalar(con, "SELECT count(*) FROM raw_events"))
    latest = LATEST.format(events="raw_events", rows="raw_rows")
    if parts > 1:  # each record's versions share its event_key: hash partitions of it
        older = (
            OLDER.format(
                events=f"(FROM raw_events WHERE {in_partition('event_key', p, parts)})",
                rows="raw_rows",
            )
            for p in range(parts)
        )
        create_in_parts(con, "touch_older", older, temp=True)
        latest = "SELECT * FROM raw_events ANTI JOIN touch_older USING (seq)"

    def select(mine: str) -> str:
        nodes = "identity_nodes" if parts == 1 else f"(FROM identity_nodes WHERE {mine})"
        return (
            SELECT_TOUCHPOINTS.format(latest=latest, persons="true", owners="true", nodes=nodes)
            + "ORDER BY n.person_id, e.occurred_at, e.seq"
        )

    _by_person_ranges(con, "touchpoints", parts, select)
    con.execute("DROP TABLE IF EXISTS touch_older")


def _build_persons(con: duckdb.DuckDBPyConnection) -> None:
    """``persons`` from every identity node and touchpoint, in order of person id: in ranges
    of it when they are many for the writer's cap (at 100M raw rows under 1GB, the list of
    each of 9M persons' identifiers fails whole and passes in 8 ranges)."""
    rows = scalar(con, "SELECT count(*) FROM identity_nodes") + _count(con)

    def select(mine: str) -> str:
        activity = ACTIVITY.format(persons=mine)
        return SELECT_PERSONS.format(persons=mine, activity=activity) + "ORDER BY i.person_id"

    _by_person_ranges(con, "persons", settings.partitions(con, rows), select)


def _by_person_ranges(
    con: duckdb.DuckDBPyConnection, table: str, parts: int, select: Callable[[str], str]
) -> None:
    """Make ``table`` from ``select(condition on person_id)``, one range of person ids after
    the other, so that the table is in person order as one statement would have made it."""
    top = scalar(con, "SELECT coalesce(max(person_id), 0) FROM identity_nodes")
    create_in_parts(con, table, (select(mine) for mine in _id_ranges("person_id", top, parts)))


def _id_ranges(column: str, top: int, parts: int) -> list[str]:
    """Conditions that cut ids 0..``top`` into ``parts`` ranges in order (one: every row)."""
    if parts == 1:
        return ["true"]
    step = top // parts + 1
    return [
        f"{column} >= {part * step}"
        + ("" if part == parts - 1 else f" AND {column} < {(part + 1) * step}")
        for part in range(parts)
    ]


# The persons a night re-derives whole: those whose identifiers, account or touchpoints it
# rebuilt. Their activity comes without reading touchpoints: a reread person's touchpoints are
# all in ``night_touchpoints``; a relabelled one's old figures (its ``persons`` row) go to the
# person it became; any other kept its old ones and gained those of ``night_touchpoints``.
NIGHT_REBUILT_PERSONS = """
CREATE OR REPLACE TEMP TABLE night_rebuilt_persons AS
SELECT person_id FROM night_persons UNION SELECT person_id FROM stitch_changed_persons
"""
NIGHT_ACTIVITY = """
CREATE OR REPLACE TEMP TABLE night_activity AS
SELECT person_id, min(first_seen) AS first_seen, max(last_seen) AS last_seen,
       sum(events)::BIGINT AS events
FROM (
    SELECT person_id, first_seen, last_seen, events FROM persons
    WHERE person_id IN (SELECT person_id FROM night_rebuilt_persons)
      AND person_id NOT IN (SELECT person_id FROM night_persons)
    UNION ALL
    SELECT r.after, p.first_seen, p.last_seen, p.events FROM persons p
    JOIN night_relabel r ON r.before = p.person_id
    UNION ALL
    SELECT person_id, min(occurred_at), max(occurred_at), count(*) FROM night_touchpoints
    WHERE person_id IN (SELECT person_id FROM night_rebuilt_persons)  -- the others: NIGHT_GAINED
    GROUP BY person_id
)
GROUP BY person_id
"""
# Everyone else with a new touchpoint keeps their row (identifiers, account) and adds it up.
NIGHT_GAINED = """
UPDATE persons p
SET first_seen = least(coalesce(p.first_seen, a.first_seen), a.first_seen),
    last_seen = greatest(coalesce(p.last_seen, a.last_seen), a.last_seen),
    events = p.events + a.events
FROM (SELECT person_id, min(occurred_at) AS first_seen, max(occurred_at) AS last_seen,
             count(*) AS events
      FROM night_touchpoints
      WHERE person_id NOT IN (SELECT person_id FROM night_rebuilt_persons)
      GROUP BY person_id) a
WHERE p.person_id = a.person_id
"""


def _refresh_persons(con: duckdb.DuckDBPyConnection) -> None:
    """Bring ``persons`` up to date after a night's touchpoints refresh."""
    con.execute(NIGHT_REBUILT_PERSONS)
    con.execute(NIGHT_ACTIVITY)
    mine = "person_id IN (SELECT person_id FROM night_rebuilt_persons)"
    con.execute(f"DELETE FROM persons WHERE {mine}")
    con.execute(
        "INSERT INTO persons " + SELECT_PERSONS.format(persons=mine, activity="FROM night_activity")
    )
    con.execute(NIGHT_GAINED)


def build(con: duckdb.DuckDBPyConnection, fixups: Sequence[Fixup] = ()) -> int:
    """Bring ``touchpoints`` and ``persons`` in line with the last identity stitch: only the
    persons it changed when it was incremental (it leaves the temp table ``stitch_night``),
    else everything. ``fixups`` are the sources' fix-ups run on the rebuilt touchpoints
    (``journeymine.ingest.sources.TOUCHPOINT_FIXUPS``). Returns the number of touchpoints."""
    night = (
        con.execute("SELECT run_id FROM stitch_night").fetchall()
        if "stitch_night" in table_names(con, temporary=True)
        else []
    )
    if night:
        return refresh(con, str(night[0][0]), fixups)
    _build_touchpoints(con)
    for table in ("night_touchpoints", "night_raw_rows"):  # not a night: fix-ups fix every row
        con.execute(f"DROP TABLE IF EXISTS {table}")
    _fix(con, fixups)
    _build_persons(con)
    return _count(con)


# The earlier versions of the records the night brought a version of, found by one scan of
# ``raw_events`` (the one a night needs) that reads two columns, seq and event_key: joining on
# (source, event_key) there read every projected column of every row. Earlier candidates (none
# on most nights) are then checked on source and, with the night's own rows, make
# ``night_versions`` (every version of each such record, narrow); on a night without any, that
# table is not made and no step below reads versions.
OLDER_VERSIONS = """
CREATE OR REPLACE TEMP TABLE night_older_seqs AS
SELECT seq FROM raw_events
WHERE seq < $1 AND event_key IN (SELECT event_key FROM night_raw_events)
"""
NIGHT_VERSIONS = """
CREATE OR REPLACE TEMP TABLE night_versions AS
SELECT seq, source, file, line, event_key, id_type, id_value FROM night_raw_events
UNION ALL
SELECT seq, source, file, line, event_key, id_type, id_value FROM raw_events
WHERE seq IN (SELECT seq FROM night_older_seqs)
  AND (source, event_key) IN (SELECT (source, event_key) FROM night_raw_events)
"""


def _night_versions(con: duckdb.DuckDBPyConnection, first: int) -> bool:
    """Whether the night brought a new version of a record loaded earlier (then the temp table
    ``night_versions`` holds every version of those records)."""
    older = scalar(con, OLDER_VERSIONS, [first]) > 0  # CREATE ... AS: its row count
    if older:
        con.execute(NIGHT_VERSIONS)
    con.execute("DROP TABLE night_older_seqs")
    return older


# The persons whose touchpoints a night rebuilds: those whose events it moved to another person
# or account (``stitch_moved_persons``), those with an event that a new version of the same
# record may displace (every version's person: only when the night brought a version of an
# earlier record, {versions}), and those with an event whose owner got a new name (the last
# two: ``night_other_persons``). Everyone else at most gains the night's new events.
# $1: the night's first event.
NIGHT_PERSONS = f"""
CREATE OR REPLACE TEMP TABLE night_other_persons AS
WITH owners AS (
    SELECT DISTINCT id FROM night_raw_labels WHERE kind = {literal(OWNER_LABEL)}
)
SELECT person_id FROM touchpoints WHERE owner IN (SELECT id FROM owners)
{{versions}}
"""
VERSIONED_PERSONS = """
UNION
SELECT n.person_id FROM night_versions e
SEMI JOIN (SELECT DISTINCT source, event_key FROM night_versions WHERE seq < $1) versioned
     USING (source, event_key)
JOIN identity_nodes n ON n.node_type = e.id_type AND n.node_id = e.id_value
"""
NIGHT_ALL_PERSONS = """
CREATE OR REPLACE TEMP TABLE night_persons AS
SELECT person_id FROM stitch_moved_persons UNION SELECT person_id FROM night_other_persons;
"""

# A moved person whose identifiers all went to one person (a merge: ``stitch_person_targets``)
# keeps its touchpoints, relabelled: each event's person is that of its identifier, and its
# account is the same when the person's accounts over time are (``person_accounts`` before and
# after) and no account node it names changed id (``stitch_account_moved``). Only persons split
# apart, whose accounts changed, or with a displaced version or a renamed owner have their
# events read again (``night_reread``): rereading scattered rows of ``raw_events`` is most of a
# night's cost.
NIGHT_RELABEL = """
CREATE OR REPLACE TEMP TABLE night_relabel AS
WITH single AS (
    SELECT before, min(after) AS after FROM stitch_person_targets
    WHERE before IN (SELECT person_id FROM night_persons)
    GROUP BY before HAVING count(*) = 1 AND count(after) = 1
), was AS (
    SELECT person_id, list((account_id, valid_from, valid_to) ORDER BY ALL) AS periods
    FROM stitch_periods_before GROUP BY person_id
), now AS (
    SELECT person_id, list((account_id, valid_from, valid_to) ORDER BY ALL) AS periods
    FROM person_accounts WHERE person_id IN (SELECT after FROM single) GROUP BY person_id
), blocked AS (
    SELECT person_id FROM night_other_persons UNION SELECT person_id FROM stitch_account_moved
)
SELECT s.before, s.after FROM single s
LEFT JOIN was w ON w.person_id = s.before LEFT JOIN now n ON n.person_id = s.after
WHERE w.periods IS NOT DISTINCT FROM n.periods
  AND s.before NOT IN (FROM blocked) AND s.after NOT IN (FROM blocked);
CREATE OR REPLACE TEMP TABLE night_reread AS
SELECT person_id FROM night_persons EXCEPT SELECT before FROM night_relabel;
"""
RELABEL = """
UPDATE touchpoints t SET person_id = r.after
FROM night_relabel r WHERE t.person_id = r.before AND r.before <> r.after
"""

# The events to consider, taken before those persons' touchpoints go: each of their
# touchpoints' events, and every version of the night's records. Which version of a record
# wins does not depend on identities, so a record the night brought no version of keeps its
# winner: its other versions need no reading.
NIGHT_EVENTS = """
CREATE OR REPLACE TEMP TABLE night_events AS
SELECT * FROM raw_events WHERE seq IN (
    SELECT event_id FROM touchpoints WHERE person_id IN (SELECT person_id FROM night_reread)
    {versions}
)
UNION ALL SELECT * FROM night_raw_events
"""
OLDER_VERSION_SEQS = "UNION ALL SELECT seq FROM night_versions WHERE seq < $1"

# The raw rows whose record keys order the versions: the night's, and the older versions of
# its records (none on most nights: then ``raw_rows`` is not read).
NIGHT_VERSION_ROWS = """
INSERT INTO night_version_rows SELECT source, file, line, record_key FROM raw_rows
SEMI JOIN (SELECT source, file, line FROM night_versions WHERE seq < $1) USING (source, file, line)
"""


def refresh(con: duckdb.DuckDBPyConnection, run_id: str, fixups: Sequence[Fixup] = ()) -> int:
    """Bring touchpoints and persons up to date after the incremental night ``run_id``: the
    persons it changed are rebuilt whole or relabelled, the others gain their new events.
    Returns the number of touchpoints."""
    # A load numbers its events above every earlier one: the night's are those from here on.
    # (raw_events' largest is read only on a night without events: a scan of every seq)
    first = con.execute("SELECT min(seq) FROM night_raw_events").fetchall()[0][0]
    if first is None:
        first = scalar(con, "SELECT coalesce(max(seq), 0) + 1 FROM raw_events")
    older = _night_versions(con, first)
    versioned = VERSIONED_PERSONS if older else ""
    con.execute(NIGHT_PERSONS.format(versions=versioned), _first(older, first))
    reread = scalar(con, NIGHT_ALL_PERSONS + NIGHT_RELABEL)  # night_reread's, the last
    events, rows = _night_events(con, first, older, reread)
    if reread:
        con.execute(
            "DELETE FROM touchpoints WHERE person_id IN (SELECT person_id FROM night_reread)"
        )
    if scalar(con, "SELECT count(*) FROM night_relabel WHERE before <> after"):
        con.execute(RELABEL)  # after the delete: a relabelled row may join a reread person
    # A record's winner is a new touchpoint when its person is rebuilt or when it is new (as
    # every one of the night's own events is: when they are all that is read, no condition).
    rebuilt = "person_id IN (SELECT person_id FROM night_persons)"
    own = events == "night_raw_events"
    con.execute(
        "CREATE OR REPLACE TEMP TABLE night_touchpoints AS "
        + SELECT_TOUCHPOINTS.format(
            latest=LATEST.format(events=events, rows=rows),
            persons="true" if own else f"(n.{rebuilt} OR e.seq >= {int(first)})",
            owners=f"id IN (SELECT owner FROM {events})",
            nodes="identity_nodes" if events == "night_events" else "stitch_event_persons",
        )
    )
    con.execute("INSERT INTO touchpoints FROM night_touchpoints")
    # A users page of tonight may name the author of a reply loaded on an earlier night: that
    # changes the reply's actor, nothing the persons table holds.
    _fix(con, fixups)
    _refresh_persons(con)
    if log.isEnabledFor(logging.DEBUG):
        counts = "SELECT (SELECT count(*) FROM night_persons), (SELECT count(*) FROM {events}), "
        counts += "(SELECT count(*) FROM night_touchpoints)"
        log.debug("touchpoints refresh: %s", con.execute(counts.format(events=events)).fetchall())
    _drop_night_tables(con)
    return _count(con)


def _first(older: bool, first: int) -> list[int]:
    """The parameters of a statement that names the night's first event only with versions."""
    return [first] if older else []


def _night_events(
    con: duckdb.DuckDBPyConnection, first: int, older: bool, reread: int
) -> tuple[str, str]:
    """The tables of the raw events and rows the night's touchpoints are built from: the night's
    own (most nights: nothing earlier to reread, no search of raw_events), or ``night_events``
    and ``night_version_rows`` with the earlier events of the persons reread and, when the night
    brought a version of an earlier record (``older``), the earlier versions of its records;
    ``reread``: how many persons ``night_reread`` holds."""
    if not older and not reread:
        return "night_raw_events", "night_raw_rows"
    versions = OLDER_VERSION_SEQS if older else ""
    con.execute(NIGHT_EVENTS.format(versions=versions), _first(older, first))
    con.execute("CREATE OR REPLACE TEMP TABLE night_version_rows AS FROM night_raw_rows")
    if older:
        con.execute(NIGHT_VERSION_ROWS, [first])
    return "night_events", "night_version_rows"


def _drop_night_tables(con: duckdb.DuckDBPyConnection) -> None:
    temps = (
        "night_persons",
        "night_other_persons",
        "night_relabel",
        "night_reread",
        "night_activity",
        "night_events",
        "night_versions",
        "night_version_rows",
        "night_touchpoints",
        "night_rebuilt_persons",
        *(f"night_raw_{kind}" for kind in ("rows", "events", "edges", "labels")),
    )
    stitched = (
        "changed_persons",
        "moved_persons",
        "person_targets",
        "periods_before",
        "event_persons",
        "account_moved",
        "night",
    )
    con.execute(
        "".join(f"DROP TABLE IF EXISTS {t};" for t in (*temps, *(f"stitch_{t}" for t in stitched)))
    )


def _fix(con: duckdb.DuckDBPyConnection, fixups: Sequence[Fixup]) -> list[int]:
    """Run the sources' fix-ups; the persons whose rows they changed."""
    return [person for fixup in fixups for person in fixup(con)]


def _count(con: duckdb.DuckDBPyConnection) -> int:
    return scalar(con, "SELECT count(*) FROM touchpoints")
