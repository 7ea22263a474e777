"""Feelings per stage pinned on a hand-made warehouse; every expected value computed by hand."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from journeymine import warehouse as warehouse_module
from journeymine.analyses import feelings, funnel
from journeymine.ingest import load
from journeymine.mining.eventlog import log_from_touchpoints
from journeymine.sentiment import Sentiment, label_of, score_text, sentiment_attributes
from journeymine.spec import JourneySpec, Stage

SPEC = JourneySpec(
    name="t",
    window=timedelta(days=30),
    stages=(
        Stage("trial", ("web.signed_up",)),
        Stage("activated", ("web.project_created",)),
        Stage("paid", ("billing.invoice_paid",)),
    ),
)
T975 = {1: 12.706205, 3: 3.182446}  # Student t 0.975 quantiles, from printed tables

ZD, TF = "zendesk", "typeform"
REPLY, CSAT, SURVEY = "support.customer_replied", "support.csat_rated", "feedback.survey_answered"


def said(sentiment: float, label: str, **more: object) -> dict[str, object]:
    return {"sentiment": sentiment, "sentiment_label": label, **more}


# (event_id = seq, person, source, activity, actor, time, attributes)
# fmt: off
VOICES = [
    (10, 1, ZD, REPLY, "customer", "2026-08-02 09:00", said(-0.6, "negative")),
    (11, 1, TF, SURVEY, "customer", "2026-08-03 10:00", {"score": 6}),  # at activated's entry
    (12, 1, ZD, CSAT, "customer", "2026-08-05 08:00", said(-0.4, "negative", score="bad")),
    (13, 1, ZD, "support.agent_replied", "company", "2026-08-02 10:00", {"sentiment": 0.9}),
    (20, 2, TF, SURVEY, "customer", "2026-08-02 08:00", said(-0.2, "negative", score=3)),
    (21, 2, ZD, REPLY, "customer", "2026-08-02 12:00", said(0.1, "positive")),
    (22, 2, ZD, "support.ticket_created", "customer", "2026-08-02 07:00", {"status": "open"}),
    (30, 3, TF, SURVEY, "customer", "2026-08-03 08:00", said(0.8, "positive", score=9)),
    (31, 3, ZD, CSAT, "customer", "2026-08-05 08:00", {"score": "good"}),
    (32, 3, ZD, REPLY, "customer", "2026-08-04 00:00", said(0.2, "positive")),
    (33, 3, TF, SURVEY, "customer", "2026-08-11 08:00", said(0.5, "positive", score=10)),
    (40, 4, TF, SURVEY, "customer", "2026-08-01 08:00", {"score": 0}),  # before any stage
]
# fmt: on
# 13 is staff (no voice), 22 carries no feedback, 40 came before any stage.
# (person, pos, stage, entered_at, entered_seq)
ENTRIES = [
    (1, 0, "trial", "2026-08-01 10:00", 1),
    (1, 1, "activated", "2026-08-03 10:00", 12),  # survey 11 is at the same time, one seq before
    (2, 0, "trial", "2026-08-01 11:00", 2),
    (3, 0, "trial", "2026-08-02 09:00", 3),
    (3, 1, "activated", "2026-08-04 00:00", 31),  # reply 32: same time, one seq after
    (3, 2, "paid", "2026-08-10 00:00", 40),
]


def warehouse() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE touchpoints (event_id BIGINT, person_id BIGINT, account_id BIGINT, "
        "source VARCHAR, activity VARCHAR, actor VARCHAR, occurred_at TIMESTAMPTZ, seq BIGINT, "
        "attributes JSON, file VARCHAR, line INT)"
    )
    con.executemany(
        "INSERT INTO touchpoints VALUES (?, ?, NULL, ?, ?, ?, ?::TIMESTAMPTZ, ?, ?, ?, ?)",
        [
            (e, p, s, a, actor, f"{t}+00", e, json.dumps(attrs), f"{s}/f.json", e)
            for e, p, s, a, actor, t, attrs in VOICES
        ],
    )
    con.execute(
        "CREATE TABLE stage_entries (case_key BIGINT, pos INT, stage VARCHAR, "
        "entered_at TIMESTAMPTZ, entered_seq BIGINT)"
    )
    con.executemany(
        "INSERT INTO stage_entries VALUES (?, ?, ?, ?::TIMESTAMPTZ, ?)",
        [(p, pos, s, f"{t}+00", seq) for p, pos, s, t, seq in ENTRIES],
    )
    return con


def row(frame, source: str, stage: str):  # type: ignore[no-untyped-def]
    return frame[(frame.source == source) & (frame.stage == stage)].iloc[0]


def test_voices_fall_in_the_stage_the_person_was_in() -> None:
    con = warehouse()
    feelings.build_voices(con)
    got = con.execute("SELECT event_id, stage FROM jm_voices ORDER BY event_id").fetchall()
    assert got == [
        (10, "trial"),
        (11, "trial"),  # same instant as entering "activated" but earlier in event order
        (12, "activated"),
        (20, "trial"),
        (21, "trial"),
        (30, "trial"),
        (31, "activated"),
        (32, "activated"),  # same instant as entering, later in event order
        (33, "paid"),
    ]  # 13 staff, 22 no feedback, 40 before any stage: no voice


def test_trial_stage_by_hand() -> None:
    frame = feelings.compute_feelings(warehouse(), SPEC)
    trial = row(frame, "all", "trial")
    # voices 10, 11, 20, 21, 30 from persons 1, 2, 3; sentiments -0.6, -0.2, 0.1, 0.8
    assert (trial.position, trial.voices, trial.people, trial.sentiment_n) == (0, 5, 3, 4)
    assert trial.sentiment_mean == pytest.approx(0.025)
    # squared deviations .390625 + .050625 + .005625 + .600625 = 1.0475; var = 1.0475 / 3
    half = T975[3] * math.sqrt(1.0475 / 3) / 2
    assert trial.sentiment_ci_low == pytest.approx(0.025 - half, rel=1e-5)
    assert trial.sentiment_ci_high == pytest.approx(0.025 + half, rel=1e-5)
    assert trial.negative_share == pytest.approx(2 / 4)
    # NPS answers 6, 3, 9: one promoter, two detractors
    assert (trial.nps_answers, trial.promoters, trial.detractors) == (3, 1, 2)
    assert trial.nps == pytest.approx(100 * (1 - 2) / 3)
    assert (trial.csat_answers, math.isnan(trial.csat)) == (0, True)


def test_activated_and_paid_by_hand() -> None:
    frame = feelings.compute_feelings(warehouse(), SPEC)
    activated, paid = row(frame, "all", "activated"), row(frame, "all", "paid")
    # voices 12 (bad, -0.4), 31 (good), 32 (0.2)
    assert (activated.voices, activated.people, activated.sentiment_n) == (3, 2, 2)
    assert activated.sentiment_mean == pytest.approx(-0.1)
    # sd = sqrt(0.18), half width 12.7 * 0.3 = 3.8: clipped to the score range
    assert T975[1] * math.sqrt(0.18) / math.sqrt(2) > 1.1
    assert (activated.sentiment_ci_low, activated.sentiment_ci_high) == (-1.0, 1.0)
    assert (activated.csat_answers, activated.csat) == (2, 50.0)
    assert (activated.nps_answers, math.isnan(activated.nps)) == (0, True)
    # one voice: a mean, no interval
    assert (paid.voices, paid.sentiment_mean, paid.nps, paid.nps_answers) == (1, 0.5, 100.0, 1)
    assert math.isnan(paid.sentiment_ci_low) and math.isnan(paid.sentiment_ci_high)


def test_the_means_have_the_same_digits_whatever_the_threads() -> None:
    """A float sum depends on its order: summed in event order, the sentiment means and
    deviations come out the same on every run and machine, and equal to an exact sum."""
    con = warehouse()
    con.execute(
        "INSERT INTO touchpoints SELECT 1000 + i, 2, NULL, 'zendesk', ?, 'customer', "
        "'2026-08-02 13:00+00'::TIMESTAMPTZ + to_microseconds(i), 1000 + i, "
        "json_object('sentiment', round(sin(i), 4), 'sentiment_label', 'neutral'), "
        "'zendesk/f.json', 1000 + i FROM range(300000) r(i)",
        [REPLY],
    )
    frames = []
    for threads in (1, 4, 2):
        con.execute(f"SET threads = {threads}")
        frames.append(feelings.compute_feelings(con, SPEC))
    for frame in frames[1:]:
        assert frame.equals(frames[0])
    # Zendesk voices in trial: the 300,000 added, and the replies 10 (-0.6) and 21 (0.1).
    values = [round(math.sin(i), 4) for i in range(300000)] + [-0.6, 0.1]
    mean = row(frames[0], ZD, "trial").sentiment_mean
    assert mean == pytest.approx(math.fsum(values) / len(values), rel=1e-9)


def test_every_stage_appears_per_source() -> None:
    frame = feelings.compute_feelings(warehouse(), SPEC)
    assert list(zip(frame.source, frame.stage, frame.voices, strict=True)) == [
        ("all", "trial", 5),
        ("all", "activated", 3),
        ("all", "paid", 1),
        ("typeform", "trial", 3),
        ("typeform", "activated", 0),  # nobody answered a survey there: a zero, not a gap
        ("typeform", "paid", 1),
        ("zendesk", "trial", 2),
        ("zendesk", "activated", 3),
        ("zendesk", "paid", 0),
    ]
    zendesk_trial = row(frame, "zendesk", "trial")
    assert zendesk_trial.sentiment_mean == pytest.approx((-0.6 + 0.1) / 2)
    assert math.isnan(row(frame, "typeform", "activated").sentiment_mean)
    assert list(frame.columns) == feelings.FEELINGS_COLUMNS


def test_write_feelings_stores_the_table() -> None:
    con = warehouse()
    feelings.write_feelings(con, SPEC)
    assert con.execute(
        "SELECT stage, voices, csat FROM feelings WHERE source = 'all' ORDER BY position"
    ).fetchall() == [("trial", 5, None), ("activated", 3, 50.0), ("paid", 1, None)]


def test_no_voices_leave_every_stage_at_zero() -> None:
    con = warehouse()
    con.execute("DELETE FROM touchpoints")
    frame = feelings.compute_feelings(con, SPEC)
    assert list(zip(frame.source, frame.stage, frame.voices, strict=True)) == [
        ("all", "trial", 0),
        ("all", "activated", 0),
        ("all", "paid", 0),
    ]
    assert frame.sentiment_mean.isna().all() and frame.nps.isna().all()


def test_what_comes_just_before_negative_feedback() -> None:
    frame = feelings.feeling_precursors(warehouse())
    # scored voices after another touchpoint: 12 (neg, after survey 11), 20 (neg, after ticket
    # 22), 21 (pos, after survey 20), 32 (pos, after survey 30), 33 (pos, after CSAT 31);
    # 10 and 30 come first in their journeys, 13 is staff. Base rate 2 / 5.
    got = list(zip(frame.activity, frame.voices, frame.negative, strict=True))
    assert got == [
        ("support.ticket_created", 1, 1),
        ("feedback.survey_answered", 3, 1),
        ("support.csat_rated", 1, 0),
    ]
    assert list(frame.negative_share) == pytest.approx([1.0, 1 / 3, 0.0])
    assert list(frame.lift) == pytest.approx([1.0 / 0.4, (1 / 3) / 0.4, 0.0])
    assert len(feelings.feeling_precursors(warehouse(), top=1)) == 1


def test_a_deal_case_is_refused() -> None:
    with pytest.raises(ValueError, match="person or account"):
        feelings.build_voices(warehouse(), "deal")


def test_vader_compound_and_standard_thresholds() -> None:
    # VADER's README example, independently published: compound 0.8316
    assert score_text("VADER is smart, handsome, and funny.") == Sentiment(0.8316, "positive")
    assert score_text("   ") is None and sentiment_attributes(None) == {}
    assert [label_of(x) for x in (0.05, 0.0499, 0.0, -0.0499, -0.05)] == [
        "positive",
        "neutral",
        "neutral",
        "neutral",
        "negative",
    ]


# --- quotes ---------------------------------------------------------------------------------

RAW_REPLY = {
    "id": 7001,
    "ticket_id": 101,
    "child_events": [
        {
            "id": 8001,
            "event_type": "Comment",
            "author_id": 5001,
            "public": True,
            "body": "Hi Anna, this is Bob Jones. Call +1 (415) 555-0132 or bob.jones@example.com",
        }
    ],
}


def quote_warehouse() -> duckdb.DuckDBPyConnection:
    con = warehouse()
    con.execute(
        "CREATE TABLE raw_rows (source VARCHAR, file VARCHAR, line INT, record_key VARCHAR, raw VARCHAR)"
    )
    con.execute("CREATE TABLE raw_events (seq BIGINT, event_key VARCHAR)")
    survey = {
        "response_id": "r9",
        "answers": [{"field": {"ref": "why"}, "type": "text", "text": "Love it, thanks Eve!"}],
    }
    csat = {
        "id": 101,
        "satisfaction_rating": {"score": "bad", "comment": "Awful. Email me at x@y.io"},
    }
    rows = [
        ("zendesk", 10, "comment:8001", RAW_REPLY),
        ("zendesk", 12, "ticket:101:csat", csat),
        ("typeform", 30, "response:r9", survey),
        ("typeform", 33, "response:r10", {"answers": []}),  # no text: no quote
    ]
    for source, seq, key, raw in rows:
        con.execute(
            "INSERT INTO raw_rows VALUES (?, ?, ?, ?, ?)",
            [source, f"{source}/f.json", seq, key, json.dumps(raw)],
        )
        con.execute("INSERT INTO raw_events VALUES (?, ?)", [seq, key])
    user = {"id": 5002, "name": "Robert Jones", "role": "end-user"}
    con.execute(
        "INSERT INTO raw_rows VALUES ('zendesk', 'zendesk/u.json', 1, 'user:5002@x', ?)",
        [json.dumps(user)],
    )
    return con


def test_quotes_come_from_the_raw_layer_redacted() -> None:
    quotes = feelings.feeling_quotes(quote_warehouse(), 1)
    got = list(
        zip(quotes.stage, quotes.person_id, quotes.sentiment_label, quotes.quote, strict=True)
    )
    assert got == [
        # trial: the most negative (10, -0.6) and the most positive (30, 0.8) with text
        ("trial", 1, "negative", "Hi [name], this is [name]. Call [phone] or [email]"),
        ("trial", 3, "positive", "Love it, thanks [name]!"),
        ("activated", 1, "negative", "Awful. Email me at [email]"),
        # activated positive: voice 32 has no raw text here; paid: voice 33 has none either
    ]


def test_no_email_or_phone_survives_in_quotes() -> None:
    quotes = feelings.feeling_quotes(quote_warehouse(), 5)
    text = " ".join(quotes.quote)
    assert not re.search(r"@|\d{3}", text)
    assert "Jones" not in text and "Anna" not in text


@pytest.mark.parametrize(
    ("text", "names", "expected"),
    [
        ("mail ME@corp.co.uk now", (), "mail [email] now"),
        ("ring 020 7946 0958.", (), "ring [phone]."),
        ("ticket 101 is open", (), "ticket 101 is open"),  # short numbers are not phones
        ("Regards, Maria Lopez", (), "Regards, [name]"),
        ("I am really angry", (), "I am really angry"),  # lower case after a cue: not a name
        ("ask robert about it", ("Robert",), "ask [name] about it"),
        ("<b>Dear Sam</b>", (), "<b>Dear [name]</b>"),  # HTML stays text
    ],
)
def test_redact(text: str, names: tuple[str, ...], expected: str) -> None:
    assert feelings.redact(text, names) == expected


# --- on the landed Zendesk and Typeform fixtures --------------------------------------------

LANDING = Path(__file__).parents[1] / "data" / "landing"
LOADED_SPEC = JourneySpec(
    name="support",
    window=timedelta(days=30),
    stages=(Stage("support", ("support.*",)), Stage("surveyed", ("feedback.*",))),
)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    db = tmp_path_factory.mktemp("feelings") / "w.duckdb"
    load.load_landing(db, LANDING, sources=("zendesk", "typeform"))
    con = warehouse_module.connect(db)
    funnel.write_stage_funnel(con, LOADED_SPEC, log_from_touchpoints(con))
    yield con
    con.close()


def test_feelings_of_the_landed_fixtures(loaded: duckdb.DuckDBPyConnection) -> None:
    frame = feelings.compute_feelings(loaded, LOADED_SPEC)
    support, surveyed = row(frame, "all", "support"), row(frame, "all", "surveyed")
    # Anna: two replies and a bad CSAT; Bob: a good CSAT (his tickets carry no text)
    assert (support.voices, support.people, support.sentiment_n) == (4, 2, 3)
    assert (support.csat_answers, support.csat) == (2, 50.0)
    # Anna answered 3 (detractor), Bob 10 (promoter); u-2002 never entered a stage
    assert (surveyed.voices, surveyed.nps_answers, surveyed.nps) == (2, 2, 0.0)


def test_quotes_of_the_landed_fixtures_hold_no_email_phone_or_name(
    loaded: duckdb.DuckDBPyConnection,
) -> None:
    quotes = feelings.feeling_quotes(loaded, 1)
    assert list(zip(quotes.stage, quotes.sentiment_label, quotes.quote, strict=True)) == [
        (
            "support",
            "negative",
            "My invoice is wrong and I am really frustrated. Call me at [phone] or [email]",
        ),
        ("support", "positive", "<script>alert(1)</script> Thanks, great help!"),  # kept as text
        ("surveyed", "negative", "Support was slow and awful, I am unhappy."),
        ("surveyed", "positive", "Great product, love it\nNothing else"),
    ]
    every = " ".join(feelings.feeling_quotes(loaded, 100).quote)
    assert "@" not in every and "555" not in every


def test_survey_csv_answers_are_voices_and_their_comments_quotes(tmp_path: Path) -> None:
    from journeymine.spec import SurveyMapping

    landing = tmp_path / "landing" / "survey"
    landing.mkdir(parents=True)
    (landing / "nps.csv").write_text(
        "Email,When,Score,Comment\n"
        'a@b.io,2026-08-01T09:00:00Z,2,"Awful onboarding,\nwrite me at a@b.io"\n'
        "c@d.io,2026-08-01T10:00:00Z,10,Love it\n"
        "c@d.io,2026-08-02T10:00:00Z,8,\n",
        encoding="utf-8",
    )
    mapping = SurveyMapping(who="Email", when="When", score="Score", comment="Comment")
    db = tmp_path / "w.duckdb"
    load.load_landing(db, landing.parent, options={"survey": {"mapping": mapping}})
    con = warehouse_module.connect(db)
    spec = JourneySpec(name="s", stages=(Stage("surveyed", ("feedback.*",)),))
    funnel.write_stage_funnel(con, spec, log_from_touchpoints(con))
    survey = row(feelings.compute_feelings(con, spec), "survey", "surveyed")
    # by hand: 3 answers of 2 people; 1 promoter, 1 detractor: NPS 0; two comments scored
    assert (survey.voices, survey.people, survey.nps_answers, survey.nps) == (3, 2, 3, 0.0)
    assert (survey.promoters, survey.detractors, survey.sentiment_n) == (1, 1, 2)
    quotes = feelings.feeling_quotes(con, 1)
    assert list(zip(quotes.source, quotes.sentiment_label, quotes.quote, strict=True)) == [
        ("survey", "negative", "Awful onboarding,\nwrite me at [email]"),
        ("survey", "positive", "Love it"),
    ]
    con.close()
