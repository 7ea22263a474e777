"""Discovery figures in one pass over a sorted log of integer codes (numpy, no SQL windows).

A log stored by :func:`journeymine.mining.discovery.materialise_log` is in (case, time, seq)
order with an ENUM activity, so read once as three integer arrays — case key, activity code
(the ENUM's index), microseconds — a case is a run of rows and two neighbours in a run are a
directly-follows pair. Every figure is then a few vectorised passes over those arrays, and
names are decoded only for the output rows:

* edges (:mod:`journeymine.mining.edges`): a pair's edge id is ``source * K + target``; one
  stable radix sort on the edge id groups the pairs (cases stay in order inside a group, so
  distinct cases are counted by change points), and the median and p90 are picked per edge;
* variants (:mod:`journeymine.mining.variants`): each case's codes as one binary value,
  grouped exactly by Arrow's hash table;
* start / end activities: the first and last row of every run.

An Arrow log (:func:`from_arrow`) only needs its cases grouped, not sorted: one pass over the
case column finds its runs, and a log that arrives grouped (the usual export) is not moved.

"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Rows per block where a pass over the log would otherwise allocate temporaries of its size.
BLOCK = 1 << 20
SeqAt = Callable[[np.ndarray], np.ndarray]  # a log's ``seq`` at given rows


def _hugepage_switch() -> Callable[[bool], bool] | None:
    """numpy's switch for asking the kernel for huge pages on large arrays (it returns the
    previous setting), or None where this numpy has none."""
    try:
        from numpy._core import multiarray
    except ImportError:  # pragma: no cover - numpy < 2
        return None
    switch: Callable[[bool], bool] | None = getattr(multiarray, "_set_madvise_hugepage", None)
    return switch


@contextmanager
def small_pages() -> Iterator[None]:
    """numpy's large arrays without ``madvise(MADV_HUGEPAGE)`` inside, the caller's setting
    restored after. numpy asks for transparent huge pages on every array of 4 MB and more;
    on this project's VMs a fresh huge page costs far more kernel time than the 4 KB pages it
    replaces (10M events, one fresh process each: ``from_arrow`` 0.43-0.46 s system CPU with
    huge pages, 0.07-0.19 s without; the dfg 0.40 vs 0.15-0.18 s). The switch is the
    process's, so other threads' arrays meanwhile get small pages too: only their speed
    changes."""
    switch = _hugepage_switch()
    if switch is None:  # pragma: no cover - numpy without the switch
        yield
        return
    before = switch(False)
    try:
        yield
    finally:
        switch(before)


@dataclass(frozen=True)
class SortedLog:
    """A log grouped by case, in (time, seq) order inside a case, as arrays: ``case`` codes
    (each case one run of rows), ``activity`` codes into ``names`` (:func:`code_type`), ``us``
    microseconds since the epoch; ``starts`` are the first rows of the cases. ``case_keys``
    are the cases' keys (one per case, in row order) where the cases do not run in key order;
    None means they do (only ties between variants look at it)."""

    case: np.ndarray
    activity: np.ndarray
    us: np.ndarray
    names: list[str]
    starts: np.ndarray
    case_keys: pa.Array | None = None

    @property
    def ends(self) -> np.ndarray:
        """The last row of each case."""
        return np.append(self.starts[1:], len(self.case)).astype(np.int64)[: len(self.starts)] - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(np.append(self.starts, len(self.case))).astype(np.int64)


def code_type(n_names: int) -> type[np.unsignedinteger]:
    """The narrowest unsigned integer that holds every activity code (one byte each for up
    to 256 activities: every pass over the codes reads a quarter of what int32 would)."""
    if n_names <= 1 << 8:
        return np.uint8
    return np.uint16 if n_names <= 1 << 16 else np.uint32


def _codes(column: pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    """The indices and names of an ENUM column read as Arrow dictionary chunks."""
    if column.num_chunks and any(
        not c.dictionary.equals(column.chunk(0).dictionary) for c in column.chunks
    ):
        column = column.unify_dictionaries()
    if not column.num_chunks:
        return np.zeros(0, np.int32), []
    indices = [np.asarray(c.indices.to_numpy(zero_copy_only=False)) for c in column.chunks]
    names = column.chunk(0).dictionary.to_pylist()
    # Concatenated straight into the narrow type: the indices are codes below len(names).
    return np.concatenate(indices, dtype=code_type(len(names)), casting="unsafe"), names


def _numbers(column: pa.ChunkedArray) -> np.ndarray:
    """An integer (or timestamp, as its integer) column as one int64 array."""
    if pa.types.is_timestamp(column.type):
        column = column.cast(pa.timestamp("us", column.type.tz)).cast(pa.int64())
    return np.asarray(column.combine_chunks().to_numpy(zero_copy_only=False), np.int64)


def _micros(column: pa.ChunkedArray) -> np.ndarray:
    """Timestamps of any unit as int64 microseconds (finer units truncated, as DuckDB stores)."""
    if pa.types.is_timestamp(column.type) and column.type.unit != "us":
        column = pc.cast(column, pa.timestamp("us", column.type.tz), safe=False)
    return _numbers(column)


def read_sorted(con: duckdb.DuckDBPyConnection, log: str) -> SortedLog:
    """Read a materialised log (``rn, case_key, activity ENUM, ts``) into a :class:`SortedLog`.

    The ENUM arrives as Arrow dictionary indices (its codes, no string touched) and the
    timestamps as their microseconds. A table scan returns rows in insertion order, which
    ``materialise_log`` made the ``rn`` order; ``rn`` is checked, and sorted on only if the
    check fails. The rows stream batch by batch into the three arrays: neither the Arrow
    result nor ``rn`` is ever held whole (at 100M events, ~3 GB less at the peak)."""
    rows = int(con.execute(f"SELECT count(*) FROM {log}").fetchall()[0][0])
    reader = con.sql(f"SELECT rn, case_key, activity, ts FROM {log}").to_arrow_reader(BATCH_ROWS)
    try:
        with small_pages():
            streamed = _streamed(reader, rows)
    finally:
        reader.close()  # the connection takes no other query while a result is open
    if streamed is None:
        return _read_whole(con, log)
    with small_pages():
        return sorted_log(*streamed)


# Rows per Arrow batch of :func:`read_sorted` (DuckDB may hand over fewer at a time).
BATCH_ROWS = 1 << 17


def _batch_numbers(array: pa.Array) -> np.ndarray:
    """An integer (or timestamp, as its microseconds) array of one batch, zero-copy."""
    if pa.types.is_timestamp(array.type):
        if array.type.unit != "us":
            array = pc.cast(array, pa.timestamp("us", array.type.tz), safe=False)
        array = array.cast(pa.int64())
    return np.asarray(array.to_numpy(zero_copy_only=False))


def _streamed(
    reader: pa.RecordBatchReader, rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]] | None:
    """(case, codes, µs, names) of ``rows`` rows read batch by batch into arrays of their final
    size; None if ``rn`` does not rise, an ENUM batch has another dictionary or the row count
    differs (then :func:`_read_whole` reads and sorts the log)."""
    case, us = np.empty(rows, np.int64), np.empty(rows, np.int64)
    code: np.ndarray | None = None
    dictionary: pa.Array | None = None
    at, last = 0, None
    for batch in reader:
        n = batch.num_rows
        if n == 0:
            continue
        rn = _batch_numbers(batch.column(0))
        if at + n > rows or (last is not None and rn[0] <= last) or np.any(rn[1:] <= rn[:-1]):
            return None
        activity = batch.column(2)
        if dictionary is None:
            dictionary = activity.dictionary
            code = np.empty(rows, code_type(len(dictionary)))
        elif not activity.dictionary.equals(dictionary):
            return None
        assert code is not None
        code[at : at + n] = activity.indices.to_numpy(zero_copy_only=False)
        case[at : at + n] = _batch_numbers(batch.column(1))
        us[at : at + n] = _batch_numbers(batch.column(3))
        at, last = at + n, int(rn[-1])
    if at != rows:
        return None
    if code is None or dictionary is None:
        return case, np.zeros(0, np.uint8), us, []
    return case, code, us, [str(n) for n in dictionary.to_pylist()]


def _read_whole(con: duckdb.DuckDBPyConnection, log: str) -> SortedLog:
    """:func:`read_sorted` for a log whose scan is not in ``rn`` order: read whole, sorted."""
    table = con.sql(f"SELECT rn, case_key, activity, ts FROM {log}").to_arrow_table()
    with small_pages():
        rn, case, us = (_numbers(table.column(c)) for c in ("rn", "case_key", "ts"))
        code, names = _codes(table.column("activity"))
        if len(rn) > 1 and not bool(np.all(rn[1:] > rn[:-1])):
            order = np.argsort(rn, kind="stable")
            case, code, us = case[order], code[order], us[order]
        return sorted_log(case, code, us, names)


def sorted_log(
    case: np.ndarray,
    activity: np.ndarray,
    us: np.ndarray,
    names: list[str],
    *,
    case_keys: pa.Array | None = None,
) -> SortedLog:
    """A :class:`SortedLog` from arrays grouped by case and in (time, seq) order inside one."""
    case = np.asarray(case) if np.asarray(case).dtype.kind in "iu" else np.asarray(case, np.int64)
    first = np.ones(len(case), dtype=bool)
    np.not_equal(case[1:], case[:-1], out=first[1:])
    starts = np.flatnonzero(first).astype(np.int64)
    activity, us = np.asarray(activity, code_type(len(names))), np.asarray(us, np.int64)
    return SortedLog(case, activity, us, names, starts, case_keys)


def key_ranks(keys: pa.Array) -> np.ndarray:
    """Each of distinct ``keys``' rank in ascending order (0-based): one sort of the keys."""
    rank = np.empty(len(keys), np.int64)
    rank[np.asarray(pc.sort_indices(keys))] = np.arange(len(rank))
    return rank


