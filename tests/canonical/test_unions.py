"""identity_graph.unions decides most components without replaying their edges (connected
components, and the spanning forest of the earliest edges); it must give exactly what
replaying every edge in order gives (``_replay``): roots, joined edges, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from journeymine.canonical.identity_graph import _replay, unions


def _graph(seed: int, size: int = 300, n_edges: int = 420) -> tuple:
    rng = np.random.default_rng(seed)
    src = rng.integers(0, size, n_edges)
    near = np.minimum((src // 6) * 6 + rng.integers(0, 6, n_edges), size - 1)
    dst = np.where(rng.random(n_edges) < 0.9, near, rng.integers(0, size, n_edges))
    dst[:5] = src[:5]  # loops
    src = np.concatenate([src, dst[:20]])  # repeated pairs, both ways round
    dst = np.concatenate([dst, src[:20]])
    kinds = {
        "user_id": np.sort(rng.choice(size, 45, replace=False)),
        "sf_account": np.sort(rng.choice(size, 25, replace=False)),
    }
    return size, src.astype(np.int64), dst.astype(np.int64), kinds


@pytest.mark.parametrize(
    "limits", [{"user_id": 1}, {"user_id": 2}, {"user_id": 1, "sf_account": 1}]
)
@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_unions_equal_replaying_every_edge(seed: int, limits: dict[str, int], dtype: type) -> None:
    """Node numbers come as 32-bit integers from a stitch (64-bit from the accounts' tuples):
    the same answer from either, roots in 32 bits below 2**31 nodes (half the memory)."""
    size, src, dst, kinds = _graph(seed)
    capped = {kind: kinds[kind].astype(dtype) for kind in limits}
    got = unions(size, src.astype(dtype), dst.astype(dtype), capped, limits)
    want = _replay(size, src, dst, {kind: kinds[kind] for kind in limits}, limits)
    assert got.root.dtype == np.int32
    assert np.array_equal(got.root, want.root)
    assert np.array_equal(got.joined, want.joined)
    assert got.refused == want.refused
    # both paths were taken: some components replayed (refusals), most decided whole
    assert want.refused and (~np.isin(np.arange(size), src[[r[0] for r in want.refused]])).any()
    assert want.joined.sum() > 2 * len(want.refused)


def test_no_edges_and_no_cap_reached() -> None:
    empty = unions(4, np.zeros(0, np.int64), np.zeros(0, np.int64), {}, {})
    assert empty.root.tolist() == [0, 1, 2, 3] and not empty.refused and len(empty.joined) == 0
    src, dst = np.array([3, 1, 3, 0], np.int64), np.array([2, 2, 1, 4], np.int64)
    whole = unions(5, src, dst, {"user_id": np.array([2], np.int64)}, {"user_id": 1})
    assert whole.root.tolist() == [0, 1, 1, 1, 0]
    assert whole.joined.tolist() == [True, True, False, True] and not whole.refused
