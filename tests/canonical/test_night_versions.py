"""A night that brings a newer version of a record whose person it also merges: the person's
touchpoints are read again, not relabelled (the newer version displaces the older one's row),
as the full rebuild of the same two nights leaves them."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import duckdb

from journeymine.ingest import load

LEAD_COLUMNS = [
    "Id",
    "IsDeleted",
    "FirstName",
    "LastName",
    "Email",
    "Company",
    "LeadSource",
    "Status",
    "OwnerId",
    "NumberOfEmployees",
    "Country",
    "IsConverted",
    "ConvertedDate",
    "ConvertedContactId",
    "ConvertedAccountId",
    "ConvertedOpportunityId",
    "CreatedDate",
    "SystemModstamp",
]


def write_lead(path: Path, email: str, status: str, modstamp: str) -> None:
    values = {column: "" for column in LEAD_COLUMNS}
    values |= {
        "Id": "00Q5e0000000AAAEAM", "IsDeleted": "false", "FirstName": "Jo", "LastName": "Ng",
        "Email": email, "Company": "Acme", "LeadSource": "Web", "Status": status,
        "IsConverted": "false", "CreatedDate": "2026-08-01T09:00:00.000Z",
        "SystemModstamp": modstamp,
    }  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as out:
        writer = csv.writer(out, quoting=csv.QUOTE_ALL)
        writer.writerow(LEAD_COLUMNS)
        writer.writerow([values[c] for c in LEAD_COLUMNS])


def first_night(tmp_path: Path, landing: Path) -> tuple[Path, Path]:
    """u1 identifies with b@x.io on a first night; two copies of the warehouse it leaves."""
    identify = {"type": "identify", "messageId": "m-1", "timestamp": "2026-08-02T10:00:00Z",
                "userId": "u1", "traits": {"email": "b@x.io"}}  # fmt: skip
    segment = landing / "segment" / "2026" / "08" / "02" / "events.jsonl"
    segment.parent.mkdir(parents=True)
    segment.write_text(json.dumps(identify) + "\n")
    night, rebuilt = tmp_path / "night.duckdb", tmp_path / "rebuilt.duckdb"
    assert load.load_landing(night, landing).errors == []
    shutil.copy(night, rebuilt)
    return night, rebuilt


def second_night(night: Path, rebuilt: Path, landing: Path) -> dict[Path, tuple[list, list, list]]:
    """The landing loaded again, incrementally into ``night`` and by a full rebuild into
    ``rebuilt``: each one's touchpoints, persons and Salesforce files."""
    assert load.load_landing(night, landing).stitch.startswith("incremental")
    assert load.load_landing(rebuilt, landing, incremental=False).stitch.startswith("full")
    found = {}
    for path in (night, rebuilt):
        with duckdb.connect(str(path), read_only=True) as con:
            found[path] = (
                con.execute("SELECT * FROM touchpoints ORDER BY event_id").fetchall(),
                con.execute("SELECT count(DISTINCT person_id) FROM touchpoints").fetchall(),
                con.execute(
                    "SELECT DISTINCT file FROM touchpoints WHERE source = 'salesforce'"
                ).fetchall(),
            )
    return found


def test_a_merged_persons_displaced_version_is_not_kept(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    write_lead(landing / "salesforce" / "export-2026-08-01" / "Lead.csv", "a@x.io", "Open",
               "2026-08-01T09:00:00.000Z")  # fmt: skip
    night, rebuilt = first_night(tmp_path, landing)
    # a newer version of the Lead, with u1's e-mail: the Lead's person joins u1's
    write_lead(landing / "salesforce" / "export-2026-09-01" / "Lead.csv", "b@x.io", "Working",
               "2026-09-01T09:00:00.000Z")  # fmt: skip
    found = second_night(night, rebuilt, landing)
    for _, persons, files in found.values():
        assert persons == [(1,)]  # one person now
        assert files == [("salesforce/export-2026-09-01/Lead.csv",)]  # only the newer version
    assert found[night][0] == found[rebuilt][0]


def test_two_versions_of_a_new_record_in_one_night_keep_the_newer(tmp_path: Path) -> None:
    """Both versions arrive on the same night (the older export staged last): only the newer
    one's events become touchpoints, as after the full rebuild."""
    landing = tmp_path / "landing"
    night, rebuilt = first_night(tmp_path, landing)
    write_lead(landing / "salesforce" / "export-2026-09-01" / "Lead.csv", "b@x.io", "Working",
               "2026-09-01T09:00:00.000Z")  # fmt: skip
    write_lead(landing / "salesforce" / "export-2026-09-15" / "Lead.csv", "b@x.io", "Open",
               "2026-08-01T09:00:00.000Z")  # fmt: skip
    found = second_night(night, rebuilt, landing)
    for _, _, files in found.values():
        assert files == [("salesforce/export-2026-09-01/Lead.csv",)]  # the newer version only
    assert found[night][0] == found[rebuilt][0]
