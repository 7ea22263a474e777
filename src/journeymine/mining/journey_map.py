"""The journey map: a directly-follows map that always shows the designed journey.

A plain "most frequent activities" map hides whatever is rare next to web traffic — on a
B2B log every CRM and billing step. Here the nodes are chosen by meaning first:

* the spec's ``[groups]`` fold activities into one node (``"Website" = ["web.page_view:*"]``);
  by default every ``web.page_view:*`` is one node ``web.page_view``;
* every other activity that marks a designed stage or appears in a follow-up rule is its own
  node (``kind = 'stage'`` / ``'rule'``; a group that marks a stage is ``'stage'`` too),
  whatever its frequency;
* of the rest, the ``keep`` activities reached by most people are their own node and every
  other one folds into ``<channel> (other)``.

The map is the DFG of the event log with activities replaced by their node (so its counts are
pm4py's on that relabelled log); ``map_edges`` keeps every edge with ``shown`` on the
``max_edges`` most frequent ones, always including the edges between consecutive designed
stages' nodes. ``hidden_people_share`` is the share of cases touched by a hidden edge.
Labels come from the spec's ``[labels]`` (activity -> readable name), else the node itself.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import duckdb
import pandas as pd

from journeymine.mining import discovery
from journeymine.spec import JourneySpec
from journeymine.warehouse import replace_table

PAGE_VIEWS = ("web.page_view", ("web.page_view:*",))


@dataclass(frozen=True)
class JourneyMap:
    nodes: pd.DataFrame  # node, label, kind, stage, people, events
    edges: pd.DataFrame  # source, target, frequency, cases, wait_median_s, wait_p90_s, shown
    hidden_people_share: float


def _matches(activity: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(activity, p) for p in patterns)


def node_of(activities: pd.DataFrame, spec: JourneySpec, keep: int) -> pd.DataFrame:
    """``activity, people`` -> ``activity, node, kind, stage``: which map node shows each."""
    rows: list[tuple[str, str, str, str | None]] = []
    groups = spec.groups or (PAGE_VIEWS,)
    rule_patterns = tuple(p for r in spec.followups for p in (*r.triggers, *r.responses))
    leftovers: list[tuple[int, str]] = []
    for activity, people in zip(activities.activity, activities.people, strict=True):
        stage = next((s.name for s in spec.stages if _matches(activity, s.activities)), None)
        group = next((g for g, pats in groups if _matches(activity, pats)), None)
        if group is not None:  # a stage marked by many activities is one node too
            rows.append((activity, group, "group" if stage is None else "stage", stage))
        elif stage is not None:
            rows.append((activity, activity, "stage", stage))
        elif _matches(activity, rule_patterns):
            rows.append((activity, activity, "rule", None))
        else:
            leftovers.append((people, activity))
    for rank, (_, activity) in enumerate(sorted(leftovers, key=lambda x: (-x[0], x[1]))):
        node = activity if rank < keep else f"{activity.split('.', 1)[0]} (other)"
        rows.append((activity, node, "activity" if rank < keep else "group", None))
    return pd.DataFrame(rows, columns=["activity", "node", "kind", "stage"])


def build_journey_map(
    con: duckdb.DuckDBPyConnection,
    spec: JourneySpec,
    log: str,
    *,
    keep: int = 2,
    max_edges: int = 30,
) -> JourneyMap:
    """The journey map of an event log (``case_key, activity, ts, seq``) under ``spec``."""
    activities = con.execute(
        f"SELECT activity::VARCHAR AS activity, count(DISTINCT case_key) AS people "
        f"FROM {log} GROUP BY 1"
    ).df()
    mapping = node_of(activities, spec, keep)
    con.register("jm_map_nodes", mapping)
    try:
        relabelled = discovery.materialise_log(
            con,
            f"(SELECT l.case_key, m.node AS activity, l.ts, l.seq FROM {log} l "
            f"JOIN jm_map_nodes m ON m.activity = l.activity::VARCHAR)",
            "jm_map_log",
        )
    finally:
        con.unregister("jm_map_nodes")
    dfg = discovery.discover_dfg(con, relabelled)
    labels = dict(spec.labels)
    kinds = mapping.groupby("node").agg(kind=("kind", "first"), stage=("stage", "first"))
    counts = con.execute(
        f"SELECT activity::VARCHAR AS node, count(DISTINCT case_key) AS people, count(*) AS events "
        f"FROM {relabelled} GROUP BY 1"
    ).df()
    nodes = counts.join(kinds, on="node")
    nodes["label"] = [labels.get(n, n) for n in nodes.node]
    edges = dfg.rename(columns={"source_activity": "source", "target_activity": "target"})
    edges = edges.sort_values(["frequency", "source", "target"], ascending=[False, True, True])
    edges["shown"] = _shown(edges, spec, mapping, max_edges)
    hidden = _hidden_people_share(con, relabelled, edges[~edges.shown])
    con.execute(f"DROP TABLE {relabelled}")
    columns = ["source", "target", "frequency", "cases", "wait_median_s", "wait_p90_s", "shown"]
    return JourneyMap(
        nodes[["node", "label", "kind", "stage", "people", "events"]].reset_index(drop=True),
        edges[columns].reset_index(drop=True),
        hidden,
    )


def _shown(edges: pd.DataFrame, spec: JourneySpec, mapping: pd.DataFrame, top: int) -> pd.Series:
    """The ``top`` most frequent edges, every edge from one designed stage's node to the next
    stage's, and the most frequent edge into and out of every stage and follow-up node (so
    each of them is drawn, however rare)."""
    stage_nodes = [set(mapping[mapping.stage == s.name].node) for s in spec.stages]
    designed = {
        (a, b)
        for here, nxt in zip(stage_nodes, stage_nodes[1:], strict=False)
        for a in here
        for b in nxt
    }
    shown = pd.Series(range(len(edges)), index=edges.index) < top
    shown |= pd.Series(
        [(a, b) in designed for a, b in zip(edges.source, edges.target, strict=True)],
        index=edges.index,
    )
    key_nodes = set(mapping[mapping.kind.isin(["stage", "rule"])].node)
    loops = edges.source == edges.target
    for column in ("source", "target"):  # edges are sorted by frequency: first is the top
        firsts = edges[edges[column].isin(key_nodes) & ~loops].drop_duplicates(column)
        shown[firsts.index] = True
    return shown


def _hidden_people_share(con: duckdb.DuckDBPyConnection, log: str, hidden: pd.DataFrame) -> float:
    """Share of cases with at least one step along a hidden edge."""
    total = con.execute(f"SELECT count(DISTINCT case_key) FROM {log}").fetchall()[0][0]
    if hidden.empty or not total:
        return 0.0
    con.register("jm_hidden_edges", hidden[["source", "target"]])
    try:
        touched = con.execute(
            f"""
            WITH steps AS (
                SELECT case_key, activity::VARCHAR AS source,
                       lead(activity::VARCHAR) OVER (PARTITION BY case_key ORDER BY rn) AS target
                FROM {log}
            )
            SELECT count(DISTINCT case_key) FROM steps JOIN jm_hidden_edges USING (source, target)
            """
        ).fetchall()[0][0]
    finally:
        con.unregister("jm_hidden_edges")
    return float(touched) / float(total)


def write_journey_map(
    con: duckdb.DuckDBPyConnection, spec: JourneySpec, log: str, **options: int
) -> JourneyMap:
    """Store ``map_nodes`` and ``map_edges`` (with ``hidden_people_share`` on every edge row)."""
    result = build_journey_map(con, spec, log, **options)
    replace_table(con, "map_nodes", result.nodes)
    replace_table(
        con, "map_edges", result.edges.assign(hidden_people_share=result.hidden_people_share)
    )
    return result
