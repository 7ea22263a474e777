"""The union-find core shared by person and account stitching, and how its ids are kept.

An *edge* is a tuple that starts ``(src_type, src_id, dst_type, dst_id, rule, ...)``; whatever
follows (source, time, counts) rides along into the refusal records. Edges are applied in the
order given: the caller sorts them strongest first, so the outcome never depends on file order.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from journeymine.sql import ident

Node = tuple[str, str]
Edge = tuple[Any, ...]  # (src_type, src_id, dst_type, dst_id, rule, ...)


@dataclass(frozen=True)
class Refusal:
    """Why a join was refused: the readable reason and the rule (with its setting) behind it."""

    reason: str
    kept_apart_by: str


class UnionFind:
    """Union-find over node indices that caps how many ids of a kind one component may hold.

    Memory is a few bytes per node (an ``array`` of parents, not a list of int objects) plus
    the held ids of the components that hold a capped kind only: at 300k nodes a dict per node
    cost ~40 MB twice per stitch (both settings), most of them empty.
    """

    def __init__(self, nodes: Sequence[Node], limits: dict[str, int], entity: str) -> None:
        self.parent = array("q", range(len(nodes)))
        self.limits, self.entity = limits, entity
        self.held: dict[int, dict[str, frozenset[str]]] = {
            i: {t: frozenset([v])} for i, (t, v) in enumerate(nodes) if t in limits
        }

    def find(self, i: int) -> int:
        parent = self.parent
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:  # path compression
            parent[i], i = root, parent[i]
        return root

    def union(self, a: int, b: int) -> Refusal | None:
        """Join the components of a and b; return why when the join is refused."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return None
        ha, hb = self.held.get(ra, {}), self.held.get(rb, {})
        for kind in sorted(ha.keys() & hb.keys()):
            if len(ha[kind] | hb[kind]) > self.limits[kind]:
                return self._refusal(kind, ha[kind], hb[kind])
        keep, gone = min(ra, rb), max(ra, rb)
        self.parent[gone] = keep
        if ha or hb:  # only capped kinds are tracked; most components hold none
            self.held[keep] = {k: ha.get(k, frozenset()) | hb.get(k, frozenset()) for k in ha | hb}
            self.held.pop(gone, None)
        return None

    def _refusal(self, kind: str, a: frozenset[str], b: frozenset[str]) -> Refusal:
        values = sorted(a | b)
        if len(values) == 2:
            what = f"two different {kind}s ({values[0]} and {values[1]})"
        else:
            what = f"{len(values)} different {kind}s ({', '.join(values)})"
        rule = f"max_{kind}s_per_{self.entity}={self.limits[kind]}"
        return Refusal(f"would merge {what} into one {self.entity} ({rule})", rule)


