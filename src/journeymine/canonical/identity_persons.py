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

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from journeymine.canonical.identity_graph import (
    Edge,
    Node,
    Outcome,
    assign_ids,
    components,
    previous_ids,
    store_merges,
    store_nodes,
)
from journeymine.sql import literal
from journeymine.vocabulary import (
    EMAIL,
    PERSON_NODE_TYPES,
    SF_CONTACT,
    SF_CONTACT_ROLE_PRIMARY,
    SF_OPPORTUNITY,
    USER_ID,
)

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


def person_edges_sql(match_on_email: bool, within: str | None = None) -> str:
    """The edges that may merge persons, as a temp table ``person_edges`` (unordered), from
    ``identity_edges_stored`` (the ``identity_edges`` view as of this stitch): all of them, or
    those leaving a node of the node table ``within`` (a union of whole components)."""
    person_types = ", ".join(literal(t) for t in PERSON_NODE_TYPES)
    email = literal(EMAIL)
    email_filter = "" if match_on_email else f"AND {email} NOT IN (src_type, dst_type)"
    # A deal's contact role is chosen among all of the deal's roles: restricted by the deal.
    starts, deals = (
        ("", "")
        if within is None
        else (
            f"SEMI JOIN {within} w ON src_type = w.node_type AND src_id = w.node_id",
            f"SEMI JOIN {within} w ON dst_type = w.node_type AND dst_id = w.node_id",
        )
    )
    return f"""
        CREATE OR REPLACE TEMP TABLE person_edges AS
        WITH deal_contact AS (  -- one person per deal: the primary contact role, else earliest
            SELECT * FROM identity_edges_stored {deals}
            WHERE src_type = {literal(SF_CONTACT)} AND dst_type = {literal(SF_OPPORTUNITY)}
            QUALIFY row_number() OVER (
                PARTITION BY dst_id
                ORDER BY rule = {literal(SF_CONTACT_ROLE_PRIMARY)} DESC, observed_at, src_id) = 1
        ), candidates AS (
            SELECT * FROM identity_edges_stored {starts}
            WHERE src_type IN ({person_types}) AND dst_type IN ({person_types})
            UNION ALL SELECT * FROM deal_contact
        )
        SELECT src_type, src_id, dst_type, dst_id, rule, source, observed_at FROM candidates
        WHERE src_id IS NOT NULL AND dst_id IS NOT NULL {email_filter}
        """


def _read_edges(con: duckdb.DuckDBPyConnection, within: str | None) -> list[Edge]:
    """Person edges (all, or those touching the node table ``within``) in merge order, as
    (src_type, src_id, dst_type, dst_id, rule, k); ``stitch_edges`` keeps the rest by k."""
    where = (
        ""
        if within is None
        else f"SEMI JOIN {within} w ON e.src_type = w.node_type AND e.src_id = w.node_id"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE stitch_edges AS "
        f"SELECT row_number() OVER (ORDER BY {EDGE_ORDER}) AS k, e.* FROM person_edges e {where}"
    )
    table = con.sql(
        "SELECT src_type, src_id, dst_type, dst_id, rule, k FROM stitch_edges ORDER BY k"
    ).to_arrow_table()
    return list(zip(*(c.to_pylist() for c in table.columns), strict=True))


def other_setting(max_user_ids_per_person: int) -> int:
    """The setting the refusal report compares with: 2 for today's rule (1), else back to 1."""
    return 2 if max_user_ids_per_person == 1 else 1


@dataclass(frozen=True)
class PersonsResult:
    new_merges: int
    recomputed_nodes: int  # nodes whose components were recomputed (all, on a full rebuild)


def stitch_all(
    con: duckdb.DuckDBPyConnection, run_id: str, match_on_email: bool, max_user_ids: int
) -> PersonsResult:
    """Recompute every person from every edge."""
    con.execute(STATE_TABLES)
    con.execute(person_edges_sql(match_on_email))
    edges = _read_edges(con, None)
    event_nodes = con.execute(
        "SELECT DISTINCT id_type, id_value FROM raw_events WHERE id_value IS NOT NULL"
    ).fetchall()
    nodes = sorted({(t, v) for t, v in event_nodes} | _endpoints(edges))
    outcome, other = _both_settings(nodes, edges, max_user_ids)
    assigned, merges = assign_ids(
        outcome.components, previous_ids(con, "identity_nodes", "person_id")
    )
    store_nodes(con, "identity_nodes", "person_id", assigned)
    store_merges(con, "person_merges", merges, run_id)
    con.execute("DELETE FROM identity_components")
    con.execute("DELETE FROM identity_component_joins")
    con.execute(CONFLICTS_TABLE)
    _store_outcome(con, outcome, other, assigned)
    store_policy(con, max_user_ids, match_on_email)
    return PersonsResult(len(merges), len(nodes))


