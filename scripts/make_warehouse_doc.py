"""Write docs/warehouse.md's table listings from the declaration (journeymine/warehouse/schema.py).

    python scripts/make_warehouse_doc.py [--check] [--page docs/warehouse.md]

The page's prose is written by hand; each layer's tables go between the markers
``<!-- tables:LAYER -->`` and ``<!-- /tables:LAYER -->``: a summary (one line per table: what
one row is, its columns), then per table its columns with their SQL type and meaning.
``--check`` changes nothing and exits 1 if the page is not what the declaration makes
(``tests/warehouse/test_doc.py`` runs the same check).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from journeymine.warehouse.columns import LAYERS, Column, Table
from journeymine.warehouse.schema import WAREHOUSE

PAGE = Path(__file__).resolve().parents[1] / "docs" / "warehouse.md"
BLOCK = re.compile(r"(<!-- tables:(\w+) -->\n).*?(<!-- /tables:\2 -->)", re.S)


def cell(text: str) -> str:
    return text.replace("|", "\\|")  # a pipe would end the Markdown cell


def summary_row(table: Table) -> str:
    name = f"`{table.name}`" + (" (view)" if table.view else "")
    columns = ", ".join(f"`{c.name}`" for c in table.columns)
    return f"| {name} | {cell(table.row)} | {columns} |"


def column_row(column: Column) -> str:
    kind = column.sql + (", optional" if column.optional else "")
    return f"| `{column.name}` | {cell(kind)} | {cell(column.meaning)} |"


def render_layer(layer: str) -> str:
    """The listing of one layer: the summary table, then each table's columns."""
    tables = [t for t in WAREHOUSE.values() if t.layer == layer]
    lines = ["| table | one row = | columns |", "|---|---|---|"]
    lines += [summary_row(t) for t in tables]
    for table in tables:
        lines += ["", f"### `{table.name}`", "| column | type | meaning |", "|---|---|---|"]
        lines += [column_row(c) for c in table.columns]
    return "\n".join(lines) + "\n"


def render(page: str) -> str:
    """``page`` with every layer's block rewritten from the declaration; each layer must have
    exactly one block."""
    found = [m.group(2) for m in BLOCK.finditer(page)]
    if sorted(found) != sorted(LAYERS):
        raise SystemExit(
            f"the page's table blocks are {found}; it needs one per layer: {', '.join(LAYERS)}"
        )
    return BLOCK.sub(lambda m: m.group(1) + render_layer(m.group(2)) + m.group(3), page)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether the page is current")
    parser.add_argument("--page", type=Path, default=PAGE)
    args = parser.parse_args(argv)
    text = args.page.read_text()
    made = render(text)
    if args.check:
        if made != text:
            print(f"{args.page} is out of date: run scripts/make_warehouse_doc.py", file=sys.stderr)
            return 1
        return 0
    args.page.write_text(made)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
