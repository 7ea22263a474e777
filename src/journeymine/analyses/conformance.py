"""Real journeys against the designed one: per-case fitness and deviations in plain words.

Each person's journey is reduced to its sequence of designed stages (events that mark a stage,
consecutive repeats collapsed). Against the stage order of the journey spec:

* ``skipped <stage>``: a required stage never happened although a later one did;
* ``repeated <stage>``: the stage happens again after another stage came in between;
* ``moved back to <stage>``: the journey went from a later stage back to this one;
* ``out of order``: stages were first reached in an order other than the designed one;
* ``never reached <stage>``: the journey stops before the last stage (the first stage missing).

A case *deviates* when it has any of the first four; it *conforms* when it reached the last
stage without deviating. A case that stopped early on the path is neither (it is drop-off or
still open, measured by the funnel): shares are among the judged cases (conforming or
deviating). A ``repeatable`` stage may come back at any time (browsing the website after
signing up) without ``repeated`` / ``moved back to``. Fitness is pm4py's token-replay fitness
of the stage sequence on the designed model, computed once per distinct sequence and kept in
``conformance_fitness`` for the next run: a night replays only the sequences new to it (the
cache holds the sequences of the last run, under the design and pm4py version they were
replayed with; any other design replays everything).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import duckdb
import numpy as np
import pandas as pd

from journeymine.analyses.markers import marks_sql
from journeymine.mining import pm4py_adapter
from journeymine.spec import JourneySpec, Stage, positions, step_label
from journeymine.sql import data_cutoff, duration_s
from journeymine.warehouse import replace_table, table_exists

ORDER_DEVIATIONS = ("skipped", "repeated", "moved back to", "out of order")
FITNESS = "conformance_fitness"
Positions = Sequence[tuple[Sequence[Stage], bool]]


def stage_sequences(
    con: duckdb.DuckDBPyConnection, spec: JourneySpec, log: str, table: str = "touchpoints"
) -> pd.DataFrame:
    """Per case: the sequence of step labels (alternatives share one label) and duration.

    Events mark stages as in the funnel (patterns and ``where``, ``markers.marks_sql``); a stage
    with ``occurrence = N`` is marked by the N-th and later matching events of the case. An
    event marking several stages (the second paid invoice: ``paid`` and ``renewed``) counts
    as the latest of them in the designed order."""
    frame = con.execute(
        f"""
        WITH m AS ({marks_sql(con, spec, log, table)}), marks AS (
            SELECT case_key, ts, seq, max(pos) AS pos FROM m
            WHERE n_all >= occurrence GROUP BY ALL
        ), collapsed AS (
            SELECT *, lag(pos) OVER (PARTITION BY case_key ORDER BY ts, seq) AS prev FROM marks
        )
        SELECT case_key, list(pos ORDER BY ts, seq) AS positions,
               {duration_s()} AS duration_s
        FROM collapsed WHERE prev IS NULL OR prev <> pos GROUP BY case_key
        """,
        {"cutoff": data_cutoff(con, log)},
    ).df()
    return frame


def deviation_labels(
    sequence: list[int], steps: list[tuple[str, bool]], repeatable: frozenset[int] = frozenset()
) -> list[str]:
    """Plain-language deviations of one stage sequence (positions) from the designed order.
    A ``repeatable`` position may come back at any time without being a deviation."""
    labels: list[str] = []
    seen: list[int] = []
    furthest = -1
    for pos in sequence:
        name = steps[pos][0]
        if pos in seen and pos in repeatable:
            continue  # browsing the website again after signing up is not going back
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
    return _judge(con, spec, log, with_fitness)[0]


def _judge(
    con: duckdb.DuckDBPyConnection, spec: JourneySpec, log: str, with_fitness: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`check_conformance`'s cases, and the same judgement per distinct sequence."""
    groups = positions(spec)
    steps = [(step_label(stages), optional) for stages, optional in groups]
    repeatable = frozenset(i for i, (st, _) in enumerate(groups) if any(s.repeatable for s in st))
    cases = stage_sequences(con, spec, log)
    cases["key"] = cases.positions.map(tuple).astype(object)  # object even when no case
    # Everything below depends on the sequence only: work once per distinct sequence.
    per = pd.DataFrame({"key": pd.Series(sorted(set(cases.key)), dtype=object)})
    per["stages"] = per.key.map(lambda seq: [steps[p][0] for p in seq])
    per["deviations"] = per.key.map(lambda seq: deviation_labels(list(seq), steps, repeatable))
    per["deviates"] = per.deviations.map(
        lambda labels: any(lbl.startswith(ORDER_DEVIATIONS) for lbl in labels)
    )
    per["completed"] = per.key.map(lambda seq: len(steps) - 1 in seq)
    # Only a journey that reached the end, or left the path, can be judged: one that stopped
    # early without leaving it is not "conforming", it is not finished (drop-off or open).
    per["conforms"] = per.completed & ~per.deviates
    per["judged"] = per.completed | per.deviates
    if with_fitness and len(per):
        per["fitness"] = replayed_fitness(con, groups, list(per.stages))
    cases = cases.merge(per, on="key", how="left").drop(columns="key")
    cases["positions"] = cases.positions.map(lambda seq: [int(p) for p in seq])
    return cases, per


