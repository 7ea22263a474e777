"""Snapshots of the SQL the stage funnel and the follow-ups generate (the ibis way).

For a small fixed spec, every statement ``funnel.build_entries`` and
``followups.compute_followups`` send to DuckDB, with its bound parameters, is compared with a
stored file under ``tests/analyses/snapshots/``. A change of the generated SQL then shows in
review as a diff of that file. Regenerate after a deliberate change with
``UPDATE_SNAPSHOTS=1 pytest tests/analyses/test_sql_snapshots.py`` and read the diff.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from journeymine.analyses import followups, funnel
from journeymine.mining.eventlog import log_from_touchpoints
from journeymine.spec import Condition, FollowupRule, JourneySpec, Stage

SNAPSHOTS = Path(__file__).parent / "snapshots"

SPEC = JourneySpec(
    name="snapshot",
    window=timedelta(days=2),
    stages=(
        Stage("visit", ("web.page_view:*",)),
        Stage("demo", ("crm.meeting:*",), optional=True),
        Stage("big deal", ("crm.opportunity_*",), where=(Condition("amount", ">=", 1000),)),
        Stage("paid", ("billing.invoice_paid",), occurrence=1),
    ),
    exclude=("crm.call_completed",),
    company_activities=("crm.*",),
    followups=(
        FollowupRule(
            "demo",
            ("web.demo_requested",),
            ("crm.call_*", "crm.meeting:*"),
            timedelta(hours=4),
            False,
        ),
    ),
)
ROWS = [
    (1, "web.page_view:/", "customer", "2026-01-01 00:00+00"),
    (1, "web.demo_requested", "customer", "2026-01-01 01:00+00"),
    (1, "crm.meeting:demo", "company", "2026-01-01 03:00+00"),
    (2, "web.page_view:/pricing", "customer", "2026-01-01 00:00+00"),
    (2, "web.demo_requested", "customer", "2026-01-01 02:00+00"),
    (3, "web.page_view:/", "customer", "2026-01-05 00:00+00"),
]


class Recorder:
    """A DuckDB connection that writes down every statement and its bound parameters."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.statements: list[str] = []

    def execute(self, query: str, parameters: Any = None) -> duckdb.DuckDBPyConnection:
        self.statements.append(f"{query.strip()}\n-- parameters: {_render(parameters)}")
        if parameters is None:
            return self.con.execute(query)
        return self.con.execute(query, parameters)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.con, name)


def _render(parameters: Any) -> str:
    """Bound parameters as stable text (times in UTC, whatever DuckDB's time zone)."""

    def one(value: Any) -> str:
        if isinstance(value, datetime):
            return value.astimezone(UTC).isoformat()
        return repr(value)

    if isinstance(parameters, dict):
        return "{" + ", ".join(f"{k}: {one(parameters[k])}" for k in sorted(parameters)) + "}"
    if isinstance(parameters, list | tuple):
        return "[" + ", ".join(one(v) for v in parameters) + "]"
    return one(parameters)


def assert_snapshot(name: str, statements: list[str]) -> None:
    """The statements equal the stored snapshot ``name`` (rewritten with UPDATE_SNAPSHOTS=1)."""
    text = "\n\n-- next statement\n".join(statements) + "\n"
    path = SNAPSHOTS / name
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.write_text(text, encoding="utf-8")
    stored = path.read_text(encoding="utf-8") if path.exists() else "(no snapshot stored)"
    assert text == stored, (
        f"the generated SQL differs from {path}; if the change is deliberate, rerun with "
        "UPDATE_SNAPSHOTS=1 and review the diff of the snapshot file"
    )


def test_funnel_entries_sql_matches_snapshot(touchpoints) -> None:  # type: ignore[no-untyped-def]
    con = touchpoints(ROWS)
    log = log_from_touchpoints(con)
    recorder = Recorder(con)
    name = funnel.build_entries(recorder, SPEC, log)  # type: ignore[arg-type]
    assert_snapshot("funnel_build_entries.sql", recorder.statements)
    # The recorded statements did the work: 1 and 2 visited; 1's demo converts, 2 drops
    # (window over at the cut-off, 2026-01-05); 3 visited at the cut-off: open.
    status = dict(con.execute(f"SELECT case_key, status FROM {name} WHERE pos = 0").fetchall())
    assert status == {1: "converted", 2: "dropped", 3: "open"}


def test_followups_sql_matches_snapshot(touchpoints) -> None:  # type: ignore[no-untyped-def]
    con = touchpoints(ROWS)
    recorder = Recorder(con)
    rows = followups.compute_followups(recorder, SPEC)  # type: ignore[arg-type]
    assert_snapshot("followups_compute_followups.sql", recorder.statements)
    # Person 1's demo request is answered by the meeting 2 h later; person 2's never is.
    by_person = rows.set_index("person_id")
    assert by_person.loc[1, "latency_s"] == 7200
    assert by_person.loc[2, "status"] == "unanswered"
