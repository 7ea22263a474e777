"""The union-find core shared by person and account stitching, and how its ids are kept.

The core (:func:`unions`, :func:`assign_numbered`) works on node *numbers*: a node's number is
its place in the sorted list of (type, id), so the smallest number of a component is its first
node. Person stitching numbers its nodes in SQL and never holds an id as a Python string (at 1M
raw rows the tuples of strings and dicts keyed by them cost ~340 MB of heap). Edges are applied
in the order given: the caller sorts them strongest first, so the outcome never depends on file
order. Accounts, a few thousand nodes, go through :func:`components`: an *edge* there is a tuple
that starts ``(src_type, src_id, dst_type, dst_id, rule, ...)``.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
from scipy import sparse
from scipy.sparse import csgraph

from journeymine.sql import ident

Node = tuple[str, str]
Edge = tuple[Any, ...]  # (src_type, src_id, dst_type, dst_id, rule, ...)
# Node numbers: 32-bit below 2**31 nodes (half the memory of 64-bit in every per-node and
# per-edge array of a stitch; at 100M raw rows, 30M nodes and 25M edges), else 64-bit.
Numbers = npt.NDArray[np.signedinteger[Any]]


def number_dtype(size: int) -> type[np.signedinteger[Any]]:
    """The integer type that holds node numbers ``0..size-1``, the narrowest of 32 and 64 bits."""
    return np.int32 if size < 2**31 else np.int64


def number_sql_type(size: int) -> str:
    """The DuckDB type whose columns arrive as :func:`number_dtype`'s arrays."""
    return "INTEGER" if number_dtype(size) == np.int32 else "BIGINT"


@dataclass(frozen=True)
class Refusal:
    """Why a join was refused: the readable reason and the rule (with its setting) behind it."""

    reason: str
    kept_apart_by: str


class UnionFind:
    """Union-find over node numbers that caps how many ids of a kind one component may hold.

    Memory is a few bytes per node (an ``array`` of parents, not a list of int objects) plus
    the held node numbers of the components that hold a capped kind only: at 300k nodes a dict
    per node cost ~40 MB twice per stitch (both settings), most of them empty. A root is always
    the smallest node number of its component (the larger root joins the smaller).
    """

    def __init__(self, size: int, capped: dict[str, Numbers]) -> None:
        self.parent = array("q", range(size))
        self.held: dict[int, dict[str, frozenset[int]]] = {
            i: {kind: frozenset([i])} for kind, nodes in capped.items() for i in nodes.tolist()
        }

    def find(self, i: int) -> int:
        parent = self.parent
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:  # path compression
            parent[i], i = root, parent[i]
        return root

    def union(self, a: int, b: int, limits: dict[str, int]) -> tuple[str, list[int]] | None:
        """Join the components of a and b; when the join is refused, return the capped kind
        and the node numbers of that kind the two would hold together (sorted)."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return None
        ha, hb = self.held.get(ra, {}), self.held.get(rb, {})
        for kind in sorted(ha.keys() & hb.keys()):
            if len(ha[kind] | hb[kind]) > limits[kind]:
                return kind, sorted(ha[kind] | hb[kind])
        keep, gone = min(ra, rb), max(ra, rb)
        self.parent[gone] = keep
        if ha or hb:  # only capped kinds are tracked; most components hold none
            self.held[keep] = {k: ha.get(k, frozenset()) | hb.get(k, frozenset()) for k in ha | hb}
            self.held.pop(gone, None)
        return None

    def roots(self) -> npt.NDArray[np.int64]:
        """Every node's root, by pointer jumping over a copy (the same answer as ``find``)."""
        parent = np.frombuffer(self.parent, dtype=np.int64).copy()
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                return parent
            parent = jumped


# Edges are turned into Python ints a slice at a time: a whole night's list would cost ~70 MB
# per million edges, the numpy arrays 16.
_SLICE = 1 << 16


@dataclass
class Unions:
    """One union-find pass over numbered nodes: each node's root (its component's smallest
    node number), which edges joined two components, and the refused ones as (edge position,
    capped kind, the node numbers of that kind the join would have put together)."""

    root: Numbers
    joined: npt.NDArray[np.bool_]
    refused: list[tuple[int, str, list[int]]]


