"""Identity stitching: observed identifier links -> persons and accounts, each merge explained.

Every identifier an event or an edge names is a *node* (``anonymous_id``, ``user_id``,
``email``, ``sf_lead``, ``sf_contact``, ``stripe_customer``...). Edges observed in the sources
(``identity_edges``) join nodes; a connected component of person nodes is one person.

Rules that keep stitching honest:

* **One product user per person.** A merge that would put two different ``user_id`` nodes in one
  person is refused and recorded in ``identity_conflicts`` (a shared device, a shared
  ``info@`` mailbox). Edges are applied strongest first — direct id links before email
  matches, then by time — so the outcome does not depend on file order.
* **Email matching can be switched off** (``match_on_email=False``): edges touching an email
  node are then ignored for merging.
* **A deal belongs to one person**: of an opportunity's contact roles, only the primary one (or
  the earliest) attaches the opportunity's events to a person; the others are not merges.
* **Stable ids.** ``identity_nodes`` keeps each node's person id across runs. A component keeps
  the smallest id its nodes already had; the ids it absorbs are listed in ``person_merges``.
  New components get new ids above the current maximum; nobody else is renumbered.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import pandas as pd
import pyarrow as pa

from journeymine.sources._common import (
    ACCOUNT_NODE_TYPES,
    EMAIL,
    PERSON_NODE_TYPES,
    SF_ACCOUNT,
    SF_CONTACT,
    SF_OPPORTUNITY,
    USER_ID,
)

Node = tuple[str, str]
EXCLUSIVE_TYPES = (USER_ID,)

EDGES_VIEW = """
CREATE OR REPLACE VIEW identity_edges AS
SELECT src_type, src_id, dst_type, dst_id, source, rule, min(observed_at) AS observed_at,
       count(*) AS observations
FROM raw_edges GROUP BY ALL
"""


@dataclass(frozen=True)
class StitchResult:
    persons: int
    new_merges: int
    conflicts: int


class _Components:
    """Union-find over node indices that refuses to join two different exclusive ids."""

    def __init__(self, nodes: list[Node]) -> None:
        self.parent = list(range(len(nodes)))
        self.exclusive: list[dict[str, str]] = [
            {t: v} if t in EXCLUSIVE_TYPES else {} for t, v in nodes
        ]

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:  # path compression
            self.parent[i], i = root, self.parent[i]
        return root

    def union(self, a: int, b: int) -> str | None:
        """Join the components of a and b; return the reason when the join is refused."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return None
        ea, eb = self.exclusive[ra], self.exclusive[rb]
        for kind in ea.keys() & eb.keys():
            if ea[kind] != eb[kind]:
                return f"would merge two different {kind}s ({ea[kind]} and {eb[kind]})"
        keep, gone = min(ra, rb), max(ra, rb)
        self.parent[gone] = keep
        self.exclusive[keep] = {**ea, **eb}
        return None


def _person_edges(con: duckdb.DuckDBPyConnection, match_on_email: bool) -> pd.DataFrame:
    """Edges that may merge persons, strongest first."""
    person_types = ", ".join(f"'{t}'" for t in PERSON_NODE_TYPES)
    email_filter = "" if match_on_email else f"AND '{EMAIL}' NOT IN (src_type, dst_type)"
    return con.execute(
        f"""
        WITH deal_contact AS (  -- one person per deal: the primary contact role, else earliest
            SELECT * FROM identity_edges
            WHERE src_type = '{SF_CONTACT}' AND dst_type = '{SF_OPPORTUNITY}'
            QUALIFY row_number() OVER (
                PARTITION BY dst_id
                ORDER BY rule = 'sf_contact_role_primary' DESC, observed_at, src_id) = 1
        ), candidates AS (
            SELECT * FROM identity_edges
            WHERE src_type IN ({person_types}) AND dst_type IN ({person_types})
            UNION ALL SELECT * FROM deal_contact
        )
        SELECT src_type, src_id, dst_type, dst_id, rule, source, observed_at FROM candidates
        WHERE src_id IS NOT NULL AND dst_id IS NOT NULL {email_filter}
        ORDER BY ('{EMAIL}' IN (src_type, dst_type)), observed_at, src_type, src_id,
                 dst_type, dst_id, rule
        """
    ).df()


