"""The part of the warehouse a night's person stitch recomputes: ``night_nodes``, every node of
the uncapped components its rows reach, each with what ``identity_nodes`` held for it, and
``stitch_event_persons``, the person of each identifier its events name once stitched
(:mod:`journeymine.canonical.identity_persons`)."""

from __future__ import annotations

import duckdb

from journeymine.canonical.identity_graph import scalar
from journeymine.sql import literal
from journeymine.vocabulary import PERSON_NODE_TYPES, SF_CONTACT, SF_OPPORTUNITY

# Where a night's rows start to reach: the nodes of each edge the night made new or moved
# earlier in the merge order (``night_moved_edges``; an edge seen again later changes nothing,
# the view keeps its first observation) that may be a person edge, and its events' unseen nodes.
# More seeds than needed never change the answer, only its cost. Every node of ``night_nodes``
# carries what ``identity_nodes`` held for it (person_id, first_assigned_at and its rowid; NULL
# for a new node), so that no later step of the night searches that table by identifier again,
# and whether one of the night's events names it (``named``, from ``night_lookup.event``: the
# stitch's named nodes then need no join of the night's events with the nodes).
NIGHT_SEEDS = f"""
CREATE OR REPLACE TEMP TABLE night_lookup AS
WITH touched AS (
    SELECT src_type, src_id, dst_type, dst_id FROM night_moved_edges
    WHERE src_id IS NOT NULL AND dst_id IS NOT NULL
      AND ((src_type IN ({{types}}) AND dst_type IN ({{types}}))
           OR (src_type = {literal(SF_CONTACT)} AND dst_type = {literal(SF_OPPORTUNITY)}))
), seeds AS (
    SELECT src_type AS node_type, src_id AS node_id, true AS edge FROM touched
    UNION ALL SELECT dst_type, dst_id, true FROM touched
    UNION ALL SELECT id_type, id_value, false FROM night_raw_events WHERE id_value IS NOT NULL
)
SELECT s.node_type, s.node_id, n.person_id, n.first_assigned_at, n.rowid AS row_id, s.edge,
       s.event
FROM (SELECT node_type, node_id, bool_or(edge) AS edge, bool_or(NOT edge) AS event
      FROM seeds GROUP BY ALL) s
LEFT JOIN identity_nodes n USING (node_type, node_id);
CREATE OR REPLACE TEMP TABLE night_nodes AS
SELECT node_type, node_id, person_id, first_assigned_at, row_id, event AS named FROM night_lookup
WHERE edge OR person_id IS NULL;
""".format(types=", ".join(literal(t) for t in PERSON_NODE_TYPES))

# The person of each identifier the night's events name, after the stitch: the touchpoints
# of the night's events look their persons up here, not in ``identity_nodes``.
EVENT_PERSONS = """
CREATE OR REPLACE TEMP TABLE stitch_event_persons AS
SELECT l.node_type, l.node_id, coalesce(a.person_id, l.person_id) AS person_id
FROM night_lookup l LEFT JOIN stitch_assigned_nodes a USING (node_type, node_id)
WHERE l.event;
DROP TABLE night_lookup;
"""

# Out from the nodes reached: to the other nodes of their previous persons (by person id, not
# by identifier), and across a previous refusal. Edges need no following: in the previous
# stitch (a full rebuild's outcome) every person edge either lies inside one person or was
# refused, and the night's new or moved edges are seeds at both ends. Only nodes not yet reached;
# a node the night's events name is among the seeds (``night_lookup``). {frontier}: the persons
# to expand.
NIGHT_PERSONS_NODES = """
INSERT INTO night_nodes
SELECT o.node_type, o.node_id, o.person_id, o.first_assigned_at, o.row_id, coalesce(l.event, false)
FROM (SELECT node_type, node_id, person_id, first_assigned_at, rowid AS row_id
      FROM identity_nodes o WHERE person_id IN ({frontier})
        AND NOT EXISTS (SELECT 1 FROM night_nodes c
                        WHERE c.node_type = o.node_type AND c.node_id = o.node_id)) o
LEFT JOIN night_lookup l USING (node_type, node_id)
"""
NIGHT_REFUSED_NODES = """
CREATE OR REPLACE TEMP TABLE night_next AS
WITH reach AS (
    SELECT c.dst_type AS node_type, c.dst_id AS node_id FROM identity_conflicts c
    JOIN night_nodes f ON c.src_type = f.node_type AND c.src_id = f.node_id
    UNION SELECT c.src_type, c.src_id FROM identity_conflicts c
    JOIN night_nodes f ON c.dst_type = f.node_type AND c.dst_id = f.node_id
)
SELECT r.node_type, r.node_id, n.person_id, n.first_assigned_at, n.rowid AS row_id,
       coalesce(l.event, false) AS named
FROM reach r LEFT JOIN identity_nodes n USING (node_type, node_id)
LEFT JOIN night_lookup l USING (node_type, node_id)
WHERE NOT EXISTS (SELECT 1 FROM night_nodes c
                  WHERE c.node_type = r.node_type AND c.node_id = r.node_id)
"""


def night_nodes(con: duckdb.DuckDBPyConnection) -> int:
    """The temp table ``night_nodes``: every node of the components the night reaches; returns
    how many refusals the warehouse held before the night."""
    con.execute(NIGHT_SEEDS)
    reached = "SELECT person_id FROM night_nodes WHERE person_id IS NOT NULL"
    refusals = scalar(con, "SELECT count(*) FROM identity_conflicts")  # most warehouses: none
    if not refusals:
        # No refusal to cross: the persons the seeds reach, whole, and nothing further.
        con.execute(NIGHT_PERSONS_NODES.format(frontier=reached))
        return 0
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE night_frontier AS SELECT DISTINCT * FROM ({reached})"
    )
    while scalar(con, "SELECT count(*) FROM night_frontier"):
        # whole persons: their nodes need no expanding again
        con.execute(NIGHT_PERSONS_NODES.format(frontier="SELECT person_id FROM night_frontier"))
        con.execute("DELETE FROM night_frontier")
        con.execute(NIGHT_REFUSED_NODES)
        con.execute("INSERT INTO night_nodes FROM night_next")
        con.execute(
            "INSERT INTO night_frontier SELECT DISTINCT person_id FROM night_next "
            "WHERE person_id IS NOT NULL"
        )
    con.execute("DROP TABLE IF EXISTS night_next")
    con.execute("DROP TABLE night_frontier")
    return refusals
