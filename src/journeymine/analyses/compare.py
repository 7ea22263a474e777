"""Compare two groups' journeys: which directly-follows edges and variants are more (or less)
common in one group than in the other — "how do Enterprise journeys differ from SMB ones?".

Definitions (docs/metrics.md, "Comparing two groups"):

* a group's **cases** are its members that have at least one event in the log;
* an edge ``a → b``'s **share** in a group = cases of the group with at least one ``a``
  directly followed by ``b`` (order ``(ts, seq)``) / the group's cases; a variant's share =
  cases of the group with exactly that activity sequence / the group's cases;
* ``difference`` = share_a − share_b; ``p_value``: two-sided pooled two-proportion z-test
  (equal to Pearson's chi-square on the 2×2 table without continuity correction);
* ``significant``: Benjamini–Hochberg discovery at false-discovery rate ``alpha`` over all
  edges and variants compared together (one family of tests);
* variants are many and mostly rare: only the ``top_variants`` most frequent over both groups
  together are compared (chosen without looking at the groups, so the choice is no bias).

Counting is SQL over the whole log; only per-edge and per-variant counts leave DuckDB.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pandas as pd

from journeymine.analyses.stats import benjamini_hochberg, two_proportion_p
from journeymine.errors import JourneymineError
from journeymine.sql import touch_value

GROUPS = "jm_compare_groups"
CASE_COLUMNS = {"person": "person_id", "account": "account_id"}
COLUMNS = [
    "kind",
    "item",
    "group_a",
    "group_b",
    "cases_a",
    "cases_b",
    "share_a",
    "share_b",
    "difference",
    "p_value",
    "significant",
]


class CompareError(ValueError, JourneymineError):
    """The two groups cannot be compared (empty, overlapping); the message says why."""


def _counts_sql(log: str) -> str:
    """Per edge and per (top) variant: cases in group a and in group b, and the group sizes."""
    return f"""
        WITH ev AS (
            SELECT l.case_key, g.grp, l.activity::VARCHAR AS activity, l.ts, l.seq,
                   lead(l.activity::VARCHAR) OVER (PARTITION BY l.case_key ORDER BY l.ts, l.seq)
                       AS nxt
            FROM {log} l JOIN {GROUPS} g USING (case_key)
        ),
        edges AS (
            SELECT DISTINCT case_key, grp, activity || ' → ' || nxt AS item
            FROM ev WHERE nxt IS NOT NULL
        ),
        traces AS (
            SELECT case_key, any_value(grp) AS grp,
                   array_to_string(list(activity ORDER BY ts, seq), ' → ') AS item
            FROM ev GROUP BY case_key
        ),
        top_variants AS (
            SELECT item FROM traces GROUP BY item ORDER BY count(*) DESC, item LIMIT $top
        ),
        counted AS (
            SELECT 'edge' AS kind, item, grp FROM edges
            UNION ALL
            SELECT 'variant', item, grp FROM traces SEMI JOIN top_variants USING (item)
        )
        SELECT kind, item,
               count(*) FILTER (WHERE grp = 'a') AS cases_a,
               count(*) FILTER (WHERE grp = 'b') AS cases_b,
               (SELECT count(*) FILTER (WHERE grp = 'a') FROM traces) AS n_a,
               (SELECT count(*) FILTER (WHERE grp = 'b') FROM traces) AS n_b
        FROM counted GROUP BY kind, item
    """


def _load_groups(
    con: duckdb.DuckDBPyConnection, group_a: Sequence[int], group_b: Sequence[int]
) -> None:
    overlap = set(group_a) & set(group_b)
    if overlap:
        raise CompareError(
            f"{len(overlap)} case(s) are in both groups (e.g. {min(overlap)}); the test needs "
            "two separate groups"
        )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {GROUPS} AS "
        "SELECT DISTINCT unnest($a::BIGINT[]) AS case_key, 'a' AS grp UNION ALL "
        "SELECT DISTINCT unnest($b::BIGINT[]), 'b'",
        {"a": [int(c) for c in group_a], "b": [int(c) for c in group_b]},
    )


def compare_groups(
    con: duckdb.DuckDBPyConnection,
    log: str,
    group_a: Sequence[int],
    group_b: Sequence[int],
    *,
    labels: tuple[str, str] = ("a", "b"),
    top_variants: int = 50,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Edges and variants whose share of cases differs between two groups of case keys.

    ``log`` is a relation ``case_key, activity, ts, seq``. Returns ``kind`` (``edge`` /
    ``variant``), ``item``, the group labels, ``cases_a/b``, ``share_a/b``, ``difference``,
    ``p_value`` and ``significant`` (BH at ``alpha``), smallest p-value first.
    """
    _load_groups(con, group_a, group_b)
    return _compare(con, log, labels, top_variants, alpha)


