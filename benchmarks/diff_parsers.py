"""Two checkouts' parsers on the same fuzzed files: every row, event, edge and reject equal?

    python benchmarks/diff_parsers.py --before SRC_A --after SRC_B [--examples 400]

Writes ``--examples`` landing files per source (Segment, GA4, SendGrid, Stripe, Salesforce) with
the mutations of ``tests/ingest/sources/test_fuzz.py`` (dropped and retyped fields, odd values,
deep nesting, Latin-1 bytes, truncation), parses each with the parsers of ``SRC_A`` and of
``SRC_B`` (a child process each) and compares what they return, reasons and raw text included.
The check for a parser made faster: exit status 1 and the first differing file when they
differ. Staged output of a whole landing is compared by ``bench_stage.py``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.ingest.sources import conftest  # noqa: E402, F401  (registers the fuzz profiles)
from tests.ingest.sources import test_fuzz as fuzz  # noqa: E402

# Run in each child: one line per file, every value by repr (Event may be a dataclass or a
# named tuple depending on the checkout: read by field name).
DUMP = """
import sys
from pathlib import Path
from journeymine.errors import SourceFormatError
from journeymine.ingest.sources import PARSERS
EVENT = ("event_key", "event_type", "activity", "actor", "occurred_at", "raw_time", "id_type",
         "id_value", "channel", "owner", "account_type", "account_value", "attributes")
EDGE = ("src_type", "src_id", "dst_type", "dst_id", "rule", "observed_at")
LABEL = ("kind", "id", "name")
def fields(item, names):
    return tuple(repr(getattr(item, name)) for name in names)
for folder in sorted(Path(sys.argv[1]).iterdir()):
    source = folder.name.split("-", 1)[1]
    (path,) = folder.iterdir()
    try:
        parsed = PARSERS[source](path, f"{source}/{path.name}")
    except SourceFormatError as exc:
        print(folder.name, "format error", repr(str(exc)))
        continue
    rows = [(r.line, r.record_key, r.raw, [fields(e, EVENT) for e in r.events],
             [fields(e, EDGE) for e in r.edges], [fields(x, LABEL) for x in r.labels])
            for r in parsed.rows]
    print(folder.name, repr(rows), repr([(r.line, r.reason, r.raw) for r in parsed.rejected]))
"""


def write_files(root: Path, examples: int) -> int:
    """``examples`` fuzzed files per source under ``root``, one folder each (its source)."""
    number = itertools.count()
    budget = settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )

    def put(source: str, name: str, data: bytes) -> None:
        folder = root / f"{next(number):06d}-{source}"
        folder.mkdir(parents=True)
        (folder / name).write_bytes(data)

    def lines(pool: list[object]) -> st.SearchStrategy[bytes]:
        text = fuzz.records_of(pool).map(lambda records: ("\n".join(records) + "\n").encode())
        return text.flatmap(fuzz.text_damage)

    def stripe_page(records: list[str]) -> bytes:
        body = ",\n".join(records)
        return f'{{"object": "list", "data": [\n{body}\n], "has_more": false}}'.encode()

    array = fuzz.records_of(fuzz.SENDGRID).map(lambda rs: ("[\n" + ",\n".join(rs) + "\n]").encode())
    page = fuzz.records_of(fuzz.STRIPE).map(stripe_page)
    cases = {
        "segment": ("calls.jsonl", lines(fuzz.SEGMENT)),
        "ga4": ("events.json", lines(fuzz.GA4)),
        "sendgrid": ("webhook.json", array.flatmap(fuzz.text_damage)),
        "stripe": ("events.jsonl", lines(fuzz.STRIPE)),
    }

    def writer(source: str, name: str) -> Callable[[bytes], None]:
        return lambda data: put(source, name, data)

    for source, (name, strategy) in cases.items():
        budget(given(strategy)(writer(source, name)))()
    budget(given(page.flatmap(fuzz.text_damage))(writer("stripe", "page.json")))()
    exports = fuzz.salesforce_export()
    budget(given(exports)(lambda export: put("salesforce", export[0], export[1])))()
    return next(number)


def dump(src: Path, root: Path) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, "-c", DUMP, str(root)], env=env, check=True, capture_output=True, text=True
    ).stdout
    return out.splitlines()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", type=Path, required=True, help="src folder A")
    parser.add_argument("--after", type=Path, required=True, help="src folder B")
    parser.add_argument("--examples", type=int, default=400, help="files per source and shape")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = write_files(Path(tmp), args.examples)
        before, after = dump(args.before, Path(tmp)), dump(args.after, Path(tmp))
    differing = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    rejects = sum(1 for line in after if not line.endswith(" []"))
    print(f"{files} fuzzed files, {rejects} with rejected records: {len(differing)} differ")
    if differing:
        a, b = differing[0]
        print(f"first difference:\n  A: {a[:2000]}\n  B: {b[:2000]}")
        sys.exit(1)


if __name__ == "__main__":
    main()
