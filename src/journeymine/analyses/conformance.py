"""Real journeys against the designed one: per-case fitness and deviations in plain words.

Each person's journey is reduced to its sequence of designed stages (events that mark a stage,
consecutive repeats collapsed). Against the stage order of the journey spec:

* ``skipped <stage>``: a required stage never happened although a later one did;
* ``repeated <stage>``: the stage happens again after another stage came in between;
* ``moved back to <stage>``: the journey went from a later stage back to this one;
* ``out of order``: stages were first reached in an order other than the designed one;
* ``never reached <stage>``: the journey stops before the last stage (the first stage missing).

The designed journey is the spec's stages less its outcome stages (``spec.outcome_stages``: a
cancellation ends a lifecycle, it is not where a journey should arrive): a journey that cancels
in its trial did not "skip paid", it never reached it. A case *deviates* when it has any of the
first four; it *conforms* when it reached the last stage without deviating. A case that stopped
early on the path is neither (it is drop-off or still open, measured by the funnel): shares are
among the judged cases (conforming or deviating). A ``repeatable`` stage may come back at any
time (browsing the website after signing up) without ``repeated`` / ``moved back to``. Fitness
is pm4py's token-replay fitness of the stage sequence on the designed model, computed once per
distinct sequence and kept in ``conformance_fitness`` for the next run: a night replays only the
sequences new to it (the cache holds the sequences of the last run, under the design and pm4py
version they were replayed with; any other design replays everything).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from journeymine.analyses.markers import marks_sql
from journeymine.mining import pm4py_adapter
from journeymine.spec import JourneySpec, Stage, outcome_stages, positions, step_label
from journeymine.sql import data_cutoff, duration_s
from journeymine.warehouse import store_query, table_exists

ORDER_DEVIATIONS = ("skipped", "repeated", "moved back to", "out of order")
FITNESS = "conformance_fitness"
CASES = "jm_conformance_cases"  # per case: its stage sequence and duration (a temp table)
JUDGED = "jm_conformance_judged"  # per distinct sequence: its judgement (a registered Arrow table)
JUDGEMENT = ("stages", "deviations", "deviates", "completed", "conforms", "judged")
Positions = Sequence[tuple[Sequence[Stage], bool]]


def sequences_sql(
    con: duckdb.DuckDBPyConnection, spec: JourneySpec, log: str, table: str = "touchpoints"
) -> str:
    """SQL (binds ``$cutoff``): per case, ``positions`` (its sequence of stage positions;
    alternatives share one) and ``duration_s``.

    Events mark stages as in the funnel (patterns and ``where``, ``markers.marks_sql``); a stage
    with ``occurrence = N`` is marked by the N-th and later matching events of the case. An
    event marking several stages (the second paid invoice: ``paid`` and ``renewed``) counts
    as the latest of them in the designed order; consecutive repeats are collapsed."""
    return f"""
        WITH m AS ({marks_sql(con, spec, log, table)}), marks AS (
            SELECT case_key, ts, seq, max(pos) AS pos FROM m
            WHERE n_all >= occurrence GROUP BY ALL
        ), collapsed AS (
            SELECT *, lag(pos) OVER (PARTITION BY case_key ORDER BY ts, seq) AS prev FROM marks
        )
        SELECT case_key, list(pos ORDER BY ts, seq)::INTEGER[] AS positions,
               {duration_s()} AS duration_s
        FROM collapsed WHERE prev IS NULL OR prev <> pos GROUP BY case_key
    """


def designed_path(spec: JourneySpec) -> JourneySpec:
    """The journey conformance judges against: ``spec`` without its outcome stages (unless
    they are all it has)."""
    outcomes = outcome_stages(spec)
    kept = tuple(s for s in spec.stages if s.name not in outcomes)
    return dataclasses.replace(spec, stages=kept) if outcomes and kept else spec


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
    """Per case: stage sequence, deviation labels, conforms?, reached the last stage?, fitness.

    A frame with a row per case, for an analyst's look at a log (the nightly run keeps the
    cases in DuckDB: :func:`write_conformance`); nothing is written to the warehouse."""
    spec = designed_path(spec)
    with _judged_cases(con, spec, log, with_fitness):
        frame = con.execute(_judged_cases_sql(CASES, with_fitness)).df()
    for column in ("positions", "stages", "deviations"):  # Python lists, as pandas users expect
        frame[column] = frame[column].map(lambda values: values.tolist()).astype(object)
    return frame


@contextmanager
def _judged_cases(
    con: duckdb.DuckDBPyConnection, spec: JourneySpec, log: str, with_fitness: bool
) -> Iterator[None]:
    """Inside: the cases of ``log`` in temp table :data:`CASES` (computed once) and each
    distinct sequence's judgement registered as :data:`JUDGED`; both gone after."""
    params = {"cutoff": data_cutoff(con, log)}
    con.execute(f"CREATE OR REPLACE TEMP TABLE {CASES} AS {sequences_sql(con, spec, log)}", params)
    try:
        found = con.execute(f"SELECT DISTINCT positions FROM {CASES}").fetchall()
        con.register(JUDGED, judge_sequences(con, spec, [seq for (seq,) in found], with_fitness))
        try:
            yield
        finally:
            con.unregister(JUDGED)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {CASES}")


