"""The DuckDB warehouse file: opening it safely, its schema, and the single-writer lock.

One writer process owns the file at a time (:func:`writer_lock`).

Readers never block a run, and never see half of one. DuckDB lets one process open a file for
writing, and not while another process holds it open, even read-only: an analyst's notebook
left open overnight would make the nightly load fail. So a run does not write the published
file. :func:`transaction` copies it to ``<name>.next`` (with its WAL, if a killed writer left
one), the run writes the copy, and on success the copy is checkpointed and renamed over the
published file (``os.replace``: atomic). A reader already open keeps the complete state it
opened (its file handle still points at the old file); every connection opened after the swap
reads the new one. A crash at any point leaves the published file as it was; the next run
overwrites the abandoned copy. The price is one file copy per run (seconds per GB; free on
file systems with reflinks). Within one process, a connection left open across a run keeps
the old state too: DuckDB shares one instance per path among a process's connections.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
from filelock import FileLock, Timeout

from journeymine.errors import WarehouseError
from journeymine.sql import ident
from journeymine.warehouse import schema, settings

SCHEMA_VERSION = 1
_HELD: set[str] = set()  # writer locks this process holds: re-entering one is a no-op

# The tables a warehouse starts with (the raw layer and the identity state); schema.WAREHOUSE
# declares every table a run creates.
SCHEMA = schema.DDL


def connect(path: str | Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) a warehouse with the schema in place and limits set.

    ``memory_limit`` and ``max_temp_directory_size`` make a runaway query fail fast instead of
    filling the disk (DESIGN §7).
    """
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.exists():
        raise WarehouseError(f"{path}: no warehouse here; run `journeymine run` first")
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        raise WarehouseError(f"{path}: cannot open the warehouse: {exc}") from exc
    temp = path.parent / (path.name + ".tmp")
    con.execute(f"SET temp_directory = '{temp}'")
    con.execute("SET max_temp_directory_size = '50GB'")
    con.execute("SET memory_limit = '16GB'")
    # DuckDB draws a progress bar on stdout for queries over 2 s, terminal or not: in a
    # nightly run's log and a CLI's report it is noise (the CLI draws its own). Inside Jupyter
    # DuckDB refuses to change the setting without ipywidgets; the notebook keeps its own.
    with suppress(duckdb.InvalidInputException):
        con.execute("SET enable_progress_bar = false")
    if not read_only:
        ensure_schema(con)
    return con


@contextmanager
def transaction(
    path: str | Path, *, wait_s: float = 0.0, memory_limit: str | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Hold the writer lock and a connection to a working copy; publish it if the block succeeds.

    Everything the block writes appears to readers at once, when the block ends without an
    exception and every declared table it holds conforms to its declaration
    (:func:`schema.conform_all`); otherwise the published warehouse is left untouched.
    Every writer (the load, the analyses, the alerts) runs under the memory cap of
    :mod:`.settings` (``memory_limit``, else its default); a query that needs more than the cap
    even spilling fails as a :class:`WarehouseError` saying how to raise it.
    """
    path = Path(path)
    cap = settings.memory_limit_bytes(memory_limit)  # a bad value fails before the lock
    with writer_lock(path, wait_s=wait_s):
        work = path.parent / (path.name + ".next")
        _discard(work)
        if path.exists():  # a fresh warehouse is simply created as the working copy
            _copy(path, work)
            if _wal(path).exists():
                _copy(_wal(path), _wal(work))
        try:
            con = connect(work)
            settings.set_memory_limit(con, cap)
        except BaseException:
            _discard(work)
            raise
        try:
            yield con
            # Publish only tables as declared (schema.WAREHOUSE), whoever created them: the
            # modules that create theirs in SQL do not pass through replace_table.
            schema.conform_all(con)
            con.execute("CHECKPOINT")  # fold the WAL in: the published file stands alone
        except duckdb.OutOfMemoryException as exc:
            con.close()
            _discard(work)
            raise WarehouseError(settings.out_of_memory(exc, cap)) from exc
        except BaseException:
            con.close()
            _discard(work)
            raise
        con.close()
        os.replace(work, path)
        _wal(path).unlink(missing_ok=True)  # it belonged to the old file; the copy replayed it
        _fsync_dir(path.parent)


FICLONE = 0x40049409  # Linux ioctl: share the source's blocks (btrfs, XFS), copy on write


def _copy(src: Path, dst: Path) -> None:
    """Copy a file, as a reflink where the file system can (instant, no extra disk)."""
    with src.open("rb") as fin, dst.open("wb") as fout:
        try:
            import fcntl  # not on Windows: there, always a real copy

            fcntl.ioctl(fout.fileno(), FICLONE, fin.fileno())
            return
        except (ImportError, OSError):  # not supported (ext4, tmpfs, another device, Windows)
            pass
    shutil.copyfile(src, dst)


def _wal(path: Path) -> Path:
    return path.parent / (path.name + ".wal")


def _discard(work: Path) -> None:
    for leftover in (work, _wal(work)):
        leftover.unlink(missing_ok=True)
    shutil.rmtree(work.parent / (work.name + ".tmp"), ignore_errors=True)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable: a power cut must not bring back the old file."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(SCHEMA)
    con.execute(
        "INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT (key) DO NOTHING",
        [str(SCHEMA_VERSION)],
    )


@contextmanager
def writer_lock(path: str | Path, *, wait_s: float = 0.0) -> Iterator[None]:
    """Hold the exclusive writer lock of a warehouse, waiting up to ``wait_s`` seconds.

    A second run that cannot get the lock stops with a message saying who holds it, instead of
    both writing the file. Within one process the lock is re-entrant. The lock is an OS file
    lock (``filelock``: flock on Linux and macOS, msvcrt on Windows), released by the OS if the
    holder dies; who holds it is written beside it in ``<warehouse>.lock.owner``.
    """
    lock_path = Path(str(path) + ".lock")
    key = str(lock_path.resolve())
    if key in _HELD:  # this process holds it already (the flow around its tasks)
        yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    owner = Path(str(lock_path) + ".owner")
    lock = FileLock(lock_path)
    try:
        lock.acquire(timeout=wait_s, poll_interval=0.2)
    except Timeout:
        try:
            holder = owner.read_text().strip() or "another process"
        except OSError:
            holder = "another process"
        raise WarehouseError(
            f"{path}: another journeymine run is writing this warehouse "
            f"(lock held by {holder}); wait for it to finish"
        ) from None
    try:
        owner.write_text(f"pid {os.getpid()}")
        _HELD.add(key)
        yield
    finally:
        _HELD.discard(key)
        owner.unlink(missing_ok=True)
        lock.release()


def held_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The names of every table and view ``con`` sees (temp ones included), in one catalogue
    read: for a caller that asks about several tables at once. DuckDB's own views are left out
    (listing them too tripled the cost of a read a night makes several times)."""
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() "
        "UNION SELECT view_name FROM duckdb_views() WHERE NOT internal"
    ).fetchall()
    return {str(name) for (name,) in rows}


