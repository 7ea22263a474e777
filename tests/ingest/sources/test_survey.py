from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from journeymine.cli import main
from journeymine.errors import SourceFormatError, SpecError
from journeymine.ingest import load
from journeymine.ingest.sources import survey
from journeymine.ingest.sources._common import INTERNAL_ERROR, ParsedFile
from journeymine.spec import SurveyMapping, source_options, spec_from_dict

Write = Callable[[str, str], Path]

MAPPING = SurveyMapping(
    who="Email",
    when="Submitted",
    score="NPS",
    comment="Comment",
    response_id="Response",
    name="onboarding",
)
# A BOM, a comment over two lines (record 1 starts on line 2, record 2 on line 4), then one
# bad record of each kind.
EXPORT = (
    "\ufeffResponse,Email,Submitted,NPS,Comment\n"
    'r1, Anna@Example.com ,2026-08-05T10:00:00Z,3,"Support was slow,\nI am very frustrated"\n'
    "r2,bob@example.org,2026-08-06 09:30,10,Love it\n"
    "r3,,2026-08-06 09:00,5,who is empty\n"
    "r4,c@d.io,yesterday,5,bad date\n"
    "r5,c@d.io,2026-08-06 09:00,abc,score is text\n"
    "r6,c@d.io,2026-08-06 09:00,5\n"
    "r7,c@d.io,2026-08-06 09:00,11,out of range\n"
    "r8,c@d.io,2026-08-06 09:00,,\n"
    "r9,c@d.io,2026-08-06 09:00,nan,not a number either\n"
)


def vader(text: str) -> float:
    return float(SentimentIntensityAnalyzer().polarity_scores(text)["compound"])


def parse(write: Write, text: str = EXPORT, mapping: SurveyMapping | None = MAPPING) -> ParsedFile:
    return survey.parse_file(write("survey/answers.csv", text), "survey/answers.csv", mapping)


def test_every_record_is_an_answer_or_a_reject_with_its_line(write: Write) -> None:
    parsed = parse(write)
    assert parsed.rows_read == 9 == len(parsed.rows) + len(parsed.rejected)
    assert [(r.line, r.record_key) for r in parsed.rows] == [
        (2, "response:r1"),
        (4, "response:r2"),
        (10, "response:r8"),
    ]
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (5, "Email: empty (who answered)"),
        (6, "Submitted: unparseable timestamp 'yesterday'"),
        (7, "NPS: score is not a number: 'abc'"),
        (8, "4 fields, the header has 5 (a missing column?)"),
        (9, "NPS: NPS score '11' is not a whole number 0-10"),
        (11, "NPS: score is not a finite number: 'nan'"),
    ]
    assert parsed.rejected[1].raw == "r4,c@d.io,yesterday,5,bad date"


def test_an_answer_is_a_survey_touchpoint_with_score_group_and_sentiment(write: Write) -> None:
    rows = parse(write).rows
    comment = "Support was slow,\nI am very frustrated"
    anna = rows[0].events[0]
    assert (anna.activity, anna.actor, anna.channel) == (
        "feedback.survey_answered",
        "customer",
        "survey",
    )
    assert (anna.id_type, anna.id_value) == ("email", "anna@example.com")  # trimmed, lower case
    assert anna.occurred_at == datetime(2026, 8, 5, 10, tzinfo=UTC)
    assert anna.attributes == {
        "score": 3,
        "nps_group": "detractor",
        "has_comment": True,
        "sentiment": vader(comment),
        "sentiment_label": "negative",
        "survey": "onboarding",
    }
    assert "frustrated" not in json.dumps(anna.attributes)  # the words stay in raw only
    assert survey.feedback_text(rows[0].raw, anna.event_key) == comment
    bob = rows[1].events[0]
    assert bob.occurred_at == datetime(2026, 8, 6, 9, 30, tzinfo=UTC)  # no offset: UTC
    assert (bob.attributes["score"], bob.attributes["nps_group"]) == (10, "promoter")
    # an empty score and comment are no answers to those questions, not errors
    assert rows[2].events[0].attributes == {"has_comment": False, "survey": "onboarding"}
    assert survey.feedback_text(rows[2].raw, "response:r8") is None


@pytest.mark.parametrize(
    ("score", "group"),
    [
        ("0", "detractor"),
        ("6", "detractor"),
        ("7", "passive"),
        ("8", "passive"),
        ("9", "promoter"),
        ("10.0", "promoter"),
    ],
)
def test_nps_classes_at_their_edges(write: Write, score: str, group: str) -> None:
    text = f"Response,Email,Submitted,NPS,Comment\nr,a@b.io,2026-08-05T10:00:00Z,{score},\n"
    assert parse(write, text).rows[0].events[0].attributes["nps_group"] == group


