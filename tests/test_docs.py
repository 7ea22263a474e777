"""The docs say what the code does: their ``>>>`` examples and the public API's run against the
sample as written, and docs/warehouse.md lists exactly the tables and columns a run creates
(tests/warehouse holds the declaration the page is made from to a run, types and all)."""

from __future__ import annotations

import doctest
import json
import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

import journeymine as jm
from journeymine import api
from tests.fixtures import DOCS, NOTEBOOKS, ROOT, SAMPLE_JOURNEY, SAMPLE_LANDING, SampleRun

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
EXAMPLES = sorted(p.name for p in DOCS.glob("*.md") if ">>>" in p.read_text())
ROW = re.compile(r"^\| `(\w+)`(?: \(view\))? \| [^|]+ \| ((?:`\w+`(?:, )?)+) \|$")


@pytest.fixture
def in_a_run_folder(sample_run: SampleRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder laid out as the repository after ``make run``: ``out/`` the sample's
    run, ``data/`` the bundled data; examples only read them."""
    (tmp_path / "out").symlink_to(sample_run.out, target_is_directory=True)
    (tmp_path / "data").symlink_to(ROOT / "data", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_examples(tests: list[doctest.DocTest]) -> tuple[int, str]:
    """Run the examples; return how many ran and the report of the failures."""
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report: list[str] = []
    for test in tests:
        runner.run(test, out=report.append)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, "".join(report)
    return results.attempted, "".join(report)


def test_the_documented_examples_are_there() -> None:
    """So the runs below cannot pass by finding nothing."""
    assert {"api.md", "warehouse.md"} <= set(EXAMPLES)


@pytest.mark.parametrize("name", EXAMPLES)
def test_markdown_examples_run_as_written(name: str, in_a_run_folder: Path) -> None:
    text = (DOCS / name).read_text()
    # A code fence ends an example's expected output, as a blank line does for doctest.
    unfenced = re.sub(r"^```\w*$", "", text, flags=re.M)
    test = doctest.DocTestParser().get_doctest(unfenced, {}, name, str(DOCS / name), 0)
    attempted, _ = run_examples([test])
    assert attempted == text.count(">>> ")


def test_public_docstring_examples_run_as_written(in_a_run_folder: Path) -> None:
    finder = doctest.DocTestFinder()
    tests = {t.name: t for module in (jm, api) for t in finder.find(module) if t.examples}
    with jm.open_warehouse("out/warehouse.duckdb") as wh:
        for test in tests.values():
            test.globs.update(jm=jm, wh=wh)
        attempted, _ = run_examples(list(tests.values()))
    assert {"journeymine", "journeymine.api", "journeymine.api.figure"} <= set(tests)
    assert attempted >= 8


def documented_tables() -> dict[str, set[str]]:
    """docs/warehouse.md's tables and their columns, from its ``| table | one row = | columns |``
    rows."""
    found: dict[str, set[str]] = {}
    listing = False
    for line in (DOCS / "warehouse.md").read_text().splitlines():
        listing = line == "| table | one row = | columns |" or (listing and line.startswith("|"))
        match = ROW.match(line) if listing else None
        if match:
            assert match.group(1) not in found, f"{match.group(1)} is listed twice"
            found[match.group(1)] = set(re.findall(r"`(\w+)`", match.group(2)))
    return found


def created_tables(path: Path) -> dict[str, set[str]]:
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND table_schema = 'main'"
        ).fetchall()
    tables: dict[str, set[str]] = {}
    for table, column in rows:
        tables.setdefault(table, set()).add(column)
    return tables


def test_the_warehouse_doc_lists_exactly_what_a_run_creates(sample_warehouse: Path) -> None:
    documented = documented_tables()
    created = created_tables(sample_warehouse)
    assert sorted(set(documented) ^ set(created)) == []
    assert {t: (c, created[t]) for t, c in documented.items() if c != created[t]} == {}
    assert set(jm.TABLES) == set(documented)  # what `view` serves is what the doc lists


def test_the_touchpoints_columns_are_each_explained(sample_warehouse: Path) -> None:
    text = (DOCS / "warehouse.md").read_text()
    section = text.split("### `touchpoints`\n", 1)[1].split("\n\n", 1)[0]
    explained = {
        name
        for line in section.splitlines()[2:]
        if line.startswith("|")  # the listing's end marker follows the last table
        for name in re.findall(r"`(\w+)`", line.split("|")[1])
    }
    assert explained == created_tables(sample_warehouse)["touchpoints"]


@pytest.fixture
def nightly_run(prefect_harness: None, tmp_path: Path) -> Iterator[Path]:
    from journeymine.pipelines.nightly import nightly

    out = tmp_path / "out"
    db = out / "warehouse.duckdb"
    nightly(
        landing=str(SAMPLE_LANDING),
        warehouse_path=str(db),
        journey=str(SAMPLE_JOURNEY),
        out=str(out),
    )
    yield db


def test_the_sample_fixture_builds_what_journeymine_run_builds(
    nightly_run: Path, sample_warehouse: Path
) -> None:
    """The session's sample skips the Prefect flow; a real run creates the same tables."""
    assert created_tables(nightly_run) == created_tables(sample_warehouse)


@pytest.mark.parametrize("name", sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")))
def test_the_notebooks_use_only_the_public_api(name: str) -> None:
    cells = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    imports = re.findall(r"^\s*(?:from|import) (journeymine\S*).*$", code, re.M)
    assert imports == ["journeymine"]  # `import journeymine as jm`, nothing deeper
    used = set(re.findall(r"\bjm\.(\w+)", code))
    assert used and used <= set(jm.__all__), used - set(jm.__all__)


def test_metrics_doc_maps_every_dashboard_section_to_files_that_exist() -> None:
    """docs/metrics.md's one-hop table: every section of the page is listed, every path named
    there exists, and every table named is one the warehouse documents."""
    from journeymine.dashboard.sections import FIGURES

    text = (DOCS / "metrics.md").read_text()
    table = text.split("## Where each dashboard number is defined", 1)[1].split("\n## ", 1)[0]
    lines = table.splitlines()
    rows = [line for line in lines if line.startswith("| ") and "`#" in line][1:]  # not the head
    anchors = {a for row in rows for a in re.findall(r"`#(\w+)`", row.split("|")[1])}
    assert anchors == set(FIGURES)
    src = ROOT / "src" / "journeymine"
    paths = {p for row in rows for p in re.findall(r"`([\w/]+\.py)", row)}
    assert paths and all((src / p).is_file() for p in paths), sorted(
        p for p in paths if not (src / p).is_file()
    )
    tables = {t for row in rows for t in re.findall(r"`(\w+)`", row.split("|")[2])}
    assert tables <= set(documented_tables())
