from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from journeymine.errors import SourceFormatError
from journeymine.ingest import load
from journeymine.ingest.sources import zendesk, zendesk_replies
from journeymine.ingest.sources._common import ParsedFile

Write = Callable[[str, str], Path]

LANDING = Path(__file__).parents[2] / "data" / "landing"
TICKETS = "zendesk/2026/08/03/tickets.json"
EVENTS = "zendesk/2026/08/03/ticket-events.json"
ANNA, BOB = ("anonymous_id", "zendesk_user:5001"), ("anonymous_id", "zendesk_user:5002")


def parse(file: str) -> ParsedFile:
    return zendesk.parse_file(LANDING / file, file)


def vader(text: str) -> float:
    """VADER's own compound score, straight from the library, for comparison."""
    return float(SentimentIntensityAnalyzer().polarity_scores(text)["compound"])


def test_every_ticket_is_a_row_or_a_reject() -> None:
    parsed = parse(TICKETS)
    assert (parsed.source, parsed.file) == ("zendesk", TICKETS)
    assert parsed.rows_read == 7 == len(parsed.rows) + len(parsed.rejected)
    assert [(r.line, r.record_key) for r in parsed.rows] == [
        (1, "ticket:101@2026-08-03T15:00:00Z"),  # a new updated_at is a new version
        (2, "ticket:102@2026-08-03T10:00:00Z"),
        (7, "ticket:106@2026-08-03T17:00:00Z"),
    ]
    page = json.loads((LANDING / TICKETS).read_text())
    assert json.loads(parsed.rows[0].raw) == page["tickets"][0]


def test_bad_tickets_are_rejected_with_line_and_field() -> None:
    assert [(r.line, r.reason) for r in parse(TICKETS).rejected] == [
        (3, "missing requester_id"),
        (4, "status: unknown ticket status 'escalated'"),
        (5, "tickets: not a JSON object"),
        (6, "satisfaction_rating.score: unknown score 'great'"),
    ]


def test_a_solved_ticket_yields_created_solved_and_csat() -> None:
    row = parse(TICKETS).rows[0]
    got = [
        (e.event_key, e.activity, e.actor, (e.id_type, e.id_value), e.occurred_at, e.owner)
        for e in row.events
    ]
    at = datetime(2026, 8, 3, tzinfo=UTC)
    assert got == [
        ("ticket:101:created", "support.ticket_created", "customer", ANNA,
         at.replace(hour=9), "zendesk:901"),
        ("ticket:101:solved", "support.ticket_solved", "company", ANNA,
         at.replace(hour=15), "zendesk:901"),  # the version's updated_at
        ("ticket:101:csat", "support.csat_rated", "customer", ANNA,
         datetime(2026, 8, 4, 8, tzinfo=UTC), "zendesk:901"),
    ]  # fmt: skip
    assert row.events[0].attributes == {
        "ticket_id": "101",
        "status": "solved",
        "priority": "high",
        "type": "problem",
        "via_channel": "web",
        "tags": ["billing", "invoice"],
    }
    assert all(e.channel == "support" for e in row.events)
    edges = [(e.src_type, e.src_id, e.dst_type, e.dst_id, e.rule) for e in row.edges]
    assert edges == [
        ("anonymous_id", "zendesk_ticket:101", *ANNA, "zendesk_ticket_requester"),
    ]


def test_csat_keeps_score_and_sentiment_but_not_the_comment() -> None:
    rows = parse(TICKETS).rows
    bad, good = rows[0].events[2], rows[2].events[2]
    comment = "Slow answer, very disappointed."
    assert bad.attributes == {
        "ticket_id": "101",
        "score": "bad",
        "csat_good": False,
        "sentiment": vader(comment),
        "sentiment_label": "negative",
    }
    assert vader(comment) < -0.05
    # no comment: no sentiment; the rating's own updated_at is the time
    assert good.attributes == {"ticket_id": "106", "score": "good", "csat_good": True}
    assert good.occurred_at == datetime(2026, 8, 3, 18, tzinfo=UTC)
    attributes = json.dumps([e.attributes for r in rows for e in r.events])
    for text in ("Slow answer", "Invoice wrong", "frustrated", "How do I export"):
        assert text not in attributes
    # an offered-but-unanswered survey is no rating
    assert [e.activity for e in rows[1].events] == ["support.ticket_created"]


