"""The directly-follows graph and the start / end activities of a sorted log of codes.

Every row's pair with the next row of its case gets an edge id; the pairs are ordered by edge
with a stable radix sort, one block of rows at a time, so that each edge's pairs lie together
with their cases still in order. Counts, distinct cases and the waits' mean, median and p90
are then computed per group. Quantiles are DuckDB's ``quantile_cont`` to the bit and the mean
wait is the exact integer sum of microseconds divided once, as the sharded run does
(:mod:`journeymine.mining.quantiles`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from journeymine.mining.codes import SortedLog, small_pages
from journeymine.mining.quantiles import exact_sums, run_quantiles, run_sums

# Rows per block of the passes below: small enough that a block's temporaries and the rows it
# reads and writes at random stay in cache. At 10M events, grouping the waits by edge took
# 0.127-0.131 s CPU in blocks of 64k rows, 0.162-0.178 s in blocks of 1M (codes.BLOCK); the
# whole dfg 0.39-0.41 vs 0.45-0.49 s (16k and 32k rows: no better than 64k).
BLOCK = 1 << 16
BIG_BLOCK = 1 << 20  # rows per block of a pass that only reads in order (no random access)


def _pair_edges(log: SortedLog, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every row's edge to the next row as a small integer id (ascending with
    ``source * k + target``), and the edge of each id. A row whose next row starts another
    case gets the last id, ``k * k``, which no edge has: no row is filtered out, so no pass
    compacts the pairs. With up to 255 activities the ids are the edges themselves, computed
    in 16 bits (so that numpy's stable sort of them is a linear-time radix sort)."""
    none = k * k
    if none < 1 << 16:
        code = log.activity.astype(np.uint16, copy=False)
        ids = np.multiply(code[:-1], np.uint16(k), dtype=np.uint16)
        ids += code[1:]
        ids[log.starts[1:] - 1] = none
        return ids, np.arange(none + 1, dtype=np.int64)
    edge = log.activity[:-1].astype(np.int64) * k + log.activity[1:]
    edge[log.starts[1:] - 1] = none
    values, ids = np.unique(edge, return_inverse=True)
    return ids.astype(np.uint16 if len(values) <= 1 << 16 else np.int64), values


def _block_counts(ids: np.ndarray, n_ids: int) -> np.ndarray:
    """``np.bincount(ids, minlength=n_ids)`` block by block: bincount first converts its input
    to 64-bit integers, which for the whole log is a fresh array four times the 16-bit ids."""
    counts = np.zeros(n_ids, np.int64)
    for lo in range(0, len(ids), BLOCK):
        counts += np.bincount(ids[lo : lo + BLOCK], minlength=n_ids)
    return counts


