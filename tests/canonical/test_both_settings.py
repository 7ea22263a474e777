"""The refusal report's second union-find pass replays only the components where the two caps
can differ; what it gives must be exactly the full second pass's (roots, joins, refusals)."""

from __future__ import annotations

import numpy as np
import pytest

from journeymine.canonical.identity_graph import unions
from journeymine.canonical.identity_persons import (
    USER_ID,
    Graph,
    _both_settings,
    other_setting,
)


def _random_graph(seed: int) -> Graph:
    """Many small components (most with at most one user id), a few crowded ones."""
    rng = np.random.default_rng(seed)
    size = 400
    users = np.sort(rng.choice(size, size=60, replace=False)).astype(np.int64)
    # edges mostly inside blocks of 8 nodes, some across blocks: components of every size
    src = rng.integers(0, size, 500)
    near = (src // 8) * 8 + rng.integers(0, 8, 500)
    far = rng.integers(0, size, 500)
    dst = np.where(rng.random(500) < 0.93, np.minimum(near, size - 1), far)
    keep = src != dst
    return Graph(size, src[keep].astype(np.int64), dst[keep].astype(np.int64), users)


@pytest.mark.parametrize("max_user_ids", [1, 2, 3])
@pytest.mark.parametrize("seed", range(6))
def test_the_other_setting_equals_a_full_second_pass(seed: int, max_user_ids: int) -> None:
    graph = _random_graph(seed)
    capped = {USER_ID: graph.users}
    outcome, other = _both_settings(graph, max_user_ids)
    chosen = unions(graph.size, graph.src, graph.dst, capped, {USER_ID: max_user_ids})
    full = unions(graph.size, graph.src, graph.dst, capped, {USER_ID: other_setting(max_user_ids)})
    assert np.array_equal(outcome.root, chosen.root)
    assert np.array_equal(other.root, full.root)
    assert np.array_equal(other.joined, full.joined)
    assert other.refused == full.refused
    # the case is not trivial: refusals under one setting or the other, and components left out
    assert chosen.refused or full.refused
    assert len(set(full.root.tolist())) > 20