def test_comments_are_agent_or_customer_replies_by_the_authors_role() -> None:
    rows = parse(EVENTS).rows
    events = [e for r in rows for e in r.events]
    got = [(e.event_key, e.activity, e.actor, (e.id_type, e.id_value), e.owner) for e in events]
    ticket = ("anonymous_id", "zendesk_ticket:101")
    assert got == [
        ("comment:8001", "support.customer_replied", "customer", ANNA, None),
        ("comment:8002", "support.agent_replied", "company", ticket, "zendesk:901"),
        ("comment:8003", "support.internal_note", "company", ticket, "zendesk:901"),
        ("comment:8004", "support.customer_replied", "customer", ANNA, None),
        # its author is in no page here: kept, actor unknown (see the test below)
        (
            "comment:8005",
            "support.reply",
            "unknown",
            ("anonymous_id", "zendesk_ticket:102"),
            "zendesk:7777",
        ),
    ]
    first = rows[0].events[0]
    body = json.loads(rows[0].raw)["child_events"][1]["body"]
    assert first.attributes == {
        "ticket_id": "101",
        "comment_id": "8001",
        "public": True,
        "sentiment": vader(body),
        "sentiment_label": "negative",
    }
    assert "sentiment" not in events[1].attributes  # staff text is not the customer's voice
    # created_at, else the unix-seconds timestamp: 1785765000 = 2026-08-03 13:50 UTC
    assert [e.occurred_at.strftime("%H:%M") for e in events] == [
        "09:00",
        "13:30",
        "13:35",
        "13:50",
        "10:05",
    ]
    assert events[3].raw_time == "1785765000"


def test_html_in_a_body_stays_text_in_raw_only() -> None:
    row = parse(EVENTS).rows[3]
    assert (
        "<script>alert(1)</script> Thanks, great help!"
        in json.loads(row.raw)["child_events"][0]["body"]
    )
    reply = row.events[0]
    assert "script" not in json.dumps(reply.attributes)
    assert reply.attributes["sentiment"] == vader("<script>alert(1)</script> Thanks, great help!")
    assert reply.attributes["sentiment_label"] == "positive"


def test_bad_ticket_events_and_users_are_rejected_with_line_and_field() -> None:
    parsed = parse(EVENTS)
    assert parsed.rows_read == 11 == len(parsed.rows) + len(parsed.rejected)
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (6, "child_events[0].event_type: unknown event type 'Teleport'"),
        (7, "child_events: missing or not a list"),
        (11, "role: unknown user role 'robot'"),  # users are numbered after the events
    ]
    assert json.loads(parsed.rejected[0].raw)["id"] == 7006


def test_a_comment_by_an_author_of_another_page_is_kept_with_its_actor_unknown() -> None:
    # line 5: user 7777 wrote a public comment on ticket 102, but 7777 is not in this page
    row = next(r for r in parse(EVENTS).rows if r.line == 5)
    assert json.loads(row.raw)["child_events"][0]["author_id"] == 7777
    [reply] = row.events
    got = (reply.event_key, reply.activity, reply.actor, (reply.id_type, reply.id_value))
    assert got == (
        "comment:8005",
        "support.reply",
        "unknown",
        ("anonymous_id", "zendesk_ticket:102"),
    )
    assert reply.owner == "zendesk:7777"  # a staff author's name comes from any page's users
    assert reply.attributes == {
        "ticket_id": "102",
        "comment_id": "8005",
        "public": True,
        "author_id": "7777",
        "sentiment": vader("hello?"),  # scored: they may be the customer's words
        "sentiment_label": "neutral",
    }  # actor unknown: no voice in feelings until the author is known


