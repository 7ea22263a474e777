"""Staging on the workers keeps the load order: batches of consecutive files per source,
numbered where they stand in their source's list, as one folder per source would be."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from journeymine.ingest import load
from journeymine.pipelines import scale


def landing_with(tmp_path: Path, sizes: dict[str, list[int]]) -> dict[str, list[tuple[str, str]]]:
    """Files of the given sizes per source; the plan as ``plan_load`` gives it."""
    plan: dict[str, list[tuple[str, str]]] = {}
    for source, nbytes in sizes.items():
        (tmp_path / source).mkdir()
        for i, n in enumerate(nbytes):
            name = f"{source}/f{i}.json"
            (tmp_path / name).write_bytes(b"x" * n)
            plan.setdefault(source, []).append((name, f"sha{i}"))
    return plan


def test_batches_are_runs_of_consecutive_files_up_to_the_byte_budget(tmp_path: Path) -> None:
    plan = landing_with(tmp_path, {"stripe": [40, 40, 30, 100, 10], "ga4": [5]})
    batches = scale.plan_batches(tmp_path, plan, max_bytes=100)
    # by hand: 40+40 fits, +30 would pass 100; 30 alone then +100 passes; 100 alone (never
    # split); then 10. Sources by name: ga4 first.
    assert [(s, first, [f for f, _ in todo]) for s, first, todo in batches] == [
        ("ga4", 0, ["ga4/f0.json"]),
        ("stripe", 0, ["stripe/f0.json", "stripe/f1.json"]),
        ("stripe", 2, ["stripe/f2.json"]),
        ("stripe", 3, ["stripe/f3.json"]),
        ("stripe", 4, ["stripe/f4.json"]),
    ]
    assert [e for s, _, todo in batches if s == "stripe" for e in todo] == plan["stripe"]


def test_a_file_gone_since_the_plan_still_gets_a_batch(tmp_path: Path) -> None:
    plan = landing_with(tmp_path, {"zendesk": [10, 10]})
    (tmp_path / "zendesk" / "f0.json").unlink()
    batches = scale.plan_batches(tmp_path, plan, max_bytes=100)
    assert batches == [("zendesk", 0, plan["zendesk"])]  # staging will name it in its errors


def test_a_batch_numbers_its_files_from_where_they_stand_in_the_source(tmp_path: Path) -> None:
    rows = [
        {"source": "stripe", "file": f"stripe/f{i}.json", "sha256": "s", "rows_read": 3,
         "file_ord": i}
        for i in range(3)
    ]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(rows, schema=load.FILES_SCHEMA), tmp_path / "files.parquet")
    scale._shift_file_order(tmp_path, 7)
    table = pq.read_table(tmp_path / "files.parquet")
    assert table.schema == load.FILES_SCHEMA
    assert table.column("file_ord").to_pylist() == [7, 8, 9]
    assert table.column("file").to_pylist() == [r["file"] for r in rows]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["files.parquet"]  # nothing left aside
