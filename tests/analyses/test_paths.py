"""Paths before / after an activity and after dropping out of a stage, on hand-made logs and
on a seeded random log checked against an independent pandas computation."""

from __future__ import annotations

import fnmatch
from collections import Counter
from datetime import timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from journeymine.analyses import funnel
from journeymine.analyses.paths import PathsError, dropped_paths, paths
from journeymine.mining import discovery
from journeymine.spec import JourneySpec, Stage
from tests.fixtures import insert_rows

ACTIVITIES = [
    "web.page_view:/",
    "web.page_view:/pricing",
    "web.signed_up",
    "email.opened",
    "crm.call_completed",
    "billing.invoice_paid",
]
SPEC = JourneySpec(
    name="t",
    window=timedelta(days=3),
    stages=(
        Stage("visit", ("web.page_view:*",)),
        Stage("signup", ("web.signed_up",)),
        Stage("paid", ("billing.invoice_paid",)),
    ),
)


def _log(rows: list[tuple[int, str, str]]) -> duckdb.DuckDBPyConnection:
    """A connection with ``event_log(case_key, activity, ts, seq)``; seq = row order given."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE event_log (case_key BIGINT, activity VARCHAR, ts TIMESTAMPTZ, seq BIGINT)"
    )
    values = [(c, a, t, i) for i, (c, a, t) in enumerate(rows)]
    insert_rows(con, "event_log", ("case_key", "activity", "ts", "seq"), values)
    return con


def _random_log(seed: int, cases: int = 150) -> duckdb.DuckDBPyConnection:
    """Cases of 1-9 events over ten days; hours drawn from a few values so ties are common
    (then ``seq``, the load order, decides), and rows loaded in shuffled order."""
    rng = np.random.default_rng(seed)
    rows = []
    for case in range(1, cases + 1):
        for _ in range(rng.integers(1, 10)):
            hour = int(rng.integers(0, 240)) // 6 * 6
            ts = pd.Timestamp("2026-03-01", tz="UTC") + pd.Timedelta(hours=hour)
            # Repeats are frequent, so the collapsing of runs is exercised.
            rows.append(
                (case, str(rng.choice(ACTIVITIES, p=[0.3, 0.2, 0.15, 0.15, 0.1, 0.1])), str(ts))
            )
    order = rng.permutation(len(rows))
    return _log([rows[i] for i in order])


def _expected(
    con: duckdb.DuckDBPyConnection, direction: str, anchor: str, steps: int
) -> pd.DataFrame:
    """Path counts computed case by case in plain Python over the log read back."""
    log = con.execute("SELECT * FROM event_log ORDER BY case_key, ts, seq").df()
    dropped = {}
    if direction == "dropped":
        entries = con.execute("SELECT * FROM stage_entries").df()
        mask = (entries.stage == anchor) & (entries.status == "dropped")
        dropped = {r.case_key: (r.entered_at, r.entered_seq) for r in entries[mask].itertuples()}
    counts: Counter[str] = Counter()
    for case, events in log.groupby("case_key"):
        collapsed: list[str] = []
        step_of: dict[tuple[pd.Timestamp, int], int] = {}
        for event in events.itertuples():
            if not collapsed or collapsed[-1] != event.activity:
                collapsed.append(event.activity)
            step_of[(event.ts, event.seq)] = len(collapsed) - 1
        if direction == "dropped":
            if case not in dropped:
                continue
            i = step_of[dropped[case]]
        else:
            hits = [j for j, a in enumerate(collapsed) if fnmatch.fnmatchcase(a, anchor)]
            if not hits:
                continue
            i = hits[0]
        if direction == "before":
            path = collapsed[max(0, i - steps) : i + 1]
            path = (["(start)"] if i - steps < 0 else []) + path
        else:
            path = collapsed[i : i + steps + 1]
            path = path + (["(end)"] if i + steps >= len(collapsed) else [])
        counts[" → ".join(path)] += 1
    frame = pd.DataFrame(counts.items(), columns=["path", "people"])
    frame["share"] = frame.people / frame.people.sum()
    return frame.sort_values(["people", "path"], ascending=[False, True]).reset_index(drop=True)


@pytest.mark.parametrize(
    ("direction", "anchor", "steps"),
    [("after", "web.signed_up", 2), ("before", "billing.*", 3), ("after", "email.*", 1)],
)
def test_before_and_after_match_independent_count(direction: str, anchor: str, steps: int) -> None:
    con = _random_log(seed=7)
    got = paths(con, anchor, direction, steps=steps, top=1000)
    expected = _expected(con, direction, anchor, steps)
    assert len(expected) > 5  # the log is rich enough for the comparison to mean something
    assert (got.anchor == anchor).all() and (got.direction == direction).all()
    pd.testing.assert_frame_equal(got[["path", "people", "share"]], expected, check_dtype=False)


def test_same_paths_on_the_stored_enum_layout() -> None:
    con = _random_log(seed=3)
    stored = discovery.materialise_log(con, "event_log", "jm_stored")
    for direction, anchor in (("before", "crm.*"), ("after", "web.page_view:/pricing")):
        raw = paths(con, anchor, direction, steps=3, top=1000)
        pd.testing.assert_frame_equal(
            paths(con, anchor, direction, steps=3, top=1000, log=stored), raw
        )


def test_dropped_matches_independent_count() -> None:
    con = _random_log(seed=11)
    entries = funnel.build_entries(con, SPEC, "event_log")
    con.execute(f"CREATE TABLE stage_entries AS SELECT * FROM {entries}")
    dropped = con.execute(
        "SELECT count(*) FROM stage_entries WHERE stage = 'visit' AND status = 'dropped'"
    ).fetchall()[0][0]
    got = paths(con, "visit", "dropped", steps=2, top=1000)
    expected = _expected(con, "dropped", "visit", 2)
    assert dropped > 10 and got.people.sum() == dropped
    pd.testing.assert_frame_equal(got[["path", "people", "share"]], expected, check_dtype=False)


def test_dropped_paths_of_several_stages_in_one_pass_match_independent_counts() -> None:
    """The runner asks for every stage at once: each stage's rows are that stage's own count
    (share among its own droppers), top applied per stage, in the order the stages are given."""
    con = _random_log(seed=5, cases=300)
    entries = funnel.build_entries(con, SPEC, "event_log")
    con.execute(f"CREATE TABLE stage_entries AS SELECT * FROM {entries}")
    stages = ["signup", "visit"]
    got = dropped_paths(con, stages, steps=2, top=1000)
    assert list(dict.fromkeys(got.anchor)) == stages
    for stage in stages:
        expected = _expected(con, "dropped", stage, 2)
        assert len(expected) > 3
        mine = got[got.anchor == stage].reset_index(drop=True)
        pd.testing.assert_frame_equal(
            mine[["path", "people", "share"]], expected, check_dtype=False
        )
    assert dropped_paths(con, []).empty
    top = dropped_paths(con, stages, steps=2, top=2)
    for stage in stages:
        expected = _expected(con, "dropped", stage, 2).head(2)
        mine = top[top.anchor == stage].reset_index(drop=True)
        pd.testing.assert_frame_equal(
            mine[["path", "people", "share"]], expected, check_dtype=False
        )


HAND = [
    (1, "web.page_view:/", "2026-01-01 00:00+00"),
    (1, "web.page_view:/", "2026-01-01 00:01+00"),  # a repeat: collapsed into one step
    (1, "web.page_view:/pricing", "2026-01-01 00:02+00"),
    (1, "web.signed_up", "2026-01-01 00:03+00"),
    (1, "email.opened", "2026-01-02 00:00+00"),
    (1, "web.signed_up", "2026-01-03 00:00+00"),  # not the first sign-up: not an anchor
    (2, "web.page_view:/pricing", "2026-01-01 00:00+00"),
    (2, "web.signed_up", "2026-01-01 00:05+00"),
    (2, "email.opened", "2026-01-01 00:05+00"),  # same instant: after the sign-up by seq
    (3, "web.signed_up", "2026-01-01 00:00+00"),  # nothing before, nothing after
    (4, "web.page_view:/", "2026-01-01 00:00+00"),  # never signs up: no anchor
]


def test_hand_made_after_and_before() -> None:
    con = _log(HAND)
    after = paths(con, "web.signed_up", "after", steps=2)
    assert dict(zip(after.path, after.people, strict=True)) == {
        "web.signed_up → email.opened → web.signed_up": 1,
        "web.signed_up → email.opened → (end)": 1,
        "web.signed_up → (end)": 1,
    }
    assert after.share.tolist() == pytest.approx([1 / 3] * 3)
    before = paths(con, "web.signed_up", "before", steps=2)
    assert dict(zip(before.path, before.people, strict=True)) == {
        "web.page_view:/ → web.page_view:/pricing → web.signed_up": 1,
        "(start) → web.page_view:/pricing → web.signed_up": 1,
        "(start) → web.signed_up": 1,
    }


def test_top_keeps_the_most_frequent_and_share_counts_everyone() -> None:
    con = _log(HAND + [(5, "web.signed_up", "2026-01-01 00:00+00")])
    got = paths(con, "web.signed_up", "after", steps=1, top=1)
    assert got.path.tolist() == ["web.signed_up → (end)"]  # cases 3 and 5
    assert got.people.tolist() == [2] and got.share.tolist() == [pytest.approx(2 / 4)]


def test_cutoff_hides_later_events() -> None:
    con = _log(HAND)
    got = paths(con, "web.signed_up", "after", steps=1, cutoff=pd.Timestamp("2026-01-01 12:00Z"))
    assert dict(zip(got.path, got.people, strict=True)) == {
        "web.signed_up → (end)": 2,  # case 1's e-mail on Jan 2 is after the cut-off
        "web.signed_up → email.opened": 1,
    }


def test_dropped_paths_start_at_the_entering_step() -> None:
    con = _log(
        [
            (1, "web.page_view:/", "2026-01-01 00:00+00"),
            (1, "email.opened", "2026-01-05 00:00+00"),  # no sign-up within 3 days: dropped
            (2, "web.page_view:/", "2026-01-01 00:00+00"),
            (2, "web.signed_up", "2026-01-02 00:00+00"),  # converted: not in the dropped paths
            (3, "web.page_view:/pricing", "2026-01-01 00:00+00"),  # dropped, did nothing else
            (4, "web.page_view:/", "2026-01-09 00:00+00"),  # still open at the cut-off
        ]
    )
    con.execute(
        f"CREATE TABLE stage_entries AS SELECT * FROM {funnel.build_entries(con, SPEC, 'event_log')}"
    )
    got = paths(con, "visit", "dropped", steps=2)
    assert dict(zip(got.path, got.people, strict=True)) == {
        "web.page_view:/ → email.opened → (end)": 1,
        "web.page_view:/pricing → (end)": 1,
    }


def test_dropped_entry_inside_a_run_belongs_to_that_step() -> None:
    con = _log(
        [
            (1, "email.opened", "2026-01-01 00:00+00"),
            (1, "web.page_view:/", "2026-01-01 01:00+00"),
            (1, "web.page_view:/", "2026-01-01 02:00+00"),  # entered here, inside the run
            (1, "crm.call_completed", "2026-01-01 03:00+00"),
        ]
    )
    con.execute(
        "CREATE TABLE stage_entries AS SELECT 1 AS case_key, 'visit' AS stage, "
        "'2026-01-01 02:00+00'::TIMESTAMPTZ AS entered_at, 2 AS entered_seq, "
        "'dropped' AS status"
    )
    got = paths(con, "visit", "dropped", steps=1)
    assert got.path.tolist() == ["web.page_view:/ → crm.call_completed"]


def test_unknown_direction_is_named() -> None:
    with pytest.raises(PathsError, match="direction is one of"):
        paths(_log(HAND), "web.signed_up", "around")


def test_a_typo_is_named_with_the_closest_activities() -> None:
    with pytest.raises(PathsError, match=r"anchor \['web.signedup'\].*did you mean web.signed_up"):
        paths(_log(HAND), "web.signedup", "after")


def test_an_unknown_stage_or_no_funnel_is_named() -> None:
    con = _log(HAND)
    with pytest.raises(PathsError, match="compute the stage funnel first"):
        paths(con, "visit", "dropped")
    con.execute(
        f"CREATE TABLE stage_entries AS SELECT * FROM {funnel.build_entries(con, SPEC, 'event_log')}"
    )
    with pytest.raises(PathsError, match="no stage 'vist'.*are signup, visit"):
        paths(con, "vist", "dropped")