def judge_sequences(
    con: duckdb.DuckDBPyConnection,
    spec: JourneySpec,
    sequences: list[list[int]],
    with_fitness: bool,
) -> pa.Table:
    """Per distinct stage sequence (positions): its stage names, deviation labels, whether it
    deviates, completed, conforms and counts as judged, and (``with_fitness``) its fitness.
    Everything a case's judgement holds depends on its sequence only: each is judged once."""
    groups = positions(spec)
    steps = [(step_label(stages), optional) for stages, optional in groups]
    repeatable = frozenset(i for i, (st, _) in enumerate(groups) if any(s.repeatable for s in st))
    sequences = sorted(sequences)
    stages = [[steps[p][0] for p in seq] for seq in sequences]
    deviations = [deviation_labels(seq, steps, repeatable) for seq in sequences]
    deviates = [any(lbl.startswith(ORDER_DEVIATIONS) for lbl in labels) for labels in deviations]
    completed = [len(steps) - 1 in seq for seq in sequences]
    columns: dict[str, Any] = {
        "positions": pa.array(sequences, pa.list_(pa.int32())),
        "stages": pa.array(stages, pa.list_(pa.string())),
        "deviations": pa.array(deviations, pa.list_(pa.string())),
        "deviates": pa.array(deviates, pa.bool_()),
        "completed": pa.array(completed, pa.bool_()),
        # Only a journey that reached the end, or left the path, can be judged: one that
        # stopped early without leaving it is not "conforming", it is not finished.
        "conforms": pa.array([c and not d for c, d in zip(completed, deviates, strict=True)]),
        "judged": pa.array([c or d for c, d in zip(completed, deviates, strict=True)]),
    }
    if with_fitness:
        fitness = replayed_fitness(con, groups, stages) if sequences else []
        columns["fitness"] = pa.array(fitness, pa.float64())
    return pa.table(columns)


def _judged_cases_sql(cases: str, with_fitness: bool) -> str:
    """SQL: each case of ``cases`` with its sequence's judgement from ``JUDGED``, as declared
    for ``conformance``. Every case's sequence is among the judged ones: an inner join."""
    judgement = ", ".join(f"j.{c}" for c in (*JUDGEMENT, *(["fitness"] if with_fitness else [])))
    return (
        f"SELECT c.case_key, c.positions, c.duration_s, {judgement} "
        f"FROM {cases} c JOIN {JUDGED} j ON c.positions = j.positions"
    )


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