def _design(groups: Positions) -> list[tuple[list[str], bool]]:
    """The designed positions by stage name: the alternatives of each, and whether optional."""
    return [([s.name for s in stages], optional) for stages, optional in groups]


def design_key(groups: Positions) -> str:
    """What a stage sequence's fitness depends on besides the sequence: the designed positions
    (alternatives, optional) and the pm4py release that replays them."""
    return json.dumps({"design": _design(groups), "pm4py": pm4py_adapter.pm4py_version()})


def replayed_fitness(
    con: duckdb.DuckDBPyConnection, groups: Positions, sequences: list[list[str]]
) -> list[float]:
    """pm4py's token-replay fitness of each stage sequence against the designed model; the
    sequences the last run replayed under the same :func:`design_key` are read from
    ``conformance_fitness``, and only the others are replayed."""
    known: dict[tuple[str, ...], float] = {}
    if table_exists(con, FITNESS):
        rows = con.execute(
            f"SELECT stages, fitness FROM {FITNESS} WHERE model = ?", [design_key(groups)]
        ).fetchall()
        known = {tuple(stages): float(fitness) for stages, fitness in rows}
    new = {i: seq for i, seq in enumerate(sequences) if tuple(seq) not in known}
    if new:
        tree = pm4py_adapter.designed_tree(_design(groups))
        replayed = pm4py_adapter.case_fitness(tree, new)
        known.update((tuple(new[i]), fitness) for i, fitness in replayed.items())
    return [known[tuple(seq)] for seq in sequences]


def summarise_conformance(cases: pd.DataFrame) -> pd.DataFrame:
    """Conforming vs deviating, and each deviation: cases, share, completion, median duration.

    ``share`` is among the judged cases (reached the last stage, or left the designed order);
    journeys that stopped early on the path are counted in ``(stopped early, not judged)`` and
    their ``never reached X`` rows, with ``kind = 'drop-off'`` and no share."""
    rows = []
    judged = cases[cases.judged] if "judged" in cases.columns else cases
    total = len(judged)

    def row(label: str, part: pd.DataFrame, kind: str = "deviation") -> dict[str, object]:
        in_scope = kind != "drop-off"
        return {
            "deviation": label,
            "kind": kind,
            "cases": len(part),
            "share": len(part) / total if total and in_scope else np.nan,
            "completion_rate": part.completed.mean() if len(part) else np.nan,
            "median_duration_s": part.duration_s.median() if len(part) else np.nan,
        }

    deviates = cases.deviates if "deviates" in cases.columns else ~cases.conforms
    rows.append(row("(conforming)", cases[cases.conforms], "total"))
    rows.append(row("(any order deviation)", cases[deviates], "total"))
    if "judged" in cases.columns:
        rows.append(row("(stopped early, not judged)", cases[~cases.judged], "drop-off"))
    exploded = cases.explode("deviations").dropna(subset=["deviations"])
    for label, part in exploded.groupby("deviations"):
        kind = "drop-off" if str(label).startswith("never reached") else "deviation"
        rows.append(row(str(label), cases.loc[part.index.unique()], kind))
    return pd.DataFrame(rows).sort_values("cases", ascending=False, kind="stable")


def write_conformance(con: duckdb.DuckDBPyConnection, spec: JourneySpec, log: str) -> pd.DataFrame:
    """Store ``conformance`` (per case), ``conformance_summary`` and this run's replayed
    sequences (``conformance_fitness``); return the summary."""
    cases, per = _judge(con, spec, log, with_fitness=True)
    summary = summarise_conformance(cases)
    fitness = pd.DataFrame(
        {
            "model": design_key(positions(spec)),
            "stages": per.stages,
            "fitness": per.fitness if "fitness" in per.columns else pd.Series(dtype=float),
        }
    )
    replace_table(con, "conformance", cases)
    replace_table(con, "conformance_summary", summary)
    replace_table(con, FITNESS, fitness)
    return summary