@pytest.mark.parametrize(
    ("role", "activity", "actor", "scored"),
    [
        ("end-user", "support.customer_replied", "customer", True),
        ("agent", "support.agent_replied", "company", False),
    ],
)
def test_the_author_from_a_later_users_page_decides_the_actor(
    tmp_path: Path, role: str, activity: str, actor: str, scored: bool
) -> None:
    landing = tmp_path / "landing"
    for name in (TICKETS, EVENTS):
        (landing / name).parent.mkdir(parents=True, exist_ok=True)
        (landing / name).write_bytes((LANDING / name).read_bytes())
    user = {"id": 7777, "role": role, "name": "Jo", "updated_at": "2026-08-04T00:00:00Z"}
    older = user | {"role": "agent" if role == "end-user" else "end-user"}
    older["updated_at"] = "2026-07-01T00:00:00Z"  # the latest version of the user decides
    db = tmp_path / "w.duckdb"
    reply = "SELECT activity, actor FROM touchpoints WHERE attributes->>'comment_id' = '8005'"
    assert load.load_landing(db, landing, sources=("zendesk",)).errors == []
    with duckdb.connect(str(db)) as con:  # night 1: nobody has said who 7777 is
        assert con.execute(reply).fetchall() == [("support.reply", "unknown")]
    # night 2 brings the users page: the incremental night decides the earlier reply
    (landing / "zendesk" / "users-2.json").write_text(json.dumps({"users": [user, older]}))
    report = load.load_landing(db, landing, sources=("zendesk",))
    assert report.errors == [] and report.stitch.startswith("incremental")
    con = duckdb.connect(str(db))
    got = con.execute(
        "SELECT activity, actor, attributes->>'author_id', attributes->>'sentiment' IS NOT NULL "
        "FROM touchpoints WHERE attributes->>'comment_id' = '8005'"
    ).fetchall()
    assert got == [(activity, actor, "7777", scored)]
    assert con.execute("SELECT count(*) FROM touchpoints WHERE actor = 'unknown'").fetchall() == [
        (0,)
    ]
    assert zendesk_replies.resolve_reply_authors(con) == []  # nothing left to decide
    con.close()


def test_a_private_comment_by_an_unknown_author_is_an_internal_note(write: Write) -> None:
    event = {
        "id": 1,
        "ticket_id": 9,
        "created_at": "2026-08-03T10:00:00Z",
        "child_events": [{"id": 2, "event_type": "Comment", "author_id": 3, "public": False}],
    }
    path = write("zendesk/e.json", json.dumps({"ticket_events": [event]}))
    [reply] = zendesk.parse_file(path, "zendesk/e.json").rows[0].events
    assert (reply.activity, reply.actor, reply.owner) == (
        "support.internal_note",
        "company",
        "zendesk:3",
    )


def test_end_users_link_email_and_external_id_staff_get_a_name_label() -> None:
    rows = {r.record_key: r for r in parse(EVENTS).rows}
    anna = rows["user:5001@2026-08-01T00:00:00Z"]
    assert [(e.src_type, e.src_id, e.dst_type, e.dst_id, e.rule) for e in anna.edges] == [
        (*ANNA, "email", "anna.smith@example.com", "zendesk_user_email"),
        (*ANNA, "user_id", "u-1001", "zendesk_user_external_id"),
    ]
    assert anna.edges[0].observed_at == datetime(2026, 8, 1, tzinfo=UTC)
    bob = rows["user:5002@2026-07-02T00:00:00Z"]
    assert [(e.dst_type, e.dst_id) for e in bob.edges] == [("email", "bob@example.org")]
    agent = rows["user:901@2026-01-01T00:00:00Z"]
    assert agent.edges == [] and agent.events == []
    assert [(lab.kind, lab.id, lab.name) for lab in agent.labels] == [
        ("owner", "zendesk:901", "Carla Agent")
    ]


def test_a_gzipped_page_of_users_only(write: Write) -> None:
    page = {
        "users": [
            {"id": 1, "role": "end-user", "email": "x@y.io", "created_at": "2026-08-01T00:00:00Z"}
        ]
    }
    path = write("zendesk/users.json.gz", json.dumps(page))
    parsed = zendesk.parse_file(path, "zendesk/users.json.gz")
    assert [(e.src_id, e.dst_id) for e in parsed.rows[0].edges] == [("zendesk_user:1", "x@y.io")]
    assert parsed.rows[0].record_key == "user:1@2026-08-01T00:00:00Z"  # no updated_at yet


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("zendesk/broken.json", '{"tickets": [{"id": 1}'),
        ("zendesk/list.json", "[1, 2]"),
        ("zendesk/other.json", '{"results": []}'),
        ("zendesk/bad-array.json", '{"tickets": {"id": 1}}'),
        ("zendesk/empty.json", ""),
    ],
)
def test_malformed_pages_name_the_file(write: Write, name: str, text: str) -> None:
    with pytest.raises(SourceFormatError, match=name):
        zendesk.parse_file(write(name, text), name)


