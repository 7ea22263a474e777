"""Reading CSV landing files record by record (Salesforce Data Export, survey answers).

A record is ``(first physical line, fields or the RecordError it raised, raw text)``: quoted
fields may hold commas and newlines, so the line is where the record starts and the raw text is
the record exactly as exported. Each parser checks its own header and turns fields into a row;
:func:`parse_csv_rows` runs that over the file so every record ends accepted or rejected.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from journeymine.ingest.sources._common import (
    ParsedFile,
    RawRow,
    RecordError,
    Rejected,
    check_utf8,
    parse_guarded,
    printable,
    read_text,
    undecodable,
)

CsvRecord = tuple[int, list[str] | RecordError, str]
CsvRow = dict[str, str]  # column name -> value, as exported


def csv_records(fh: IO[str]) -> Iterator[CsvRecord]:
    """Yield ``(first physical line, fields or RecordError, raw text)`` per CSV record.

    Blank lines are skipped; a record the csv module refuses is a RecordError, and reading goes
    on with the next line.
    """
    consumed: list[str] = []
    reader, line = csv.reader(_kept_lines(fh, consumed)), 1
    while True:
        try:
            fields: list[str] | RecordError = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            fields = RecordError(f"not CSV: {exc}")
        raw = "".join(consumed)
        # Lines are counted by "\n" as in the other sources: a lone "\r" inside a quoted field is
        # data, not a line (a file of lone "\r" endings still gets one number per record).
        start, line = line, line + max(1, raw.count("\n"))
        consumed.clear()
        # Only a blank line is no record; ",,," is a record of empty fields and must be seen.
        if not isinstance(fields, list) or len(fields) > 1 or (fields and fields[0].strip()):
            yield start, fields, raw.removesuffix("\n").removesuffix("\r")


def _kept_lines(fh: IO[str], consumed: list[str]) -> Iterator[str]:
    """The lines of ``fh``, each also appended to ``consumed``: the raw text of a record.

    A module-level generator, not a closure inside :func:`csv_records`: compiled with mypyc, a
    generator nested in a generator lost its closure once it had ended, and the csv reader asks
    for a line again after a quote left open ran to the end of the file (AttributeError)."""
    for text in fh:
        consumed.append(text)
        yield text


def csv_row(
    header: list[str],
    line: int,
    fields: list[str] | RecordError,
    raw: str,
    *,
    wrong_count: str,
    name_bad_field: bool,
) -> CsvRow:
    """The record as ``{column: value}``, or a RecordError naming what makes it unusable.

    A byte that is not UTF-8 is reported first, even when it also broke the columns; with
    ``name_bad_field`` (Salesforce) the reason names the column that holds it. A record with
    fewer or more fields than the header is never read with shifted fields: its reason is
    ``wrong_count`` formatted with ``got`` and ``want`` (each source words it its own way).
    """
    if isinstance(fields, RecordError):
        raise fields
    columns_fit = len(fields) == len(header)
    if undecodable(raw):
        bad = zip(header, fields, strict=True) if columns_fit and name_bad_field else ()
        check_utf8(raw, line, next((name for name, value in bad if undecodable(value)), ""))
    if not columns_fit:
        raise RecordError(wrong_count.format(got=len(fields), want=len(header)))
    return dict(zip(header, fields, strict=True))


def read_csv_records(path: Path, file: str, field_limit: int) -> Iterator[CsvRecord]:
    """The file's CSV records (plain or .gz), fields up to ``field_limit`` characters read.

    The csv module's limit is process-wide and only ever raised here, never lowered: a parser
    that needs longer fields than another must not make the other's files unreadable.
    """
    csv.field_size_limit(max(csv.field_size_limit(), field_limit))
    # newline="": a \r\n inside a quoted field is data and must reach csv unchanged.
    return csv_records(io.StringIO(read_text(path, file), newline=""))


def parse_csv_rows(
    source: str,
    file: str,
    records: Iterator[CsvRecord],
    to_row: Callable[[int, list[str] | RecordError, str], CsvRow],
    parse_one: Callable[[int, str, CsvRow], RawRow],
) -> ParsedFile:
    """Run ``to_row`` then ``parse_one`` over the records after the header.

    ``to_row`` raises RecordError for a record that is no row (wrong column count, a byte that
    is not UTF-8); its raw text is kept printable in the reject.
    """
    parsed = ParsedFile(source, file)
    for line, fields, raw in records:
        try:
            row = to_row(line, fields, raw)
        except RecordError as exc:
            parsed.rejected.append(Rejected(line, str(exc), printable(raw)))
            continue
        result = parse_guarded(parse_one, line, raw, row)
        if isinstance(result, Rejected):
            parsed.rejected.append(result)
        else:
            parsed.rows.append(result)
    return parsed
