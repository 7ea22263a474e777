"""Person stitching, over the whole warehouse or over the part of it one night touched.

The capped union-find is sequential (a refusal depends on what was joined before it), but it
is local: edges of two components of the *uncapped* graph never meet. So a night recomputes
only the uncapped components its new rows reach — every node of an edge the night made new (or
observed earlier than before), every new event's unseen node, then everything linked to those
by a previous person or by a previous refusal, until nothing new is reached (an older edge lies
inside a previous person or was refused, so edges need no following) — applying their edges
in the same global order as a full rebuild. The outcome, the refusals,
the person ids and the per-component figures are then exactly those of a full rebuild; every
other person is left as it is. Refusals need no fallback: the order of the unions can only
matter within one uncapped component, and each one is recomputed whole, in the full order.

Figures a full rebuild sums over the whole graph (joins per rule; the persons and refusals the
other ``max_user_ids_per_person`` setting would give) are kept per uncapped component, keyed by
its smallest person id, in ``identity_components`` and ``identity_component_joins``, so that a
night replaces the rows of the components it recomputed and the totals stay exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from journeymine.canonical.identity_graph import (
    Numbers,
    Unions,
    assign_numbered,
    number_sql_type,
    refusal,
    scalar,
    store_merges,
    store_node_rows,
    unions,
)
from journeymine.canonical.identity_night import EVENT_PERSONS, night_nodes
from journeymine.sql import create_in_parts, in_partition, literal
from journeymine.vocabulary import (
    EMAIL,
    PERSON_NODE_TYPES,
    SF_CONTACT,
    SF_CONTACT_ROLE_PRIMARY,
    SF_OPPORTUNITY,
    USER_ID,
)
from journeymine.warehouse import settings

STATE_TABLES = """
CREATE TABLE IF NOT EXISTS identity_components (
    component BIGINT, other_setting_persons BIGINT, other_setting_would_refuse BIGINT
);
CREATE TABLE IF NOT EXISTS identity_component_joins (component BIGINT, rule VARCHAR, joins BIGINT);
"""

# Strongest first: direct id links before email matches, then by time; the rest only makes
# the order total, so that no outcome depends on how DuckDB happened to scan.
EDGE_ORDER = (
    f"({literal(EMAIL)} IN (src_type, dst_type)), observed_at, src_type, src_id, dst_type, "
    "dst_id, rule, source"
)


def stitch_edges_sql(match_on_email: bool, within: str | None = None, deals: bool = True) -> str:
    """The edges that may merge persons, as the temp table ``stitch_edges``, numbered ``k`` in
    merge order, from ``identity_edges_stored`` (the ``identity_edges`` view as of this stitch):
    all of them, or those leaving a node of the node table ``within`` (a union of whole
    components). Without ``deals`` (``within`` names no deal) the deals' contact roles are not
    searched. Numbered as they are selected: no second copy of every edge, which at 100M raw
    rows is gigabytes of temp table under the writer's memory cap."""

    # A CASE, not IN or list_contains: DuckDB turns either over six constants into two mark
    # joins that probe every stored edge before the search by node leaves a few thousand
    # (~3.5 ms of a night's ~23 at 1M; the full rebuild's statement is no slower).
    def person_type(column: str) -> str:
        whens = " ".join(f"WHEN {literal(t)} THEN true" for t in PERSON_NODE_TYPES)
        return f"CASE {column} {whens} ELSE false END"

    email = literal(EMAIL)
    email_filter = "" if match_on_email else f"AND {email} NOT IN (src_type, dst_type)"
    # A deal's contact role is chosen among all of the deal's roles: restricted by the deal.
    starts, by_deal = (
        ("", "")
        if within is None
        else (
            f"SEMI JOIN {within} w ON src_type = w.node_type AND src_id = w.node_id",
            f"SEMI JOIN {within} w ON dst_type = w.node_type AND dst_id = w.node_id",
        )
    )
    deal_contact = f"""
            SELECT * FROM identity_edges_stored {by_deal}
            WHERE src_type = {literal(SF_CONTACT)} AND dst_type = {literal(SF_OPPORTUNITY)}
            QUALIFY row_number() OVER (
                PARTITION BY dst_id
                ORDER BY rule = {literal(SF_CONTACT_ROLE_PRIMARY)} DESC, observed_at, src_id) = 1
    """
    return f"""
        CREATE OR REPLACE TEMP TABLE stitch_edges AS
        WITH deal_contact AS (  -- one person per deal: the primary contact role, else earliest
            {deal_contact if deals else "SELECT * FROM identity_edges_stored LIMIT 0"}
        ), candidates AS (
            SELECT * FROM identity_edges_stored {starts}
            WHERE {person_type("src_type")} AND {person_type("dst_type")}
            UNION ALL SELECT * FROM deal_contact
        )
        SELECT row_number() OVER (ORDER BY {EDGE_ORDER}) AS k,
               src_type, src_id, dst_type, dst_id, rule, source, observed_at
        FROM candidates WHERE src_id IS NOT NULL AND dst_id IS NOT NULL {email_filter}
        """


