"""How much memory the warehouse's writer lets DuckDB keep, and where it spills the rest.

DuckDB's own default ``memory_limit`` is 80 % of the machine's RAM, and its buffer pool keeps
every block a run touched until that limit is reached: left alone, the writer's peak memory
grows with the data (1.3 GB at 1M raw rows, 2.7x the peak at 100k). Under a fixed cap, hash
aggregates, joins, sorts and window functions that need more spill to the warehouse's temp
folder (``<warehouse>.tmp``, set where it is opened) instead, and DuckDB's share of the peak
depends on the cap, not on the data.

The cap is the keyword when one is given (``load_landing(..., memory_limit="2GB")``), else
the ``JOURNEYMINE_MEMORY_LIMIT`` environment variable, else :data:`DEFAULT_MEMORY_LIMIT`.
Values are DuckDB's sizes (``"512MB"``, ``"2GB"``, ``"1.5GiB"``) or a share of the machine's
RAM (``"25%"``). See docs/scaling.md.
"""

from __future__ import annotations

import math
import os
import re

import duckdb

from journeymine.errors import UsageError

ENV_VAR = "JOURNEYMINE_MEMORY_LIMIT"
# Fixed, not a share of RAM, so that the writer's peak does not grow with the data: without it
# DuckDB held ~1 GB at 1M raw rows and 10 GB at 10M (benchmarks/README.md). Past it, queries
# spill. Not lower: at 10M raw rows the touchpoints rebuild runs out of memory under 256MB and
# 512MB (it needs memory no operator spills), and runs in 1GB (benchmarks/README.md, Ingest).
DEFAULT_MEMORY_LIMIT = "1GB"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)\s*$", re.IGNORECASE)
_SHARE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_UNITS |= {"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
MIN_BYTES = 16 * 2**20  # below this DuckDB cannot run even a small query


def memory_limit_bytes(value: str | None = None) -> int:
    """The cap in bytes: ``value``, else ``$JOURNEYMINE_MEMORY_LIMIT``, else the default."""
    where = "memory_limit"
    if value is None:
        value, where = os.environ.get(ENV_VAR), ENV_VAR
    if value is None or not value.strip():
        value, where = DEFAULT_MEMORY_LIMIT, "DEFAULT_MEMORY_LIMIT"
    size, share = _SIZE.match(value), _SHARE.match(value)
    if size:
        amount = int(float(size[1]) * _UNITS[size[2].upper()])
    elif share and 0 < float(share[1]) <= 100:
        amount = int(float(share[1]) / 100 * _physical_memory())
    else:
        raise UsageError(
            f"{where}={value!r}: not a memory size; write e.g. '512MB', '2GB' or '25%' (of RAM)"
        )
    if amount < MIN_BYTES:
        raise UsageError(f"{where}={value!r}: at least {MIN_BYTES >> 20}MB is needed")
    return amount


def _physical_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def apply_memory_limit(con: duckdb.DuckDBPyConnection, value: str | None = None) -> int:
    """Cap DuckDB's memory on ``con``'s database (so it spills past it); returns the bytes.

    The temp folder and ``max_temp_directory_size`` are the warehouse's (set where it is
    opened): a load whose working set exceeds the cap spills there rather than failing.
    """
    amount = memory_limit_bytes(value)
    set_memory_limit(con, amount)
    return amount


def set_memory_limit(con: duckdb.DuckDBPyConnection, amount: int) -> None:
    # A setting cannot be a bound parameter; the value is an integer we computed.
    con.execute(f"SET memory_limit = '{int(amount)}B'")


def out_of_memory(exc: duckdb.OutOfMemoryException, amount: int) -> str:
    """What to tell the user when a query needs more than the cap: the cap and how to raise it."""
    return (
        f"DuckDB needed more memory than the cap of {amount / 10**6:,.0f} MB that journeymine "
        f"sets on the writer, even spilling to disk; raise it with {ENV_VAR} (e.g. "
        f"{ENV_VAR}=4GB, or '50%' of RAM) and run again. DuckDB said: {str(exc).splitlines()[0]}"
    )


# Bytes of the cap a partitioned step (see :func:`partitions`) allows per input row.
# At 100M raw rows under 1GB, DISTINCT over 151M identifiers fails whole and passes in 8
# partitions of ~19M rows (benchmarks/README.md): 64 bytes a row gives 10.
PARTITION_ROW_BYTES = 64


def partitions(con: duckdb.DuckDBPyConnection, rows: int) -> int:
    """Into how many parts of its key (hash partitions, or ranges) a DISTINCT, join or
    aggregate over ``rows`` rows is cut to stay within ``con``'s cap: DuckDB 2.0's hash
    aggregate and hash join do not spill far enough for tens of millions of distinct strings,
    nor its list aggregate for millions of groups. One (the statement whole) up to ~15M rows
    under the default cap."""
    setting = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    cap = memory_limit_bytes(str(setting))
    return max(1, math.ceil(rows * PARTITION_ROW_BYTES / cap))
