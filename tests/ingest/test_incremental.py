"""Incremental nights: a night recomputes only the persons its rows reach, and ends with the
same warehouse as a full rebuild.

The bundled sample is loaded in two nights: night 1 holds the web, e-mail and survey exports
up to 2026-10-14; night 2 adds the later days, the Salesforce, Stripe and Zendesk exports (new
accounts, contacts and deals linking people already known) and a hand-made Segment file with
a new e-mail linking two known persons, a join the user-id cap refuses, a new Segment group and
an event from August arriving late. Three warehouses are compared:

* ``night``: night 2 loaded incrementally (the path under test);
* ``rebuilt``: the same night 1, then night 2 with the full rebuild (the reference): every
  table identity and the touchpoints write must be identical, ids included;
* ``one_load``: everything in one full load: person and account ids are given in another order
  there, so the tables are compared with each id replaced by its smallest identifier.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest

from journeymine import warehouse
from journeymine.canonical import identity_graph, identity_persons
from journeymine.ingest import load
from journeymine.warehouse import settings

# The sample is loaded four times over (two nights, a rebuild, one load): ~35 s, so the module
# runs in `make test`, not `make test-fast`.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample" / "landing"
NIGHT_1_SOURCES = ("segment", "sendgrid", "ga4", "typeform")
NIGHT_2_FROM = "20261015"
DATE = re.compile(r"(20\d\d)/?(\d\d)/?(\d\d)")

# Columns that record when a run happened (or which run): they differ between any two runs.
VOLATILE = {
    "identity_nodes": ["first_assigned_at"],
    "account_nodes": ["first_assigned_at"],
    "person_merges": ["merged_at", "run_id"],
    "account_merges": ["merged_at", "run_id"],
}
STITCHED = (
    "identity_nodes",
    "person_merges",
    "identity_conflicts",
    "identity_policy",
    "identity_joins",
    "identity_components",
    "identity_component_joins",
    "account_nodes",
    "account_merges",
    "account_links",
    "account_evidence",
    "person_accounts",
    "touchpoints",
    "persons",
)


def in_night_1(path: Path) -> bool:
    relative = path.relative_to(SAMPLE)
    if relative.parts[0] not in NIGHT_1_SOURCES:
        return False
    day = DATE.search(str(relative))
    return day is None or "".join(day.groups()) < NIGHT_2_FROM


def copy_landing(target: Path, keep: Callable[[Path], bool]) -> Path:
    for path in SAMPLE.rglob("*"):
        if path.is_file() and keep(path):
            dest = target / path.relative_to(SAMPLE)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, dest)
    return target


def pick(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    rows = con.execute(sql).fetchall()
    assert rows, sql
    return tuple(rows[0])


PERSON_KINDS = """
SELECT person_id,
       min(node_id) FILTER (WHERE node_type = 'anonymous_id') AS anon,
       min(node_id) FILTER (WHERE node_type = 'user_id') AS user_id,
       min(node_id) FILTER (WHERE node_type = 'email') AS email,
       count(*) FILTER (WHERE node_type = 'user_id') AS users,
       bool_and(node_type = 'anonymous_id') AS anonymous_only