# Every node of the stitch (an edge's end or a node an event names), numbered in (type, id)
# order from 0: the union-find works on these numbers, never on the strings. DuckDB compares
# VARCHAR bytewise, which for UTF-8 is Python's order of str. The distinct nodes are found
# first, in ``stitch_node_set`` (by hash partitions of the id when they are many).
NUMBER_NODES = """
CREATE OR REPLACE TEMP TABLE stitch_nodes AS
SELECT (row_number() OVER (ORDER BY node_type, node_id) - 1)::BIGINT AS n, node_type, node_id
FROM stitch_node_set
"""

# The nodes every event names (a full stitch: the whole raw layer, repeats and all).
EVENT_NODES = "SELECT id_type, id_value FROM raw_events WHERE id_value IS NOT NULL"


@dataclass
class Graph:
    """The numbered graph: node count, edges (``k - 1`` = position) and the user_id nodes."""

    size: int
    src: Numbers
    dst: Numbers
    users: Numbers


def number_nodes(con: duckdb.DuckDBPyConnection, named: str, parts: int) -> int:
    """``stitch_nodes`` (n, node_type, node_id): the ends of ``stitch_edges`` and the nodes
    the query ``named`` (node_type, node_id; may repeat) gives, found ``parts`` hash
    partitions of the id at a time; returns how many nodes it holds."""
    parted = (
        f"""
        SELECT DISTINCT node_type, node_id FROM (
            SELECT src_type AS node_type, src_id AS node_id FROM stitch_edges
            WHERE {in_partition("src_id", part, parts)}
            UNION ALL SELECT dst_type, dst_id FROM stitch_edges
            WHERE {in_partition("dst_id", part, parts)}
            UNION ALL SELECT node_type, node_id FROM ({named}) named(node_type, node_id)
            WHERE {in_partition("node_id", part, parts)})
        """
        for part in range(parts)
    )
    create_in_parts(con, "stitch_node_set", parted, temp=True)
    nodes = scalar(con, NUMBER_NODES)  # CREATE TABLE ... AS returns its row count
    con.execute("DROP TABLE stitch_node_set")
    return nodes


def _numbered_edges(
    con: duckdb.DuckDBPyConnection, parts: int, sql_type: str
) -> dict[str, npt.NDArray[Any]]:
    """The edges' ends as node numbers (of ``sql_type``), in merge order: each end looked up in
    ``stitch_nodes`` one hash partition of the id at a time (two joins of every edge with every
    node, by two strings each, are what a 1GB cap cannot hold at 100M raw rows)."""
    sources = _end_numbers("stitch_edges", "e.k, e.dst_type, e.dst_id", "src", parts)
    create_in_parts(con, "stitch_half", sources, temp=True)
    both = _end_numbers("stitch_half", "e.k, e.src", "dst", parts)
    create_in_parts(con, "stitch_numbered", both, temp=True)
    edges = con.sql(
        f"SELECT src::{sql_type} AS src, dst::{sql_type} AS dst FROM stitch_numbered ORDER BY k"
    ).fetchnumpy()
    con.execute("DROP TABLE stitch_half; DROP TABLE stitch_numbered")
    return edges


