"""Generic event logs (XES, CSV, Parquet) into the warehouse as source ``log``.

A log read by :func:`journeymine.mining.eventlog.read_event_log` (columns ``case_id, activity,
ts, seq`` and optional ``resource, lifecycle``) is staged in the same Parquet shape the vendor
parsers produce, set-based in DuckDB, and loaded through the same
:func:`journeymine.ingest.load.commit_load` in a :func:`journeymine.warehouse.transaction` (readers
never block it). Each case becomes one person (identity node ``log_case`` =
``<log name>:<case id>``); the resource becomes the touchpoint's ``owner``.
Rows without case, activity or timestamp go to quarantine; re-importing the same file is a
no-op, a changed file replaces its previous version.
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from journeymine import warehouse
from journeymine.ingest import load

LOG_CASE = "log_case"


def _stage(table: pa.Table, file: str, sha256: str, folder: Path) -> None:
    con = duckdb.connect()
    con.register("log_in", table)
    columns = set(table.column_names)
    resource = "resource" if "resource" in columns else "NULL"
    lifecycle = "lifecycle" if "lifecycle" in columns else "NULL"
    con.execute(
        f"""
        CREATE TEMP TABLE rows AS
        SELECT 'log' AS source, ? AS file, (seq + 1)::INTEGER AS line,
               case_id::VARCHAR AS case_id, activity::VARCHAR AS activity,
               ts::TIMESTAMPTZ AS ts, {resource}::VARCHAR AS resource,
               {lifecycle}::VARCHAR AS lifecycle,
               CASE WHEN case_id IS NULL THEN 'missing case id'
                    WHEN activity IS NULL THEN 'missing activity'
                    WHEN ts IS NULL THEN 'missing timestamp' END AS reason
        FROM log_in
        """,
        [file],
    )
    name = Path(file).name.split(".")[0]
    outputs = {
        "files": "SELECT 'log' AS source, $file AS file, $sha256 AS sha256, "
        "count(*)::BIGINT AS rows_read, 0::BIGINT AS file_ord, "
        "count(*) FILTER (WHERE reason IS NULL)::BIGINT AS events FROM rows",
        "rows": "SELECT source, file, line, file || ':' || line AS record_key, "
        "to_json(struct_pack(case_id, activity, ts, resource, lifecycle))::VARCHAR AS raw "
        "FROM rows WHERE reason IS NULL",
        "events": """SELECT source, file, line, row_number() OVER (ORDER BY line) - 1 AS pos,
               file || ':' || line AS event_key, activity AS event_type, activity,
               'customer' AS actor, ts AS occurred_at, ts::VARCHAR AS raw_time,
               $id_type AS id_type, $name || ':' || case_id AS id_value,
               NULL::VARCHAR AS channel, resource AS owner, NULL::VARCHAR AS account_type,
               NULL::VARCHAR AS account_value,
               to_json(struct_pack(case_id, lifecycle))::VARCHAR AS attributes
        FROM rows WHERE reason IS NULL""",
        "rejected": "SELECT source, file, line, reason, "
        "to_json(struct_pack(case_id, activity, ts))::VARCHAR AS raw "
        "FROM rows WHERE reason IS NOT NULL",
    }
    load.prepare_staging(folder)  # a log has no identity links and no names: those stay empty
    params = {"file": file, "sha256": sha256, "id_type": LOG_CASE, "name": name}
    for table_name, sql in outputs.items():
        used = {k: v for k, v in params.items() if f"${k}" in sql}  # file/path values stay bound
        result = con.sql(sql, params=used).to_arrow_table().cast(load.TABLES[table_name])
        name_in = "files.parquet" if table_name == "files" else f"{table_name}/0.parquet"
        pq.write_table(result, folder / name_in)
    con.close()


def load_event_log(
    warehouse_path: str | Path, table: pa.Table, file: str, *, sha256: str | None = None
) -> load.LoadReport:
    """Load a read event log into the warehouse; ``file`` names it in lineage and manifest."""
    if sha256 is None:
        sha256 = hashlib.sha256(str(table.to_pydict()).encode()).hexdigest()
    run_id = uuid.uuid4().hex[:12]
    report = load.LoadReport(run_id)
    with warehouse.transaction(warehouse_path) as con:
        loaded = con.execute(
            "SELECT count(*) FROM load_manifest WHERE file = ? AND sha256 = ?", [file, sha256]
        ).fetchone()
        if loaded and loaded[0]:
            report.skipped_files = 1
            return report
        with tempfile.TemporaryDirectory(prefix="journeymine-log-") as tmp:
            _stage(table, file, sha256, Path(tmp))
            load.commit_load(con, [Path(tmp)], run_id, report)
    return report
