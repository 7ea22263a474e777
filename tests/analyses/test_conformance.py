"""Designed vs actual: deviation labels on a hand-built five-case log, and the sample's plants."""

from __future__ import annotations

import json
import random
import statistics
from datetime import timedelta
from pathlib import Path
from typing import NamedTuple

import duckdb
import pytest

from journeymine.analyses import conformance
from journeymine.mining import discovery, pm4py_adapter
from journeymine.mining.eventlog import log_from_touchpoints
from journeymine.spec import JourneySpec, Stage, load_spec

ROOT = Path(__file__).resolve().parents[2]
SPEC = JourneySpec(
    name="t",
    window=timedelta(days=9),
    stages=(
        Stage("signup", ("signup",)),
        Stage("demo", ("demo",), optional=True),
        Stage("trial", ("trial",)),
        Stage("paid", ("paid",)),
    ),
)
CASES = {
    1: ["signup", "demo", "trial", "paid"],  # the designed journey
    2: ["signup", "trial", "paid"],  # skips the optional demo: still conforming
    3: ["signup", "paid"],  # skipped trial
    4: ["signup", "trial", "demo", "trial"],  # back to demo, trial repeated, never paid
    5: ["trial", "signup"],  # out of order
}


def five_case_log() -> tuple[duckdb.DuckDBPyConnection, str]:
    con = duckdb.connect()
    rows = [(c, a, i) for c, acts in CASES.items() for i, a in enumerate(acts)]
    con.execute(
        "CREATE TABLE t AS SELECT c AS case_key, a AS activity, "
        "TIMESTAMPTZ '2026-01-01' + to_seconds(i * 3600) AS ts, i AS seq FROM (VALUES "
        + ", ".join(f"({c}, '{a}', {i})" for c, a, i in rows)
        + ") v(c, a, i)"
    )
    return con, "t"


def test_deviation_labels_are_exactly_right() -> None:
    con, log = five_case_log()
    cases = conformance.check_conformance(con, SPEC, log).set_index("case_key")
    assert cases.deviations.to_dict() == {
        1: [],
        2: [],
        3: ["skipped trial"],
        4: ["moved back to demo", "repeated trial", "out of order", "never reached paid"],
        5: ["moved back to signup", "out of order", "never reached paid"],
    }
    assert cases.conforms.to_dict() == {1: True, 2: True, 3: False, 4: False, 5: False}
    assert cases.fitness[1] == 1.0 and cases.fitness[2] == 1.0
    assert cases.fitness[3] < 1.0 and cases.fitness[4] < 1.0


def test_summary_compares_conforming_and_deviating() -> None:
    con, log = five_case_log()
    summary = conformance.summarise_conformance(conformance.check_conformance(con, SPEC, log))
    rows = summary.set_index("deviation")
    assert (
        rows.loc["(conforming)", "cases"] == 2
        and rows.loc["(conforming)", "completion_rate"] == 1.0
    )
    assert rows.loc["(any order deviation)", "cases"] == 3
    assert rows.loc["(any order deviation)", "completion_rate"] == pytest.approx(1 / 3)


