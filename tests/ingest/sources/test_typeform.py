from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from journeymine.errors import SourceFormatError
from journeymine.ingest.sources import typeform
from journeymine.ingest.sources._common import ParsedFile

Write = Callable[[str, str], Path]

LANDING = Path(__file__).parents[2] / "data" / "landing"
PAGE = "typeform/2026/08/05/responses.json"


def parse() -> ParsedFile:
    return typeform.parse_file(LANDING / PAGE, PAGE)


def vader(text: str) -> float:
    return float(SentimentIntensityAnalyzer().polarity_scores(text)["compound"])


def test_every_response_is_a_row_or_a_reject() -> None:
    parsed = parse()
    assert (parsed.source, parsed.file, parsed.rows_read) == ("typeform", PAGE, 7)
    assert [(r.line, r.record_key) for r in parsed.rows] == [(1, "r1"), (2, "r2"), (3, "r3")]
    items = json.loads((LANDING / PAGE).read_text())["items"]
    assert json.loads(parsed.rows[0].raw) == items[0]


def test_bad_responses_are_rejected_with_index_and_field() -> None:
    assert [(r.line, r.reason) for r in parse().rejected] == [
        (4, "hidden: missing user_id and email"),
        (5, "answers[0].number: NPS score 11 out of 0-10"),
        (6, "missing response_id"),
        (7, "submitted_at: missing timestamp"),
    ]


def test_a_response_is_a_survey_touchpoint_with_score_group_and_sentiment() -> None:
    rows = parse().rows
    detractor, promoter, passive = (r.events[0] for r in rows)
    assert (detractor.activity, detractor.actor, detractor.channel) == (
        "feedback.survey_answered",
        "customer",
        "survey",
    )
    assert (detractor.event_key, detractor.occurred_at) == (
        "response:r1",
        datetime(2026, 8, 5, 10, tzinfo=UTC),
    )
    text = "Support was slow and awful, I am unhappy."
    assert detractor.attributes == {
        "response_id": "r1",
        "has_comment": True,
        "score": 3,
        "nps_group": "detractor",
        "sentiment": vader(text),
        "sentiment_label": "negative",
    }
    # two text answers are scored together, one per line; the NPS field found by its type
    assert promoter.attributes["score"] == 10 and promoter.attributes["nps_group"] == "promoter"
    assert promoter.attributes["sentiment"] == vader("Great product, love it\nNothing else")
    assert passive.attributes == {
        "response_id": "r3",
        "has_comment": False,
        "score": 8,
        "nps_group": "passive",
    }
    assert "awful" not in json.dumps([e.attributes for r in rows for e in r.events])


def test_hidden_fields_name_the_person_and_link_user_to_email() -> None:
    rows = parse().rows
    persons = [(r.events[0].id_type, r.events[0].id_value) for r in rows]
    assert persons == [("user_id", "u-1001"), ("email", "bob@example.org"), ("user_id", "u-2002")]
    edges = [(e.src_type, e.src_id, e.dst_type, e.dst_id, e.rule) for e in rows[0].edges]
    assert edges == [("user_id", "u-1001", "email", "anna.smith@example.com", "typeform_hidden")]
    assert rows[1].edges == rows[2].edges == []


@pytest.mark.parametrize(
    ("score", "group"),
    [
        (0, "detractor"),
        (6, "detractor"),
        (7, "passive"),
        (8, "passive"),
        (9, "promoter"),
        (10, "promoter"),
    ],
)
def test_nps_groups_at_their_boundaries(score: int, group: str) -> None:
    assert typeform.nps_group(score) == group


def test_odd_answers_in_a_gzipped_page(write: Write) -> None:
    def item(rid: str, answers: object) -> dict[str, object]:
        return {
            "token": rid,
            "submitted_at": "2026-08-05T10:00:00+02:00",
            "hidden": {"user_id": 7},
            "answers": answers,
        }

    nps = {"field": {"ref": "Q_NPS_main", "type": "opinion_scale"}, "type": "number"}
    page = {
        "items": [
            item("a", [{**nps, "number": 9.0}]),
            item("b", None),
            item("c", [{**nps, "number": 7.5}]),
            item("d", "yes"),
            item(
                "e", [{"field": {"ref": "age", "type": "number"}, "type": "number", "number": 42}]
            ),
        ]
    }
    path = write("typeform/p.json.gz", json.dumps(page))
    parsed = typeform.parse_file(path, "typeform/p.json.gz")
    a, b, e = (r.events[0] for r in parsed.rows)
    assert (a.id_value, a.attributes["score"], a.occurred_at) == (
        "7",
        9,
        datetime(2026, 8, 5, 8, tzinfo=UTC),
    )
    assert b.attributes == {"response_id": "b", "has_comment": False}
    assert "score" not in e.attributes  # a number answer that is not the NPS question
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (3, "answers[0].number: NPS score is not an integer: 7.5"),
        (4, "answers: not a list"),
    ]


def test_a_boolean_hidden_user_id_is_no_id(write: Write) -> None:
    base = {"token": "t", "submitted_at": "2026-08-05T10:00:00Z", "answers": []}
    page = {
        "items": [
            {**base, "hidden": {"user_id": True}},  # no id, no email: rejected
            {**base, "token": "u", "hidden": {"user_id": True, "email": "Ann@Example.com"}},
        ]
    }
    parsed = typeform.parse_file(write("typeform/b.json", json.dumps(page)), "typeform/b.json")
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (1, "hidden: missing user_id and email")
    ]
    [row] = parsed.rows
    assert (row.events[0].id_type, row.events[0].id_value) == ("email", "ann@example.com")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("typeform/broken.json", '{"items": ['),
        ("typeform/list.json", "[]"),
        ("typeform/form.json", '{"id": "abc", "fields": []}'),
        ("typeform/items-object.json", '{"items": {"a": 1}}'),
    ],
)
def test_files_that_are_not_response_pages_name_the_file(
    write: Write, name: str, text: str
) -> None:
    with pytest.raises(SourceFormatError, match=name):
        typeform.parse_file(write(name, text), name)