def table_names(con: duckdb.DuckDBPyConnection, *, temporary: bool) -> set[str]:
    """The temp tables ``con`` sees (``temporary``), or the others; no views. A night asks
    about its temp tables, or a previous stitch's tables, several times: this one catalogue
    read costs about half of :func:`held_tables`' (1.4-1.9 against 3.4-4.1 ms at 1M)."""
    where = "temporary" if temporary else "NOT temporary"
    rows = con.execute(f"SELECT table_name FROM duckdb_tables() WHERE {where}").fetchall()
    return {str(name) for (name,) in rows}


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether ``con`` sees a table or view ``name`` (temp ones included)."""
    return name in held_tables(con)


def require_tables(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    """Refuse to go on without the analyses' tables, saying how to make them."""
    for name in names:
        if not table_exists(con, name):
            raise WarehouseError(f"no {name} table: run the analyses (journeymine report) first")


def replace_table(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> None:
    """Replace table ``name`` with the rows of ``frame`` (an analysis result), as declared.

    The frame must hold exactly the declared columns (``schema.WAREHOUSE``; optional ones may be
    missing); each is cast to its declared type, so a column pandas typed by accident (all
    null, an integer column with a gap) is stored as declared, and the table conforms.
    """
    if len(frame.columns) == 0:
        raise WarehouseError(f"refusing to store {name!r}: the result has no columns")
    columns = _declared_columns(name, [str(c) for c in frame.columns])
    con.register("jm_frame", frame)
    try:
        select = ", ".join(_cast(c) + " AS " + ident(c.name) for c in columns)
        try:
            con.execute(f"CREATE OR REPLACE TABLE {ident(name)} AS SELECT {select} FROM jm_frame")
        except duckdb.Error as exc:
            raise WarehouseError(
                f"cannot store {name!r}: {_failing_cast(con, columns, exc)}"
            ) from exc
    finally:
        con.unregister("jm_frame")
    schema.conform(con, name)


def store_query(
    con: duckdb.DuckDBPyConnection, name: str, query: str, params: dict[str, Any] | None = None
) -> None:
    """:func:`replace_table` for the rows of a query: they never pass through Python (a result
    with a row per case is gigabytes of pandas at 100M events), and are cast and checked alike."""
    held = [d[0] for d in con.execute(f"SELECT * FROM ({query}) LIMIT 0", params).description]
    select = ", ".join(_cast(c) + " AS " + ident(c.name) for c in _declared_columns(name, held))
    con.execute(f"CREATE OR REPLACE TABLE {ident(name)} AS SELECT {select} FROM ({query})", params)
    schema.conform(con, name)


def _declared_columns(name: str, held: list[str]) -> list[schema.Column]:
    """The declared columns of ``name`` among the ``held`` ones, in declared order; a
    :class:`WarehouseError` naming the columns if those held differ from the declaration."""
    table = schema.declared(name)
    missing = [c.name for c in table.columns if c.name not in held and not c.optional]
    extra = [c for c in held if c not in {d.name for d in table.columns}]
    if missing or extra:
        raise WarehouseError(
            f"refusing to store {name!r}: missing declared columns {missing}, "
            f"undeclared columns {extra} (journeymine/warehouse/schema*.py declares the table)"
        )
    return [c for c in table.columns if c.name in held]


def _cast(column: schema.Column) -> str:
    if column.sql == schema.ENUM:  # the producer's own ENUM of the values it holds
        return ident(column.name)
    return f"CAST({ident(column.name)} AS {column.sql})"


def _failing_cast(
    con: duckdb.DuckDBPyConnection, columns: list[schema.Column], exc: duckdb.Error
) -> str:
    """Name the first column whose values do not cast to its declared type (error path only)."""
    for column in columns:
        try:
            con.execute(f"SELECT count({_cast(column)}) FROM jm_frame").fetchall()
        except duckdb.Error as failed:
            return f"column {column.name!r} does not convert to {column.sql}: {failed}"
    return str(exc)
