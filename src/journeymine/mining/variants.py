"""Variants of a sorted log of integer codes: each case's activity sequence, grouped exactly.

Every case's codes are laid end to end as fixed-width integers (one byte each while there are
at most 256 activities), so each case is one binary value: the log's activity array itself,
cut at the case starts, with no copy beyond the narrowing. Arrow's hash table then groups the
cases (``dictionary_encode``): it compares the bytes of values whose hashes match, so two
sequences share a variant only when they are equal, and fixed-width codes make equal bytes
mean equal sequences. The dictionary it returns holds each variant's sequence once, which is
what the output lists decode. Variants are numbered by their first case in row order.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from journeymine.mining.codes import SortedLog, code_type, key_ranks
from journeymine.mining.quantiles import grouped_quantiles

# From this many bytes of codes on, offsets need 64 bits (``large_binary``).
LARGE_BYTES = 1 << 31


def sequences(log: SortedLog) -> pa.Array:
    """One binary value per case: its activity codes as fixed-width little-endian integers."""
    width = code_type(len(log.names))
    size = np.dtype(width).itemsize
    data = np.ascontiguousarray(log.activity, dtype=width)
    bounds = np.append(log.starts, len(log.activity)) * size
    large = len(data) * size >= LARGE_BYTES
    offsets = bounds.astype(np.int64 if large else np.int32)
    kind = pa.large_binary() if large else pa.binary()
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    return pa.Array.from_buffers(kind, len(log.starts), buffers)


def _decode(values: pa.Array, width: type[np.unsignedinteger]) -> tuple[np.ndarray, np.ndarray]:
    """The codes and per-value offsets (in codes) of binary values made by :func:`sequences`."""
    large = pa.types.is_large_binary(values.type)
    offset_type = np.int64 if large else np.int32
    size = np.dtype(width).itemsize
    _, offset_buffer, data_buffer = values.buffers()
    start = values.offset * np.dtype(offset_type).itemsize
    bounds = np.frombuffer(offset_buffer, offset_type, len(values) + 1, start)
    first, last = int(bounds[0]), int(bounds[-1])
    if data_buffer is None or last == first:
        return np.zeros(0, width), np.zeros(len(values) + 1, np.int32)
    codes = np.frombuffer(data_buffer, width, (last - first) // size, first)
    return codes, ((bounds - first) // size).astype(np.int32)


def _variant_order(log: SortedLog, ids: np.ndarray, cases: np.ndarray) -> np.ndarray:
    """Variants by cases descending, ties by their first case in key order: ids number the
    variants in row order of their first case, which is key order unless ``case_keys`` say
    otherwise; then each variant's lowest key rank decides."""
    if log.case_keys is None:
        return np.argsort(-cases, kind="stable")
    rank = key_ranks(log.case_keys)
    lowest = np.full(len(cases), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(lowest, ids, rank)
    return np.lexsort((lowest, -cases))


def variant_ids(log: SortedLog) -> tuple[np.ndarray, pa.Array]:
    """Each case's variant (numbered in order of first case) and the variants' sequences."""
    encoded = pc.dictionary_encode(sequences(log))
    ids = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), np.int64)
    return ids, encoded.dictionary


def discover(log: SortedLog) -> pa.Table:
    """Variants, most cases first, ties by first case: label, activities, cases, share,
    coverage, length and the median first-to-last duration (seconds) of their cases."""
    ids, distinct = variant_ids(log)
    n_variants = len(distinct)
    cases = np.bincount(ids, minlength=n_variants).astype(np.int64)
    durations = log.us[log.ends] - log.us[log.starts]
    medians = grouped_quantiles(ids, durations, n_variants, qs=(0.5,))[:, 0]
    order = _variant_order(log, ids, cases)
    codes, offsets = _decode(distinct.take(pa.array(order)), code_type(len(log.names)))
    names = pa.array(log.names, pa.string())
    activities = pa.ListArray.from_arrays(pa.array(offsets), names.take(pa.array(codes)))
    ordered = cases[order]
    total = int(cases.sum())
    return pa.table(
        {
            "variant": pc.binary_join(activities, " → "),
            "activities": activities,
            "cases": pa.array(ordered, pa.int64()),
            "share": pa.array(ordered / total if total else ordered.astype(float), pa.float64()),
            "coverage": pa.array(
                np.cumsum(ordered) / total if total else ordered.astype(float), pa.float64()
            ),
            "length": pa.array(np.diff(offsets), pa.int64()),
            "median_duration_s": pa.array(medians[order], pa.float64()),
        }
    )