def _grouped(ids: np.ndarray, counts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values[np.argsort(ids, kind="stable")]`` for ids below ``len(counts)`` that occur
    ``counts`` times (:func:`_grouped_blocks` of an array)."""
    return _grouped_blocks(ids, counts, lambda lo, hi: values[lo:hi], values.dtype)


BlockValues = Callable[[int, int], np.ndarray]  # the values of rows lo..hi-1


def _grouped_blocks(
    ids: np.ndarray, counts: np.ndarray, values: BlockValues, dtype: np.dtype[Any]
) -> np.ndarray:
    """The values of the rows (``values(lo, hi)``, asked block by block) in the stable order
    of their ids, ids below ``len(counts)`` that occur ``counts`` times: each block of rows is
    sorted alone (numpy's radix sort, with a scratch array of the block's size instead of the
    log's), and its values are written where its ids' values go, after those of the same id in
    earlier blocks. So the only random reads are inside one block (cache-sized), and the writes
    are runs of neighbours: the row order of the whole log, gathered from afterwards, read the
    values one cache miss per pair (0.20-0.26 s of the dfg's ~0.5 s CPU at 10M events). Fresh
    memory costs more than the sorting here, hence no array of the log's size but the result;
    values made per block (the waits) need none either."""
    out = np.empty(len(ids), dtype)
    cursor = np.cumsum(counts) - counts  # where each id's next values go
    steps = np.arange(min(len(ids), BLOCK), dtype=np.int64)
    for lo in range(0, len(ids), BLOCK):
        block = ids[lo : lo + BLOCK]
        local = np.argsort(block, kind="stable")
        here = np.bincount(block, minlength=len(counts))
        # The j-th row of the sorted block goes to its id's cursor plus j's place in its id.
        target = np.repeat(cursor - (np.cumsum(here) - here), here)
        target += steps[: len(block)]
        out[target] = values(lo, lo + len(block))[local]
        cursor += here
    return out


@dataclass(frozen=True)
class EdgeGroups:
    """Every row's edge id (``ids``, the rows ending a case last), the rows per id
    (``counts``); the edges present (``source * k + target``, ascending), their pair counts
    (``frequency``) and the number of pairs, which come first when grouped by id."""

    ids: np.ndarray
    counts: np.ndarray
    present: np.ndarray
    frequency: np.ndarray
    n_pairs: int


def _edge_groups(log: SortedLog, k: int) -> EdgeGroups:
    """Every row's edge id and how the pairs group by edge."""
    ids, values = _pair_edges(log, k)
    counts = _block_counts(ids, len(values))  # sequential: cheaper than from the order
    pairs, edge = counts, values
    if len(values) and values[-1] == k * k:  # the rows that end a case come last
        pairs, edge = counts[:-1], values[:-1]
    present = np.flatnonzero(pairs)
    frequency = pairs[present].astype(np.int64)
    return EdgeGroups(ids, counts, edge[present], frequency, int(pairs.sum()))


class _CaseNumbers:
    """Each row's case as its number in row order (0, 1, ...), made block by block from the
    case starts: as few bits as there are cases (keys may be far apart), and never an array of
    every row."""

    def __init__(self, starts: np.ndarray) -> None:
        self.starts = starts
        self.dtype = np.dtype(np.int32 if len(starts) < 1 << 31 else np.int64)

    def __call__(self, lo: int, hi: int) -> np.ndarray:
        first = int(np.searchsorted(self.starts, lo, side="right")) - 1  # the case holding lo
        last = int(np.searchsorted(self.starts, hi, side="left"))  # later starts below hi
        number = np.zeros(hi - lo, self.dtype)
        number[self.starts[first + 1 : last] - lo] = 1
        np.cumsum(number, out=number)
        number += first
        return number


class _Waits:
    """Each pair's wait (µs from a row to the next; 0 where the next row starts another case,
    so that those pairs, grouped last, do not widen the bound), made block by block from the
    log's times: the waits of the whole log are never an array of their own (800 MB at 100M
    events). ``packed`` adds the pair's case number above ``bits``."""

    def __init__(self, log: SortedLog) -> None:
        self.log, self.ends = log, log.starts[1:] - 1
        self.cases = _CaseNumbers(log.starts)
        self.bits, self.packed = 0, False

    def __call__(self, lo: int, hi: int) -> np.ndarray:
        us = self.log.us
        waits = np.subtract(us[lo + 1 : hi + 1], us[lo:hi])
        first, last = np.searchsorted(self.ends, (lo, hi))
        waits[self.ends[first:last] - lo] = 0
        if self.packed:
            high = self.cases(lo, hi).astype(np.int64)
            high <<= self.bits
            waits += high
        return waits

    def max_bits(self) -> int:
        """The bits of the longest wait, one block at a time."""
        n, longest = len(self.log.us) - 1, 0
        for lo in range(0, n, BLOCK):
            longest = max(longest, int(self(lo, min(lo + BLOCK, n)).max()))
        return longest.bit_length()


def _new_cases(packed: np.ndarray, bits: int, new_case: np.ndarray) -> None:
    """Whether each packed pair's case differs from the previous pair's (they differ above the
    wait ``bits``), into ``new_case[1:]``, block by block; then the cases are masked off."""
    for lo in range(0, len(packed) - 1, BLOCK):
        hi = min(lo + BLOCK, len(packed) - 1)
        change = np.bitwise_xor(packed[lo + 1 : hi + 1], packed[lo:hi])
        np.greater_equal(change, 1 << bits, out=new_case[lo + 1 : hi + 1])
    packed &= (1 << bits) - 1


# Bits of a packed pair: its case number above its wait, both non-negative in an int64.
PACKED_BITS = 63


def _in_edge_order(log: SortedLog, groups: EdgeGroups) -> tuple[np.ndarray, np.ndarray]:
    """The waits (µs) of the pairs grouped by edge (rows ascending inside an edge) and whether
    each pair's case differs from the previous pair's. Cases travel as their numbers in row
    order (:class:`_CaseNumbers`), not their keys. Where a wait and a case number fit in 63
    bits together, both travel as one packed integer: one pass to group them instead of two,
    and no grouped copy of the cases. Else (months of waits and millions of cases: 43 + 22
    bits at 30M events) the case numbers are grouped first, as int32, and freed before the
    waits are grouped."""
    n = groups.n_pairs
    new_case = np.ones(n, dtype=bool)
    if n == 0:
        return np.zeros(0, np.int64), new_case
    waits = _Waits(log)
    waits.bits = waits.max_bits()
    int64 = np.dtype(np.int64)
    if waits.bits + max(len(log.starts) - 1, 0).bit_length() > PACKED_BITS:
        cases = _grouped_blocks(groups.ids, groups.counts, waits.cases, waits.cases.dtype)[:n]
        np.not_equal(cases[1:], cases[:-1], out=new_case[1:])
        del cases  # before the waits are grouped: two arrays of every pair never at once
        return _grouped_blocks(groups.ids, groups.counts, waits, int64)[:n], new_case
    waits.packed = True
    packed = _grouped_blocks(groups.ids, groups.counts, waits, int64)[:n]
    _new_cases(packed, waits.bits, new_case)
    return packed, new_case


def dfg(log: SortedLog) -> pa.Table:
    """Directly-follows edges: frequency, distinct cases, wait mean / median / p90 (seconds),
    most frequent first, then by source and target name. Its arrays of the log's size come in
    small pages (:func:`small_pages`: a first call at 10M events took 0.98 s CPU with huge
    pages, against ~0.4 s)."""
    with small_pages():
        return _dfg(log)


def _dfg(log: SortedLog) -> pa.Table:
    """:func:`dfg`'s work."""
    k = max(len(log.names), 1)
    groups = _edge_groups(log, k)
    present, frequency = groups.present, groups.frequency
    offsets = (np.cumsum(frequency) - frequency).astype(np.int64)
    waits, new_case = _in_edge_order(log, groups)
    new_case[offsets] = True
    n_edges = len(present)
    # The distinct cases per edge, counted a block at a time: a bool reduceat of the whole
    # mask would first convert all of it to int64 (230 MB at 30M events).
    cases = run_sums(new_case, offsets, BIG_BLOCK) if n_edges else frequency
    # The waits are this function's own copy, and a run's sum ignores its order: partition
    # them where they lie.
    quantiles = run_quantiles(waits, frequency, in_place=True)
    sums = exact_sums(waits, offsets).tolist()
    means = [float(s) / f / 1e6 for s, f in zip(sums, frequency.tolist(), strict=True)]
    names = np.array(log.names, dtype=object)
    table = pa.table(
        {
            "source_activity": pa.array(names[present // k].tolist(), pa.string()),
            "target_activity": pa.array(names[present % k].tolist(), pa.string()),
            "frequency": pa.array(frequency, pa.int64()),
            "cases": pa.array(cases, pa.int64()),
            "wait_mean_s": pa.array(means, pa.float64()),
            "wait_median_s": pa.array(quantiles[:, 0], pa.float64()),
            "wait_p90_s": pa.array(quantiles[:, 1], pa.float64()),
        }
    )
    order = [("frequency", "descending"), ("source_activity", "ascending")]
    return table.sort_by([*order, ("target_activity", "ascending")])


def boundary_counts(log: SortedLog, first: bool) -> pa.Table:
    """How many cases start (``first``) or end with each activity, most first, then by name."""
    rows = log.starts if first else log.ends
    counts = np.bincount(log.activity[rows], minlength=len(log.names))
    present = np.flatnonzero(counts)
    table = pa.table(
        {
            "activity": pa.array([log.names[i] for i in present.tolist()], pa.string()),
            "cases": pa.array(counts[present].astype(np.int64), pa.int64()),
        }
    )
    return table.sort_by([("cases", "descending"), ("activity", "ascending")])