def _compare(
    con: duckdb.DuckDBPyConnection,
    log: str,
    labels: tuple[str, str],
    top_variants: int,
    alpha: float,
) -> pd.DataFrame:
    counts = con.execute(_counts_sql(log), {"top": top_variants}).df()
    n_a = int(counts.n_a.iloc[0]) if len(counts) else 0
    n_b = int(counts.n_b.iloc[0]) if len(counts) else 0
    if not n_a or not n_b:
        empty = labels[0] if not n_a else labels[1]
        raise CompareError(f"group {empty!r} has no case with events in {log}")
    out = counts.drop(columns=["n_a", "n_b"]).astype({"cases_a": "int64", "cases_b": "int64"})
    out["group_a"], out["group_b"] = labels
    out["share_a"] = out.cases_a / n_a
    out["share_b"] = out.cases_b / n_b
    out["difference"] = out.share_a - out.share_b
    out["p_value"] = two_proportion_p(out.cases_a.to_numpy(), n_a, out.cases_b.to_numpy(), n_b)
    out["significant"] = benjamini_hochberg(out.p_value.to_numpy(), alpha)
    out = out.assign(size=out.difference.abs()).sort_values(
        ["p_value", "size", "kind", "item"], ascending=[True, False, True, True]
    )
    return out[COLUMNS].reset_index(drop=True)


def compare_segments(
    con: duckdb.DuckDBPyConnection,
    log: str,
    attribute: str,
    values_a: str | Sequence[str],
    values_b: str | Sequence[str],
    *,
    table: str = "touchpoints",
    case: str = "person",
    top_variants: int = 50,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """:func:`compare_groups` for two segments: cases whose ``attribute`` (from their first
    touchpoint that carries it, in ``(occurred_at, seq)`` order, as ``stage_funnel`` segments)
    is one of ``values_a`` vs one of ``values_b``. Labels read ``attribute=value``."""
    if case not in CASE_COLUMNS:
        raise CompareError(f"case is one of {sorted(CASE_COLUMNS)}, not {case!r}")
    a = [values_a] if isinstance(values_a, str) else list(values_a)
    b = [values_b] if isinstance(values_b, str) else list(values_b)
    if set(a) & set(b):
        raise CompareError(f"values {sorted(set(a) & set(b))} are in both groups")
    column = CASE_COLUMNS[case]
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {GROUPS} AS
        SELECT case_key, CASE WHEN list_contains($a, v) THEN 'a' ELSE 'b' END AS grp
        FROM (
            SELECT {column} AS case_key,
                   {touch_value("first", "$attribute")} AS v
            FROM {table} WHERE {column} IS NOT NULL GROUP BY {column}
        ) WHERE list_contains($a, v) OR list_contains($b, v)
        """,
        {"attribute": attribute, "a": a, "b": b},
    )
    labels = (f"{attribute}={'|'.join(a)}", f"{attribute}={'|'.join(b)}")
    return _compare(con, log, labels, top_variants, alpha)
