"""How journeys drift between two periods (or any two logs).

Directly-follows edges whose share of cases changed, stage conversion changes (each with a
two-proportion test, BH control across the edges), the most frequent variants' shares, and
the follow-up latency per rule (medians and a Mann-Whitney U test). The runner compares the
last ``drift_window`` before the cut-off with the one before it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from scipy import stats as sps

from journeymine.analyses.funnel import build_entries
from journeymine.analyses.stats import benjamini_hochberg, two_proportion_p
from journeymine.mining import codes, discovery, variants
from journeymine.mining.eventlog import log_from_touchpoints
from journeymine.spec import JourneySpec
from journeymine.warehouse import table_exists


def _count(frame: pd.DataFrame, stage: str, column: str) -> int:
    has = stage in frame.index and column in frame.columns
    return int(frame.loc[stage, column]) if has else 0


def compare_periods(
    con: duckdb.DuckDBPyConnection,
    spec: JourneySpec,
    before: tuple[datetime, datetime],
    after: tuple[datetime, datetime],
) -> dict[str, pd.DataFrame]:
    """Drift from ``before`` to ``after`` (each a [start, end) window): edges and stage
    conversion, each change with a two-proportion test and BH control."""
    edges, funnels, ranked = [], [], []
    try:
        for label, (start, end) in (("before", before), ("after", after)):
            edge, funnel, variant = _period_counts(con, spec, label, start, end)
            edges.append(edge)
            funnels.append(funnel)
            ranked.append(variant)
        shifted = _variant_shift(con, ranked)
    finally:
        for table, _ in ranked:
            con.execute(f"DROP TABLE IF EXISTS {table}")
    return {
        "edges": _edge_shift(edges),
        "stages": _stage_shift(funnels),
        "variants": shifted,
        "latency": _latency_shift(con, spec, before, after),
    }


def _period_counts(
    con: duckdb.DuckDBPyConnection, spec: JourneySpec, label: str, start: datetime, end: datetime
) -> tuple[pd.DataFrame, pd.DataFrame, tuple[str, int]]:
    """One period's directly-follows edges (cases per edge and in all), stage statuses
    (people per stage and status) and variants (a temp table of cases per variant, most
    frequent first, and the cases in all)."""
    view = log_from_touchpoints(con, since=str(start), until=str(end), name=f"jm_{label}_log")
    log = discovery.materialise_log(con, view, f"jm_{label}_events")
    cases = int(con.execute(f"SELECT count(DISTINCT case_key) FROM {log}").fetchall()[0][0])
    dfg = discovery.discover_dfg(con, log)[["source_activity", "target_activity", "cases"]]
    entries = build_entries(con, spec, log, cutoff=end)
    counts = (
        con.execute(  # the decided per stage, counted where the entries are
            f"SELECT stage, count(*) FILTER (WHERE status = 'converted') AS converted, "
            f"count(*) FILTER (WHERE status = 'dropped') AS dropped FROM {entries} GROUP BY stage"
        )
        .df()
        .set_index("stage")
    )
    ranked = _store_variants(con, log, f"jm_{label}_variants")
    con.execute(f"DROP TABLE {log}")
    return dfg.assign(period=label, total=cases), counts.assign(period=label), (ranked, cases)


def _store_variants(con: duckdb.DuckDBPyConnection, log: str, name: str) -> str:
    """Temp table ``name``: each variant of ``log`` (its label), its cases and its ``rank``
    in discovery's order (most cases first, ties by first case). The variants are streamed
    in batches: only the few drift compares come back to Python, not all of them (at 100M
    events a period holds over a million, whose labels and activity lists as a pandas frame
    were drift's peak memory)."""
    stream = variants.batches(codes.read_sorted(con, log))
    slim = pa.schema([("rank", pa.int64()), ("variant", pa.string()), ("cases", pa.int64())])

    def ranked() -> Iterator[pa.RecordBatch]:
        done = 0
        for batch in stream:
            rank = pa.array(np.arange(done, done + batch.num_rows, dtype=np.int64))
            done += batch.num_rows
            columns = [rank, batch.column("variant"), batch.column("cases")]
            yield pa.RecordBatch.from_arrays(columns, schema=slim)

    con.register("jm_variant_batches", pa.RecordBatchReader.from_batches(slim, ranked()))
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS FROM jm_variant_batches")
    finally:
        con.unregister("jm_variant_batches")
    return name


def _edge_shift(edges: list[pd.DataFrame]) -> pd.DataFrame:
    """Share of cases taking each directly-follows edge, before vs after, with a
    two-proportion test per edge and BH control across them."""
    merged = (
        edges[0]
        .merge(
            edges[1],
            on=["source_activity", "target_activity"],
            how="outer",
            suffixes=("_before", "_after"),
        )
        .fillna({"cases_before": 0, "cases_after": 0})
        .astype({"cases_before": "int64", "cases_after": "int64"})  # counts, as in drift_variants
    )
    nb, na = (
        edges[0].total.iloc[0] if len(edges[0]) else 0,
        edges[1].total.iloc[0] if len(edges[1]) else 0,
    )
    merged["share_before"] = merged.cases_before / nb if nb else np.nan
    merged["share_after"] = merged.cases_after / na if na else np.nan
    merged["change"] = np.select(
        [merged.cases_before == 0, merged.cases_after == 0], ["appeared", "vanished"], "changed"
    )
    merged["p_value"] = two_proportion_p(
        merged.cases_before.to_numpy(), int(nb), merged.cases_after.to_numpy(), int(na)
    )
    merged["significant"] = benjamini_hochberg(merged.p_value.fillna(1).to_numpy())
    edge_cols = [
        "source_activity",
        "target_activity",
        "cases_before",
        "cases_after",
        "share_before",
        "share_after",
        "change",
        "p_value",
        "significant",
    ]
    return merged[edge_cols].sort_values("p_value").reset_index(drop=True)


def _stage_shift(funnels: list[pd.DataFrame]) -> pd.DataFrame:
    """Conversion out of each stage among the decided, before vs after, with a
    two-proportion test."""
    stage_rows = []
    b, a = funnels
    for stage in sorted(set(b.index) | set(a.index)):
        kb, db_ = (_count(b, stage, c) for c in ("converted", "dropped"))
        ka, da = (_count(a, stage, c) for c in ("converted", "dropped"))
        stage_rows.append(
            {
                "stage": stage,
                "rate_before": kb / (kb + db_) if kb + db_ else np.nan,
                "rate_after": ka / (ka + da) if ka + da else np.nan,
                "decided_before": kb + db_,
                "decided_after": ka + da,
                "p_value": float(two_proportion_p(kb, kb + db_, ka, ka + da)),
            }
        )
    stage_columns = [
        "stage",
        "rate_before",
        "rate_after",
        "decided_before",
        "decided_after",
        "p_value",
    ]
    return pd.DataFrame(stage_rows, columns=stage_columns)


def _variant_shift(
    con: duckdb.DuckDBPyConnection, periods: list[tuple[str, int]], top: int = 20
) -> pd.DataFrame:
    """Share of cases of the most frequent variants of either period, before vs after
    (``periods``: each one's :func:`_store_variants` table and cases in all)."""
    keep = sorted(
        {
            v
            for table, _ in periods
            for (v,) in con.execute(
                f"SELECT variant FROM {table} WHERE rank < $top", {"top": top}
            ).fetchall()
        }
    )
    b, a = (
        con.execute(
            f"SELECT variant, cases FROM {table} WHERE list_contains($keep, variant) ORDER BY rank",
            {"keep": keep},
        ).df()
        for table, _ in periods
    )
    nb, na = (total for _, total in periods)
    both = b.merge(a, on="variant", how="outer", suffixes=("_before", "_after")).fillna(0)
    both["share_before"] = both.cases_before / nb if nb else np.nan
    both["share_after"] = both.cases_after / na if na else np.nan
    both["p_value"] = two_proportion_p(
        both.cases_before.to_numpy(), nb, both.cases_after.to_numpy(), na
    )
    return both.sort_values("p_value").reset_index(drop=True)


def _latency_shift(
    con: duckdb.DuckDBPyConnection,
    spec: JourneySpec,
    before: tuple[datetime, datetime],
    after: tuple[datetime, datetime],
) -> pd.DataFrame:
    """Follow-up latency per rule, before vs after: medians and a Mann-Whitney U test."""
    periods = [_answered_latencies(con, spec, start, end) for start, end in (before, after)]
    out = []
    for rule in sorted(set(periods[0]) | set(periods[1])):
        waits = [p.get(rule, pd.Series(dtype=float)) for p in periods]
        if min(len(x) for x in waits) < 2:
            continue
        test = sps.mannwhitneyu(waits[0], waits[1], alternative="two-sided")
        out.append(
            {
                "rule": rule,
                "answered_before": len(waits[0]),
                "median_h_before": waits[0].median() / 3600,
                "answered_after": len(waits[1]),
                "median_h_after": waits[1].median() / 3600,
                "p_value": float(test.pvalue),
            }
        )
    columns = [
        "rule",
        "answered_before",
        "median_h_before",
        "answered_after",
        "median_h_after",
        "p_value",
    ]
    return pd.DataFrame(out, columns=columns)


def _answered_latencies(
    con: duckdb.DuckDBPyConnection, spec: JourneySpec, start: datetime, end: datetime
) -> dict[str, pd.Series]:
    """Per rule, the wall-clock latencies of the answered triggers of [start, end): from
    tonight's stored ``followups`` when the analysis run wrote them (only these rows leave
    DuckDB, not the whole table), else from the follow-ups computed now."""
    from journeymine.analyses.followups import compute_followups

    source = "followups"
    if not table_exists(con, source):
        source = "jm_drift_followups"
        computed = compute_followups(con, spec)[["rule", "status", "triggered_at", "latency_s"]]
        con.register(source, computed)
    try:
        rows = con.execute(
            f"SELECT rule, list(latency_s) FROM {source} WHERE status = 'answered' "
            "AND triggered_at >= $start AND triggered_at < $end GROUP BY rule",
            {"start": start, "end": end},
        ).fetchall()
    finally:
        if source != "followups":
            con.unregister(source)
    return {rule: pd.Series(waits, dtype=float) for rule, waits in rows}