def _radix_order(keys: np.ndarray, n_keys: int) -> np.ndarray:
    """The stable order of non-negative integer ``keys``: least significant 16 bits first, each
    pass a linear-time radix sort (numpy's stable sort of 16-bit integers)."""
    order = np.arange(len(keys))
    for shift in range(0, max(n_keys - 1, 1).bit_length(), 16):
        digit = ((keys[order] >> shift) & 0xFFFF).astype(np.uint16)
        order = order[np.argsort(digit, kind="stable")]
    return order


def _time_ties(case: np.ndarray, us: np.ndarray) -> np.ndarray | None:
    """For rows grouped by case: the rows whose next row in the same case has the same time,
    or None if time steps back inside a case. Block by block, so that the temporaries are
    reused in cache instead of allocated at the size of the log."""
    ties = [np.zeros(0, np.int64)]
    for lo in range(0, len(us) - 1, BLOCK):
        hi = min(lo + BLOCK, len(us) - 1)
        same = case[lo + 1 : hi + 1] == case[lo:hi]
        step = us[lo + 1 : hi + 1] - us[lo:hi]
        if bool(np.any((step < 0) & same)):
            return None
        ties.append(np.flatnonzero((step == 0) & same) + lo)
    return np.concatenate(ties)


def _in_order(case: np.ndarray, us: np.ndarray, seq: SeqAt) -> bool:
    """Whether rows grouped by case are in (case, time, seq) order; ``seq`` gives the values
    at given rows, asked only where the time ties."""
    ties = _time_ties(case, us)
    if ties is None:
        return False
    # One ask for both rows of every tie (row, next row, ...: still non-decreasing rows).
    pairs = seq(np.stack((ties, ties + 1), axis=1).ravel()).reshape(-1, 2)
    return bool(np.all(pairs[:, 1] >= pairs[:, 0]))


