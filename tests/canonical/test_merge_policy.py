"""The person-merge policy is a setting of the load, from the command line to identity."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from journeymine.cli import main


def _landing(root: Path) -> Path:
    calls = [  # one customer who signed up twice with the same address
        {"type": "identify", "messageId": f"m{i}", "userId": user, "timestamp": f"2026-08-0{i}T10:00:00Z",
         "traits": {"email": "sam@example.com"}}
        for i, user in ((1, "u-1"), (2, "u-2"))
    ]  # fmt: skip
    folder = root / "segment"
    folder.mkdir(parents=True)
    (folder / "calls.jsonl").write_text("\n".join(json.dumps(c) for c in calls) + "\n")
    return root


def test_two_user_ids_per_person_merge_a_double_sign_up_end_to_end(tmp_path: Path) -> None:
    landing = _landing(tmp_path / "landing")
    persons = {}
    for cap in (1, 2):
        db = tmp_path / f"w{cap}.duckdb"
        code = main(["load", "--landing", str(landing), "--warehouse", str(db),
                     "--max-user-ids-per-person", str(cap)])  # fmt: skip
        assert code == 0
        with duckdb.connect(str(db), read_only=True) as con:
            persons[cap] = con.execute(
                "SELECT count(DISTINCT person_id) FROM identity_nodes WHERE node_type = 'user_id'"
            ).fetchone()[0]
    assert persons == {1: 2, 2: 1}  # kept apart by default (a shared mailbox), merged with 2