def _end_numbers(table: str, keep: str, end: str, parts: int) -> Iterator[str]:
    """One query per hash partition of the id: ``table``'s columns ``keep`` and its ``end``
    (``src`` or ``dst``: the columns ``<end>_type``, ``<end>_id``) as a node number."""
    for part in range(parts):
        yield (
            f"SELECT {keep}, x.n AS {end} FROM {table} e "
            f"JOIN stitch_nodes x ON x.node_type = e.{end}_type AND x.node_id = e.{end}_id "
            f"WHERE {in_partition(f'e.{end}_id', part, parts)} "
            f"AND {in_partition('x.node_id', part, parts)}"
        )


def _numbered(
    con: duckdb.DuckDBPyConnection, edges_rows: int, named: str, named_rows: int
) -> Graph:
    """Number the nodes (:func:`number_nodes`) and the edges; ``edges_rows``: the rows of
    ``stitch_edges``, ``named_rows``: the rows ``named`` gives, which with the edges' ends size
    the hash partitions (both counts returned by the statements that made them: a count of a
    temp table is one more statement)."""
    parts = settings.partitions(con, 2 * edges_rows + named_rows)
    size = number_nodes(con, named, parts)
    sql_type = number_sql_type(size)  # DuckDB casts: the arrays come in number_dtype(size)
    edges = _numbered_edges(con, parts, sql_type)
    users = con.execute(
        f"SELECT n::{sql_type} AS n FROM stitch_nodes WHERE node_type = ? ORDER BY n", [USER_ID]
    ).fetchnumpy()["n"]
    return Graph(size, edges["src"], edges["dst"], users)


def other_setting(max_user_ids_per_person: int) -> int:
    """The setting the refusal report compares with: 2 for today's rule (1), else back to 1."""
    return 2 if max_user_ids_per_person == 1 else 1


@dataclass(frozen=True)
class PersonsResult:
    new_merges: int
    recomputed_nodes: int  # nodes whose components were recomputed (all, on a full rebuild)
    persons_added: int = 0  # on a night: persons after minus persons before


def stitch_all(
    con: duckdb.DuckDBPyConnection, run_id: str, match_on_email: bool, max_user_ids: int
) -> PersonsResult:
    """Recompute every person from every edge."""
    con.execute(STATE_TABLES)
    edges = scalar(con, stitch_edges_sql(match_on_email))
    events = scalar(con, "SELECT count(*) FROM raw_events")
    graph = _numbered(con, edges, EVENT_NODES, events)
    outcome, other = _both_settings(graph, max_user_ids)
    merges = _assign(con, graph, outcome)
    store_node_rows(con, "identity_nodes", "person_id", "stitch_assigned_nodes")
    store_merges(con, "person_merges", merges, run_id)
    con.execute("DELETE FROM identity_components")
    con.execute("DELETE FROM identity_component_joins")
    con.execute(CONFLICTS_TABLE)
    _store_outcome(con, graph, outcome, other, max_user_ids)
    store_policy(con, max_user_ids, match_on_email)
    _drop_stitch_tables(con)
    return PersonsResult(len(merges), graph.size)


def stitch_night(
    con: duckdb.DuckDBPyConnection, run_id: str, match_on_email: bool, max_user_ids: int
) -> PersonsResult:
    """Recompute only the components the rows of ``run_id`` reach (from the edges it moved,
    ``night_moved_edges``); list the person ids (before and after) of those components in
    the temp table ``stitch_changed_persons``, and in ``stitch_moved_persons`` those among
    them whose events changed person (a node already known got another id: a merge or a
    split); a person that only gained new identifiers keeps its touchpoints.
    ``stitch_person_targets`` (before, after) says where each previous person's identifiers
    went."""
    refusals = night_nodes(con)
    deals = scalar(
        con, f"SELECT count(*) FROM night_nodes WHERE node_type = {literal(SF_OPPORTUNITY)}"
    )
    edges = scalar(con, stitch_edges_sql(match_on_email, "night_nodes", deals > 0))
    graph = _numbered(con, edges, "FROM stitch_named", _named(con))
    outcome, other = _both_settings(graph, max_user_ids)
    merges = _assign(con, graph, outcome, night=True)
    con.execute(NIGHT_CHANGED)
    con.execute(EVENT_PERSONS)
    store_node_rows(
        con,
        "identity_nodes",
        "person_id",
        "stitch_assigned_nodes",
        replace_only="night_nodes",
    )
    store_merges(con, "person_merges", merges, run_id)
    # A refusal inside a recomputed component, found by either node (none to find on most nights)
    for end in ("src", "dst") if refusals else ():
        con.execute(
            f"DELETE FROM identity_conflicts c USING night_nodes n "
            f"WHERE c.{end}_type = n.node_type AND c.{end}_id = n.node_id"
        )
    for table in ("identity_components", "identity_component_joins"):
        con.execute(
            f"DELETE FROM {table} WHERE component IN (SELECT person_id FROM stitch_changed_persons)"
        )
    _store_outcome(con, graph, outcome, other, max_user_ids)
    store_policy(con, max_user_ids, match_on_email)
    added = scalar(
        con,
        "SELECT (SELECT count(DISTINCT person_id) FROM stitch_assigned) "
        "- (SELECT count(DISTINCT before) FROM stitch_person_targets)",
    )
    _drop_stitch_tables(con)
    return PersonsResult(len(merges), graph.size, added)