@dataclass
class Outcome:
    """One union-find pass: the components, the refused edges, the joins made (edge, rule)."""

    components: list[list[Node]]
    refused: list[tuple[Edge, Refusal]]
    joined: list[Edge]
    root_of: dict[Node, int]

    @property
    def joins(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for edge in self.joined:
            counts[edge[4]] = counts.get(edge[4], 0) + 1
        return counts


def components(
    nodes: Sequence[Node], edges: Iterable[Edge], limits: dict[str, int], entity: str
) -> Outcome:
    """Apply ``edges`` in order over ``nodes`` (sorted); components sorted by their first node."""
    index = {n: i for i, n in enumerate(nodes)}
    uf = UnionFind(nodes, limits, entity)
    refused: list[tuple[Edge, Refusal]] = []
    joined: list[Edge] = []
    for edge in edges:
        a, b = index[(edge[0], edge[1])], index[(edge[2], edge[3])]
        if uf.find(a) == uf.find(b):
            continue
        refusal = uf.union(a, b)
        if refusal:
            refused.append((edge, refusal))
        else:
            joined.append(edge)
    groups: dict[int, list[Node]] = {}
    root_of = {node: uf.find(i) for i, node in enumerate(nodes)}
    for node, root in root_of.items():  # nodes are sorted, so each group is too
        groups.setdefault(root, []).append(node)
    ordered = sorted(groups.values(), key=lambda g: g[0])
    return Outcome(ordered, refused, joined, root_of)


def assign_ids(
    components: Iterable[list[Node]], previous: dict[Node, int], first_new: int | None = None
) -> tuple[dict[Node, int], list[tuple[int, int]]]:
    """Give each component an id, keeping old ids; returns (node -> id, [(merged, into)]).

    New ids start at ``first_new`` (default: above the largest previous id); a caller that
    passes only some components' previous ids passes the warehouse-wide start.
    """
    next_id = max(previous.values(), default=0) + 1 if first_new is None else first_new
    used: set[int] = set()
    assigned: dict[Node, int] = {}
    merges: list[tuple[int, int]] = []
    for nodes in components:
        old = sorted({previous[n] for n in nodes if n in previous} - used)
        if old:
            keep = old[0]  # ids only grow, so the smallest is the oldest
            merges.extend((other, keep) for other in old[1:])
        else:
            keep, next_id = next_id, next_id + 1
        used.update(old)
        assigned.update(dict.fromkeys(nodes, keep))
    return assigned, merges


def previous_ids(con: duckdb.DuckDBPyConnection, table: str, id_column: str) -> dict[Node, int]:
    rows = con.execute(f"SELECT node_type, node_id, {ident(id_column)} FROM {ident(table)}")
    return {(t, v): i for t, v, i in rows.fetchall()}


def store_nodes(
    con: duckdb.DuckDBPyConnection,
    table: str,
    id_column: str,
    assigned: dict[Node, int],
    *,
    replace_only: str | None = None,
) -> None:
    """Write node -> id, keeping each node's first_assigned_at. The whole table, or with
    ``replace_only`` (a table of node_type, node_id) only the nodes it names."""
    frame = pa.table(
        {
            "node_type": pa.array([n[0] for n in assigned], pa.string()),
            "node_id": pa.array([n[1] for n in assigned], pa.string()),
            id_column: pa.array(list(assigned.values()), pa.int64()),
        }
    )
    con.register("assigned_nodes", frame)
    table, column = ident(table), ident(id_column)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE new_nodes AS
        SELECT a.node_type, a.node_id, a.{column},
               coalesce(o.first_assigned_at, ?::TIMESTAMPTZ) AS first_assigned_at
        FROM assigned_nodes a LEFT JOIN {table} o USING (node_type, node_id)
        """,
        [datetime.now(UTC)],
    )
    if replace_only is None:
        con.execute(f"DELETE FROM {table}")
    else:
        con.execute(
            f"DELETE FROM {table} t USING {ident(replace_only)} r "
            "WHERE t.node_type = r.node_type AND t.node_id = r.node_id"
        )
    con.execute(f"INSERT INTO {table} SELECT * FROM new_nodes ORDER BY {column}")
    con.execute("DROP TABLE new_nodes")
    con.unregister("assigned_nodes")


def store_merges(
    con: duckdb.DuckDBPyConnection, table: str, merges: list[tuple[int, int]], run_id: str
) -> None:
    if not merges:  # executemany refuses an empty list
        return
    frame = pa.table(
        {
            "merged": pa.array([m for m, _ in merges], pa.int64()),
            "into": pa.array([i for _, i in merges], pa.int64()),
        }
    )
    con.register("merge_rows", frame)  # through Arrow: executemany runs row by row
    con.execute(
        f'INSERT INTO {ident(table)} SELECT merged, "into", ?::TIMESTAMPTZ, ? FROM merge_rows',
        [datetime.now(UTC), run_id],
    )
    con.unregister("merge_rows")


def scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    """The one integer a query returns (0 for NULL or no row)."""
    rows = con.execute(sql).fetchall()
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0
