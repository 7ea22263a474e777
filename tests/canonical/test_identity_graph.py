"""The numbered union-find and id assignment give what the plain versions over strings give."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journeymine.canonical.identity_graph import (
    assign_ids,
    assign_numbered,
    number_dtype,
    number_sql_type,
    unions,
)
from journeymine.canonical.identity_persons import number_nodes

Graphs = st.integers(min_value=1, max_value=14).flatmap(
    lambda size: st.tuples(
        st.just(size),
        st.lists(st.tuples(st.integers(0, size - 1), st.integers(0, size - 1)), max_size=3 * size),
        st.sets(st.integers(0, size - 1)),  # the capped nodes (user ids)
        st.integers(min_value=1, max_value=3),  # the cap
    )
)


def _reference(
    size: int, edges: list[tuple[int, int]], capped: set[int], cap: int
) -> tuple[list[int], list[bool], list[tuple[int, list[int]]]]:
    """Components as sets, merged edge by edge; a join is refused when the two sets together
    hold more than ``cap`` capped nodes. Returns (smallest node of each node's set, joined,
    refused as (position, capped nodes the two would hold))."""
    sets = [{i} for i in range(size)]
    joined: list[bool] = []
    refused: list[tuple[int, list[int]]] = []
    for position, (a, b) in enumerate(edges):
        if sets[a] is sets[b]:
            joined.append(False)
            continue
        together = sets[a] | sets[b]
        held = sorted(together & capped)
        if len(sets[a] & capped) and len(sets[b] & capped) and len(held) > cap:
            joined.append(False)
            refused.append((position, held))
            continue
        joined.append(True)
        for node in together:
            sets[node] = together
    return [min(s) for s in sets], joined, refused


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(Graphs)
def test_unions_match_merging_sets_edge_by_edge(
    graph: tuple[int, list[tuple[int, int]], set[int], int],
) -> None:
    size, edges, capped, cap = graph
    src = np.array([a for a, _ in edges], dtype=np.int64)
    dst = np.array([b for _, b in edges], dtype=np.int64)
    done = unions(
        size, src, dst, {"user_id": np.array(sorted(capped), dtype=np.int64)}, {"user_id": cap}
    )
    root, joined, refused = _reference(size, edges, capped, cap)
    assert done.root.tolist() == root
    assert done.joined.tolist() == joined
    assert [(at, held) for at, _, held in done.refused] == refused
    assert {kind for _, kind, _ in done.refused} <= {"user_id"}


def _partition(size: int, labels: list[int]) -> list[int]:
    """Each node's root: the smallest node with its label."""
    first: dict[int, int] = {}
    for node, label in enumerate(labels[:size]):
        first.setdefault(label, node)
    return [first[label] for label in labels[:size]]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.integers(0, 5), min_size=1, max_size=16),
    st.dictionaries(st.integers(0, 15), st.integers(1, 8)),
    st.sampled_from([np.int32, np.int64]),
)
def test_assign_numbered_matches_assign_ids(
    labels: list[int], held: dict[int, int], dtype: type
) -> None:
    size = len(labels)
    root = _partition(size, labels)
    previous = {n: i for n, i in held.items() if n < size}  # ids shared across groups: splits
    first_new = max(previous.values(), default=0) + 1
    nodes = [("t", f"{n:03d}") for n in range(size)]
    groups: dict[int, list[tuple[str, str]]] = {}
    for n, r in enumerate(root):
        groups.setdefault(r, []).append(nodes[n])
    expected, expected_merges = assign_ids(
        [groups[r] for r in sorted(groups)], {nodes[n]: i for n, i in previous.items()}
    )
    ids, merges = assign_numbered(
        np.array(root, dtype=dtype),
        np.array(list(previous), dtype=np.int64),
        np.array(list(previous.values()), dtype=np.int64),
        first_new,
    )
    assert ids.tolist() == [expected[n] for n in nodes]
    assert merges == expected_merges


@pytest.mark.parametrize("parts", [1, 3])
def test_nodes_are_numbered_in_pythons_order_of_type_and_id(parts: int) -> None:
    con = duckdb.connect()
    edges = [("user_id", "b", "email", "É@x"), ("user_id", "B", "email", "e@x")]
    named = [("anonymous_id", "z"), ("anonymous_id", "_a"), ("user_id", "b"), ("email", "é@x")]
    con.execute(
        "CREATE TEMP TABLE stitch_edges (src_type VARCHAR, src_id VARCHAR, "
        "dst_type VARCHAR, dst_id VARCHAR)"
    )
    con.executemany("INSERT INTO stitch_edges VALUES (?, ?, ?, ?)", edges)
    con.execute("CREATE TEMP TABLE stitch_named (node_type VARCHAR, node_id VARCHAR)")
    con.executemany("INSERT INTO stitch_named VALUES (?, ?)", named)
    con.execute("INSERT INTO stitch_named SELECT * FROM stitch_named")  # repeats, as events do
    size = number_nodes(con, "FROM stitch_named", parts)
    rows = con.execute("SELECT n, node_type, node_id FROM stitch_nodes ORDER BY n").fetchall()
    every = {(e[0], e[1]) for e in edges} | {(e[2], e[3]) for e in edges} | set(named)
    assert [(t, v) for _, t, v in rows] == sorted(every)
    assert [n for n, _, _ in rows] == list(range(len(every)))
    assert size == len(every) == 7  # the graph's size: the distinct nodes, counted by hand


@pytest.mark.parametrize(("size", "width"), [(5, 32), (2**31 - 1, 32), (2**31, 64)])
def test_node_numbers_arrive_from_duckdb_in_their_own_type(size: int, width: int) -> None:
    """The stitch fetches node numbers cast to ``number_sql_type``: the arrays must be
    ``number_dtype``'s, 32-bit below 2**31 nodes (half the memory), without a second copy."""
    got = duckdb.sql(f"SELECT 7::{number_sql_type(size)} AS n").fetchnumpy()["n"]
    assert got.dtype == number_dtype(size) == np.dtype(f"int{width}")