def stitch_night(
    con: duckdb.DuckDBPyConnection, run_id: str, match_on_email: bool, max_user_ids: int
) -> PersonsResult:
    """Recompute only the components the rows of ``run_id`` reach (from the edges it moved,
    ``night_moved_edges``); list the person ids (before and after) of those components in
    the temp table ``stitch_changed_persons``, and in ``stitch_moved_persons`` those among
    them whose events changed person (a node already known got another id: a merge or a
    split); a person that only gained new identifiers keeps its touchpoints."""
    _night_nodes(con)
    con.execute(person_edges_sql(match_on_email, "night_nodes"))
    edges = _read_edges(con, None)
    nodes = sorted(_named(con) | _endpoints(edges))
    outcome, other = _both_settings(nodes, edges, max_user_ids)
    previous = {
        (t, v): i
        for t, v, i in con.execute(
            "SELECT node_type, node_id, person_id FROM identity_nodes "
            "SEMI JOIN night_nodes USING (node_type, node_id)"
        ).fetchall()
    }
    top = con.execute("SELECT coalesce(max(person_id), 0) FROM identity_nodes").fetchall()
    assigned, merges = assign_ids(outcome.components, previous, int(top[0][0]) + 1)
    old_ids = sorted(set(previous.values()))
    moved = {i for n, i in previous.items() if assigned.get(n) != i}
    moved |= {assigned[n] for n, i in previous.items() if n in assigned and assigned[n] != i}
    _record_ids(con, "stitch_changed_persons", set(old_ids) | set(assigned.values()))
    _record_ids(con, "stitch_moved_persons", moved)
    store_nodes(con, "identity_nodes", "person_id", assigned, replace_only="night_nodes")
    store_merges(con, "person_merges", merges, run_id)
    for end in ("src", "dst"):  # a refusal inside a recomputed component, found by either node
        con.execute(
            f"DELETE FROM identity_conflicts c USING night_nodes n "
            f"WHERE c.{end}_type = n.node_type AND c.{end}_id = n.node_id"
        )
    for table in ("identity_components", "identity_component_joins"):
        con.execute(
            f"DELETE FROM {table} WHERE component IN (SELECT person_id FROM stitch_changed_persons)"
        )
    _store_outcome(con, outcome, other, assigned)
    store_policy(con, max_user_ids, match_on_email)
    return PersonsResult(len(merges), len(nodes))


# A node stays a node only while an event or a person edge names it (a deal's contact role can
# stop being the one that counts). The recomputed nodes that no person edge and no event of the
# night names, but that were nodes before, are looked up in ``raw_events``: on most nights none.
NIGHT_UNNAMED = """
CREATE OR REPLACE TEMP TABLE night_unnamed AS
SELECT node_type, node_id FROM identity_nodes SEMI JOIN night_nodes USING (node_type, node_id)
EXCEPT SELECT src_type, src_id FROM stitch_edges
EXCEPT SELECT dst_type, dst_id FROM stitch_edges
EXCEPT SELECT id_type, id_value FROM night_raw_events
"""


def _named(con: duckdb.DuckDBPyConnection) -> set[Node]:
    """The recomputed nodes that an event names."""
    rows = con.execute(
        "SELECT DISTINCT id_type, id_value FROM night_raw_events e SEMI JOIN night_nodes n "
        "ON e.id_type = n.node_type AND e.id_value = n.node_id"
    ).fetchall()
    con.execute(NIGHT_UNNAMED)
    if con.execute("SELECT count(*) FROM night_unnamed").fetchall()[0][0]:
        rows += con.execute(
            "SELECT DISTINCT id_type, id_value FROM raw_events e SEMI JOIN night_unnamed n "
            "ON e.id_type = n.node_type AND e.id_value = n.node_id"
        ).fetchall()
    con.execute("DROP TABLE night_unnamed")
    return {(t, v) for t, v in rows}