def test_a_second_run_replays_only_the_sequences_new_to_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """conformance_fitness carries each sequence's fitness to the next run: pm4py replays only
    the new sequence, the fitness read back is what a full replay gives, and a changed design
    replays everything."""
    con, log = five_case_log()
    replayed: list[list[list[str]]] = []
    replay = pm4py_adapter.case_fitness

    def counted(tree: object, traces: dict[int, list[str]]) -> dict[int, float]:
        replayed.append(sorted(traces.values()))
        return replay(tree, traces)

    monkeypatch.setattr(pm4py_adapter, "case_fitness", counted)
    conformance.write_conformance(con, SPEC, log)
    assert len(replayed) == 1 and len(replayed[0]) == len(CASES)  # five distinct sequences
    first = con.execute("FROM conformance ORDER BY case_key").fetchall()

    con.execute(
        "INSERT INTO t VALUES (6, 'trial', TIMESTAMPTZ '2026-01-01', 0), "
        "(6, 'paid', TIMESTAMPTZ '2026-01-01 01:00', 1)"
    )
    conformance.write_conformance(con, SPEC, log)
    assert replayed[1:] == [[["trial", "paid"]]]
    assert con.execute("FROM conformance WHERE case_key <= 5 ORDER BY case_key").fetchall() == first
    cached = dict(con.execute("SELECT case_key, fitness FROM conformance").fetchall())

    con.execute(f"DROP TABLE {conformance.FITNESS}")
    fresh = conformance.check_conformance(con, SPEC, log)
    assert len(replayed[2]) == len(CASES) + 1
    assert dict(zip(fresh.case_key, fresh.fitness, strict=True)) == cached
    assert cached[6] < 1.0  # skipped signup: the new sequence was really replayed

    demo_required = JourneySpec(
        name="t", stages=tuple(Stage(s.name, s.activities) for s in SPEC.stages)
    )
    conformance.write_conformance(con, SPEC, log)  # the cache holds SPEC's six sequences
    conformance.write_conformance(con, demo_required, log)
    assert len(replayed) == 5 and len(replayed[4]) == len(CASES) + 1
    by_case = dict(con.execute("SELECT case_key, fitness FROM conformance").fetchall())
    assert by_case[2] < 1.0 == cached[2]  # without its optional demo, case 2 no longer fits


def test_the_sample_planted_deviations_are_found(sample_copy: Path) -> None:
    truths = json.loads((ROOT / "data" / "sample" / "truths.json").read_text())["deviations"]
    con = duckdb.connect(str(sample_copy))  # a copy: the conformance tables are rewritten
    spec = load_spec(ROOT / "data" / "sample" / "journey.toml")
    summary = conformance.write_conformance(con, spec, log_from_touchpoints(con)).set_index(
        "deviation"
    )
    assert summary.loc["skipped demo_held", "cases"] == truths["self_serve_trial_skipping_demo"]
    assert summary.loc["moved back to demo_held", "cases"] == truths["second_demo_after_trial"]


def test_model_discovered_from_our_dfg_is_written(tmp_path: Path) -> None:
    con, log = five_case_log()
    stored = discovery.materialise_log(con, log)
    tree = pm4py_adapter.discover_model(
        discovery.discover_dfg(con, stored),
        discovery.start_activities(con, stored),
        discovery.end_activities(con, stored),
        0.0,
    )
    paths = pm4py_adapter.write_model(tree, tmp_path)
    assert (
        "<bpmn" in paths["bpmn"].read_text().lower() or "definitions" in paths["bpmn"].read_text()
    )
    assert "<pnml" in paths["pnml"].read_text()
    labels = {leaf.label for leaf in _leaves(tree)} - {None}
    assert labels == {"signup", "demo", "trial", "paid"}


def _leaves(tree: object) -> list:  # type: ignore[type-arg]
    children = getattr(tree, "children", [])
    return [tree] if not children else [x for c in children for x in _leaves(c)]


def test_heuristics_net_sees_the_main_path() -> None:
    con, log = five_case_log()
    frame = con.execute(f"SELECT case_key::VARCHAR AS case_id, activity, ts, seq FROM {log}").df()
    net = pm4py_adapter.discover_heuristics_net(frame, dependency_threshold=0.0)
    assert set(net.activities) == {"signup", "demo", "trial", "paid"}
    assert "trial" in net.dfg_matrix["signup"] and net.dfg_matrix["signup"]["trial"] == 2