def test_loaded_support_journeys_join_the_person_graph(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    report = load.load_landing(db, LANDING, sources=("zendesk", "typeform"))
    assert report.errors == []
    con = duckdb.connect(str(db), read_only=True)
    manifest = con.execute(
        "SELECT file, rows_read, rows_loaded, duplicates, quarantined FROM load_manifest "
        "WHERE source = 'zendesk' ORDER BY file"
    ).fetchall()
    assert manifest == [(EVENTS, 11, 8, 0, 3), (TICKETS, 7, 3, 0, 4)]
    quarantined = con.execute(
        "SELECT file, line, reason FROM quarantine WHERE source = 'zendesk' ORDER BY file, line"
    ).fetchall()
    assert quarantined[0] == (
        EVENTS,
        6,
        "child_events[0].event_type: unknown event type 'Teleport'",
    )
    # the comment of an author from another page is on the ticket's (its requester's) journey
    unknown = con.execute(
        "SELECT t.activity, t.actor, i.node_id FROM touchpoints t JOIN identity_nodes i "
        "ON i.person_id = t.person_id AND i.node_type = 'anonymous_id' "
        "AND i.node_id LIKE 'zendesk_user:%' WHERE t.actor = 'unknown'"
    ).fetchall()
    assert unknown == [("support.reply", "unknown", "zendesk_user:5002")]
    # Anna's Zendesk user, her ticket, her email and her product user id are one person
    anna = con.execute(
        "SELECT activity, owner_name FROM touchpoints WHERE person_id = "
        "(SELECT person_id FROM identity_nodes WHERE node_type = 'user_id' AND node_id = 'u-1001') "
        "ORDER BY occurred_at, seq"
    ).fetchall()
    assert anna == [  # equal times keep load order: ticket-events.json before tickets.json
        ("support.customer_replied", None),
        ("support.ticket_created", "Carla Agent"),
        ("support.agent_replied", "Carla Agent"),
        ("support.internal_note", "Carla Agent"),
        ("support.customer_replied", None),
        ("support.ticket_solved", "Carla Agent"),
        ("support.csat_rated", "Carla Agent"),
        ("feedback.survey_answered", None),
    ]
    con.close()


def test_a_changed_ticket_is_a_new_version_and_a_repeated_page_a_duplicate(tmp_path: Path) -> None:
    def ticket(updated: str, status: str, **more: object) -> dict[str, object]:
        base = {"id": 201, "requester_id": 1, "created_at": "2026-08-01T09:00:00Z"}
        return {**base, "updated_at": updated, "status": status, **more}

    rating = {"score": "good", "comment": "Quick and kind", "updated_at": "2026-08-02T12:00:00Z"}
    pages = {
        "d1/tickets.json": [ticket("2026-08-01T09:00:00Z", "open")],
        "d2/tickets.json": [ticket("2026-08-02T10:00:00Z", "solved", satisfaction_rating=rating)],
        "d3/tickets.json": [ticket("2026-08-02T10:00:00Z", "solved", satisfaction_rating=rating)],
    }
    for name, tickets in pages.items():
        path = tmp_path / "landing" / "zendesk" / name
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"tickets": tickets, "end_time": 1}))
    db = tmp_path / "w.duckdb"
    load.load_landing(db, tmp_path / "landing", sources=("zendesk",))
    con = duckdb.connect(str(db), read_only=True)
    manifest = con.execute(
        "SELECT file, rows_loaded, duplicates FROM load_manifest ORDER BY file"
    ).fetchall()
    assert manifest == [
        ("zendesk/d1/tickets.json", 1, 0),
        ("zendesk/d2/tickets.json", 1, 0),  # updated_at changed: a new version
        ("zendesk/d3/tickets.json", 0, 1),  # the same version again
    ]
    touchpoints = con.execute(
        "SELECT activity, occurred_at, attributes->>'status' FROM touchpoints ORDER BY seq"
    ).fetchall()
    assert [(a, s) for a, _, s in touchpoints] == [
        ("support.ticket_created", "solved"),  # the newest version's event replaced the first
        ("support.ticket_solved", "solved"),
        ("support.csat_rated", None),
    ]
    assert touchpoints[2][1] == datetime(2026, 8, 2, 12, tzinfo=UTC)
    con.close()