def _endpoints(edges: Sequence[Edge]) -> set[Node]:
    return {(e[0], e[1]) for e in edges} | {(e[2], e[3]) for e in edges}


def _both_settings(
    nodes: Sequence[Node], edges: Sequence[Edge], max_user_ids: int
) -> tuple[Outcome, Outcome]:
    """The persons under the chosen cap, and under the other setting for the refusal report."""
    outcome = components(nodes, edges, {USER_ID: max_user_ids}, "person")
    other = components(nodes, edges, {USER_ID: other_setting(max_user_ids)}, "person")
    return outcome, other


def _record_ids(con: duckdb.DuckDBPyConnection, table: str, ids: set[int]) -> None:
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} (person_id BIGINT)")
    if ids:
        con.register("changed_ids", pa.table({"person_id": pa.array(sorted(ids), pa.int64())}))
        con.execute(f"INSERT INTO {table} SELECT person_id FROM changed_ids")
        con.unregister("changed_ids")


# Where a night's rows start to reach: the nodes of each edge the night made new or moved
# earlier in the merge order (``night_moved_edges``; an edge seen again later changes nothing,
# the view keeps its first observation) that may be a person edge, and its events' unseen nodes.
# More seeds than needed never change the answer, only its cost.
NIGHT_SEEDS = f"""
CREATE OR REPLACE TEMP TABLE night_nodes AS
WITH touched AS (
    SELECT src_type, src_id, dst_type, dst_id FROM night_moved_edges
    WHERE src_id IS NOT NULL AND dst_id IS NOT NULL
      AND ((src_type IN ({{types}}) AND dst_type IN ({{types}}))
           OR (src_type = {literal(SF_CONTACT)} AND dst_type = {literal(SF_OPPORTUNITY)}))
)
SELECT src_type AS node_type, src_id AS node_id FROM touched
UNION SELECT dst_type, dst_id FROM touched
UNION SELECT e.id_type, e.id_value FROM night_raw_events e
WHERE e.id_value IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM identity_nodes n WHERE n.node_type = e.id_type AND n.node_id = e.id_value)
""".format(types=", ".join(literal(t) for t in PERSON_NODE_TYPES))

# One step out from the frontier: to the other nodes of a previous person, and across a
# previous refusal. Edges need no following: in the previous stitch (a full rebuild's outcome)
# every person edge either lies inside one person or was refused, and the night's new or moved
# edges are seeds at both ends. Only nodes not yet reached.
NIGHT_STEP = """
CREATE OR REPLACE TEMP TABLE night_next AS
WITH reach AS (
    SELECT c.dst_type AS node_type, c.dst_id AS node_id FROM identity_conflicts c
    JOIN night_frontier f ON c.src_type = f.node_type AND c.src_id = f.node_id
    UNION ALL SELECT c.src_type, c.src_id FROM identity_conflicts c
    JOIN night_frontier f ON c.dst_type = f.node_type AND c.dst_id = f.node_id
    UNION ALL SELECT o.node_type, o.node_id FROM identity_nodes o WHERE o.person_id IN (
        SELECT n.person_id FROM identity_nodes n
        SEMI JOIN night_frontier f USING (node_type, node_id))
)
SELECT DISTINCT node_type, node_id FROM reach r
WHERE NOT EXISTS (SELECT 1 FROM night_nodes c
                  WHERE c.node_type = r.node_type AND c.node_id = r.node_id)
"""


def _night_nodes(con: duckdb.DuckDBPyConnection) -> None:
    """The temp table ``night_nodes``: every node of the components the night reaches."""
    con.execute(NIGHT_SEEDS)
    con.execute("CREATE OR REPLACE TEMP TABLE night_frontier AS FROM night_nodes")
    while True:
        con.execute(NIGHT_STEP)
        found = con.execute("SELECT count(*) FROM night_next").fetchall()[0][0]
        if not found:
            break
        con.execute("INSERT INTO night_nodes FROM night_next")
        con.execute("CREATE OR REPLACE TEMP TABLE night_frontier AS FROM night_next")
    con.execute("DROP TABLE IF EXISTS night_next")
    con.execute("DROP TABLE IF EXISTS night_frontier")