def _assign(
    con: duckdb.DuckDBPyConnection, graph: Graph, outcome: Unions, night: bool = False
) -> list[tuple[int, int]]:
    """Give every node its person id, kept from the previous stitch where it can be, as the
    view ``stitch_assigned_nodes`` (node_type, node_id, person_id); returns the merges. New
    ids start above the warehouse's largest, whatever part of it is recomputed."""
    known = "night_nodes" if night else "identity_nodes"  # a night's carry their previous ids
    previous = con.sql(
        f"SELECT s.n, p.person_id FROM stitch_nodes s JOIN {known} p USING (node_type, node_id) "
        "WHERE p.person_id IS NOT NULL"
    ).fetchnumpy()
    first_new = scalar(con, "SELECT coalesce(max(person_id), 0) FROM identity_nodes") + 1
    person_id, merges = assign_numbered(
        outcome.root,
        np.asarray(previous["n"], dtype=np.int64),
        np.asarray(previous["person_id"], dtype=np.int64),
        first_new,
    )
    n = np.arange(graph.size, dtype=graph.src.dtype)
    frame = pa.table({"n": n, "person_id": person_id})
    con.execute("DROP TABLE IF EXISTS stitch_assigned")
    con.register("stitch_assigned_frame", frame)
    con.execute("CREATE TEMP TABLE stitch_assigned AS FROM stitch_assigned_frame")
    con.unregister("stitch_assigned_frame")
    con.execute(
        "CREATE OR REPLACE TEMP VIEW stitch_assigned_nodes AS SELECT s.node_type, s.node_id, "
        "a.person_id FROM stitch_assigned a JOIN stitch_nodes s USING (n)"
    )
    return merges


# The person ids (before and after) of the recomputed components, and those whose events
# change person: a known node that got another id (or no longer is a node).
# ``stitch_person_targets``: where each previous person's identifiers went (after NULL: one no
# longer is a node); a person with one target keeps its touchpoints under that id.
NIGHT_CHANGED = """
CREATE OR REPLACE TEMP TABLE stitch_changed_persons AS
SELECT person_id FROM night_nodes WHERE person_id IS NOT NULL
UNION SELECT person_id FROM stitch_assigned;
CREATE OR REPLACE TEMP TABLE stitch_person_targets AS
SELECT DISTINCT o.person_id AS before, a.person_id AS after
FROM night_nodes o LEFT JOIN stitch_assigned_nodes a USING (node_type, node_id)
WHERE o.person_id IS NOT NULL;
CREATE OR REPLACE TEMP TABLE stitch_moved_persons AS
WITH moves AS (SELECT before, after FROM stitch_person_targets WHERE after IS DISTINCT FROM before)
SELECT before AS person_id FROM moves UNION SELECT after FROM moves WHERE after IS NOT NULL;
"""


