"""The notebooks run top to bottom on the sample (they only call journeymine)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["explore_your_journeys", "bring_your_own_log"])
def test_notebook_runs(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEYMINE_WAREHOUSE", str(tmp_path / "w.duckdb"))
    monkeypatch.setenv("JOURNEYMINE_SAMPLE", str(ROOT / "data" / "sample"))
    monkeypatch.setenv(
        "JOURNEYMINE_LOG", str(ROOT / "tests" / "data" / "eventlogs" / "helpdesk.xes.gz")
    )
    notebook = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(ROOT / "notebooks")}},
    ).execute()
    errors = [
        o
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert errors == []
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert len(outputs) >= 5
    assert os.path.exists(tmp_path / "w.duckdb") or name == "bring_your_own_log"