def _event_nodes(con: duckdb.DuckDBPyConnection) -> list[Node]:
    rows = con.execute(
        "SELECT DISTINCT id_type, id_value FROM raw_events WHERE id_value IS NOT NULL"
    ).fetchall()
    return [(t, v) for t, v in rows]


def _components(
    nodes: list[Node], edges: pd.DataFrame
) -> tuple[list[list[Node]], list[dict[str, object]]]:
    index = {n: i for i, n in enumerate(nodes)}
    uf = _Components(nodes)
    conflicts: list[dict[str, object]] = []
    for edge in edges.itertuples(index=False):
        reason = uf.union(index[(edge.src_type, edge.src_id)], index[(edge.dst_type, edge.dst_id)])
        if reason:
            conflicts.append({**edge._asdict(), "reason": reason})
    groups: dict[int, list[Node]] = {}
    for i, node in enumerate(nodes):
        groups.setdefault(uf.find(i), []).append(node)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: g[0]), conflicts


def _assign_ids(
    components: Iterable[list[Node]], previous: dict[Node, int]
) -> tuple[dict[Node, int], list[tuple[int, int]]]:
    """Give each component an id, keeping old ids; returns (node -> id, [(merged, into)])."""
    next_id = max(previous.values(), default=0) + 1
    used: set[int] = set()
    assigned: dict[Node, int] = {}
    merges: list[tuple[int, int]] = []
    for nodes in components:
        old = sorted({previous[n] for n in nodes if n in previous} - used)
        if old:
            keep = old[0]
            merges.extend((other, keep) for other in old[1:])
        else:
            keep, next_id = next_id, next_id + 1
        used.update(old)
        assigned.update(dict.fromkeys(nodes, keep))
    return assigned, merges


def _store_nodes(
    con: duckdb.DuckDBPyConnection, table: str, id_column: str, assigned: dict[Node, int]
) -> None:
    now = datetime.now(UTC)
    frame = pa.table(
        {
            "node_type": [n[0] for n in assigned],
            "node_id": [n[1] for n in assigned],
            id_column: list(assigned.values()),
        }
    )
    con.register("assigned_nodes", frame)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE new_nodes AS
        SELECT a.node_type, a.node_id, a.{id_column},
               coalesce(o.first_assigned_at, ?::TIMESTAMPTZ) AS first_assigned_at
        FROM assigned_nodes a LEFT JOIN {table} o USING (node_type, node_id)
        """,
        [now],
    )
    con.execute(f"DELETE FROM {table}")
    con.execute(f"INSERT INTO {table} SELECT * FROM new_nodes ORDER BY {id_column}")
    con.execute("DROP TABLE new_nodes")
    con.unregister("assigned_nodes")


def stitch(
    con: duckdb.DuckDBPyConnection, run_id: str, *, match_on_email: bool = True
) -> StitchResult:
    """Recompute persons and accounts from all edges; runs in the caller's transaction."""
    con.execute(EDGES_VIEW)
    edges = _person_edges(con, match_on_email)
    nodes = sorted(
        set(_event_nodes(con))
        | set(zip(edges.src_type, edges.src_id, strict=True))
        | set(zip(edges.dst_type, edges.dst_id, strict=True))
    )
    components, conflicts = _components(nodes, edges)
    previous = {
        (t, v): p
        for t, v, p in con.execute(
            "SELECT node_type, node_id, person_id FROM identity_nodes"
        ).fetchall()
    }
    assigned, merges = _assign_ids(components, previous)
    _store_nodes(con, "identity_nodes", "person_id", assigned)
    now = datetime.now(UTC)
    for merged, into in merges:
        con.execute("INSERT INTO person_merges VALUES (?, ?, ?, ?)", [merged, into, now, run_id])
    _store_conflicts(con, conflicts)
    _stitch_accounts(con)
    return StitchResult(len(components), len(merges), len(conflicts))


