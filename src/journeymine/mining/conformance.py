"""Real journeys against the designed one: per-case fitness and deviations in plain words.

Each person's journey is reduced to its sequence of designed stages (events that mark a stage,
consecutive repeats collapsed). Against the stage order of the journey spec:

* ``skipped <stage>``: a required stage never happened although a later one did;
* ``repeated <stage>``: the stage happens again after another stage came in between;
* ``moved back to <stage>``: the journey went from a later stage back to this one;
* ``out of order``: stages were first reached in an order other than the designed one;
* ``never reached <stage>``: the journey stops before the last stage (the first stage missing).

A case *conforms* when it has none of the first four (stopping early is drop-off, measured by
the funnel, not an order deviation). Fitness is pm4py's token-replay fitness of the stage
sequence on the designed model (computed once per distinct sequence).
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from journeymine.mining import pm4py_adapter
from journeymine.spec import JourneySpec, positions
from journeymine.warehouse import replace_table

ORDER_DEVIATIONS = ("skipped", "repeated", "moved back to", "out of order")


def stage_sequences(con: duckdb.DuckDBPyConnection, spec: JourneySpec, log: str) -> pd.DataFrame:
    """Per case: the sequence of step labels (alternatives share one label) and duration."""
    rows = [
        (pos, p)
        for pos, (stages, _) in enumerate(positions(spec))
        for s in stages
        for p in s.activities
    ]
    con.register("jm_conf_patterns", pd.DataFrame(rows, columns=["pos", "pattern"]))
    frame = con.execute(
        f"""
        WITH marks AS (
            SELECT l.case_key, l.ts, l.seq, min(p.pos) AS pos
            FROM {log} l JOIN jm_conf_patterns p ON l.activity::VARCHAR GLOB p.pattern
            GROUP BY ALL
        ), collapsed AS (
            SELECT *, lag(pos) OVER (PARTITION BY case_key ORDER BY ts, seq) AS prev FROM marks
        )
        SELECT case_key, list(pos ORDER BY ts, seq) AS positions,
               (epoch_us(max(ts)) - epoch_us(min(ts))) / 1e6 AS duration_s
        FROM collapsed WHERE prev IS NULL OR prev <> pos GROUP BY case_key
        """
    ).df()
    con.unregister("jm_conf_patterns")
    return frame


def deviation_labels(sequence: list[int], steps: list[tuple[str, bool]]) -> list[str]:
    """Plain-language deviations of one stage sequence (positions) from the designed order."""
    labels: list[str] = []
    seen: list[int] = []
    furthest = -1
    for pos in sequence:
        name = steps[pos][0]
        if pos in seen:  # consecutive repeats are collapsed: this one came back after another
            labels.append(f"repeated {name}")
        if pos < furthest:
            labels.append(f"moved back to {name}")
        if pos not in seen:
            seen.append(pos)
        furthest = max(furthest, pos)
    if seen != sorted(seen):
        labels.append("out of order")
    for pos, (name, optional) in enumerate(steps):
        if pos < furthest and pos not in seen and not optional:
            labels.append(f"skipped {name}")
    last = len(steps) - 1
    if furthest < last:
        missing = next(p for p in range(furthest + 1, last + 1) if not steps[p][1] or p == last)
        labels.append(f"never reached {steps[missing][0]}")
    return list(dict.fromkeys(labels))


def check_conformance(
    con: duckdb.DuckDBPyConnection, spec: JourneySpec, log: str, *, with_fitness: bool = True
) -> pd.DataFrame:
    """Per case: stage sequence, deviation labels, conforms?, reached the last stage?, fitness."""
    groups = positions(spec)
    steps = [(" | ".join(s.name for s in stages), optional) for stages, optional in groups]
    cases = stage_sequences(con, spec, log)
    cases["key"] = cases.positions.map(tuple)
    # Everything below depends on the sequence only: work once per distinct sequence.
    per = pd.DataFrame({"key": sorted(set(cases.key))})
    per["stages"] = per.key.map(lambda seq: [steps[p][0] for p in seq])
    per["deviations"] = per.key.map(lambda seq: deviation_labels(list(seq), steps))
    per["conforms"] = per.deviations.map(
        lambda labels: not any(lbl.startswith(ORDER_DEVIATIONS) for lbl in labels)
    )
    per["completed"] = per.key.map(lambda seq: len(steps) - 1 in seq)
    if with_fitness and len(per):
        tree = pm4py_adapter.designed_tree([([s.name for s in st], opt) for st, opt in groups])
        fitness = pm4py_adapter.case_fitness(tree, dict(enumerate(per.stages)))
        per["fitness"] = [fitness[k] for k in range(len(per))]
    cases = cases.merge(per, on="key", how="left").drop(columns="key")
    cases["positions"] = cases.positions.map(list)
    return cases


def summarise_conformance(cases: pd.DataFrame) -> pd.DataFrame:
    """Conforming vs deviating, and each deviation: cases, share, completion, median duration."""
    rows = []
    total = len(cases)

    def row(label: str, part: pd.DataFrame) -> dict[str, object]:
        return {
            "deviation": label,
            "cases": len(part),
            "share": len(part) / total if total else np.nan,
            "completion_rate": part.completed.mean() if len(part) else np.nan,
            "median_duration_s": part.duration_s.median() if len(part) else np.nan,
        }

    rows.append(row("(conforming)", cases[cases.conforms]))
    rows.append(row("(any order deviation)", cases[~cases.conforms]))
    exploded = cases.explode("deviations").dropna(subset=["deviations"])
    for label, part in exploded.groupby("deviations"):
        rows.append(row(str(label), cases.loc[part.index.unique()]))
    return pd.DataFrame(rows).sort_values("cases", ascending=False, kind="stable")


def write_conformance(con: duckdb.DuckDBPyConnection, spec: JourneySpec, log: str) -> pd.DataFrame:
    """Store ``conformance`` (per case) and ``conformance_summary``; return the summary."""
    cases = check_conformance(con, spec, log)
    summary = summarise_conformance(cases)
    for name, frame in (("conformance", cases), ("conformance_summary", summary)):
        replace_table(con, name, frame)
    return summary
