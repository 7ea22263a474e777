"""Journey spec loading: every error names the file and the key."""

from __future__ import annotations

from datetime import date, time, timedelta
from pathlib import Path

import pytest

from journeymine.errors import SpecError
from journeymine.spec import (
    check_patterns,
    load_spec,
    parse_duration,
    patterns_overlap,
    spec_from_dict,
)

ROOT = Path(__file__).resolve().parents[2]
STAGES = '[[stages]]\nname = "a"\nactivities = ["web.x"]\n'


def load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "journey.toml"
    path.write_text(text)
    return load_spec(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            STAGES + 'window = "3 dayz"\n',
            r"journey.toml: stages\[0\].window: bad duration '3 dayz'",
        ),
        ('window = "0h"\n', r"journey.toml: window: duration must be positive"),
        ("window = -5\n", r"journey.toml: window: duration must be positive"),
        ('window = "3"\n', r"journey.toml: window: bad duration '3'"),
        ('colour = "blue"\n', r"journey.toml: unknown key\(s\) \['colour'\]"),
        (STAGES + "colour = 1\n", r"journey.toml: stages\[0\]: unknown key\(s\) \['colour'\]"),
        ('case = "planet"\n', r"journey.toml: case = 'planet'"),
        (
            '[calendar]\ntimezone = "Mars/Olympus"\n',
            r"journey.toml: calendar.timezone: unknown time zone 'Mars/Olympus'",
        ),
        ('[calendar]\nhours = "17:00-09:00"\n', r"calendar.hours: opening 17:00:00 is not before"),
        ('[calendar]\nhours = "nine to five"\n', r"calendar.hours"),
        ('[calendar]\nworkdays = ["monday"]\n', r"calendar.workdays"),
        (
            '[calendar]\nholidays = ["2026-13-01"]\n',
            r"calendar.holidays\[0\]: '2026-13-01' is not a date",
        ),
        ('stages = "visit"\n', r"journey.toml: stages: expected an array of tables"),
        (STAGES + 'optional = "yes"\n', r"stages\[0\].optional: expected true or false"),
        ('segments = "utm_source"\n', r"journey.toml: segments: expected a list"),
        (STAGES + '[[stages]]\nname = "a"\nactivities = ["web.y"]\n', r"stage names repeat"),
        (
            STAGES + '[[stages]]\nname = "b"\nactivities = ["web.x"]\n',
            r"stages 'a' and 'b' overlap",
        ),
        (
            '[[stages]]\nname = "visit"\nactivities = ["web.page_view:*"]\n'
            '[[stages]]\nname = "pricing"\nactivities = ["web.page_view:/pricing"]\n',
            r"stages 'visit' and 'pricing' overlap: 'web.page_view:\*' and 'web.page_view:/pricing'",
        ),
        (
            STAGES + '[[stages]]\nname = "b"\nactivities = ["web.b"]\ngroup = "g"\n'
            '[[stages]]\nname = "c"\nactivities = ["web.c"]\n'
            '[[stages]]\nname = "d"\nactivities = ["web.d"]\ngroup = "g"\n',
            r"stages\[3\].group: alternatives of group 'g' must be listed next to each other",
        ),
        (
            STAGES + '[[followups]]\nname = "r"\ntriggers = ["web.x"]\nresponses = ["crm.*"]\n'
            'sla = "4h"\nconverts_to = "nowhere"\n',
            r"followups\[0\].converts_to: no stage 'nowhere'",
        ),
        (
            '[[followups]]\nname = "r"\ntriggers = ["web.x"]\nresponses = ["crm.*"]\n',
            r"followups\[0\].sla: missing",
        ),
        (
            '[[followups]]\nname = "r"\ntriggers = []\nresponses = ["crm.*"]\nsla = "1d"\n',
            r"followups\[0\].triggers: expected a non-empty list",
        ),
        ("name = \n", r"journey.toml: not valid TOML"),
    ],
)
def test_errors_name_the_file_and_the_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(SpecError, match=expected):
        load(tmp_path, text)


