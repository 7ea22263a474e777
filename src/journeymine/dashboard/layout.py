"""A left-to-right layered layout for a directly-follows graph, in plain Python (no Graphviz).

A small Sugiyama-style layout, enough for the 10-30 activities a journey map shows:

1. **Cycles** are broken by a depth-first search that starts at the activities journeys begin
   with (no incoming edge, or the most outgoing weight) and follows heavier edges first; an edge
   that closes a cycle is a *back edge* and is drawn as an arc, the rest point left to right.
2. **Layers**: longest path from the starts over the remaining acyclic graph, so every forward
   edge goes at least one layer to the right.
3. **Order within a layer**: a few sweeps of the weighted barycenter heuristic (left to right,
   then right to left) to reduce crossings.
4. **Coordinates**: ``x`` is the layer, ``y`` the rank in the layer centred on 0 (top first),
   on whole numbers in every layer: two nodes of neighbouring layers are level or a whole
   step apart, never half a step (where their labels would meet).

Ties are broken by name, so the same graph always gets the same picture.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class GraphLayout:
    """Where each node goes; which edges point backwards (drawn as arcs)."""

    positions: dict[str, tuple[float, float]]
    layers: dict[str, int]
    back_edges: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    @property
    def width(self) -> int:
        """Number of layers."""
        return max(self.layers.values(), default=-1) + 1

    @property
    def height(self) -> int:
        """Most nodes in one layer."""
        counts: dict[int, int] = defaultdict(int)
        for layer in self.layers.values():
            counts[layer] += 1
        return max(counts.values(), default=0)


def _back_edges(
    nodes: list[str], succ: dict[str, list[tuple[str, float]]], weight_in: dict[str, float]
) -> set[tuple[str, str]]:
    """Edges that close a cycle in an iterative DFS that follows heavier edges first."""
    weight_out = {n: sum(w for _, w in succ[n]) for n in nodes}
    roots = sorted(nodes, key=lambda n: (weight_in[n] > 0, weight_in[n] - weight_out[n], n))
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    back: set[tuple[str, str]] = set()
    for root in roots:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(succ[root]))]
        while stack:
            node, children = stack[-1]
            for child, _ in children:
                if child == node:
                    continue
                seen = state.get(child)
                if seen == 1:
                    back.add((node, child))
                elif seen is None:
                    state[child] = 1
                    stack.append((child, iter(succ[child])))
                    break
            else:
                state[node] = 2
                stack.pop()
    return back


def _layers(
    names: list[str],
    succ: dict[str, list[tuple[str, float]]],
    forward: list[tuple[str, str, float]],
    back: set[tuple[str, str]],
) -> dict[str, int]:
    """Longest-path layering over the forward edges (a DAG once back edges and loops are gone)."""
    indegree = dict.fromkeys(names, 0)
    for _, b, _ in forward:
        indegree[b] += 1
    layer = dict.fromkeys(names, 0)
    ready = sorted(n for n in names if indegree[n] == 0)
    while ready:
        node = ready.pop(0)
        for child, _ in succ[node]:
            if child == node or (node, child) in back:
                continue
            layer[child] = max(layer[child], layer[node] + 1)
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
        ready.sort()
    return layer


def _order(
    by_layer: dict[int, list[str]], forward: list[tuple[str, str, float]], sweeps: int
) -> None:
    """Order within layers, in place: weighted barycenters of the neighbours in the previous
    layer(s), a few sweeps left to right, then right to left."""
    neighbours_left: dict[str, list[tuple[str, float]]] = defaultdict(list)
    neighbours_right: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for a, b, w in forward:
        neighbours_left[b].append((a, w))
        neighbours_right[a].append((b, w))

    def rank() -> dict[str, float]:
        return {n: float(i) for acts in by_layer.values() for i, n in enumerate(acts)}

    def sweep(order: list[int], neighbours: dict[str, list[tuple[str, float]]]) -> None:
        for k in order:
            where = rank()
            current = by_layer[k]

            def centre(n: str, where: dict[str, float] = where, now: list[str] = current) -> float:
                near = neighbours[n]
                weight = sum(w for _, w in near)
                if not near or weight == 0:
                    return float(now.index(n))
                return sum(where[m] * w for m, w in near) / weight

            by_layer[k] = sorted(current, key=lambda n: (centre(n), n))

    layer_ids = sorted(by_layer)
    for _ in range(sweeps):
        sweep(layer_ids[1:], neighbours_left)
        sweep(layer_ids[-2::-1], neighbours_right)


def layered_layout(
    edges: Iterable[tuple[str, str, float]], nodes: Iterable[str] = (), sweeps: int = 4
) -> GraphLayout:
    """Lay out a weighted directed graph left to right.

    ``edges`` are ``(source, target, weight)``; ``nodes`` may add nodes without edges.
    """
    edge_list = [(str(a), str(b), float(w)) for a, b, w in edges]
    names = sorted({*map(str, nodes), *(a for a, _, _ in edge_list), *(b for _, b, _ in edge_list)})
    succ: dict[str, list[tuple[str, float]]] = {n: [] for n in names}
    weight_in: dict[str, float] = dict.fromkeys(names, 0.0)
    for a, b, w in edge_list:
        succ[a].append((b, w))
        if a != b:
            weight_in[b] += w
    for n in names:
        succ[n].sort(key=lambda e: (-e[1], e[0]))
    back = _back_edges(names, succ, weight_in)
    forward = [(a, b, w) for a, b, w in edge_list if a != b and (a, b) not in back]
    layer = _layers(names, succ, forward, back)
    # Start each layer heaviest first; the sweeps then pull neighbours together.
    by_layer: dict[int, list[str]] = defaultdict(list)
    for n in names:
        by_layer[layer[n]].append(n)
    total = {n: weight_in[n] + sum(w for _, w in succ[n]) for n in names}
    for k in by_layer:
        by_layer[k].sort(key=lambda n: (-total[n], n))
    _order(by_layer, forward, sweeps)
    positions = {
        n: (float(k), float((len(acts) - 1) // 2 - i))
        for k, acts in by_layer.items()
        for i, n in enumerate(acts)
    }
    return GraphLayout(positions=positions, layers=layer, back_edges=frozenset(back))