def _heads(chunk: pa.Array) -> np.ndarray:
    """Where the runs of equal values of one chunk start: dictionary indices (one dictionary
    per chunk) or the values themselves compared with their neighbour."""
    if pa.types.is_dictionary(chunk.type):
        indices = np.asarray(chunk.indices.to_numpy(zero_copy_only=False))
        change = indices[1:] != indices[:-1]
    else:
        change = np.asarray(pc.not_equal(chunk[1:], chunk[:-1]).to_numpy(zero_copy_only=False))
    return np.flatnonzero(np.concatenate(([True], change)))


def _dictionary_maps(chunks: list[pa.Array]) -> tuple[list[np.ndarray], pa.Array]:
    """For dictionary chunks: per chunk, its dictionary's entries as indices into one array of
    distinct values. Each distinct dictionary is hashed once (a Parquet reader shares one per
    row group among that row group's chunks), no row's string is touched."""
    first: dict[tuple[object, ...], int] = {}
    dictionaries: list[pa.Array] = []
    which = []
    for chunk in chunks:
        d = chunk.dictionary
        key = (len(d), d.offset, *(b.address if b is not None else 0 for b in d.buffers()))
        if key not in first:
            first[key] = len(dictionaries)
            dictionaries.append(d)
        which.append(first[key])
    encoded = pc.dictionary_encode(pa.concat_arrays(dictionaries))
    index = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), np.int64)
    bounds = np.cumsum([0] + [len(d) for d in dictionaries])
    maps = [index[bounds[w] : bounds[w + 1]] for w in which]
    return maps, encoded.dictionary


