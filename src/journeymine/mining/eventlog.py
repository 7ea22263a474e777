"""Event logs: one explicit mapping of case / activity / timestamp / resource / lifecycle.

Two ways in:

* :func:`read_event_log` reads a classic process-mining log (XES / XES.gz through pm4py, CSV,
  Parquet) with a column mapping, into an Arrow table ``case_id, activity, ts, seq, resource,
  lifecycle`` (``seq`` = row order in the file, which breaks timestamp ties). CSV columns are
  read as text so a case id literally ``NA`` stays a case; timestamps with offsets are
  converted to UTC row by row (offsets may change mid-log with daylight saving time).
* :func:`log_from_touchpoints` makes a TEMP view of the warehouse's touchpoints as a log,
  with case = person, account or deal, and filters.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from journeymine.errors import EventLogError

XES_DEFAULTS = (
    "case:concept:name",
    "concept:name",
    "time:timestamp",
    "org:resource",
    "lifecycle:transition",
)
CASE_COLUMNS = {"person": "person_id", "account": "account_id", "deal": "deal_id"}


@dataclass(frozen=True)
class EventLogMapping:
    """Which input column is the case, the activity, the timestamp (and resource, lifecycle)."""

    case: str = XES_DEFAULTS[0]
    activity: str = XES_DEFAULTS[1]
    timestamp: str = XES_DEFAULTS[2]
    resource: str | None = None
    lifecycle: str | None = None

    def validate(self, columns: list[str], source: str) -> None:
        required = {"case": self.case, "activity": self.activity, "timestamp": self.timestamp}
        optional = {"resource": self.resource, "lifecycle": self.lifecycle}
        for role, column in {**required, **optional}.items():
            if column is not None and column not in columns:
                raise EventLogError(
                    f"{source}: no column {column!r} for the {role}; the columns are "
                    f"{', '.join(columns[:30])}"
                )


def _read_frame(path: Path) -> pd.DataFrame:
    name = path.name.lower()
    if name.endswith((".xes", ".xes.gz")):
        from journeymine.mining.pm4py_adapter import read_xes

        return read_xes(path)
    if name.endswith((".csv", ".csv.gz")):
        with path.open("rt", errors="replace") as fh:
            sep = ";" if ";" in fh.readline() else ","
        return pd.read_csv(path, dtype=str, keep_default_na=False, sep=sep)
    if name.endswith(".parquet"):
        return pd.read_parquet(path)
    raise EventLogError(f"{path}: unknown event log format; use .xes, .xes.gz, .csv or .parquet")


def _utc(values: pd.Series, source: str, column: str) -> pd.Series:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    text = values.astype("string").str.strip().replace("", pd.NA)
    try:
        return pd.to_datetime(text, utc=True, format="mixed")
    except (ValueError, TypeError) as exc:
        raise EventLogError(
            f"{source}: column {column!r} has unparseable timestamps: {exc}"
        ) from None


def read_event_log(path: str | Path, mapping: EventLogMapping | None = None) -> pa.Table:
    """Read a log file into ``case_id, activity, ts, seq, resource, lifecycle``."""
    path = Path(path)
    mapping = mapping or EventLogMapping()
    frame = _read_frame(path)
    mapping.validate(list(frame.columns), str(path))
    out = pd.DataFrame(
        {
            "case_id": frame[mapping.case].astype("string"),
            "activity": frame[mapping.activity].astype("string").replace("", pd.NA),
            "ts": _utc(frame[mapping.timestamp], str(path), mapping.timestamp),
            "seq": range(len(frame)),
        }
    )
    for role, column in (("resource", mapping.resource), ("lifecycle", mapping.lifecycle)):
        if column is not None:
            out[role] = frame[column].astype("string")
    return pa.Table.from_pandas(out, preserve_index=False)


def log_from_touchpoints(
    con: duckdb.DuckDBPyConnection,
    *,
    case: str = "person",
    since: str | None = None,
    until: str | None = None,
    sources: list[str] | None = None,
    actor: str | None = None,
    name: str = "jm_touchpoint_log",
) -> str:
    """A TEMP view of ``touchpoints`` as an event log; returns its name."""
    if case not in CASE_COLUMNS:
        raise EventLogError(f"unknown case notion {case!r}; use one of {list(CASE_COLUMNS)}")
    column = CASE_COLUMNS[case]
    key = f"dense_rank() OVER (ORDER BY {column})" if case == "deal" else column
    where = [f"{column} IS NOT NULL"]
    if since:
        where.append(f"occurred_at >= '{pd.Timestamp(since).isoformat()}'::TIMESTAMPTZ")
    if until:
        where.append(f"occurred_at < '{pd.Timestamp(until).isoformat()}'::TIMESTAMPTZ")
    if sources:
        where.append(
            "source IN (" + ", ".join(f"'{s.replace(chr(39), '')}'" for s in sources) + ")"
        )
    if actor:
        where.append(f"actor = '{actor.replace(chr(39), '')}'")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW {name} AS
        SELECT {key}::BIGINT AS case_key, {column}::VARCHAR AS case_id, activity,
               occurred_at AS ts, seq, owner AS resource, NULL::VARCHAR AS lifecycle
        FROM touchpoints WHERE {" AND ".join(where)}
        """
    )
    return name


def with_case_keys(relation: str) -> str:
    """SQL adding ``case_key`` = ``dense_rank() OVER (ORDER BY case_id)`` to a relation, computed
    by ranking the distinct case ids once and joining them back: a window over every row sorts
    every row's string, this sorts each case id once (5x faster at 1M events)."""
    return f"""
        WITH jm_keys AS (
            SELECT case_id, row_number() OVER (ORDER BY case_id) AS case_key
            FROM (SELECT DISTINCT case_id FROM {relation})
        )
        SELECT k.case_key, r.* FROM {relation} r
        JOIN jm_keys k ON r.case_id IS NOT DISTINCT FROM k.case_id
    """


def register_log(con: duckdb.DuckDBPyConnection, table: pa.Table, name: str = "jm_file_log") -> str:
    """Put a read log into DuckDB as a table with an integer ``case_key`` (the rank of its case
    id, see :func:`with_case_keys`); returns its name."""
    con.register("jm_arrow_log", table)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {with_case_keys('jm_arrow_log')}")
    finally:
        con.unregister("jm_arrow_log")
    return name
