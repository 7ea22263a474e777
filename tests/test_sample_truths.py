"""The bundled sample loads into a warehouse that recovers every truth planted in it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from journeymine.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample"
NODE_TYPES = {
    "user": "user_id",
    "anon": "anonymous_id",
    "ga": "anonymous_id",
    "email": "email",
    "lead": "sf_lead",
    "contact": "sf_contact",
    "opp": "sf_opportunity",
    "cus": "stripe_customer",
}


@pytest.fixture(scope="module")
def truths() -> dict[str, Any]:
    result: dict[str, Any] = json.loads((SAMPLE / "truths.json").read_text())
    return result


@pytest.fixture(scope="module")
def con(sample_warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The session's sample (tests/conftest.py), loaded with the spec's source options (the
    survey CSV's columns)."""
    with duckdb.connect(str(sample_warehouse), read_only=True) as con:
        yield con


def test_the_generator_is_deterministic_and_matches_the_bundled_files(
    generated_sample: Path,
) -> None:
    for path in sorted((generated_sample / "landing").rglob("*")):
        if path.is_file():
            bundled = SAMPLE / "landing" / path.relative_to(generated_sample / "landing")
            assert bundled.read_bytes() == path.read_bytes(), bundled
    assert (generated_sample / "truths.json").read_text() == (SAMPLE / "truths.json").read_text()


def test_every_row_is_accounted_for_per_source(
    con: duckdb.DuckDBPyConnection, truths: dict
) -> None:
    rows = con.execute(
        "SELECT source, sum(rows_read), sum(rows_loaded), sum(duplicates), sum(quarantined), "
        "count(*) FILTER (WHERE rows_read <> rows_loaded + duplicates + quarantined) "
        "FROM load_manifest GROUP BY source"
    ).fetchall()
    assert {r[0] for r in rows} == set(truths["records_per_source"])
    for source, read, loaded, dups, quarantined, unbalanced in rows:
        assert unbalanced == 0 and read == loaded + dups + quarantined
        assert dups == truths["noise"][source].get("duplicates", 0), source
        assert quarantined == truths["noise"][source].get("quarantined", 0), source


def test_quarantine_says_why(con: duckdb.DuckDBPyConnection) -> None:
    reasons = dict(con.execute("SELECT reason, count(*) FROM quarantine GROUP BY ALL").fetchall())
    assert reasons["missing messageId"] == 2 and reasons["IsDeleted=true"] == 1
    assert sum(n for r, n in reasons.items() if r.startswith("invalid JSON")) == 4
    assert sum(n for r, n in reasons.items() if "milliseconds" in r) == 3


def test_identity_recovers_the_people(con: duckdb.DuckDBPyConnection, truths: dict) -> None:
    persons = con.execute("SELECT count(*) FROM persons").fetchone()
    assert persons == (truths["persons"]["expected_persons"],)
    node_person = {
        (t, v): p
        for t, v, p in con.execute(
            "SELECT node_type, node_id, person_id FROM identity_nodes"
        ).fetchall()
    }
    for group in truths["persons"]["example_groups"]:
        ids = {node_person[(NODE_TYPES[n.split(":", 1)[0]], n.split(":", 1)[1])] for n in group}
        assert len(ids) == 1, group
        assert {n.split(":")[0] for n in group} >= {"anon", "user", "email", "cus"}


def test_a_shared_mailbox_keeps_two_people(con: duckdb.DuckDBPyConnection, truths: dict) -> None:
    users = truths["shared_mailbox"]["user_ids"]
    ids = con.execute(
        "SELECT DISTINCT person_id FROM identity_nodes WHERE node_type = 'user_id' AND node_id IN (?, ?)",
        users,
    ).fetchall()
    assert len(ids) == 2
    refused = con.execute(
        "SELECT count(*) FROM identity_conflicts WHERE dst_id = ? OR src_id = ?",
        [truths["shared_mailbox"]["email"]] * 2,
    ).fetchone()
    assert refused is not None and refused[0] >= 1


def test_hostile_strings_are_kept_as_text(con: duckdb.DuckDBPyConnection, truths: dict) -> None:
    titles = con.execute(
        "SELECT count(*) FROM touchpoints WHERE attributes->>'title' = '<script>alert(1)</script>'"
    ).fetchone()
    utms = con.execute(
        "SELECT count(*) FROM touchpoints WHERE attributes->>'utm_campaign' = ?",
        ['"><img src=x onerror=alert(1)>'],
    ).fetchone()
    assert titles == (truths["hostile"]["page_titles"],)
    assert utms == (truths["hostile"]["utm_campaigns"],)


