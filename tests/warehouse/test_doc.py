"""docs/warehouse.md's listings are what scripts/make_warehouse_doc.py makes of the declaration."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from journeymine.warehouse import schema
from tests.fixtures import DOCS, ROOT

SCRIPT = ROOT / "scripts" / "make_warehouse_doc.py"


@pytest.fixture(scope="module")
def make_doc() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_warehouse_doc", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_page_is_what_the_declaration_makes(make_doc: ModuleType) -> None:
    page = (DOCS / "warehouse.md").read_text()
    assert make_doc.render(page) == page, "run scripts/make_warehouse_doc.py"


def test_every_declared_column_has_a_row_with_its_type_and_meaning() -> None:
    page = (DOCS / "warehouse.md").read_text()
    for table in schema.WAREHOUSE.values():
        section = page.split(f"### `{table.name}`\n", 1)[1].split("\n\n", 1)[0]
        rows = [line for line in section.splitlines()[2:] if line.startswith("|")]
        assert len(rows) == len(table.columns), table.name
        for row, column in zip(rows, table.columns, strict=True):
            assert row.startswith(f"| `{column.name}` | {column.sql}"), (table.name, row)
            assert column.meaning.replace("|", "\\|") in row


def test_the_script_rewrites_a_stale_page_and_keeps_the_prose(tmp_path: Path) -> None:
    page = tmp_path / "warehouse.md"
    blocks = "".join(f"Prose {layer}.\n<!-- tables:{layer} -->\nstale\n<!-- /tables:{layer} -->\n"
                     for layer in schema.LAYERS)  # fmt: skip
    page.write_text(blocks)
    run = [sys.executable, str(SCRIPT), "--page", str(page)]
    assert subprocess.run([*run, "--check"], capture_output=True).returncode == 1
    subprocess.run(run, check=True, capture_output=True)
    made = page.read_text()
    assert "stale" not in made
    assert all(f"Prose {layer}.\n" in made for layer in schema.LAYERS)
    assert "| `raw_rows` | one accepted vendor record, as exported |" in made
    assert "| `touchpoints` | one canonical event" in made
    assert subprocess.run([*run, "--check"], capture_output=True).returncode == 0


def test_a_page_without_a_block_per_layer_is_refused(make_doc: ModuleType) -> None:
    with pytest.raises(SystemExit, match="one per layer"):
        make_doc.render("<!-- tables:raw -->\n<!-- /tables:raw -->\n")
