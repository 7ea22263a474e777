"""Process discovery in DuckDB: directly-follows graph, waiting times, variants.

An *event log* here is any relation with ``case_key BIGINT, activity VARCHAR, ts TIMESTAMPTZ,
seq BIGINT``. Events of a case are ordered by ``(ts, seq)``: equal timestamps keep the order
they had in the source (``seq``), exactly as pm4py's stable sort keeps file order — so the
figures equal pm4py's on the same log (tests prove it on real logs).

Definitions (documented in docs/metrics.md):

* an edge ``a -> b`` is one pair of consecutive events in a case; ``frequency`` counts pairs,
  ``cases`` counts distinct cases with at least one such pair;
* ``wait_*_s`` is the time from ``a`` to ``b`` in seconds: mean, median (average of the two
  middle values, as numpy), and p90 = ``quantile_cont(0.9)`` (linear interpolation, numpy's
  default ``percentile``);
* a variant is the exact sequence of activities of a case; ``median_duration_s`` is the median
  of first-to-last event time of its cases.

All of it is set-based SQL over the whole log, on a copy stored with an ENUM activity and
ordered by ``(case_key, ts, seq)`` (DESIGN §7: layout decides speed).
"""

from __future__ import annotations

import duckdb
import pandas as pd

LOG_COLUMNS = ("case_key", "activity", "ts", "seq")


def materialise_log(con: duckdb.DuckDBPyConnection, relation: str, table: str = "jm_log") -> str:
    """Copy an event log into ``table`` with an ENUM activity, sorted by (case, time, seq).

    ``rn`` numbers the rows in that order once, so later windows and lists order by one
    integer instead of re-sorting every case (2x faster at 10M events).
    """
    enum = f"{table}_activity"
    con.execute(f"DROP TABLE IF EXISTS {table}")
    con.execute(f"DROP TYPE IF EXISTS {enum}")
    con.execute(
        f"CREATE TYPE {enum} AS ENUM "
        f"(SELECT DISTINCT activity::VARCHAR FROM {relation} WHERE activity IS NOT NULL)"
    )
    con.execute(
        f"""
        CREATE TABLE {table} AS
        SELECT row_number() OVER (ORDER BY case_key, ts, seq) AS rn, *
        FROM (SELECT case_key::BIGINT AS case_key, activity::{enum} AS activity,
                     ts::TIMESTAMPTZ AS ts, seq::BIGINT AS seq
              FROM {relation} WHERE activity IS NOT NULL AND ts IS NOT NULL)
        ORDER BY rn
        """
    )
    return table


def _pairs(log: str) -> str:
    """Every event with the next event of its case (NULL after a case's last event): one window
    over the row order, cut at case boundaries."""
    return f"""
        SELECT case_key, source_activity,
               CASE WHEN next_case = case_key THEN target_activity END AS target_activity,
               CASE WHEN next_case = case_key THEN wait_s END AS wait_s
        FROM (
            SELECT case_key, activity AS source_activity,
                   lead(activity) OVER w AS target_activity, lead(case_key) OVER w AS next_case,
                   (epoch_us(lead(ts) OVER w) - epoch_us(ts)) / 1e6 AS wait_s
            FROM {log} WINDOW w AS (ORDER BY rn)
        )
    """


def _dfg_sql(log: str) -> str:
    # Both quantiles from one sort of each edge's waits (a list of quantiles costs one pass).
    return f"""
        SELECT source_activity, target_activity, frequency, cases, wait_mean_s,
               q[1] AS wait_median_s, q[2] AS wait_p90_s
        FROM (
            SELECT source_activity::VARCHAR AS source_activity,
                   target_activity::VARCHAR AS target_activity,
                   count(*) AS frequency, count(DISTINCT case_key) AS cases,
                   avg(wait_s) AS wait_mean_s, quantile_cont(wait_s, [0.5, 0.9]) AS q
            FROM ({_pairs(log)}) WHERE target_activity IS NOT NULL GROUP BY ALL
        ) ORDER BY frequency DESC, source_activity, target_activity
    """


def discover_dfg(con: duckdb.DuckDBPyConnection, log: str) -> pd.DataFrame:
    """Directly-follows edges with frequency, distinct cases and waiting times (seconds)."""
    return con.execute(_dfg_sql(log)).df()


def _boundary_activities(con: duckdb.DuckDBPyConnection, log: str, first: bool) -> dict[str, int]:
    pick = "arg_min" if first else "arg_max"
    rows = con.execute(
        f"""
        SELECT activity, count(*) FROM (
            SELECT {pick}(activity::VARCHAR, rn) AS activity FROM {log} GROUP BY case_key
        ) GROUP BY activity ORDER BY 2 DESC, 1
        """
    ).fetchall()
    return {a: int(n) for a, n in rows}