def test_a_date_format_a_user_id_a_rating_and_no_answer_id(write: Write) -> None:
    mapping = SurveyMapping(
        who="uid", when="date", who_type="user_id", score="stars", scale="rating",
        date_format="%d/%m/%Y %H:%M",
    )  # fmt: skip
    text = "uid,date,stars\nu-1,05/08/2026 14:00,4.5\nu-2,2026-08-05,3\nu-3,05/08/2026 9:00,3\n"
    parsed = parse(write, text, mapping)
    [row, also] = parsed.rows
    event = row.events[0]
    assert (event.id_type, event.id_value) == ("user_id", "u-1")
    assert event.occurred_at == datetime(2026, 8, 5, 14, tzinfo=UTC)
    assert event.attributes == {"rating": 4.5, "has_comment": False}  # a rating is no NPS
    assert row.record_key == "answer:|u-1|05/08/2026 14:00"  # who + when without an answer id
    assert also.events[0].attributes["rating"] == 3
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (3, "date: '2026-08-05' does not match date_format '%d/%m/%Y %H:%M'")
    ]


def test_a_header_without_a_mapped_column_is_a_format_error_naming_it(write: Write) -> None:
    text = "Response,Mail,Submitted,NPS,Comment\nr1,a@b.io,2026-08-05T10:00:00Z,3,x\n"
    with pytest.raises(SourceFormatError, match=r"survey/answers.csv.*no column 'Email' \(mapped"):
        parse(write, text)


def test_a_semicolon_separated_export_is_named_as_such(write: Write) -> None:
    text = "Response;Email;Submitted;NPS;Comment\nr1;a@b.io;2026-08-05T10:00:00Z;3;x\n"
    with pytest.raises(SourceFormatError, match="separated by ';'"):
        parse(write, text)


def test_without_a_mapping_the_error_names_the_spec_key(write: Write) -> None:
    with pytest.raises(SourceFormatError, match=r"declare \[sources.survey\]"):
        parse(write, mapping=None)


def test_the_spec_section_is_parsed_and_checked() -> None:
    raw = {"sources": {"survey": {"who": "Email", "when": "Submitted", "score": "NPS"}}}
    spec = spec_from_dict(raw)
    assert spec.survey == SurveyMapping(who="Email", when="Submitted", score="NPS")
    assert source_options(spec) == {"survey": {"mapping": spec.survey}}
    assert source_options(spec_from_dict({})) == {}
    bad = [
        ({"who": "Email"}, r"sources.survey.when: missing"),
        ({"who": "E", "when": "W", "who_type": "phone"}, r"sources.survey.who_type: use one"),
        ({"who": "E", "when": "W", "scale": "csat"}, r"sources.survey.scale: use one"),
        ({"who": "E", "when": "W", "date_format": "dd/mm"}, r"sources.survey.date_format"),
        (
            {"who": "E", "when": "W", "colour": "x"},
            r"sources.survey: unknown key\(s\) \['colour'\]",
        ),
        ({"who": "E", "when": "E"}, r"sources.survey: one column mapped twice"),
        ({"who": "", "when": "W"}, r"sources.survey.who: expected a non-empty string"),
    ]
    for table, message in bad:
        with pytest.raises(SpecError, match=message):
            spec_from_dict({"sources": {"survey": table}})
    with pytest.raises(SpecError, match=r"sources: unknown key\(s\) \['typeform'\]"):
        spec_from_dict({"sources": {"typeform": {}}})


