"""touchpoints.LATEST: of the events sharing (source, event_key), the newest version wins — by
the timestamp after '@' in the record key, else (none, or equal) the one loaded last — and every
other event passes unchanged. Checked against a plain Python ranking of random versions."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from journeymine.canonical.touchpoints import LATEST, OLDER
from journeymine.sql import in_partition


def _reference(events: list[tuple], rows: dict[tuple, str]) -> set[int]:
    """The seqs that win: per (source, event_key), the largest (has a stamp, stamp, seq)."""
    best: dict[tuple, tuple] = {}
    for seq, source, file, line, key in events:
        record_key = rows.get((source, file, line), "")
        stamp_text = record_key.split("@", 1)[1] if "@" in record_key else ""
        stamp = datetime.fromisoformat(stamp_text) if stamp_text else None
        rank = (stamp is not None, stamp or datetime.min.replace(tzinfo=UTC), seq)
        if (source, key) not in best or rank > best[(source, key)][0]:
            best[(source, key)] = (rank, seq)
    return {seq for _, seq in best.values()}


@pytest.mark.parametrize("seed", range(5))
def test_the_newest_version_wins_and_the_rest_pass(seed: int) -> None:
    rng = random.Random(seed)
    base = datetime(2026, 8, 1, tzinfo=UTC)
    events, rows = [], {}
    for seq in range(1, 400):
        source = rng.choice(["salesforce", "zendesk"])
        key = rng.choice([None, *(f"k{i}" for i in range(60))])  # repeats, NULL keys too
        file, line = f"f{rng.randrange(5)}.csv", seq
        events.append((seq, source, file, line, key))
        stamp = rng.choice(["", "", *(str(base + timedelta(hours=h)) for h in range(8))])
        if rng.random() < 0.9:  # some events have no raw row at all (no record key)
            rows[(source, file, line)] = f"id{seq}@{stamp}" if stamp else f"id{seq}"
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE ev (seq BIGINT, source VARCHAR, file VARCHAR, line INTEGER, event_key VARCHAR)"
    )
    con.executemany("INSERT INTO ev VALUES (?, ?, ?, ?, ?)", events)
    con.execute("CREATE TABLE rw (source VARCHAR, file VARCHAR, line INTEGER, record_key VARCHAR)")
    con.executemany("INSERT INTO rw VALUES (?, ?, ?, ?)", [(*k, v) for k, v in rows.items()])
    con.execute("SET TimeZone = 'UTC'")
    got = [
        seq
        for (seq,) in con.execute(
            f"SELECT seq FROM ({LATEST.format(events='ev', rows='rw')})"
        ).fetchall()
    ]
    assert len(got) == len(set(got))
    assert set(got) == _reference(events, rows)
    assert len(got) < len(events)  # versions were there to drop
    # The older versions found in 3 hash partitions of the key (as a large rebuild does): the
    # rest, exactly, with NULL keys kept together.
    older = [
        seq
        for part in range(3)
        for (seq,) in con.execute(
            OLDER.format(events=f"(FROM ev WHERE {in_partition('event_key', part, 3)})", rows="rw")
        ).fetchall()
    ]
    assert sorted(older) == sorted({e[0] for e in events} - _reference(events, rows))