def test_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="journey spec not found"):
        load_spec(tmp_path / "nope.toml")


def test_durations() -> None:
    assert parse_duration("90m", "w") == timedelta(minutes=90)
    assert parse_duration("2h", "w") == timedelta(hours=2)
    assert parse_duration("3d", "w") == timedelta(days=3)
    assert parse_duration("1w", "w") == timedelta(weeks=1)
    assert parse_duration(45, "w") == timedelta(seconds=45)
    with pytest.raises(SpecError):
        parse_duration(True, "w")


def test_alternatives_may_overlap_and_share_a_position(tmp_path: Path) -> None:
    spec = load(
        tmp_path,
        STAGES + '[[stages]]\nname = "demo"\nactivities = ["crm.meeting:*"]\ngroup = "talk"\n'
        '[[stages]]\nname = "call"\nactivities = ["crm.meeting:call", "crm.call_*"]\n'
        'group = "talk"\noptional = true\n',
    )
    assert [s.group for s in spec.stages] == [None, "talk", "talk"]


def test_glob_overlap() -> None:
    assert patterns_overlap("web.*", "*.signed_up")
    assert patterns_overlap("crm.meeting:demo", "crm.meeting:[d]*")
    assert not patterns_overlap("crm.meeting:demo", "crm.meeting:[!d]*")
    assert not patterns_overlap("web.signed_up", "web.demo_requested")
    assert not patterns_overlap("a*", "b*")
    assert patterns_overlap("a?c", "*c")


def test_the_sample_spec_loads_and_its_patterns_exist() -> None:
    spec = load_spec(ROOT / "data" / "sample" / "journey.toml")
    assert [s.name for s in spec.stages] == [
        "visit", "signup", "demo_requested", "demo_held", "trial", "paid", "renewed", "churned"
    ]  # fmt: skip
    renewed = spec.stages[-2]
    assert renewed.occurrence == 2 and renewed.activities == spec.stages[-3].activities
    assert spec.mode == "ordered" and spec.drift_window == timedelta(days=30)
    assert spec.followups[0].sla == timedelta(hours=4) and spec.followups[0].business_hours
    assert spec.calendar.timezone == "Europe/Berlin"
    assert spec.calendar.opens == time(9) and date(2026, 10, 3) in spec.calendar.holidays
    assert spec.segments == ("company_size", "utm_source", "size")
    size = spec.segment_defs[-1]
    assert (size.bins, size.labels, size.source) == ((50.0,), ("SMB", "Enterprise"), "account")
    known = [
        "web.page_view:/", "web.signed_up", "web.demo_requested", "crm.meeting:demo",
        "billing.subscription_created", "web.trial_started", "billing.invoice_paid",
        "crm.lead_created", "crm.call_completed", "crm.email_sent", "billing.payment_failed",
        "email.delivered", "support.ticket_created", "support.agent_replied",
        "billing.subscription_canceled",
    ]  # fmt: skip
    assert check_patterns(spec, known) == []
    problems = check_patterns(spec, ["web.page_view:/"])
    assert "stage 'signup': pattern 'web.signed_up' matches no activity" in problems


def test_a_stage_named_like_an_outcome_but_not_marked_as_one_is_reported() -> None:
    """A churn stage on the product's own "account deleted" event is drawn and mined as progress
    unless the spec lists the event as an outcome: the check says so; the built-in cancellation
    and a listed event are outcomes already."""
    stages = [
        {"name": "paid", "activities": ["billing.invoice_paid"]},
        {"name": "churned", "activities": ["app.account_deleted"]},
    ]
    known = ["billing.invoice_paid", "app.account_deleted", "billing.subscription_canceled"]
    problems = check_patterns(spec_from_dict({"name": "t", "stages": stages}), known)
    assert problems == [
        "stage 'churned' reads like an outcome, but ['app.account_deleted'] are no outcome "
        "activities: list them in outcome_activities, or reaching it counts as progress"
    ]
    listed = {"name": "t", "stages": stages, "outcome_activities": ["app.account_deleted"]}
    assert check_patterns(spec_from_dict(listed), known) == []
    stages[1]["activities"] = ["billing.subscription_canceled"]
    assert check_patterns(spec_from_dict({"name": "t", "stages": stages}), known) == []