CONFLICTS_TABLE = """
CREATE OR REPLACE TABLE identity_conflicts (
    src_type VARCHAR, src_id VARCHAR, dst_type VARCHAR, dst_id VARCHAR, rule VARCHAR,
    source VARCHAR, observed_at TIMESTAMPTZ, reason VARCHAR, kept_apart_by VARCHAR,
    other_setting_merges BOOLEAN
)
"""


def _store_outcome(
    con: duckdb.DuckDBPyConnection, outcome: Outcome, other: Outcome, assigned: dict[Node, int]
) -> None:
    """Append the refused merges (each with whether the other setting would merge it) and
    the per-component figures of the components just computed."""
    refused = pa.table(
        {
            "k": pa.array([e[5] for e, _ in outcome.refused], pa.int64()),
            "reason": pa.array([r.reason for _, r in outcome.refused], pa.string()),
            "kept_apart_by": pa.array([r.kept_apart_by for _, r in outcome.refused], pa.string()),
            "other_setting_merges": pa.array(
                [_joined_in(other, e) for e, _ in outcome.refused], pa.bool_()
            ),
        }
    )
    con.register("refusal_rows", refused)
    con.execute(
        "INSERT INTO identity_conflicts SELECT e.src_type, e.src_id, e.dst_type, e.dst_id, "
        "e.rule, e.source, e.observed_at, r.reason, r.kept_apart_by, r.other_setting_merges "
        "FROM refusal_rows r JOIN stitch_edges e USING (k) ORDER BY k"
    )
    con.unregister("refusal_rows")
    figures, joins = _component_figures(outcome, other, assigned)
    _append(con, "identity_components", figures, (pa.int64(), pa.int64(), pa.int64()))
    _append(con, "identity_component_joins", joins, (pa.int64(), pa.string(), pa.int64()))


def _append(
    con: duckdb.DuckDBPyConnection,
    table: str,
    rows: Sequence[tuple[object, ...]],
    types: tuple[pa.DataType, ...],
) -> None:
    """Insert many rows through Arrow: row-by-row inserts run at ~1,300 rows/s (DESIGN §7)."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in types]
    frame = pa.table(
        {f"c{i}": pa.array(list(c), t) for i, (c, t) in enumerate(zip(columns, types, strict=True))}
    )
    con.register("append_rows", frame)
    con.execute(f"INSERT INTO {table} SELECT * FROM append_rows")
    con.unregister("append_rows")


def _joined_in(outcome: Outcome, edge: Edge) -> bool:
    return outcome.root_of[(edge[0], edge[1])] == outcome.root_of[(edge[2], edge[3])]


def _component_figures(
    outcome: Outcome, other: Outcome, assigned: dict[Node, int]
) -> tuple[list[tuple[int, int, int]], list[tuple[int, str, int]]]:
    """Per uncapped component (the persons a refusal kept apart, together), keyed by its
    smallest person id: persons under the other setting, merges the other setting would
    refuse that this one made, and joins per rule."""
    parent = {root: root for root in outcome.root_of.values()}

    def find(r: int) -> int:
        while parent[r] != r:
            parent[r] = parent[parent[r]]
            r = parent[r]
        return r

    for edge, _ in outcome.refused:  # only refusals join two persons of one uncapped component
        a, b = find(outcome.root_of[(edge[0], edge[1])]), find(outcome.root_of[(edge[2], edge[3])])
        parent[max(a, b)] = min(a, b)
    key: dict[int, int] = {}
    others: dict[int, set[int]] = {}
    for node, root in outcome.root_of.items():
        top = find(root)
        key[top] = min(key.get(top, assigned[node]), assigned[node])
        others.setdefault(top, set()).add(other.root_of[node])
    refuse = dict.fromkeys(key, 0)
    for edge, _ in other.refused:
        if _joined_in(outcome, edge):
            refuse[find(outcome.root_of[(edge[0], edge[1])])] += 1
    joins: dict[tuple[int, str], int] = {}
    for edge in outcome.joined:
        at = (key[find(outcome.root_of[(edge[0], edge[1])])], edge[4])
        joins[at] = joins.get(at, 0) + 1
    figures = [(key[top], len(others[top]), refuse[top]) for top in key]
    return figures, [(c, rule, n) for (c, rule), n in joins.items()]


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