def test_stopping_early_is_not_conforming_and_repeatable_stages_may_come_back() -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t AS SELECT * FROM (VALUES "
        "(1, 'visit', 0), (1, 'signup', 1), (1, 'visit', 2), (1, 'trial', 3), (1, 'paid', 4), "
        "(2, 'visit', 0), (2, 'signup', 1), "  # stopped early on the path: not judged
        "(3, 'visit', 0), (3, 'trial', 1), (3, 'signup', 2)"  # off the path
        ") v(case_key, activity, i)"
    )
    con.execute(
        "CREATE TABLE log AS SELECT case_key, activity, "
        "TIMESTAMPTZ '2026-01-01' + to_seconds(i * 3600) AS ts, i AS seq FROM t"
    )
    spec = JourneySpec(
        name="t",
        stages=(
            Stage("visit", ("visit",), repeatable=True),
            Stage("signup", ("signup",)),
            Stage("trial", ("trial",)),
            Stage("paid", ("paid",)),
        ),
    )
    cases = conformance.check_conformance(con, spec, "log", with_fitness=False).set_index(
        "case_key"
    )
    assert cases.deviations[1] == []  # browsing again after signing up is not going back
    assert cases.conforms.to_dict() == {1: True, 2: False, 3: False}
    assert cases.judged.to_dict() == {1: True, 2: False, 3: True}
    rows = conformance.summarise_conformance(cases.reset_index()).set_index("deviation")
    assert rows.loc["(conforming)", ["cases", "share"]].tolist() == [1, 0.5]  # of 2 judged
    assert rows.loc["(stopped early, not judged)", "cases"] == 1  # case 3 left the path: judged
    assert rows.loc["never reached paid", "kind"] == "drop-off"
    # without `repeatable`, the return to the website is a deviation
    strict = JourneySpec(name="t", stages=tuple(Stage(s.name, s.activities) for s in spec.stages))
    again = conformance.check_conformance(con, strict, "log", with_fitness=False)
    assert "moved back to visit" in again.set_index("case_key").deviations[1]