PAID = '[[stages]]\nname = "paid"\nactivities = ["billing.invoice_paid"]\n'
RENEWED = '[[stages]]\nname = "renewed"\nactivities = ["billing.invoice_*"]\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            PAID + 'where = { plan = { "~" = "free" } }\n',
            r"stages\[0\].where.plan: unknown operator '~'",
        ),
        (PAID + 'where = { amount = { ">=" = "1000" } }\n', r"where.amount: '>=' compares numbers"),
        (PAID + 'where = { amount = { ">" = true } }\n', r"where.amount: '>' compares numbers"),
        (PAID + "where = { plan = { in = [] } }\n", r"where.plan: 'in' needs a non-empty list"),
        (PAID + 'where = { plan = { in = "pro" } }\n', r"where.plan: 'in' needs a non-empty list"),
        (PAID + "where = { plan = {} }\n", r"where.plan: empty condition"),
        (PAID + "where = { plan = [1] }\n", r"where.plan: expected a string, number or boolean"),
        (PAID + 'where = { amount = { ">" = inf } }\n', r"where.amount: inf is not a finite"),
        (PAID + 'where = { "pl an" = "pro" }\n', r"where.pl an: attribute 'pl an' is not a plain"),
        (PAID + 'where = "plan = pro"\n', r"stages\[0\].where: expected a table"),
        (PAID + "occurrence = 0\n", r"stages\[0\].occurrence: a whole number from 1 to 1000"),
        (PAID + "occurrence = 1.5\n", r"stages\[0\].occurrence: a whole number"),
        (PAID + RENEWED, r"stages 'paid' and 'renewed' overlap"),
        # occurrence must grow along the journey: an earlier stage with more would be unreachable
        (PAID + "occurrence = 2\n" + RENEWED, r"stages 'paid' and 'renewed' overlap"),
        # conditions on different attributes, or numeric ranges, do not make them distinct
        (
            PAID + 'where = { plan = "pro" }\n' + RENEWED + 'where = { reason = "cycle" }\n',
            r"stages 'paid' and 'renewed' overlap",
        ),
        (
            PAID + 'where = { n = { "<" = 2 } }\n' + RENEWED + 'where = { n = { ">" = 5 } }\n',
            r"stages 'paid' and 'renewed' overlap",
        ),
        (
            PAID
            + 'where = { plan = { in = ["a", "b"] } }\n'
            + RENEWED
            + 'where = { plan = { in = ["b", "c"] } }\n',
            r"stages 'paid' and 'renewed' overlap",
        ),
        ('mode = "loose"\n', r"journey.toml: mode = 'loose'; use one of \['ordered', 'strict'"),
        ('drift = { window = "0d" }\n', r"journey.toml: drift.window: duration must be positive"),
        ('drift = { size = "30d" }\n', r"journey.toml: drift: unknown key\(s\) \['size'\]"),
    ],
)
def test_where_and_occurrence_errors(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(SpecError, match=expected):
        load(tmp_path, text)


@pytest.mark.parametrize(
    "text",
    [
        PAID + RENEWED + "occurrence = 2\n",  # the second paid invoice
        PAID + 'where = { reason = "create" }\n' + RENEWED + 'where = { reason = "cycle" }\n',
        PAID + 'where = { plan = "free" }\n' + RENEWED + 'where = { plan = { "!=" = "free" } }\n',
        PAID
        + 'where = { plan = { in = ["a", "b"] } }\n'
        + RENEWED
        + 'where = { plan = { "not in" = ["a", "b", "c"] } }\n',
        PAID
        + 'where = { plan = { in = ["a"] } }\n'
        + RENEWED
        + 'where = { plan = { in = ["b"] } }\n',
    ],
)
def test_stages_may_share_an_activity_when_told_apart(tmp_path: Path, text: str) -> None:
    spec = load(tmp_path, text)
    assert [s.name for s in spec.stages] == ["paid", "renewed"]


def test_where_occurrence_mode_and_drift_are_read(tmp_path: Path) -> None:
    spec = load(
        tmp_path,
        'mode = "strict"\ndrift = { window = "2w" }\n'
        + PAID
        + 'where = { billing_reason = "subscription_cycle", plan = { "!=" = "free" }, '
        'amount_paid = { ">=" = 1000, "<" = 5000 }, status = { in = ["active", "trialing"] } }\n'
        "occurrence = 2\n",
    )
    stage = spec.stages[0]
    assert [(c.key, c.op, c.value) for c in stage.where] == [
        ("billing_reason", "=", "subscription_cycle"),
        ("plan", "!=", "free"),
        ("amount_paid", ">=", 1000),
        ("amount_paid", "<", 5000),
        ("status", "in", ("active", "trialing")),
    ]
    assert stage.occurrence == 2
    assert spec.mode == "strict" and spec.drift_window == timedelta(weeks=2)
    default = load(tmp_path, PAID)
    assert default.mode == "ordered" and default.drift_window == timedelta(days=30)
    assert default.stages[0].where == () and default.stages[0].occurrence == 1


@pytest.mark.parametrize(
    ("segments", "expected"),
    [
        ('[{ attribute = "x" }]', r"segments\[0\].name: expected a non-empty string"),
        (
            '[{ name = "s", bins = [] }]',
            r"segments\[0\].bins: expected a non-empty list of numbers",
        ),
        ('[{ name = "s", bins = ["50"] }]', r"segments\[0\].bins: expected a non-empty list"),
        ('[{ name = "s", bins = [50, 10] }]', r"segments\[0\].bins: bin edges must be finite and"),
        (
            '[{ name = "s", bins = [50], labels = ["a"] }]',
            r"segments\[0\].labels: 1 bin edge\(s\) make 2 groups, got 1 label",
        ),
        ('[{ name = "s", labels = ["a"] }]', r"segments\[0\].labels: labels name bins"),
        ('[{ name = "s", bins = [1], map = { a = "b" } }]', r"segments\[0\]: give either bins"),
        ('[{ name = "s", map = { a = 1 } }]', r"segments\[0\].map.a: expected a non-empty string"),
        ('[{ name = "s", from = "company" }]', r"segments\[0\].from: use one of \['person'"),
        ('[{ name = "s", colour = 1 }]', r"segments\[0\]: unknown key\(s\) \['colour'\]"),
        (
            '[{ name = "s", attribute = "a b" }]',
            r"segments\[0\].attribute: segment attribute 'a b'",
        ),
        ('["s", { name = "s", bins = [1] }]', r"segments: segment attributes repeat"),
        ("[1]", r"segments\[0\]: expected an attribute name or a table"),
    ],
)
def test_segment_errors(tmp_path: Path, segments: str, expected: str) -> None:
    with pytest.raises(SpecError, match=expected):
        load(tmp_path, f"segments = {segments}\n")


def test_segments_beyond_raw_strings(tmp_path: Path) -> None:
    spec = load(
        tmp_path,
        'segments = ["utm_source", { name = "size", attribute = "NumberOfEmployees", '
        'bins = [50], labels = ["SMB", "Enterprise"], from = "account" }, '
        '{ name = "region", attribute = "country", map = { Germany = "EU", France = "EU" } }, '
        '{ name = "band", attribute = "n", bins = [10, 100.5] }]\n',
    )
    assert spec.segments == ("utm_source", "size", "region", "band")
    raw, size, region, band = spec.segment_defs
    assert (raw.attribute, raw.bins, raw.map, raw.source) == ("utm_source", (), (), "person")
    assert (size.attribute, size.bins, size.labels) == (
        "NumberOfEmployees",
        (50.0,),
        ("SMB", "Enterprise"),
    )
    assert size.source == "account"
    assert region.map == (("Germany", "EU"), ("France", "EU"))
    assert band.labels == ("<10", "10-100.5", ">=100.5")
