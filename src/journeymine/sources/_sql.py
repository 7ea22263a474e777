"""The contract of a source's SQL fast path (issue 11: parsing inside DuckDB).

A source module may define ``stage_sql(con, path, file) -> SqlStaged | None``. It reads the file
with DuckDB (typed extraction, ``json_valid`` ...) and returns the staging tables of the records
the SQL could decide, plus the records it could not, parsed by the source's Python per-record
parser. ``None`` means "parse this whole file in Python" (``parse_file``). Either way the result
equals what ``parse_file`` gives for the same file: the differential tests hold both to that.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from journeymine.sources._common import ParsedFile


@dataclass
class SqlStaged:
    """One file staged by SQL.

    ``tables`` maps ``rows``, ``events``, ``edges``, ``labels`` and ``rejected`` to Arrow tables
    with the column names of the staging schemas (``journeymine.load.TABLES``; the loader casts the
    types); a missing key means no such rows. ``python`` holds what the Python parser made of the
    records the SQL left to it. ``rows_read`` counts every record of the file, both paths.
    """

    rows_read: int
    python: ParsedFile
    tables: dict[str, pa.Table] = field(default_factory=dict)