def test_a_later_role_change_redecides_an_earlier_night_as_a_full_rebuild_would(
    tmp_path: Path,
) -> None:
    landing = tmp_path / "landing"
    for name in (TICKETS, EVENTS):
        (landing / name).parent.mkdir(parents=True, exist_ok=True)
        (landing / name).write_bytes((LANDING / name).read_bytes())
    agent = {"id": 7777, "role": "agent", "name": "Jo", "updated_at": "2026-08-04T00:00:00Z"}
    db = tmp_path / "w.duckdb"
    reply = (
        "SELECT activity, actor, attributes->>'sentiment' IS NOT NULL FROM touchpoints "
        "WHERE attributes->>'comment_id' = '8005'"
    )
    (landing / "zendesk" / "users-2.json").write_text(json.dumps({"users": [agent]}))
    load.load_landing(db, landing, sources=("zendesk",))
    with duckdb.connect(str(db)) as con:  # night 1: 7777 is an agent, the words are not scored
        assert con.execute(reply).fetchall() == [("support.agent_replied", "company", False)]
    # night 2: a newer version says 7777 is the customer; the reply becomes theirs, scored again
    customer = agent | {"role": "end-user", "updated_at": "2026-09-01T00:00:00Z"}
    (landing / "zendesk" / "users-3.json").write_text(json.dumps({"users": [customer]}))
    report = load.load_landing(db, landing, sources=("zendesk",))
    assert report.stitch.startswith("incremental")
    columns = "event_id, activity, actor, attributes::VARCHAR"
    night, full = _night_and_full_rebuild(tmp_path, landing, db, columns, reply)
    assert night == full
    assert night[1] == [("support.customer_replied", "customer", True)]


def test_a_night_decides_its_own_replies_by_the_roles_earlier_nights_loaded(
    tmp_path: Path,
) -> None:
    landing = tmp_path / "landing"
    (landing / TICKETS).parent.mkdir(parents=True)
    (landing / TICKETS).write_bytes((LANDING / TICKETS).read_bytes())
    agent = {"id": 7777, "role": "agent", "name": "Jo", "updated_at": "2026-08-04T00:00:00Z"}
    (landing / "zendesk" / "users-2.json").write_text(json.dumps({"users": [agent]}))
    db = tmp_path / "w.duckdb"
    assert load.load_landing(db, landing, sources=("zendesk",)).errors == []
    # night 2 brings the reply by 7777, whom only night 1's users page names: an agent
    (landing / EVENTS).write_bytes((LANDING / EVENTS).read_bytes())
    report = load.load_landing(db, landing, sources=("zendesk",))
    assert report.errors == [] and report.stitch.startswith("incremental")
    # one load numbers the events in another order: compared without event_id
    columns = "occurred_at, activity, actor, attributes::VARCHAR"
    reply = (
        "SELECT activity, actor, attributes->>'sentiment' FROM touchpoints "
        "WHERE attributes->>'comment_id' = '8005'"
    )
    night, full = _night_and_full_rebuild(tmp_path, landing, db, columns, reply)
    assert night == full
    assert night[1] == [("support.agent_replied", "company", None)]


def _night_and_full_rebuild(
    tmp_path: Path, landing: Path, db: Path, columns: str, reply: str
) -> list[tuple[list[Any], list[Any]]]:
    """``db``'s Zendesk touchpoints (``columns``, in that order) and the rows of ``reply``, then
    the same of a full rebuild of ``landing``."""
    full = tmp_path / "full.duckdb"
    assert load.load_landing(full, landing, sources=("zendesk",)).stitch.startswith("full")
    got: list[tuple[list[Any], list[Any]]] = []
    for path in (db, full):
        with duckdb.connect(str(path)) as con:
            rows = con.execute(
                f"SELECT {columns} FROM touchpoints WHERE source = 'zendesk' ORDER BY ALL"
            ).fetchall()
            got.append((rows, con.execute(reply).fetchall()))
    return got
