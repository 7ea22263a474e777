"""The funnel and the follow-ups computed per shard of persons (as the workers do) and merged
equal the single run, row for row and in order; and every shard judges at the cut-off of all
the data, not its own latest event."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd

from journeymine.analyses import followups, funnel, shards
from journeymine.mining.eventlog import log_from_touchpoints
from journeymine.pipelines import scale_people
from journeymine.spec import load_spec

SPEC = """
name = "t"
case = "person"
window = "1d"

[[stages]]
name = "visit"
activities = ["web.page_view:*"]

[[stages]]
name = "demo"
activities = ["web.demo_requested"]

[[followups]]
name = "demo"
triggers = ["web.demo_requested"]
responses = ["crm.call_completed"]
sla = "4h"
"""
SHARDS = 2


def shard_of(person: int) -> int:
    rows = duckdb.sql(f"SELECT hash({person}::BIGINT) % {SHARDS}").fetchall()
    return int(rows[0][0])


def test_shards_merge_into_the_single_run_at_the_cut_off_of_all_the_data(
    touchpoints: Callable[[list[tuple[int, str, str, str]]], duckdb.DuckDBPyConnection],
    tmp_path: Path,
) -> None:
    # B's shard holds the latest event; A and C are in the other shard, whose own latest event
    # is 9 days earlier: judged at that, A's visit and C's request would still be open.
    late = next(p for p in range(1, 100) if shard_of(p) == 1)
    a, c = [p for p in range(1, 100) if shard_of(p) == 0][:2]
    con = touchpoints(
        [
            (a, "web.page_view:/", "customer", "2026-10-01 09:00+00"),  # no demo within 1 day
            (c, "web.demo_requested", "customer", "2026-10-01 10:00+00"),  # never answered
            (late, "web.page_view:/", "customer", "2026-10-10 09:00+00"),  # the cut-off
            (late, "crm.call_completed", "company", "2026-10-10 09:00+00"),
        ]
    )
    db, journey = tmp_path / "w.duckdb", tmp_path / "journey.toml"
    con.execute("ATTACH ? AS f", [str(db)])
    con.execute("CREATE TABLE f.touchpoints AS SELECT * FROM touchpoints")
    con.execute("DETACH f")
    journey.write_text(SPEC)
    spec = load_spec(journey)

    log_cutoff, touch_cutoff = scale_people.cutoffs(db, spec.case)
    for k in range(SHARDS):
        scale_people.people_shard.fn(
            str(db), str(journey), str(tmp_path), k, SHARDS, log_cutoff, touch_cutoff
        )
    merged = duckdb.connect()
    people = shards.read_people(merged, tmp_path / "people", spec)
    assert people.entries is not None
    entries = merged.execute(f"SELECT * FROM {people.entries}").df()

    single = duckdb.connect(str(db), read_only=True)
    log = log_from_touchpoints(single, case="person")
    pd.testing.assert_frame_equal(entries, funnel.compute_entries(single, spec, log))
    pd.testing.assert_frame_equal(people.followups, followups.compute_followups(single, spec))

    status = entries.set_index(["case_key", "stage"]).status
    assert status[(a, "visit")] == "dropped"  # 1-day window over 9 days before the cut-off
    assert status[(late, "visit")] == "open"  # entered at the cut-off
    answer = people.followups.set_index("person_id").status
    assert answer[c] == "unanswered" and len(answer) == 1