def test_loaded_answers_join_the_person_and_nothing_is_lost(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    (landing / "survey").mkdir(parents=True)
    (landing / "survey" / "answers.csv").write_text(EXPORT, encoding="utf-8")
    (landing / "survey" / "again.csv").write_text(EXPORT, encoding="utf-8")  # fetched twice
    db = tmp_path / "w.duckdb"
    report = load.load_landing(db, landing, options={"survey": {"mapping": MAPPING}})
    assert report.errors == []
    con = duckdb.connect(str(db), read_only=True)
    manifest = con.execute(
        "SELECT file, rows_read, rows_loaded, duplicates, quarantined FROM load_manifest "
        "ORDER BY file"
    ).fetchall()
    assert manifest == [("survey/again.csv", 9, 3, 0, 6), ("survey/answers.csv", 9, 0, 3, 6)]
    quarantined = con.execute(
        "SELECT file, line, reason FROM quarantine WHERE file = 'survey/answers.csv' "
        "ORDER BY line LIMIT 1"
    ).fetchall()
    assert quarantined == [("survey/answers.csv", 5, "Email: empty (who answered)")]
    answers = con.execute(
        "SELECT i.node_id, json_extract(t.attributes, '$.score')::INT FROM touchpoints t "
        "JOIN identity_nodes i ON i.person_id = t.person_id ORDER BY t.occurred_at"
    ).fetchall()
    assert answers == [("anna@example.com", 3), ("c@d.io", None), ("bob@example.org", 10)]
    con.close()


def test_the_load_command_reads_the_mapping_or_names_the_missing_spec_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    landing = tmp_path / "landing"
    (landing / "survey").mkdir(parents=True)
    (landing / "survey" / "answers.csv").write_text(EXPORT, encoding="utf-8")
    spec = tmp_path / "journey.toml"
    spec.write_text("[sources.survey]\nwho = 'Email'\nwhen = 'Submitted'\n", encoding="utf-8")
    db = str(tmp_path / "w.duckdb")
    bare = tmp_path / "bare.toml"
    bare.write_text("name = 'no survey'\n", encoding="utf-8")
    args = ["load", "--landing", str(landing), "--warehouse", db, "--journey"]
    assert main([*args, str(bare)]) == 1  # a survey folder without a mapping: an error, named
    assert "declare [sources.survey] in the journey spec" in capsys.readouterr().err
    assert main([*args, str(spec)]) == 0
    con = duckdb.connect(db, read_only=True)
    loaded = con.execute(
        "SELECT rows_read, rows_loaded, duplicates, quarantined FROM load_manifest"
    ).fetchall()
    con.close()
    # Without a score or answer id mapped, r5, r7, r8 and r9 are one answer (same who and
    # when, the bad scores unread): one loaded, three duplicates; r3, r4, r6 quarantined.
    assert loaded == [(9, 3, 3, 3)]


FIELDS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "a@b.io", "2026-08-05T10:00:00Z", "10", "-1", "1e999", "nan",
                     "5.5", '"', "\n", "\r\n", ";", "\ufeff", "0001-01-01", "\udcff"]),
)  # fmt: skip


@settings(settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "parsers")))
@given(rows=st.lists(st.lists(FIELDS, min_size=3, max_size=6), max_size=8))
def test_any_csv_body_is_answers_or_rejects_never_a_crash(rows: list[list[str]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["Response", "Email", "Submitted", "NPS", "Comment"])
    writer.writerows(rows)
    data = buffer.getvalue().encode("utf-8", "surrogateescape")
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"survey-fuzz-{os.getpid()}.csv"
    path.write_bytes(data)
    try:
        parsed = survey.parse_file(path, "survey/fuzz.csv", MAPPING)
    finally:
        path.unlink()
    assert not [r for r in parsed.rejected if r.reason.startswith(INTERNAL_ERROR)]
    lines = [r.line for r in parsed.rows] + [r.line for r in parsed.rejected]
    assert len(lines) == len(set(lines))  # every record once, by the line it starts on
    for row in parsed.rows:
        [event] = row.events
        assert event.attributes.get("score", 0) in range(11)


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_the_nightly_flow_hands_the_spec_mapping_to_the_survey_parser(tmp_path: Path) -> None:
    from journeymine.pipelines.nightly import nightly

    sample = Path(__file__).resolve().parents[3] / "data" / "sample"
    landing = tmp_path / "landing"
    (landing / "survey").mkdir(parents=True)
    csv_file = next((sample / "landing" / "survey").iterdir())
    (landing / "survey" / csv_file.name).write_bytes(csv_file.read_bytes())
    rows = list(csv.DictReader(io.StringIO(csv_file.read_text("utf-8-sig"), newline="")))
    # The sample's mapping, and a journey the answers alone can walk.
    mapping = (sample / "journey.toml").read_text("utf-8").split("[sources.survey]", 1)[1]
    journey = tmp_path / "journey.toml"
    journey.write_text(
        "[[stages]]\nname = 'answered'\nactivities = ['feedback.survey_answered']\n"
        f"\n[sources.survey]{mapping}",
        encoding="utf-8",
    )
    report = nightly(
        landing=str(landing),
        warehouse_path=str(tmp_path / "w.duckdb"),
        journey=str(journey),
        out=str(tmp_path / "out"),
    )
    unusable = [r for r in rows if not r["Email"].strip() or not r["Score"].isdigit()]
    assert report.totals() == {
        "rows_read": len(rows),
        "rows_loaded": len(rows) - len(unusable),
        "duplicates": 0,
        "quarantined": len(unusable),
    }
