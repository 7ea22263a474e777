"""A record in several exports: the newest version wins, whatever order the files load in."""

from __future__ import annotations

from pathlib import Path

import duckdb

from journeymine.ingest import load


def test_an_older_salesforce_export_loaded_later_does_not_overwrite_the_newer(
    tmp_path: Path,
) -> None:
    header = "Id,IsDeleted,Email,Company,LeadSource,Status,OwnerId,IsConverted,CreatedDate,SystemModstamp\n"
    newer = "00Q5e00000AbCdE,false,jane@acme.io,Acme,Web,Working,0055e00000New01,false,2026-08-03T08:30:00.000Z,2026-08-17T12:00:00.000Z\n"
    older = "00Q5e00000AbCdE,false,jane@acme.io,Acme,Web,Open,0055e00000Old01,false,2026-08-03T08:30:00.000Z,2026-08-05T12:00:00.000Z\n"
    landing = tmp_path / "landing"
    for folder, row in (("a-newer", newer), ("b-older", older)):  # path order: newer first
        (landing / "salesforce" / folder).mkdir(parents=True)
        (landing / "salesforce" / folder / "Lead.csv").write_text(header + row)
    db = tmp_path / "w.duckdb"
    load.load_landing(db, landing)
    con = duckdb.connect(str(db), read_only=True)
    owners = con.execute(
        "SELECT DISTINCT owner FROM touchpoints WHERE activity = 'crm.lead_created'"
    ).fetchall()
    # the newest SystemModstamp wins, not the file loaded last (ids come out in 18-char form)
    assert [o[:15] for (o,) in owners] == ["0055e00000New01"]