def _head_codes(chunks: list[pa.Array], heads: list[np.ndarray]) -> tuple[np.ndarray, pa.Array]:
    """Each run's case as an index into an array of distinct case values."""
    if pa.types.is_dictionary(chunks[0].type):
        maps, values = _dictionary_maps(chunks)
        codes = [
            m[np.asarray(c.indices.to_numpy(zero_copy_only=False))[h]]
            for c, m, h in zip(chunks, maps, heads, strict=True)
        ]
        return np.concatenate(codes), values
    # One array: encoding chunk by chunk would give every chunk its own growing dictionary.
    encoded = pc.dictionary_encode(
        pa.concat_arrays([c.take(pa.array(h)) for c, h in zip(chunks, heads, strict=True)])
    )
    return np.asarray(encoded.indices.to_numpy(zero_copy_only=False)), encoded.dictionary


@dataclass(frozen=True)
class CaseRuns:
    """A case column as runs of equal values: ``starts`` (first row of each run, ascending),
    ``code`` (each run's case, neighbours never equal; numbered by first appearance when the
    log is grouped), ``keys`` (the distinct case values, by code)."""

    starts: np.ndarray
    code: np.ndarray
    keys: pa.Array

    @property
    def grouped(self) -> bool:
        """Whether every case is one run (the log is grouped by case, in any case order)."""
        return len(self.code) == len(self.keys)


def case_runs(column: pa.ChunkedArray) -> CaseRuns:
    """The runs of a case column without nulls: one linear pass comparing neighbours, then only
    the runs' first rows (one per case in a grouped log) are given case codes."""
    chunks = [c for c in column.chunks if len(c)]
    if not chunks:
        return CaseRuns(np.zeros(0, np.int64), np.zeros(0, np.int32), pa.array([], pa.string()))
    heads = [_heads(c) for c in chunks]
    firsts = np.cumsum([0] + [len(c) for c in chunks[:-1]])
    codes, values = _head_codes(chunks, heads)
    keep = np.concatenate(([True], codes[1:] != codes[:-1]))  # runs cut only by chunk ends
    starts = np.concatenate([h + f for h, f in zip(heads, firsts, strict=True)])[keep]
    present = np.bincount(codes, minlength=len(values)) > 0
    if int(keep.sum()) == int(present.sum()):  # grouped: number the cases in row order
        # Every run is another case, so the runs' codes are already distinct: no factorize.
        code = np.arange(len(starts), dtype=np.int32)
        return CaseRuns(starts, code, values.take(pa.array(codes[keep])))
    dense = (np.cumsum(present) - 1).astype(np.int32)  # any numbering will do: a linear one
    return CaseRuns(starts, dense[codes[keep]], values.filter(pa.array(present)))


def _run_codes(runs: CaseRuns, n_rows: int) -> np.ndarray:
    """Each row's case code: the running count of run starts, mapped to the run's code unless
    the runs are the cases in code order (a grouped log, codes by first appearance)."""
    run = np.zeros(n_rows, dtype=np.int32)
    run[runs.starts[1:]] = 1
    np.cumsum(run, out=run)
    return run if runs.grouped else runs.code[run]


def _row_order(runs: CaseRuns, n_rows: int) -> np.ndarray | None:
    """The rows in case-code order (stable), moving whole runs; None when already grouped."""
    if runs.grouped:
        return None
    lengths = np.diff(np.append(runs.starts, n_rows))
    moved = _radix_order(runs.code.astype(np.int64), len(runs.keys))
    lengths = lengths[moved]
    ends = np.cumsum(lengths)
    return np.repeat(runs.starts[moved] - (ends - lengths), lengths) + np.arange(n_rows)