def unions(
    size: int,
    src: Numbers,
    dst: Numbers,
    capped: dict[str, Numbers],
    limits: dict[str, int],
) -> Unions:
    """Apply the edges ``src[i] - dst[i]`` in order over nodes ``0..size-1``; ``capped`` names
    the nodes of each capped kind (``limits``: how many one component may hold).

    A join can only be refused inside a component of the uncapped graph that holds more nodes
    of a capped kind than its limit. Every other component ends whole, and which of its edges
    joined two parts depends on their order alone: the spanning forest of the earliest edges
    (:func:`_earliest_forest`). Only the crowded components are replayed edge by edge
    (:func:`_replay`); the answer is the same as replaying every edge. The roots come in the
    node numbers' own integer type (:func:`number_dtype`)."""
    dtype = number_dtype(size)
    if not len(src):
        return Unions(np.arange(size, dtype=dtype), np.zeros(0, dtype=np.bool_), [])
    graph = sparse.coo_matrix((np.ones(len(src), np.int8), (src, dst)), shape=(size, size))
    n_parts, part = csgraph.connected_components(graph.tocsr(), directed=False)
    crowded_part = np.zeros(n_parts, dtype=np.bool_)
    for kind, nodes in capped.items():
        crowded_part |= np.bincount(part[nodes], minlength=n_parts) > limits[kind]
    first = np.full(n_parts, size, dtype=dtype)
    np.minimum.at(first, part, np.arange(size, dtype=dtype))
    root = first[part]  # a component's root is its smallest node
    crowded = crowded_part[part]
    del part  # one array per node fewer through the spanning forest, the pass's peak
    replayed = crowded[src]
    joined = _earliest_forest(size, src, dst, ~replayed)
    if not replayed.any():
        return Unions(root, joined, [])
    # The crowded components are replayed over their own nodes only, renumbered 0..m-1 in
    # order (so a smallest node stays the smallest, and sorted lists stay sorted): the
    # replay's per-node arrays follow the few crowded components, not the whole graph.
    edges = np.flatnonzero(replayed)
    nodes = np.flatnonzero(crowded)
    held = {kind: np.searchsorted(nodes, of[crowded[of]]) for kind, of in capped.items()}
    local_src, local_dst = np.searchsorted(nodes, src[edges]), np.searchsorted(nodes, dst[edges])
    some = _replay(len(nodes), local_src, local_dst, held, limits)
    joined[edges] = some.joined
    refused = [(int(edges[at]), kind, nodes[local].tolist()) for at, kind, local in some.refused]
    root[nodes] = nodes[some.root]
    return Unions(root, joined, refused)