def _drop_stitch_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Every temp table of the stitch: they live until the load's transaction ends, and at 100M
    raw rows ``stitch_edges`` alone kept 203 MB of a 1GB cap (and 7 GB of spill) from the
    touchpoints rebuild."""
    con.execute("DROP VIEW stitch_assigned_nodes")
    for table in ("stitch_assigned", "stitch_nodes", "stitch_edges"):
        con.execute(f"DROP TABLE {table}")
    con.execute("DROP TABLE IF EXISTS stitch_named")


# A node stays a node only while an event or a person edge names it (a deal's contact role can
# stop being the one that counts). The recomputed nodes that no person edge and no event of the
# night names, but that were nodes before, are looked up in ``raw_events``: on most nights none.
NIGHT_UNNAMED = """
SELECT node_type, node_id FROM night_nodes WHERE person_id IS NOT NULL AND NOT named
EXCEPT SELECT src_type, src_id FROM stitch_edges
EXCEPT SELECT dst_type, dst_id FROM stitch_edges
"""


def _named(con: duckdb.DuckDBPyConnection) -> int:
    """The temp table ``stitch_named``: the recomputed nodes that an event names (the night's
    events: ``night_nodes.named``); returns its rows."""
    named = scalar(
        con,
        "CREATE OR REPLACE TEMP TABLE stitch_named AS "
        "SELECT node_type, node_id FROM night_nodes WHERE named",
    )
    if scalar(con, f"SELECT count(*) FROM ({NIGHT_UNNAMED})"):
        named += scalar(
            con,
            "INSERT INTO stitch_named SELECT DISTINCT id_type, id_value FROM raw_events e "
            f"SEMI JOIN ({NIGHT_UNNAMED}) n ON e.id_type = n.node_type AND e.id_value = n.node_id",
        )
    return named


def _both_settings(graph: Graph, max_user_ids: int) -> tuple[Unions, Unions]:
    """The persons under the chosen cap, and under the other setting for the refusal report."""
    capped = {USER_ID: graph.users}
    outcome = unions(graph.size, graph.src, graph.dst, capped, {USER_ID: max_user_ids})
    limit = {USER_ID: other_setting(max_user_ids)}
    return outcome, unions(graph.size, graph.src, graph.dst, capped, limit)


CONFLICTS_TABLE = """
CREATE OR REPLACE TABLE identity_conflicts (
    src_type VARCHAR, src_id VARCHAR, dst_type VARCHAR, dst_id VARCHAR, rule VARCHAR,
    source VARCHAR, observed_at TIMESTAMPTZ, reason VARCHAR, kept_apart_by VARCHAR,
    other_setting_merges BOOLEAN
)
"""


def _store_outcome(
    con: duckdb.DuckDBPyConnection, graph: Graph, outcome: Unions, other: Unions, cap: int
) -> None:
    """Append the refused merges (each with whether the other setting would merge it) and
    the per-component figures of the components just computed."""
    if outcome.refused:  # most nights refuse nothing: no names to read, no rows to insert
        _store_refusals(con, graph, outcome, other, cap)
    _component_figures(con, graph, outcome, other)


def _store_refusals(
    con: duckdb.DuckDBPyConnection, graph: Graph, outcome: Unions, other: Unions, cap: int
) -> None:
    """Append the refused merges to ``identity_conflicts``."""
    names = _names(con, {n for _, _, held in outcome.refused for n in held})
    reasons = [
        refusal(kind, [names[n] for n in held], cap, "person") for _, kind, held in outcome.refused
    ]
    at = np.array([position for position, _, _ in outcome.refused], dtype=np.int64)
    refused = pa.table(
        {
            "k": at + 1,
            "reason": pa.array([r.reason for r in reasons], pa.string()),
            "kept_apart_by": pa.array([r.kept_apart_by for r in reasons], pa.string()),
            "other_setting_merges": other.root[graph.src[at]] == other.root[graph.dst[at]],
        }
    )
    con.register("refusal_rows", refused)
    con.execute(
        "INSERT INTO identity_conflicts SELECT e.src_type, e.src_id, e.dst_type, e.dst_id, "
        "e.rule, e.source, e.observed_at, r.reason, r.kept_apart_by, r.other_setting_merges "
        "FROM refusal_rows r JOIN stitch_edges e USING (k) ORDER BY k"
    )
    con.unregister("refusal_rows")


def _names(con: duckdb.DuckDBPyConnection, numbers: set[int]) -> dict[int, str]:
    """The ids of a few numbered nodes (those a refusal names)."""
    con.register("named_numbers", pa.table({"n": pa.array(sorted(numbers), pa.int64())}))
    rows = con.execute(
        "SELECT n, node_id FROM stitch_nodes SEMI JOIN named_numbers USING (n)"
    ).fetchall()
    con.unregister("named_numbers")
    return {int(n): str(v) for n, v in rows}


def _uncapped(graph: Graph, outcome: Unions) -> Numbers:
    """Each node's uncapped component (the persons a refusal kept apart, together), as the
    smallest root among them: only refusals join two persons of one uncapped component."""
    parent: dict[int, int] = {}

    def find(r: int) -> int:
        while parent.get(r, r) != r:
            parent[r] = parent.get(parent[r], parent[r])
            r = parent[r]
        return r

    root = outcome.root
    for position, _, _ in outcome.refused:
        a, b = find(int(root[graph.src[position]])), find(int(root[graph.dst[position]]))
        parent[max(a, b)] = min(a, b)
    top_of_root = np.arange(graph.size, dtype=root.dtype)
    for r in list(parent):
        top_of_root[r] = find(r)
    return top_of_root[root]


# Per uncapped component, keyed by its smallest person id: persons under the other setting,
# merges the other setting would refuse that this one made, and joins per rule.
COMPONENT_FIGURES = """
CREATE OR REPLACE TEMP TABLE stitch_figures AS
SELECT top, min(a.person_id) AS component, count(DISTINCT c.other_root) AS persons
FROM stitch_uncapped c JOIN stitch_assigned a USING (n) GROUP BY top;
INSERT INTO identity_components
SELECT f.component, f.persons, count(r.top) FROM stitch_figures f
LEFT JOIN stitch_other_refused r USING (top) GROUP BY ALL;
INSERT INTO identity_component_joins
SELECT f.component, e.rule, count(*) FROM stitch_joined j JOIN stitch_edges e USING (k)
JOIN stitch_figures f USING (top) GROUP BY ALL;
DROP TABLE stitch_figures;
"""


def _component_figures(
    con: duckdb.DuckDBPyConnection, graph: Graph, outcome: Unions, other: Unions
) -> None:
    """Append the figures of each uncapped component just computed (COMPONENT_FIGURES)."""
    top = _uncapped(graph, outcome)
    refused = np.array([position for position, _, _ in other.refused], dtype=np.int64)
    src, dst = graph.src[refused], graph.dst[refused]
    made = refused[outcome.root[src] == outcome.root[dst]]  # refused there, joined here
    joined = np.flatnonzero(outcome.joined).astype(np.int64)
    frames = {
        "stitch_uncapped": {
            "n": np.arange(graph.size, dtype=top.dtype),
            "top": top,
            "other_root": other.root,
        },
        "stitch_other_refused": {"top": top[graph.src[made]]},
        "stitch_joined": {"k": joined + 1, "top": top[graph.src[joined]]},
    }
    for name, columns in frames.items():
        con.register(name, pa.table(columns))
    con.execute(COMPONENT_FIGURES)
    for name in frames:
        con.unregister(name)


def store_policy(con: duckdb.DuckDBPyConnection, max_user_ids: int, match_on_email: bool) -> None:
    """One row: the setting used, and what the other setting would change (pairs of nodes)."""
    con.execute(
        """
        CREATE OR REPLACE TABLE identity_policy AS
        SELECT ?::INTEGER AS max_user_ids_per_person, ?::BOOLEAN AS match_on_email,
               (SELECT count(*) FROM identity_conflicts)::BIGINT AS refused_pairs,
               ?::INTEGER AS other_setting,
               (SELECT count(*) FILTER (WHERE other_setting_merges) FROM identity_conflicts)
                   ::BIGINT AS other_setting_would_merge,
               (SELECT coalesce(sum(other_setting_would_refuse), 0) FROM identity_components)
                   ::BIGINT AS other_setting_would_refuse,
               (SELECT coalesce(sum(other_setting_persons), 0) FROM identity_components)
                   ::BIGINT AS other_setting_persons
        """,
        [max_user_ids, match_on_email, other_setting(max_user_ids)],
    )