SUMMARY_SQL = """
    WITH c AS (SELECT * FROM {cases}), totals(ord, deviation, kind) AS (
        VALUES (0, '(conforming)', 'total'), (1, '(any order deviation)', 'total'),
               (2, '(stopped early, not judged)', 'drop-off')
    ), groups AS (
        SELECT 0 AS ord, '(conforming)' AS deviation, completed, duration_s FROM c WHERE conforms
        UNION ALL SELECT 1, '(any order deviation)', completed, duration_s FROM c WHERE deviates
        UNION ALL SELECT 2, '(stopped early, not judged)', completed, duration_s
                  FROM c WHERE NOT judged
        UNION ALL SELECT 3, unnest(deviations), completed, duration_s FROM c
    ), ranked AS (
        SELECT *, row_number() OVER (PARTITION BY ord, deviation ORDER BY duration_s) AS i,
               count(*) OVER (PARTITION BY ord, deviation) AS n
        FROM groups
    ), parts AS (
        -- the median as pandas takes it: the middle value, or the mean of the middle two
        SELECT ord, deviation, count(*) AS cases, count(*) FILTER (WHERE completed) AS done,
               (max(duration_s) FILTER (WHERE i = (n + 1) // 2)
                + max(duration_s) FILTER (WHERE i = n // 2 + 1)) / 2 AS median_duration_s
        FROM ranked GROUP BY ord, deviation
    ), rows AS (
        SELECT t.ord, t.deviation, t.kind, coalesce(p.cases, 0) AS cases, p.done,
               p.median_duration_s
        FROM totals t LEFT JOIN parts p USING (ord, deviation)
        UNION ALL
        SELECT ord, deviation,
               CASE WHEN starts_with(deviation, 'never reached') THEN 'drop-off'
                    ELSE 'deviation' END, cases, done, median_duration_s
        FROM parts WHERE ord = 3
    )
    SELECT deviation, kind, cases::BIGINT AS cases,
           CASE WHEN kind <> 'drop-off' AND judged > 0 THEN cases / judged END AS share,
           CASE WHEN cases > 0 THEN done / cases END AS completion_rate, median_duration_s
    FROM rows, (SELECT count(*) FILTER (WHERE judged) AS judged FROM c)
    ORDER BY cases DESC, ord, deviation
"""


def summarise_conformance(cases: pd.DataFrame) -> pd.DataFrame:
    """Conforming vs deviating, and each deviation: cases, share, completion, median duration,
    of :func:`check_conformance`'s cases (``write_conformance`` runs the same SQL on the
    stored ones).

    ``share`` is among the judged cases (reached the last stage, or left the designed order);
    journeys that stopped early on the path are counted in ``(stopped early, not judged)`` and
    their ``never reached X`` rows, with ``kind = 'drop-off'`` and no share."""
    schema = pa.schema(
        [
            ("deviations", pa.list_(pa.string())),
            *((flag, pa.bool_()) for flag in ("deviates", "completed", "conforms", "judged")),
            ("duration_s", pa.float64()),
        ]
    )
    table = pa.Table.from_pandas(cases[schema.names], schema=schema, preserve_index=False)
    con = duckdb.connect()
    try:
        con.register("jm_cases", table)
        return con.execute(SUMMARY_SQL.format(cases="jm_cases")).df()
    finally:
        con.close()


def write_conformance(con: duckdb.DuckDBPyConnection, spec: JourneySpec, log: str) -> pd.DataFrame:
    """Store ``conformance`` (per case), ``conformance_summary`` and this run's replayed
    sequences (``conformance_fitness``); return the summary.

    The cases stay in DuckDB: only the distinct stage sequences come to Python, to be judged
    (deviation labels, pm4py's fitness), and go back as a small table to join on."""
    spec = designed_path(spec)
    with _judged_cases(con, spec, log, with_fitness=True):
        store_query(con, "conformance", _judged_cases_sql(CASES, with_fitness=True))
        store_query(
            con,
            FITNESS,
            f"SELECT $model AS model, stages, fitness FROM {JUDGED} ORDER BY positions",
            {"model": design_key(positions(spec))},
        )
    store_query(con, "conformance_summary", SUMMARY_SQL.format(cases="conformance"))
    return con.execute("SELECT * FROM conformance_summary").df()
