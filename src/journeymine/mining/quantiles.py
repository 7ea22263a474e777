"""Per-group quantiles and sums of integer microseconds, exactly as DuckDB computes them.

Quantiles are DuckDB's ``quantile_cont`` to the bit: with ``n`` sorted values and
``rn = (n - 1) * q``, ``lo + (hi - lo) * (rn - floor(rn))`` over the values in seconds
(``microseconds / 1e6``), so the figures of :mod:`journeymine.mining.codes` equal the sharded
run's, which uses ``quantile_cont``. Sums are exact integers (the mean wait is divided once).
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from functools import cache

import duckdb
import numpy as np

QUANTILES = (0.5, 0.9)
# Above this many groups, selecting per group in a Python loop costs more than one sort.
LOOP_GROUPS = 4096
SUM_BLOCK = 1 << 20  # values per block of :func:`exact_sums`' two halves


@cache
def _duckdb_fuses() -> bool:
    """Whether this DuckDB build computes ``lo * (1 - d) + hi * d`` as one fused multiply-add
    (compilers may contract it, and the last bit of some quantiles depends on it): one probe
    on values where the two differ."""
    lo, hi = 4851.909744, 7503.646726  # n = 5, q = 0.9: rank 3.6, d = 0.6000000000000001
    con = duckdb.connect()
    try:
        got = con.execute(
            "SELECT quantile_cont(x, 0.9) FROM (SELECT unnest($v::DOUBLE[]) AS x)",
            {"v": [0.0, 0.0, 0.0, lo, hi]},
        ).fetchall()[0][0]
    finally:
        con.close()
    return bool(got == _fused(lo, 1.0 - 0.6000000000000001, hi * 0.6000000000000001))


def _fused(a: float, b: float, c: float) -> float:
    """``a * b + c`` rounded once, as a fused multiply-add does."""
    return float(Fraction(a) * Fraction(b) + Fraction(c))


def interpolate(lo_us: np.ndarray, hi_us: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """``quantile_cont`` between the order statistics ``floor(rank)`` and ``ceil(rank)`` (µs in,
    seconds out), to the bit as DuckDB computes it: ``lo * (1 - d) + hi * d``, ``d`` the
    fractional part of the rank, and ``lo`` itself when ``d`` is 0."""
    lo, hi = np.asarray(lo_us / 1e6, np.float64), np.asarray(hi_us / 1e6, np.float64)
    frac = rank - np.floor(rank)
    out = np.where(frac == 0, lo, lo * (1.0 - frac) + hi * frac)
    if _duckdb_fuses():  # at d = 0.5 both products are exact, so fusing changes nothing
        for i in zip(*np.nonzero((frac != 0) & (frac != 0.5)), strict=True):
            out[i] = _fused(float(lo[i]), 1.0 - float(frac[i]), float(hi[i] * frac[i]))
    return out


def _quantiles_by_loop(
    values: np.ndarray,
    offsets: np.ndarray,
    counts: np.ndarray,
    qs: tuple[float, ...],
    in_place: bool,
) -> np.ndarray:
    """Quantiles of each group of ``values`` (grouped, unsorted inside a group) by selection,
    partitioning each group where it lies when ``in_place`` (no copy of the values)."""
    ranks = (counts[:, None] - 1).astype(np.float64) * np.array(qs)[None, :]
    lo_at, hi_at = np.floor(ranks).astype(np.int64), np.ceil(ranks).astype(np.int64)
    lo, hi = np.empty(ranks.shape, np.int64), np.empty(ranks.shape, np.int64)
    for g, (start, count) in enumerate(zip(offsets.tolist(), counts.tolist(), strict=True)):
        kth = np.unique(np.concatenate((lo_at[g], hi_at[g])))
        part = values[start : start + count]
        if in_place:
            part.partition(kth)
        else:
            part = np.partition(part, kth)
        lo[g], hi[g] = part[lo_at[g]], part[hi_at[g]]
    return interpolate(lo, hi, ranks)


def _sort_within(groups: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """``values`` (non-negative integers) sorted by (group, value): one integer sort when both
    fit in 63 bits, else a two-key lexsort."""
    if len(values) == 0:
        return values
    value_bits = int(values.max()).bit_length()
    group_bits = max(n_groups - 1, 0).bit_length()
    if value_bits + group_bits <= 62:
        keys = (groups.astype(np.int64) << value_bits) | values
        keys.sort()
        return keys & ((1 << value_bits) - 1)
    return values[np.lexsort((values, groups))]


def grouped_quantiles(
    groups: np.ndarray,
    values: np.ndarray,
    n_groups: int,
    *,
    qs: tuple[float, ...] = QUANTILES,
) -> np.ndarray:
    """Quantiles ``qs`` of non-negative integer ``values`` (µs) per group ``0..n_groups-1`` (every
    group non-empty), in seconds, one row per group: one sort by (group, value), then the
    order statistics of every group at once."""
    counts = np.bincount(groups, minlength=n_groups)
    offsets = (np.cumsum(counts) - counts).astype(np.int64)
    ordered = _sort_within(groups, values, n_groups)
    out = np.empty((n_groups, len(qs)))
    for j, q in enumerate(qs):
        rank = (counts - 1).astype(np.float64) * q
        lo = ordered[offsets + np.floor(rank).astype(np.int64)]
        hi = ordered[offsets + np.ceil(rank).astype(np.int64)]
        out[:, j] = interpolate(lo, hi, rank)
    return out


def run_quantiles(
    values: np.ndarray,
    counts: np.ndarray,
    qs: tuple[float, ...] = QUANTILES,
    *,
    in_place: bool = False,
) -> np.ndarray:
    """As :func:`grouped_quantiles` for values already grouped in runs of ``counts`` (any order
    inside a run): few runs are selected one by one (linear time), many are sorted at once.
    With ``in_place`` the values may be reordered inside their runs (never across runs)."""
    if len(counts) <= LOOP_GROUPS:
        offsets = (np.cumsum(counts) - counts).astype(np.int64)
        return _quantiles_by_loop(values, offsets, counts, qs, in_place)
    return grouped_quantiles(np.repeat(np.arange(len(counts)), counts), values, len(counts), qs=qs)


def run_sums(
    values: np.ndarray,
    offsets: np.ndarray,
    block: int,
    of: Callable[[np.ndarray], np.ndarray] = lambda part: part,
) -> np.ndarray:
    """``np.add.reduceat(of(values), offsets)`` in int64 (runs starting at ``offsets``,
    ascending, the first 0), ``block`` values at a time, each block's runs added to their
    running sums: ``of`` of the whole array, or its int64 copy, is never made."""
    sums = np.zeros(len(offsets), np.int64)
    for lo in range(0, len(values), block):
        hi = min(lo + block, len(values))
        first = int(np.searchsorted(offsets, lo, side="right")) - 1  # the run holding lo
        last = int(np.searchsorted(offsets, hi, side="left"))  # runs first..last-1 meet it
        local = np.maximum(offsets[first:last] - lo, 0)
        sums[first:last] += np.add.reduceat(of(values[lo:hi]), local, dtype=np.int64)
    return sums


def exact_sums(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Per-group sums of non-negative int64 values without overflow: in int64 when no sum can
    exceed it, else high and low 32 bits summed apart (each fits in int64 for up to 2**31
    values) and joined as Python integers."""
    if len(values) == 0:
        return np.array([], dtype=object)
    if int(values.max()) < (1 << 63) // len(values):  # no sum can overflow: one pass
        return np.add.reduceat(values, offsets).astype(object)
    # High and low halves summed a block of values at a time: halves of the whole array would
    # be two temporaries of its size (240 MB each for the waits of 30M events).
    high = run_sums(values, offsets, SUM_BLOCK, lambda part: part >> 32)
    low = run_sums(values, offsets, SUM_BLOCK, lambda part: part & 0xFFFFFFFF)
    return np.asarray(high.astype(object) * (1 << 32) + low.astype(object), dtype=object)
