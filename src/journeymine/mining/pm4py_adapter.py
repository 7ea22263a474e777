"""The one place journeymine talks to pm4py (AGPL-3.0): XES I/O, model discovery, conformance.

pm4py is imported inside each function, so importing journeymine stays fast and every use of
it is visible here. Discovery is fed aggregates (our DuckDB DFG), never millions of rows:
pm4py's cost is mostly string handling (DESIGN §7).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

CASE, ACTIVITY, TIMESTAMP = "case:concept:name", "concept:name", "time:timestamp"


def _pm4py() -> Any:
    os.environ.setdefault("PM4PY_DISABLE_PROGRESS_BAR", "1")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pm4py
    pm4py.util.constants.SHOW_PROGRESS_BAR = False
    return pm4py


@cache
def pm4py_version() -> str:
    """The installed pm4py release, read once from its metadata (no import of pm4py itself)."""
    from importlib.metadata import version

    return version("pm4py")


def read_xes(path: str | Path) -> pd.DataFrame:
    """An XES / XES.gz file as pm4py's DataFrame, rows in file order."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame: pd.DataFrame = _pm4py().read_xes(str(path))
    return frame


def write_xes(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a log frame (``case_id, activity, ts`` [, ``resource``, ``lifecycle``]) as XES."""
    renamed = frame.rename(
        columns={
            "case_id": CASE,
            "activity": ACTIVITY,
            "ts": TIMESTAMP,
            "resource": "org:resource",
            "lifecycle": "lifecycle:transition",
        }
    )
    keep = [c for c in renamed.columns if ":" in c]
    # pm4py appends ".xes" to any other name: write beside the target under a name it keeps,
    # then move it into place (which also means a reader never sees half a file).
    path = Path(path)
    suffix = ".xes.gz" if path.name.lower().endswith(".gz") else ".xes"
    fd, part = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        _pm4py().write_xes(renamed[keep], part, case_id_key=CASE)
        os.replace(part, path)
    finally:
        Path(part).unlink(missing_ok=True)


def formatted(frame: pd.DataFrame) -> pd.DataFrame:
    """A log frame (``case_id, activity, ts, seq``) in pm4py's format, via format_dataframe.

    Compare with pm4py only on such a frame: on an unformatted one, pm4py's variants are wrong
    (DESIGN §7). Rows are put in ``seq`` order first, which pm4py keeps for timestamp ties.
    """
    ordered = frame.sort_values("seq", kind="stable").rename(
        columns={"case_id": CASE, "activity": ACTIVITY, "ts": TIMESTAMP}
    )
    ordered = ordered[[CASE, ACTIVITY, TIMESTAMP]].reset_index(drop=True)
    ordered[CASE] = ordered[CASE].astype(str)
    result: pd.DataFrame = _pm4py().format_dataframe(
        ordered, case_id=CASE, activity_key=ACTIVITY, timestamp_key=TIMESTAMP
    )
    return result


def reference_figures(frame: pd.DataFrame) -> dict[str, Any]:
    """pm4py's own DFG, performance DFG, start/end activities and variants of a formatted log."""
    pm4py = _pm4py()
    dfg, starts, ends = pm4py.discover_dfg(frame)
    performance, _, _ = pm4py.discover_performance_dfg(frame)
    variants = pm4py.get_variants(frame)
    return {
        "dfg": dict(dfg),
        "start": dict(starts),
        "end": dict(ends),
        "performance": dict(performance),
        "variants": {tuple(k): (v if isinstance(v, int) else len(v)) for k, v in variants.items()},
    }


def discover_model(
    dfg: pd.DataFrame, starts: dict[str, int], ends: dict[str, int], noise_threshold: float = 0.2
) -> Any:
    """Inductive miner (infrequent) on our DFG: a process tree. Fed aggregates, not rows."""
    from pm4py.objects.dfg.obj import DFG

    graph = {(r.source_activity, r.target_activity): int(r.frequency) for r in dfg.itertuples()}
    return _pm4py().discover_process_tree_inductive(
        DFG(graph, starts, ends), noise_threshold=noise_threshold
    )


def discover_heuristics_net(frame: pd.DataFrame, dependency_threshold: float = 0.5) -> Any:
    return _pm4py().discover_heuristics_net(
        formatted(frame), dependency_threshold=dependency_threshold
    )


def write_model(tree: Any, folder: str | Path, name: str = "journey") -> dict[str, Path]:
    """Write a process tree as BPMN and as a Petri net (PNML); returns the paths."""
    pm4py = _pm4py()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"bpmn": folder / f"{name}.bpmn", "pnml": folder / f"{name}.pnml"}
    tree = masked_tree(tree)
    # No auto layout: it shells out to Graphviz, which chokes on activity names with markup.
    pm4py.write_bpmn(pm4py.convert_to_bpmn(tree), str(paths["bpmn"]), auto_layout=False)
    net, im, fm = pm4py.convert_to_petri_net(tree)
    pm4py.write_pnml(net, im, fm, str(paths["pnml"]))
    return paths


def masked_tree(tree: Any) -> Any:
    """A copy of a process tree whose activity labels have emails masked (the dashboard's
    rule): model files are shared, and an activity name may carry an address."""
    import copy

    from journeymine.privacy import scrub

    masked = copy.deepcopy(tree)
    stack = [masked]
    while stack:
        node = stack.pop()
        if node.label is not None:
            node.label = scrub(node.label)
        stack.extend(node.children)
    return masked


def designed_tree(positions: Sequence[tuple[Sequence[str], bool]]) -> Any:
    """The designed journey as a process tree: a sequence of positions, each a choice among
    alternative stages, skippable when optional (``X(stage, tau)``)."""
    from pm4py.objects.process_tree.obj import Operator, ProcessTree

    root = ProcessTree(operator=Operator.SEQUENCE)
    for stages, optional in positions:
        leaves = [ProcessTree(label=s) for s in stages]
        if optional:
            leaves.append(ProcessTree(label=None))
        node = leaves[0] if len(leaves) == 1 else ProcessTree(operator=Operator.XOR)
        if len(leaves) > 1:
            for leaf in leaves:
                leaf.parent = node
            node.children = leaves
        node.parent = root
        root.children.append(node)
    return root


def case_fitness(tree: Any, traces: dict[int, list[str]]) -> dict[int, float]:
    """Token-replay fitness of each case's stage sequence against a process tree."""
    pm4py = _pm4py()
    rows = [
        (str(case), stage, pd.Timestamp("2000-01-01", tz="UTC") + pd.Timedelta(seconds=i))
        for case, stages in traces.items()
        for i, stage in enumerate(stages)
    ]
    if not rows:
        return {}
    frame = pd.DataFrame(rows, columns=[CASE, ACTIVITY, TIMESTAMP])
    frame = pm4py.format_dataframe(frame)
    net, im, fm = pm4py.convert_to_petri_net(tree)
    replay = pm4py.conformance_diagnostics_token_based_replay(frame, net, im, fm)
    cases = frame.drop_duplicates(CASE)[CASE].tolist()  # replay follows the frame's case order
    return {int(c): float(r["trace_fitness"]) for c, r in zip(cases, replay, strict=True)}