def _store_conflicts(con: duckdb.DuckDBPyConnection, conflicts: list[dict[str, object]]) -> None:
    columns = [
        "src_type",
        "src_id",
        "dst_type",
        "dst_id",
        "rule",
        "source",
        "observed_at",
        "reason",
    ]
    frame = pd.DataFrame(conflicts, columns=columns)
    con.register("conflict_rows", frame)
    con.execute(
        "CREATE OR REPLACE TABLE identity_conflicts AS SELECT src_type, src_id, dst_type, dst_id, "
        "rule, source, observed_at::TIMESTAMPTZ AS observed_at, reason FROM conflict_rows"
    )
    con.unregister("conflict_rows")


def _stitch_accounts(con: duckdb.DuckDBPyConnection) -> None:
    """Give account nodes stable ids and attach each person to its latest-linked account."""
    account_types = ", ".join(f"'{t}'" for t in ACCOUNT_NODE_TYPES)
    rows = con.execute(
        f"""
        SELECT DISTINCT dst_type, dst_id FROM identity_edges WHERE dst_type IN ({account_types})
        UNION SELECT DISTINCT account_type, account_value FROM raw_events
        WHERE account_type IN ({account_types}) AND account_value IS NOT NULL
        UNION SELECT DISTINCT id_type, id_value FROM raw_events WHERE id_type = '{SF_ACCOUNT}'
        ORDER BY ALL
        """
    ).fetchall()
    previous = {
        (t, v): a
        for t, v, a in con.execute(
            "SELECT node_type, node_id, account_id FROM account_nodes"
        ).fetchall()
    }
    assigned, _ = _assign_ids(([(t, v)] for t, v in rows), previous)
    _store_nodes(con, "account_nodes", "account_id", assigned)
    # A person's account: through any of its nodes, directly or via its deals; latest link wins.
    con.execute(
        f"""
        CREATE OR REPLACE TABLE person_accounts AS
        WITH links AS (
            SELECT n.person_id, a.account_id, e.observed_at
            FROM identity_edges e
            JOIN identity_nodes n ON n.node_type = e.src_type AND n.node_id = e.src_id
            JOIN account_nodes a ON a.node_type = e.dst_type AND a.node_id = e.dst_id
            WHERE e.dst_type IN ({account_types})
        )
        SELECT person_id, arg_max(account_id, observed_at) AS account_id
        FROM links GROUP BY person_id
        """
    )


def explain_person(con: duckdb.DuckDBPyConnection, person_id: int) -> pd.DataFrame:
    """The links that made this person: every edge between two of its nodes, with its rule,
    plus the merges that were refused (``refused`` = True, with the reason)."""
    return con.execute(
        """
        WITH mine AS (SELECT node_type, node_id FROM identity_nodes WHERE person_id = $1)
        SELECT e.src_type, e.src_id, e.dst_type, e.dst_id, e.source, e.rule, e.observed_at,
               false AS refused, NULL AS reason
        FROM identity_edges e
        WHERE (e.src_type, e.src_id) IN (SELECT (node_type, node_id) FROM mine)
          AND (e.dst_type, e.dst_id) IN (SELECT (node_type, node_id) FROM mine)
        UNION ALL
        SELECT c.src_type, c.src_id, c.dst_type, c.dst_id, c.source, c.rule, c.observed_at,
               true, c.reason
        FROM identity_conflicts c
        WHERE (c.src_type, c.src_id) IN (SELECT (node_type, node_id) FROM mine)
           OR (c.dst_type, c.dst_id) IN (SELECT (node_type, node_id) FROM mine)
        ORDER BY refused, observed_at
        """,
        [person_id],
    ).df()