FROM identity_nodes GROUP BY person_id
"""


def late_calls(db: Path) -> list[dict[str, object]]:
    """Segment calls touching persons night 1 knows, chosen from that warehouse."""
    con = duckdb.connect(str(db), read_only=True)
    con.execute(f"CREATE TEMP VIEW kinds AS {PERSON_KINDS}")
    (anon,) = pick(con, "SELECT anon FROM kinds WHERE anonymous_only ORDER BY person_id")
    (email,) = pick(con, "SELECT email FROM kinds WHERE email IS NOT NULL "
                         "ORDER BY person_id DESC")  # fmt: skip
    user_a, user_b, email_b, grouped = pick(
        con,
        "SELECT a.user_id, b.user_id, b.email, c.user_id FROM kinds a, kinds b, kinds c "
        "WHERE a.users = 1 AND b.users = 1 AND b.email IS NOT NULL AND c.users = 1 "
        "AND a.person_id < b.person_id AND b.person_id < c.person_id "
        "ORDER BY a.person_id, b.person_id, c.person_id LIMIT 1",
    )
    con.close()
    at = "2026-10-31T10:00:00Z"
    return [
        # a new e-mail links an anonymous visitor to a known person: one person now
        {"type": "identify", "messageId": "late-1", "timestamp": at, "anonymousId": anon,
         "traits": {"email": email}},
        # the cap (one user id per person) refuses this join: a new conflict
        {"type": "identify", "messageId": "late-2", "timestamp": at, "userId": user_a,
         "traits": {"email": email_b}},
        # a new account
        {"type": "group", "messageId": "late-3", "timestamp": at, "userId": grouped,
         "groupId": "grp_incremental_newco", "traits": {"name": "Newco"}},
        # an event from August, arriving late
        {"type": "track", "messageId": "late-4", "timestamp": "2026-08-02T09:00:00Z",
         "userId": user_b, "event": "Demo Requested", "properties": {}},
        # someone new
        {"type": "page", "messageId": "late-5", "timestamp": at, "anonymousId": "anon-new-0001",
         "name": "Pricing", "properties": {"path": "/pricing"}},
    ]  # fmt: skip


@dataclass
class Nights:
    night: Path
    rebuilt: Path
    one_load: Path
    night_report: load.LoadReport
    rebuilt_report: load.LoadReport
    landings: tuple[Path, Path]


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Nights:
    tmp = tmp_path_factory.mktemp("nights")
    night_1 = copy_landing(tmp / "landing-1", in_night_1)
    both = copy_landing(tmp / "landing-2", lambda _: True)
    night, rebuilt, one_load = tmp / "night.duckdb", tmp / "rebuilt.duckdb", tmp / "one.duckdb"
    first = load.load_landing(night, night_1)
    assert first.stitch.startswith("full")  # nothing to build on yet
    shutil.copy(night, rebuilt)
    calls = late_calls(night)
    late = both / "segment" / "2026" / "10" / "31" / "late.jsonl"
    late.write_text("".join(json.dumps(c) + "\n" for c in calls))
    night_report = load.load_landing(night, both)
    rebuilt_report = load.load_landing(rebuilt, both, incremental=False)
    load.load_landing(one_load, both)
    return Nights(night, rebuilt, one_load, night_report, rebuilt_report, (night_1, both))


def rows(db: Path, table: str) -> list[tuple[Any, ...]]:
    """A table's rows, sorted, without the columns that say when a run happened."""
    con = warehouse.connect(db, read_only=True)
    exclude = VOLATILE.get(table)
    columns = f"* EXCLUDE ({', '.join(exclude)})" if exclude else "*"
    found = con.execute(f"SELECT {columns} FROM {table}").fetchall()
    con.close()
    return sorted((tuple(str(v) for v in row) for row in found), key=repr)


def test_the_night_took_the_incremental_path_and_recomputed_a_small_part(nights: Nights) -> None:
    assert nights.night_report.stitch.startswith("incremental: ")
    recomputed = int(nights.night_report.stitch.split()[1])
    # Night 2 brings the CRM, billing and support exports for most people: most persons are
    # reached, not all.
    assert 0 < recomputed < len(rows(nights.night, "identity_nodes"))
    assert nights.rebuilt_report.stitch == "full"


def test_the_night_changed_what_the_late_rows_say(nights: Nights) -> None:
    """The hand-made calls did what they claim: otherwise the equality below proves little."""
    con = warehouse.connect(nights.night, read_only=True)
    call, capped = (
        json.loads(pick(con, f"SELECT raw FROM raw_rows WHERE record_key = '{key}'")[0])
        for key in ("late-1", "late-2")
    )
    persons = con.execute(
        "SELECT count(DISTINCT person_id) FROM identity_nodes "
        "WHERE (node_type = 'anonymous_id' AND node_id = ?) OR (node_type = 'email' AND node_id = ?)",
        [call["anonymousId"], call["traits"]["email"]],
    ).fetchall()
    refused = con.execute(
        "SELECT count(*) FROM identity_conflicts WHERE src_type = 'user_id' AND src_id = ? "
        "AND dst_type = 'email' AND dst_id = ?",
        [capped["userId"], capped["traits"]["email"]],
    ).fetchall()
    new_account = con.execute(
        "SELECT count(*) FROM account_nodes WHERE node_id = 'grp_incremental_newco'"
    ).fetchall()
    late = con.execute(
        "SELECT count(*) FROM touchpoints WHERE file LIKE '%late.jsonl' "
        "AND occurred_at < '2026-09-01'"
    ).fetchall()
    con.close()
    assert (persons, refused, new_account, late) == ([(1,)], [(1,)], [(1,)], [(1,)])


