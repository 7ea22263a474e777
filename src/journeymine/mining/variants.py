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

from journeymine.mining.codes import SortedLog, code_type, key_ranks, small_pages
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


# Variants per batch when they are streamed to DuckDB (:func:`batches`): the names and labels
# of one batch (~20 MB at 10M events) are built, stored and freed before the next.
BATCH = 1 << 15


Columns = tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]


def columns(log: SortedLog) -> Columns:
    """The variants' numeric columns in output order, and their codes and offsets (in codes);
    arrays in small pages (:func:`small_pages`)."""
    with small_pages():
        return _columns(log)


def _columns(log: SortedLog) -> Columns:
    """:func:`columns`' work."""
    ids, distinct = variant_ids(log)
    n_variants = len(distinct)
    cases = np.bincount(ids, minlength=n_variants).astype(np.int64)
    durations = log.us[log.ends] - log.us[log.starts]
    medians = grouped_quantiles(ids, durations, n_variants, qs=(0.5,))[:, 0]
    order = _variant_order(log, ids, cases)
    codes, offsets = _decode(distinct.take(pa.array(order)), code_type(len(log.names)))
    ordered = cases[order]
    total = int(cases.sum())
    numbers = {
        "cases": ordered,
        "share": ordered / total if total else ordered.astype(float),
        "coverage": np.cumsum(ordered) / total if total else ordered.astype(float),
        "length": np.diff(offsets).astype(np.int64),
        "median_duration_s": medians[order],
    }
    return numbers, codes, offsets


SCHEMA = pa.schema(
    [
        ("variant", pa.string()),
        ("activities", pa.list_(pa.string())),
        ("cases", pa.int64()),
        ("share", pa.float64()),
        ("coverage", pa.float64()),
        ("length", pa.int64()),
        ("median_duration_s", pa.float64()),
    ]
)


def _batch(names: pa.Array, found: Columns, rows: slice) -> pa.RecordBatch:
    """Variants ``rows`` of :func:`columns`, with their activity lists and labels."""
    numbers, codes, offsets = found
    bounds = offsets[rows.start : rows.stop + 1]
    taken = names.take(pa.array(codes[bounds[0] : bounds[-1]]))
    activities = pa.ListArray.from_arrays(pa.array(bounds - bounds[0]), taken)
    values = [pc.binary_join(activities, " → "), activities]
    values += [pa.array(numbers[f.name][rows], f.type) for f in list(SCHEMA)[2:]]
    return pa.RecordBatch.from_arrays(values, schema=SCHEMA)


def batches(
    log: SortedLog, size: int | None = None, found: Columns | None = None
) -> pa.RecordBatchReader:
    """:func:`discover` as a stream of batches of ``size`` variants (from ``found``, the
    log's :func:`columns`, if already computed): a consumer that stores them (DuckDB) never
    holds the names and labels of all variants at once (at 10M events ~230 MB of fresh memory,
    which costs more than building them)."""
    found = found or columns(log)
    names = pa.array(log.names, pa.string())
    n, size = len(found[2]) - 1, size or BATCH
    parts = (_batch(names, found, slice(lo, min(lo + size, n))) for lo in range(0, n, size))
    return pa.RecordBatchReader.from_batches(SCHEMA, parts)


def discover(log: SortedLog) -> pa.Table:
    """Variants, most cases first, ties by first case: label, activities, cases, share,
    coverage, length and the median first-to-last duration (seconds) of their cases."""
    return batches(log).read_all()