def start_activities(con: duckdb.DuckDBPyConnection, log: str) -> dict[str, int]:
    """How many cases start with each activity."""
    return _boundary_activities(con, log, first=True)


def end_activities(con: duckdb.DuckDBPyConnection, log: str) -> dict[str, int]:
    """How many cases end with each activity."""
    return _boundary_activities(con, log, first=False)


def _variants_sql(log: str) -> str:
    return f"""
        WITH traces AS (
            SELECT case_key, list(activity ORDER BY rn) AS activities,
                   (epoch_us(max(ts)) - epoch_us(min(ts))) / 1e6 AS duration_s
            FROM {log} GROUP BY case_key
        ), variants AS (
            SELECT activities, count(*) AS cases, median(duration_s) AS median_duration_s,
                   min(case_key) AS first_case
            FROM traces GROUP BY activities
        )
        SELECT array_to_string(activities::VARCHAR[], ' → ') AS variant,
               activities::VARCHAR[] AS activities, cases,
               cases / sum(cases) OVER () AS share,
               sum(cases) OVER (ORDER BY cases DESC, first_case ROWS UNBOUNDED PRECEDING)
                   / sum(cases) OVER () AS coverage,
               len(activities) AS length, median_duration_s
        FROM variants ORDER BY cases DESC, first_case
    """


def discover_variants(con: duckdb.DuckDBPyConnection, log: str) -> pd.DataFrame:
    """Variants, most frequent first: activities, cases, share, coverage, median duration.

    ``variant`` is a readable label (activities joined by `` → ``); ``activities`` the list.
    Ties in frequency are ordered by the variant's first case. Lists are grouped as lists of
    the ENUM (never through ``hash(list(enum))``, DESIGN §7).
    """
    return con.execute(_variants_sql(log)).df()


def write_discovery(con: duckdb.DuckDBPyConnection, log: str) -> None:
    """Store ``dfg``, ``variants``, ``start_activities`` and ``end_activities`` tables, all in
    DuckDB (no round trip through Python); start and end activities come from the variants."""
    con.execute(f"CREATE OR REPLACE TABLE dfg AS {_dfg_sql(log)}")
    con.execute(f"CREATE OR REPLACE TABLE variants AS {_variants_sql(log)}")
    for kind, index in (("start_activities", 1), ("end_activities", -1)):
        con.execute(
            f"CREATE OR REPLACE TABLE {kind} AS SELECT activities[{index}] AS activity, "
            "sum(cases)::BIGINT AS cases FROM variants GROUP BY 1 ORDER BY 2 DESC, 1"
        )


def simplify_dfg(
    con: duckdb.DuckDBPyConnection,
    log: str,
    *,
    max_activities: int | None = None,
    max_edges: int | None = None,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Keep the most frequent activities and edges; say what was hidden.

    Returns the kept edges and ``hidden``: activities, edges, events and share of events, and
    the share of cases that pass through at least one hidden activity or edge.
    """
    dfg = discover_dfg(con, log)
    counts = con.execute(
        f"SELECT activity::VARCHAR, count(*) FROM {log} GROUP BY 1 ORDER BY 2 DESC, 1"
    ).fetchall()
    kept_activities = [a for a, _ in counts][:max_activities]
    kept = dfg[
        dfg.source_activity.isin(kept_activities) & dfg.target_activity.isin(kept_activities)
    ]
    kept = kept.head(max_edges) if max_edges is not None else kept
    total_events = sum(n for _, n in counts)
    hidden_events = sum(n for a, n in counts if a not in set(kept_activities))
    con.register("jm_kept_edges", kept[["source_activity", "target_activity"]])
    con.register("jm_kept_acts", pd.DataFrame({"activity": kept_activities}))
    row = con.execute(
        f"""
        WITH pairs AS ({_pairs(log)}),
        touched AS (
            SELECT DISTINCT case_key FROM pairs p
            WHERE (p.target_activity IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM jm_kept_edges k WHERE k.source_activity = p.source_activity::VARCHAR
                AND k.target_activity = p.target_activity::VARCHAR))
            OR p.source_activity::VARCHAR NOT IN (SELECT activity FROM jm_kept_acts)
        )
        SELECT (SELECT count(*) FROM touched) / (SELECT count(DISTINCT case_key) FROM {log})
        """
    ).fetchall()[0]  # fetchall: DuckDB 2.0 refuses unregister() after a half-read result
    con.unregister("jm_kept_edges")
    con.unregister("jm_kept_acts")
    hidden = {
        "activities": len(counts) - len(kept_activities),
        "edges": len(dfg) - len(kept),
        "events": hidden_events,
        "events_share": hidden_events / total_events if total_events else 0.0,
        "cases_share": float(row[0]) if row and row[0] is not None else 0.0,
    }
    return kept.reset_index(drop=True), hidden