@pytest.mark.parametrize("table", STITCHED)
def test_a_night_equals_the_full_rebuild_table_by_table(nights: Nights, table: str) -> None:
    assert rows(nights.night, table) == rows(nights.rebuilt, table)


def test_a_night_equals_the_full_rebuild_in_the_counts(nights: Nights) -> None:
    night, rebuilt = nights.night_report, nights.rebuilt_report
    assert (night.persons, night.new_merges, night.touchpoints) == (
        rebuilt.persons,
        rebuilt.new_merges,
        rebuilt.touchpoints,
    )
    assert night.totals() == rebuilt.totals()


def test_stitching_in_partitions_gives_the_same_tables(
    nights: Nights, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The statements a large warehouse cuts into hash partitions of the id (so that DuckDB
    can hold them under the cap), cut here on the sample: the same full stitch (the first
    load) and night, to the row."""
    cuts: list[int] = []

    def four(con: duckdb.DuckDBPyConnection, rows: int) -> int:
        cuts.append(rows)
        return 4

    monkeypatch.setattr(settings, "partitions", four)
    db = tmp_path / "partitioned.duckdb"
    first = load.load_landing(db, nights.landings[0])
    night = load.load_landing(db, nights.landings[1])
    assert first.stitch.startswith("full") and night.stitch == nights.night_report.stitch
    assert len(cuts) == 4  # both stitches, and the full build of touchpoints and persons
    for table in STITCHED:
        assert rows(db, table) == rows(nights.night, table), table


def test_stitching_with_64_bit_node_numbers_gives_the_same_tables(
    nights: Nights, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Node numbers are 32-bit below 2**31 nodes; past that (never reached here) 64-bit: the
    same full stitch and night with 64-bit numbers forced, to the row."""
    seen: list[tuple[str, str]] = []
    real_unions = identity_persons.unions

    def spy(size: int, src: Any, dst: Any, capped: Any, limits: Any) -> Any:
        outcome = real_unions(size, src, dst, capped, limits)
        seen.append((str(src.dtype), str(outcome.root.dtype)))
        return outcome

    def wide(size: int) -> type:
        return np.int64

    monkeypatch.setattr(identity_persons, "unions", spy)
    monkeypatch.setattr(identity_graph, "number_dtype", wide)
    db = tmp_path / "wide.duckdb"
    load.load_landing(db, nights.landings[0])
    load.load_landing(db, nights.landings[1])
    assert set(seen) == {("int64", "int64")} and len(seen) == 4  # two settings, two stitches
    for table in STITCHED:
        assert rows(db, table) == rows(nights.night, table), table


# Each person and account id replaced by its smallest identifier, so that two warehouses that
# numbered the same persons differently compare equal; event ids (load order) left out.
CANONICAL = {
    "persons_of": "SELECT person_id, min(node_type || ':' || node_id) FROM identity_nodes "
    "GROUP BY person_id",
    "accounts_of": "SELECT account_id, min(node_type || ':' || node_id) FROM account_nodes "
    "GROUP BY account_id",
}
RELABELLED = {
    "identity_nodes": "SELECT node_type, node_id, p.name FROM identity_nodes "
    "JOIN persons_of p ON p.id = person_id",
    "account_nodes": "SELECT node_type, node_id, a.name FROM account_nodes "
    "JOIN accounts_of a ON a.id = account_id",
    "identity_conflicts": "FROM identity_conflicts",
    "identity_policy": "FROM identity_policy",
    "identity_joins": "FROM identity_joins",
    "account_links": "SELECT p.name, node_type, node_id, rule, observed_at FROM account_links "
    "JOIN persons_of p ON p.id = person_id",
    "person_accounts": "SELECT p.name, a.name, valid_from, valid_to FROM person_accounts "
    "JOIN persons_of p ON p.id = person_id JOIN accounts_of a ON a.id = account_id",
    "touchpoints": "SELECT p.name, a.name, t.* EXCLUDE (event_id, seq, person_id, account_id) "
    "FROM touchpoints t JOIN persons_of p ON p.id = person_id "
    "LEFT JOIN accounts_of a ON a.id = account_id",
    "persons": "SELECT p.name, a.name, t.* EXCLUDE (person_id, account_id) FROM persons t "
    "JOIN persons_of p ON p.id = person_id LEFT JOIN accounts_of a ON a.id = account_id",
}


def relabelled(db: Path, sql: str) -> list[tuple[str, ...]]:
    con = warehouse.connect(db, read_only=True)
    for name, query in CANONICAL.items():
        con.execute(f"CREATE TEMP TABLE {name}(id BIGINT, name VARCHAR)")
        con.execute(f"INSERT INTO {name} {query}")
    found = con.execute(sql).fetchall()
    con.close()
    return sorted((tuple(str(v) for v in row) for row in found), key=repr)


@pytest.mark.parametrize("table", sorted(RELABELLED))
def test_two_nights_equal_one_full_load_of_the_same_files(nights: Nights, table: str) -> None:
    sql = RELABELLED[table]
    assert relabelled(nights.night, sql) == relabelled(nights.one_load, sql)


def test_changed_settings_and_replaced_files_fall_back_to_the_full_rebuild(
    nights: Nights, tmp_path: Path
) -> None:
    db = tmp_path / "w.duckdb"
    shutil.copy(nights.night, db)
    landing = copy_landing(tmp_path / "landing", in_night_1)
    changed = load.load_landing(db, landing, max_user_ids_per_person=2)
    assert changed.stitch == "full: the identity settings changed since the previous stitch"
    page = landing / "segment" / "2026" / "08" / "02" / "extra.jsonl"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(json.dumps({"type": "page", "messageId": "extra-1", "anonymousId": "a-x",
                                "timestamp": "2026-08-02T09:00:00Z", "name": "Home"}) + "\n")  # fmt: skip
    reference = tmp_path / "reference.duckdb"
    shutil.copy(db, reference)
    added = load.load_landing(db, landing, max_user_ids_per_person=2)
    assert added.stitch == "incremental: 1 identifiers recomputed"  # the new visitor alone
    # A night that changes no account link keeps the accounts as they are: still the same
    # warehouse as the full rebuild.
    load.load_landing(reference, landing, max_user_ids_per_person=2, incremental=False)
    assert [rows(db, t) for t in STITCHED] == [rows(reference, t) for t in STITCHED]
    page.write_text(page.read_text().replace("Home", "Home again"))
    replaced = load.load_landing(db, landing, max_user_ids_per_person=2)
    assert replaced.stitch == "full: 1 file(s) replace a loaded version"


def another_lead_version(landing: Path, email: str, modstamp: str) -> str:
    """A later Salesforce export holding another version of the sample's first Lead (another
    status, the e-mail of another known person, ``modstamp``); returns the Lead's id."""
    source = SAMPLE / "salesforce" / "export-2026-10-31" / "Lead.csv"
    header, first = source.read_text().splitlines()[:2]
    fields = next(csv.reader([first]))
    columns = next(csv.reader([header]))
    fields[columns.index("Status")] = "Working - Contacted"
    fields[columns.index("Email")] = email
    fields[columns.index("SystemModstamp")] = modstamp
    target = landing / "salesforce" / "export-2026-11-30" / "Lead.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="") as out:
        writer = csv.writer(out, quoting=csv.QUOTE_ALL)
        writer.writerow(columns)
        writer.writerow(fields)
    return fields[columns.index("Id")]


@pytest.mark.parametrize(
    ("modstamp", "wins"), [("2026-11-30T09:00:00.000Z", True), ("2026-01-01T00:00:00.000Z", False)]
)
def test_a_night_with_another_version_of_a_loaded_record_equals_the_full_rebuild(
    nights: Nights, tmp_path: Path, modstamp: str, wins: bool
) -> None:
    """The version modified last wins whichever night loaded it: a newer one displaces the
    version an earlier night loaded, an older one arriving late does not (the night must read
    the loaded version's record key). Its e-mail links the Lead to another person either way:
    the night must find the old version's row and both persons, as the full rebuild does."""
    db, reference = tmp_path / "night.duckdb", tmp_path / "reference.duckdb"
    shutil.copy(nights.night, db)
    shutil.copy(nights.rebuilt, reference)
    con = warehouse.connect(db, read_only=True)
    (email,) = pick(con, "SELECT node_id FROM identity_nodes WHERE node_type = 'email' "
                         "ORDER BY person_id DESC, node_id")  # fmt: skip
    con.close()
    landing = copy_landing(tmp_path / "landing", lambda _: True)
    lead = another_lead_version(landing, email, modstamp)
    late = landing / "segment" / "2026" / "10" / "31" / "late.jsonl"
    shutil.copy(nights.night.parent / "landing-2" / late.relative_to(landing), late)
    night = load.load_landing(db, landing)
    load.load_landing(reference, landing, incremental=False)
    assert night.stitch.startswith("incremental: ")
    con = warehouse.connect(db, read_only=True)
    newest = con.execute(
        "SELECT count(*) FROM touchpoints WHERE file LIKE '%export-2026-11-30/Lead.csv'"
    ).fetchall()
    person = con.execute(
        "SELECT count(DISTINCT person_id) FROM identity_nodes "
        "WHERE (node_type = 'sf_lead' AND node_id = ?) OR (node_type = 'email' AND node_id = ?)",
        [lead, email],
    ).fetchall()
    con.close()
    assert (newest[0][0] > 0, person) == (wins, [(1,)])
    assert [rows(db, t) for t in STITCHED] == [rows(reference, t) for t in STITCHED]


def test_a_night_keeps_an_identifier_that_only_earlier_events_name(
    nights: Nights, tmp_path: Path
) -> None:
    """With e-mail matching off, a new identify call naming a known e-mail reaches that e-mail's
    node (it may be a person edge) though no person edge holds it: the night must see that
    earlier events name it, and keep it, as the full rebuild does."""
    db, reference = tmp_path / "night.duckdb", tmp_path / "reference.duckdb"
    shutil.copy(nights.night, db)
    landing = copy_landing(tmp_path / "landing", lambda _: True)
    late = landing / "segment" / "2026" / "10" / "31" / "late.jsonl"
    shutil.copy(nights.night.parent / "landing-2" / late.relative_to(landing), late)
    off = load.load_landing(db, landing, match_on_email=False)
    assert off.stitch == "full: the identity settings changed since the previous stitch"
    shutil.copy(db, reference)
    con = warehouse.connect(db, read_only=True)
    (email,) = pick(con, "SELECT id_value FROM raw_events WHERE id_type = 'email' "
                         "ORDER BY id_value")  # fmt: skip
    (user,) = pick(con, "SELECT node_id FROM identity_nodes WHERE node_type = 'user_id' "
                        "ORDER BY node_id")  # fmt: skip
    con.close()
    call = {"type": "identify", "messageId": "named-1", "timestamp": "2026-10-31T11:00:00Z",
            "userId": user, "traits": {"email": email}}  # fmt: skip
    (late.parent / "identify.jsonl").write_text(json.dumps(call) + "\n")
    night = load.load_landing(db, landing, match_on_email=False)
    load.load_landing(reference, landing, match_on_email=False, incremental=False)
    assert night.stitch.startswith("incremental: ")
    kept = [r for r in rows(db, "identity_nodes") if r[:2] == ("email", email)]
    assert len(kept) == 1
    assert [rows(db, t) for t in STITCHED] == [rows(reference, t) for t in STITCHED]