def _activity_codes(column: pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    """Activity codes and names of a string or dictionary column."""
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    code, names = _codes(column)
    return code, [str(n) for n in names]


def _take_sorted(column: pa.ChunkedArray, rows: np.ndarray) -> np.ndarray:
    """An integer column's values at non-decreasing ``rows``, chunk by chunk: no copy of the
    column, no Arrow take across chunks."""
    lengths = np.array([len(c) for c in column.chunks], dtype=np.int64)
    firsts = np.cumsum(lengths) - lengths
    bounds = np.searchsorted(rows, np.append(firsts, firsts[-1] + lengths[-1]))
    out = np.empty(len(rows), np.int64)
    for chunk, first, lo, hi in zip(column.chunks, firsts, bounds[:-1], bounds[1:], strict=True):
        if hi > lo:
            out[lo:hi] = np.asarray(chunk.to_numpy(zero_copy_only=False))[rows[lo:hi] - first]
    return out


def _seq_at(column: pa.ChunkedArray, order: np.ndarray | None) -> SeqAt:
    """``seq`` at given non-decreasing rows of the (re)ordered log, without reading the whole
    column when the rows were not moved."""

    def at(rows: np.ndarray) -> np.ndarray:
        if order is None:
            return _take_sorted(column, rows)
        return _numbers(column)[order[rows]]

    return at


# Rows per case run below which a log's cases count as scattered (shuffled, or in time order
# across cases): moving runs would cost a pass per row, so cases are ranked instead.
SCATTERED = 4


def _ranked(table: pa.Table, runs: CaseRuns) -> SortedLog:
    """:func:`from_arrow` for a log whose cases are scattered: cases ranked by key (one sort of
    the distinct keys ``case_runs`` found), rows moved by the stable radix sort of their rank,
    which keeps a log in time order in time order inside each case; else one three-key sort."""
    rank = key_ranks(runs.keys)
    case = rank[_run_codes(runs, table.num_rows)]
    order = _radix_order(case, len(rank))
    codes, names = _activity_codes(table.column("activity"))
    case, codes = case[order], codes[order]
    us, seq = _micros(table.column("ts"))[order], _numbers(table.column("seq"))[order]
    if not _in_order(case, us, lambda rows: seq[rows]):
        again = np.lexsort((seq, us, case))
        case, us, codes = case[again], us[again], codes[again]
    return sorted_log(case, codes, us, names)


def from_arrow(table: pa.Table) -> SortedLog:
    """A :class:`SortedLog` of an Arrow log (``case_key`` or ``case_id``, ``activity``, ``ts``,
    ``seq``) without a database. Rows without case, activity or time are left out.

    Cases only need to be grouped, not sorted: a log already grouped by case (checked in one
    pass over the case column) is used as it comes, any other is grouped by a linear-time
    radix sort of its runs. The lexical order of case keys matters only for ties between
    variants (first case = lowest key, as in the stored log), so only the distinct keys are
    sorted, and only for the variants (``SortedLog.case_keys``). Rows not already in time
    order inside a case (the usual export is) fall back to one three-key sort."""
    with small_pages():  # every array below is fresh memory
        return _from_arrow(table)


def _from_arrow(table: pa.Table) -> SortedLog:
    """:func:`from_arrow`'s work."""
    case_column = "case_key" if "case_key" in table.column_names else "case_id"
    table = table.select([case_column, "activity", "ts", "seq"])
    if any(table.column(c).null_count for c in (case_column, "activity", "ts")):
        keep = pc.and_(
            pc.and_(pc.is_valid(table.column(case_column)), pc.is_valid(table.column("activity"))),
            pc.is_valid(table.column("ts")),
        )
        table = table.filter(keep)
    if table.num_rows == 0:
        return sorted_log(np.zeros(0), np.zeros(0), np.zeros(0), [])
    runs = case_runs(table.column(case_column))
    if not runs.grouped and len(runs.starts) > table.num_rows // SCATTERED:
        return _ranked(table, runs)
    case = _run_codes(runs, table.num_rows)
    codes, names = _activity_codes(table.column("activity"))
    us = _micros(table.column("ts"))
    order = _row_order(runs, table.num_rows)
    if order is not None:
        case, us, codes = case[order], us[order], codes[order]
    if not _in_order(case, us, _seq_at(table.column("seq"), order)):
        seq = _numbers(table.column("seq"))
        order = np.lexsort((seq if order is None else seq[order], us, case))
        case, us, codes = case[order], us[order], codes[order]
    if runs.grouped:  # the runs are the cases, in place: no second pass to find their starts
        return SortedLog(case, codes, us, names, runs.starts, runs.keys)
    return sorted_log(case, codes, us, names, case_keys=runs.keys)