def test_local_offsets_become_utc(con: duckdb.DuckDBPyConnection) -> None:
    row = con.execute(
        "SELECT raw_time, occurred_at FROM raw_events WHERE source = 'segment' "
        "AND raw_time LIKE '%-05:00' LIMIT 1"
    ).fetchone()
    assert row is not None
    local = __import__("datetime").datetime.fromisoformat(row[0])
    assert row[1] == local


def test_reps_follow_up_medians_come_back(con: duckdb.DuckDBPyConnection, truths: dict) -> None:
    """An independent pandas computation: lead created -> first completed call, per owner."""
    frame = con.execute(
        "SELECT person_id, owner, activity, occurred_at FROM touchpoints "
        "WHERE activity IN ('crm.lead_created', 'crm.call_completed') AND source = 'salesforce'"
    ).df()
    created = (
        frame[frame.activity == "crm.lead_created"]
        .groupby("person_id")
        .agg(owner=("owner", "first"), created=("occurred_at", "min"))
    )
    calls = frame[frame.activity == "crm.call_completed"].groupby("person_id").occurred_at.min()
    joined = created.join(calls.rename("called"), how="inner")
    hours = (joined.called - joined.created).dt.total_seconds() / 3600
    medians = hours.groupby(joined.owner).median()
    for owner, rep in truths["reps"].items():
        assert medians[owner] == pytest.approx(rep["median_latency_h"], abs=0.01), rep["name"]


def test_owner_ids_get_the_reps_names(con: duckdb.DuckDBPyConnection, truths: dict) -> None:
    names = dict(
        con.execute(
            "SELECT DISTINCT owner, owner_name FROM touchpoints WHERE source = 'salesforce' "
            "AND owner IS NOT NULL"
        ).fetchall()
    )
    assert {owner: names[owner] for owner in truths["reps"]} == {
        owner: rep["name"] for owner, rep in truths["reps"].items()
    }


def test_feelings_and_accounts_come_back_from_the_sample(
    con: duckdb.DuckDBPyConnection, truths: dict
) -> None:
    """The planted sentiment dip, the detractors after a long support wait and the company in
    every system come back through the load, the funnel and the feelings table."""
    from journeymine.analyses.feelings import compute_feelings
    from journeymine.analyses.funnel import write_stage_funnel
    from journeymine.mining.eventlog import log_from_touchpoints

    spec = load_spec(SAMPLE / "journey.toml")
    work = duckdb.connect()
    for table in ("touchpoints", "persons", "raw_rows"):
        work.register(f"src_{table}", con.sql(f"SELECT * FROM {table}").to_arrow_table())
        work.execute(f"CREATE TABLE {table} AS SELECT * FROM src_{table}")
    write_stage_funnel(work, spec, log_from_touchpoints(work))
    feelings = compute_feelings(work, spec)
    overall = feelings[(feelings.source == "all") & (feelings.voices > 0)].set_index("stage")
    planted = truths["feelings"]
    assert overall.sentiment_mean.idxmin() == planted["sentiment_dip_stage"] == "trial"
    assert overall.loc["trial", "negative_share"] > overall.drop("trial").negative_share.max()
    # The onboarding NPS of the survey CSV comes back whole: every answer counted in a stage.
    # (Per stage the funnel's ordered stages decide: a self-serve trial without a demo is
    # not the trial stage there, so only the totals are the generator's to compare.)
    surveyed = feelings[feelings.source == "survey"]
    by_stage = planted["survey_csv"]["by_stage"].values()
    for column, key in (("nps_answers", "responses"), ("promoters", "promoters"),
                        ("detractors", "detractors")):  # fmt: skip
        assert surveyed[column].sum() == sum(c[key] for c in by_stage), column
    assert surveyed.nps_answers.sum() == planted["survey_csv"]["answers"] > 500
    signup = surveyed.set_index("stage").loc["signup"]
    assert signup.nps_answers >= planted["survey_csv"]["by_stage"]["signup"]["responses"]
    accounts = con.execute("SELECT count(DISTINCT account_id) FROM persons").fetchone()[0]
    company = truths["accounts"]["all_systems"]
    ids = con.execute(
        "SELECT DISTINCT account_id FROM touchpoints WHERE attributes->>'customer' = ? "
        "OR person_id IN (SELECT person_id FROM identity_nodes WHERE node_id = ANY(?))",
        [company["stripe_customer"], company["user_ids"]],
    ).fetchall()
    assert len({i for (i,) in ids if i is not None}) == 1  # one company, one account
    assert accounts == truths["accounts"]["expected_accounts"]
