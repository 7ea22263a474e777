"""The floor of parsing in Python: decode every record of a landing and do nothing else.

    nice python benchmarks/bench_parse_floor.py LANDING [--cores 2]

Reads every file under ``LANDING`` (a ``bench_ingest.py`` landing) the cheapest way Python can:
gzip, UTF-8, then ``json.loads`` per line (JSON lines), per document (webhook arrays, API pages)
or ``csv.reader`` (CSV exports). No checks, no fields, no staging. Prints the records, the CPU
seconds, and the raw rows/s that this floor alone allows on ``--cores`` cores. Any parser
written in Python, however lean, costs at least this; the load then still has its SQL half
(raw inserts, stitching, touchpoints, commit) to do.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import time
from pathlib import Path

JSON_LINES = ("segment", "ga4", "stripe")  # one record per line; the others are documents


def records_in(path: Path, source: str) -> int:
    data = path.read_bytes()
    text = (gzip.decompress(data) if path.name.endswith(".gz") else data).decode()
    if path.suffix == ".csv":
        return sum(1 for _ in csv.reader(io.StringIO(text))) - 1  # less the header
    if source in JSON_LINES:
        lines = [line for line in text.split("\n") if line]
        for line in lines:
            json.loads(line)
        return len(lines)
    document = json.loads(text)
    if isinstance(document, list):  # a SendGrid webhook batch
        return len(document)
    return sum(len(v) for v in document.values() if isinstance(v, list))  # API pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("landing", type=Path)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    started, records = time.process_time(), 0
    per_source: dict[str, tuple[int, float]] = {}
    for folder in sorted(p for p in args.landing.iterdir() if p.is_dir()):
        begun, count = time.process_time(), 0
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            count += records_in(path, folder.name)
        per_source[folder.name] = (count, time.process_time() - begun)
        records += count
    cpu = time.process_time() - started
    for source, (count, seconds) in per_source.items():
        print(f"{source:>10}: {count:>10,} records {seconds:6.2f} CPU s")
    print(f"all: {records:,} records in {cpu:.2f} CPU s = {cpu / records * 1e6:.2f} µs a record")
    print(f"floor on {args.cores} cores: {records / (cpu / args.cores):,.0f} raw rows/s")


if __name__ == "__main__":
    main()