def test_a_log_where_no_activity_is_a_stage_has_no_cases_and_no_crash() -> None:
    """A landing of survey answers only (no stage activity): nothing to judge, not a merge error."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE log AS SELECT 1 AS case_key, 'feedback.survey_answered' AS activity, "
        "TIMESTAMPTZ '2026-01-01' AS ts, 0 AS seq"
    )
    cases = conformance.check_conformance(con, SPEC, "log")
    assert len(cases) == 0
    assert conformance.summarise_conformance(cases).cases.sum() == 0


def test_the_stored_judgement_is_each_case_judged_alone_in_plain_python() -> None:
    """conformance and conformance_summary are built in SQL from the distinct sequences; here
    every case is judged on its own (its events in Python, deviation_labels, pm4py's replay of
    its stages alone) and summarised by hand, and the stored tables must equal that exactly."""
    rng = random.Random(11)
    activities = ["signup", "demo", "trial", "paid", "browse"]  # browse marks no stage
    hand = [
        ["signup", "signup", "trial", "paid"],  # a consecutive repeat: collapsed, conforming
        ["signup", "trial", "signup", "trial", "paid"],  # repeats after another stage
        ["trial", "signup", "paid"],  # out of order
        ["signup", "paid"],  # skipped trial
        ["signup", "demo"],  # stopped early: never reached paid, not judged
        ["browse", "trial"],  # never reached paid, skipped signup
    ]
    journeys = hand * 3 + [rng.choices(activities, k=rng.randint(1, 6)) for _ in range(400)]
    events = []
    for case, acts in enumerate(journeys, start=1):
        times = sorted(rng.sample(range(40 * 86400 * 10**6), len(acts)))  # microseconds
        events += [(case, a, t, i) for i, (a, t) in enumerate(zip(acts, times, strict=True))]
    con = duckdb.connect()
    con.execute("CREATE TABLE e (case_key BIGINT, activity VARCHAR, s BIGINT, seq BIGINT)")
    con.executemany("INSERT INTO e VALUES (?, ?, ?, ?)", events)
    con.execute(
        "CREATE TABLE log AS SELECT case_key, activity, "
        "TIMESTAMPTZ '2026-01-01' + to_microseconds(s) AS ts, seq FROM e"
    )
    summary = conformance.write_conformance(con, SPEC, "log")

    expected = _judged_alone(events)
    assert any(c.conforms for c in expected.values()) and any(c.deviates for c in expected.values())
    assert any(not c.judged for c in expected.values())
    stored = con.execute(
        "SELECT case_key, positions, duration_s, stages, deviations, deviates, completed, "
        "conforms, judged, fitness FROM conformance"
    ).fetchall()
    assert {row[0]: Judged(*row[1:]) for row in stored} == expected
    by_hand = _summary_by_hand(list(expected.values()))
    assert con.execute("FROM conformance_summary").fetchall() == by_hand
    returned = summary.astype(object).where(summary.notna(), None)
    assert [tuple(row) for row in returned.itertuples(index=False)] == by_hand
    frame = conformance.check_conformance(con, SPEC, "log").set_index("case_key")
    assert frame.deviations.to_dict() == {k: c.deviations for k, c in expected.items()}
    assert frame.positions.to_dict() == {k: c.positions for k, c in expected.items()}
    assert frame.fitness.to_dict() == {k: c.fitness for k, c in expected.items()}


STEPS = [("signup", False), ("demo", True), ("trial", False), ("paid", False)]


class Judged(NamedTuple):
    positions: list[int]
    duration_s: float
    stages: list[str]
    deviations: list[str]
    deviates: bool
    completed: bool
    conforms: bool
    judged: bool
    fitness: float


def _judged_alone(events: list[tuple[int, str, int, int]]) -> dict[int, Judged]:
    """Per case, from its own events: the conformance row, computed without SQL."""
    by_case: dict[int, list[tuple[int, int, int]]] = {}
    names = [name for name, _ in STEPS]
    for case, activity, t, seq in events:
        if activity in names:
            by_case.setdefault(case, []).append((t, seq, names.index(activity)))
    kept = {case: _collapsed(sorted(marks)) for case, marks in by_case.items()}
    sequences = {case: [pos for _, _, pos in marks] for case, marks in kept.items()}
    tree = pm4py_adapter.designed_tree([([name], optional) for name, optional in STEPS])
    fitness = pm4py_adapter.case_fitness(
        tree, {case: [names[p] for p in seq] for case, seq in sequences.items()}
    )
    out = {}
    for case, seq in sequences.items():
        labels = conformance.deviation_labels(seq, STEPS)
        deviates = any(lbl.startswith(conformance.ORDER_DEVIATIONS) for lbl in labels)
        completed = len(STEPS) - 1 in seq
        duration = (kept[case][-1][0] - kept[case][0][0]) / 1e6  # first to last kept mark
        out[case] = Judged(
            seq, duration, [names[p] for p in seq], labels, deviates, completed,
            completed and not deviates, completed or deviates, fitness[case],
        )  # fmt: skip
    return out


def _collapsed(marks: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Consecutive marks of the same stage count once (the first of them)."""
    return [m for i, m in enumerate(marks) if i == 0 or marks[i - 1][2] != m[2]]


Row = tuple[str, str, int, float | None, float | None, float | None]


def _summary_by_hand(cases: list[Judged]) -> list[Row]:
    """The summary's rows by its definition, sorted by cases (ties in the order listed)."""
    judged = sum(c.judged for c in cases)
    groups = [
        ("(conforming)", "total", [c for c in cases if c.conforms]),
        ("(any order deviation)", "total", [c for c in cases if c.deviates]),
        ("(stopped early, not judged)", "drop-off", [c for c in cases if not c.judged]),
    ]
    for label in sorted({lbl for c in cases for lbl in c.deviations}):
        kind = "drop-off" if label.startswith("never reached") else "deviation"
        groups.append((label, kind, [c for c in cases if label in c.deviations]))
    rows: list[Row] = []
    for label, kind, part in groups:
        n = len(part)
        share = n / judged if kind != "drop-off" and judged else None
        done = sum(c.completed for c in part) / n if n else None
        median = statistics.median(c.duration_s for c in part) if n else None
        rows.append((label, kind, n, share, done, median))
    return sorted(rows, key=lambda row: -row[2])