def _earliest_forest(
    size: int, src: Numbers, dst: Numbers, among: npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    """Which of the edges ``among`` join two parts when applied in order with nothing refused:
    the minimum spanning forest with each edge weighted by its position (weights are distinct,
    so the forest is unique and is what joining in order builds). A pair's later repeats and
    loops never join."""
    joined = np.zeros(len(src), dtype=np.bool_)
    at = np.flatnonzero(among & (src != dst))
    pair = np.minimum(src[at], dst[at]).astype(np.int64) * size  # size < 3e9: no overflow
    pair += np.maximum(src[at], dst[at])
    _, first = np.unique(pair, return_index=True)  # each pair's first edge
    pair, at = pair[first], at[first]
    del first
    weights = (at + 1).astype(np.float64)  # exact below 2**53; a zero weight would be no edge
    del at
    graph = sparse.csr_matrix((weights, (pair // size, pair % size)), shape=(size, size))
    del pair, weights
    # The graph is not needed after: the forest may overwrite it rather than copy it
    forest = csgraph.minimum_spanning_tree(graph, overwrite=True)
    joined[forest.data.astype(np.int64) - 1] = True
    return joined


def _replay(
    size: int,
    src: Numbers,
    dst: Numbers,
    capped: dict[str, Numbers],
    limits: dict[str, int],
) -> Unions:
    """:func:`unions` edge by edge, for the components where a cap can refuse a join."""
    uf = UnionFind(size, capped)
    joined = bytearray(len(src))
    refused: list[tuple[int, str, list[int]]] = []
    for start in range(0, len(src), _SLICE):
        pairs = zip(
            src[start : start + _SLICE].tolist(), dst[start : start + _SLICE].tolist(), strict=True
        )
        for position, (a, b) in enumerate(pairs, start):
            ra, rb = uf.find(a), uf.find(b)
            if ra == rb:
                continue
            refusal = uf.union(ra, rb, limits)  # roots: its own finds return at once
            if refusal:
                refused.append((position, *refusal))
            else:
                joined[position] = 1
    return Unions(uf.roots(), np.frombuffer(joined, dtype=np.bool_).copy(), refused)


def refusal(kind: str, values: Sequence[str], limit: int, entity: str) -> Refusal:
    """Why a join that would put ``values`` (sorted ids of a capped kind) together is refused."""
    if len(values) == 2:
        what = f"two different {kind}s ({values[0]} and {values[1]})"
    else:
        what = f"{len(values)} different {kind}s ({', '.join(values)})"
    rule = f"max_{kind}s_per_{entity}={limit}"
    return Refusal(f"would merge {what} into one {entity} ({rule})", rule)


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
    nodes: Sequence[Node], edges: Sequence[Edge], limits: dict[str, int], entity: str
) -> Outcome:
    """Apply ``edges`` in order over ``nodes`` (sorted); components sorted by their first node.
    For small graphs (accounts): nodes and edges as Python tuples, over :func:`unions`."""
    index = {n: i for i, n in enumerate(nodes)}
    src = np.array([index[(e[0], e[1])] for e in edges], dtype=np.int64)
    dst = np.array([index[(e[2], e[3])] for e in edges], dtype=np.int64)
    capped = {
        kind: np.array([i for i, (t, _) in enumerate(nodes) if t == kind], dtype=np.int64)
        for kind in limits
    }
    done = unions(len(nodes), src, dst, capped, limits)
    refused = [
        (edges[at], refusal(kind, [nodes[i][1] for i in held], limits[kind], entity))
        for at, kind, held in done.refused
    ]
    joined = [edges[at] for at in np.flatnonzero(done.joined).tolist()]
    roots = done.root.tolist()
    root_of = dict(zip(nodes, roots, strict=True))
    groups: dict[int, list[Node]] = {}
    for node, root in root_of.items():  # nodes are sorted, so each group is too
        groups.setdefault(root, []).append(node)
    ordered = sorted(groups.values(), key=lambda g: g[0])
    return Outcome(ordered, refused, joined, root_of)


def assign_ids(
    components: Iterable[list[Node]], previous: dict[Node, int]
) -> tuple[dict[Node, int], list[tuple[int, int]]]:
    """Give each component an id, keeping old ids; returns (node -> id, [(merged, into)]).
    New ids start above the largest previous id."""
    next_id = max(previous.values(), default=0) + 1
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


def assign_numbered(
    root: Numbers,
    previous_n: npt.NDArray[np.int64],
    previous_id: npt.NDArray[np.int64],
    first_new: int,
) -> tuple[npt.NDArray[np.int64], list[tuple[int, int]]]:
    """:func:`assign_ids` over numbered nodes: ``root`` is each node's component (its smallest
    node number, so components come in the order of their first node), node ``previous_n[i]``
    had id ``previous_id[i]``; returns (each node's id, [(merged, into)]).

    Most components hold ids no other component holds: each keeps its smallest (the oldest)
    and the others merge into it, decided for all of them at once. Only the components that
    share an id with another (a previous person split) depend on the order, and go one by one
    as :func:`assign_ids` goes: at 100M raw rows a loop over every component (~9M) cost
    seconds and two lists of Python ints."""
    roots = np.unique(root)
    place = np.zeros(len(root), dtype=root.dtype)  # each root's component number, in order
    place[roots] = np.arange(len(roots), dtype=root.dtype)
    comp, ids = place[root[previous_n]], previous_id
    order = np.lexsort((ids, comp))
    comp, ids = comp[order], ids[order]
    distinct = np.ones(len(comp), dtype=np.bool_)
    distinct[1:] = (comp[1:] != comp[:-1]) | (ids[1:] != ids[:-1])
    comp, ids = comp[distinct], ids[distinct]
    by_id = np.sort(ids)
    shared = by_id[1:][by_id[1:] == by_id[:-1]]  # ids that more than one component holds
    tangled = np.zeros(len(roots), dtype=np.bool_)
    tangled[comp[np.isin(ids, shared)]] = True
    in_order = tangled[comp]
    component_id = np.full(len(roots), -1, dtype=np.int64)
    alone_comp, alone_ids = comp[~in_order], ids[~in_order]
    head = np.ones(len(alone_comp), dtype=np.bool_)  # a component's smallest id comes first
    head[1:] = alone_comp[1:] != alone_comp[:-1]
    component_id[alone_comp[head]] = alone_ids[head]
    rest = alone_comp[~head]  # (component, merged id, kept id)
    merges: list[tuple[int, int, int]] = list(
        zip(rest.tolist(), alone_ids[~head].tolist(), component_id[rest].tolist(), strict=True)
    )
    if in_order.any():
        _assign_tangled(comp[in_order], ids[in_order], component_id, merges)
    new = component_id < 0  # new ids in component order, as assign_ids gives them
    component_id[new] = first_new + np.arange(int(new.sum()), dtype=np.int64)
    merges.sort()  # in component order, each component's ids in order, as assign_ids lists them
    return component_id[place[root]], [(other, into) for _, other, into in merges]


def _assign_tangled(
    comp: Numbers,
    ids: npt.NDArray[np.int64],
    component_id: npt.NDArray[np.int64],
    merges: list[tuple[int, int, int]],
) -> None:
    """The components that share an id with another, one by one in component order as
    :func:`assign_ids` goes (``comp``/``ids``: sorted pairs): each keeps its smallest id that no
    earlier component took, and merges its other untaken ids into it."""
    used: set[int] = set()
    bounds = np.flatnonzero(np.diff(comp)) + 1
    for c, held in zip(comp[np.r_[0, bounds]].tolist(), np.split(ids, bounds), strict=True):
        old = [i for i in held.tolist() if i not in used]  # sorted
        if old:
            component_id[c] = old[0]  # ids only grow, so the smallest is the oldest
            merges.extend((c, other, old[0]) for other in old[1:])
            used.update(old)


def store_nodes(
    con: duckdb.DuckDBPyConnection,
    table: str,
    id_column: str,
    assigned: dict[Node, int],
) -> None:
    """Write node -> id over the whole table, keeping each node's first_assigned_at."""
    frame = pa.table(
        {
            "node_type": pa.array([n[0] for n in assigned], pa.string()),
            "node_id": pa.array([n[1] for n in assigned], pa.string()),
            id_column: pa.array(list(assigned.values()), pa.int64()),
        }
    )
    con.register("assigned_nodes", frame)
    store_node_rows(con, table, id_column, "assigned_nodes")
    con.unregister("assigned_nodes")


def store_node_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    id_column: str,
    rows: str,
    *,
    replace_only: str | None = None,
) -> None:
    """:func:`store_nodes` from the relation ``rows`` (node_type, node_id, ``id_column``).

    With ``replace_only``, only the nodes that table names are replaced: it holds each node's
    ``first_assigned_at`` and ``row_id`` (its rowid in ``table``; NULL for a new node), read
    from ``table`` earlier in the same transaction, so the table is not searched by identifier
    again (a join on two strings over every node) and its rows go by rowid."""
    table, column = ident(table), ident(id_column)
    known = ident(replace_only) if replace_only else table
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE new_nodes AS
        SELECT a.node_type, a.node_id, a.{column},
               coalesce(o.first_assigned_at, ?::TIMESTAMPTZ) AS first_assigned_at
        FROM {ident(rows)} a LEFT JOIN {known} o USING (node_type, node_id)
        """,
        [datetime.now(UTC)],
    )
    if replace_only is None:
        con.execute(f"DELETE FROM {table}")
    else:
        con.execute(
            f"DELETE FROM {table} WHERE rowid IN "
            f"(SELECT row_id FROM {ident(replace_only)} WHERE row_id IS NOT NULL)"
        )
    con.execute(f"INSERT INTO {table} SELECT * FROM new_nodes ORDER BY {column}")
    con.execute("DROP TABLE new_nodes")


def store_merges(
    con: duckdb.DuckDBPyConnection, table: str, merges: list[tuple[int, int]], run_id: str
) -> None:
    if not merges:  # nothing to write
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


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] = ()) -> int:
    """The one integer a query returns (0 for NULL or no row); of a CREATE TABLE ... AS or
    an INSERT (the last statement of ``sql``), the rows it wrote."""
    rows = con.execute(sql, params).fetchall()
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0
