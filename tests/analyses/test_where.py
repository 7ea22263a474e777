"""Stage markers with ``where`` and ``occurrence``, churn and going back, in every order mode:
the SQL funnel against a plain-Python reading of the definitions (docs/metrics.md)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from journeymine.analyses import conformance, funnel, markers
from journeymine.mining.eventlog import log_from_touchpoints
from journeymine.spec import check_attributes, load_spec, spec_from_dict
from tests.fixtures import SAMPLE_JOURNEY, sample_truths

D0 = datetime.fromisoformat("2026-01-01T00:00:00+00:00")
WINDOW = timedelta(days=40)
PRO = {"plan": "pro", "amount_paid": 2000}

SPEC = spec_from_dict(
    {
        "name": "lifecycle",
        "window": "40d",
        "stages": [
            {"name": "trial", "activities": ["billing.subscription_created"]},
            {
                "name": "paid",
                "activities": ["billing.invoice_paid"],
                "where": {"plan": {"!=": "free"}, "amount_paid": {">=": 1000}},
            },
            {
                "name": "renewed",
                "activities": ["billing.invoice_paid"],
                "where": {"plan": {"!=": "free"}},
                "occurrence": 2,
            },
            {"name": "churned", "activities": ["billing.subscription_canceled"]},
        ],
    }
)

# (person, day, activity, attributes)
EVENTS: list[tuple[int, float, str, dict[str, object]]] = [
    # pays, renews a month later, never cancels
    (1, 0, "billing.subscription_created", {}),
    (1, 1, "billing.invoice_paid", PRO),
    (1, 31, "billing.invoice_paid", PRO),
    # a free invoice first: paid at the second, renewed at the third, then cancels
    (2, 0, "billing.subscription_created", {}),
    (2, 1, "billing.invoice_paid", {"plan": "free", "amount_paid": 0}),
    (2, 5, "billing.invoice_paid", PRO),
    (2, 35, "billing.invoice_paid", PRO),
    (2, 40, "billing.subscription_canceled", {}),
    # too small an amount (500), then an amount that is not a number: never paid
    (3, 0, "billing.subscription_created", {}),
    (3, 1, "billing.invoice_paid", {"plan": "pro", "amount_paid": 500}),
    (3, 2, "billing.invoice_paid", {"plan": "pro", "amount_paid": "lots"}),
    # pays, cancels before any renewal (churn straight after the first payment)
    (4, 0, "billing.subscription_created", {}),
    (4, 1, "billing.invoice_paid", PRO),
    (4, 10, "billing.subscription_canceled", {}),
    # no plan on the invoice: "plan != free" is not proven, so not paid
    (5, 0, "billing.subscription_created", {}),
    (5, 1, "billing.invoice_paid", {"amount_paid": 2000}),
    # back to an earlier stage: a new trial after paying, then the renewal
    (6, 0, "billing.subscription_created", {}),
    (6, 1, "billing.invoice_paid", PRO),
    (6, 3, "billing.subscription_created", {}),
    (6, 31, "billing.invoice_paid", PRO),
    # cancels first, then starts a trial and pays: only "any" counts the early churn
    (7, 0, "billing.subscription_canceled", {}),
    (7, 2, "billing.subscription_created", {}),
    (7, 3, "billing.invoice_paid", PRO),
    # two invoices at the same instant: the tie breaks on event order
    (8, 79, "billing.subscription_created", {}),
    (8, 80, "billing.invoice_paid", PRO),
    (8, 80, "billing.invoice_paid", PRO),
    # a trial at the cut-off: open
    (9, 100, "billing.subscription_created", {}),
]


def _make(rows: list[tuple[int, float, str, dict[str, object]]]) -> duckdb.DuckDBPyConnection:
    frame = pd.DataFrame(
        {
            "event_id": range(1, len(rows) + 1),
            "person_id": [r[0] for r in rows],
            "activity": [r[2] for r in rows],
            "occurred_at": [D0 + timedelta(days=r[1]) for r in rows],
            "attributes": [json.dumps(r[3]) for r in rows],
        }
    )
    con = duckdb.connect()
    con.register("frame", frame)
    con.execute(
        "CREATE TABLE touchpoints AS SELECT event_id, person_id, NULL::BIGINT AS account_id, "
        "activity, 'customer' AS actor, occurred_at, event_id AS seq, NULL AS owner, "
        "attributes::JSON AS attributes FROM frame"
    )
    return con


# The definitions, read independently of the SQL: predicates in Python over the attributes.
def _number(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


PREDICATES: list[Callable[[str, dict[str, object]], bool]] = [
    lambda a, _: a == "billing.subscription_created",
    lambda a, x: (
        a == "billing.invoice_paid"
        and x.get("plan") not in (None, "free")
        and (_number(x.get("amount_paid")) or 0) >= 1000
    ),
    lambda a, x: a == "billing.invoice_paid" and x.get("plan") not in (None, "free"),
    lambda a, _: a == "billing.subscription_canceled",
]
OCCURRENCE = [1, 1, 2, 1]
NAMES = ["trial", "paid", "renewed", "churned"]


def _reference(rows: list[tuple[int, float, str, dict[str, object]]], mode: str) -> pd.DataFrame:
    """Per person and stage entered: entered day and status, by the written definitions."""
    events = pd.DataFrame(rows, columns=["person", "day", "activity", "attributes"])
    events["seq"] = range(1, len(events) + 1)
    cutoff = events.day.max()
    window = WINDOW / timedelta(days=1)
    out = []
    for person, ev in events.groupby("person"):
        ev = ev.sort_values(["day", "seq"])
        keys = list(zip(ev.day, ev.seq, strict=True))
        marks = [
            [k for k, a, x in zip(keys, ev.activity, ev["attributes"], strict=True) if pred(a, x)]
            for pred in PREDICATES
        ]
        if mode == "any":
            entries = {
                i: m[OCCURRENCE[i] - 1] for i, m in enumerate(marks) if len(m) >= OCCURRENCE[i]
            }
        else:
            entries = {0: marks[0][0]} if marks[0] else {}
        i = 0
        while i in entries or (mode == "any" and i < len(NAMES)):
            if i not in entries:
                i += 1
                continue
            start = entries[i]
            status, nxt = ("final", None) if i == len(NAMES) - 1 else ("", None)
            if not status:
                # counted from the entering event, inclusive; reached strictly after it
                reached = []
                for j in range(len(NAMES)):
                    if j == i or (mode != "strict" and j != i + 1):
                        continue
                    since = [k for k in marks[j] if k >= start and k[0] <= start[0] + window]
                    hits = [k for n, k in enumerate(since, 1) if n >= OCCURRENCE[j] and k > start]
                    if hits:
                        reached.append((hits[0], j))
                if reached:
                    nxt = min(reached)
                if nxt and nxt[1] == i + 1:
                    status = "converted"
                    if mode != "any":
                        entries[i + 1] = nxt[0]
                elif nxt:
                    status = "dropped"
                else:
                    status = "open" if start[0] + window > cutoff else "dropped"
            out.append((person, NAMES[i], start[0], status))
            i += 1
    frame = pd.DataFrame(out, columns=["case_key", "stage", "day", "status"])
    return frame.sort_values(["case_key", "stage"]).reset_index(drop=True)


def _entries(con: duckdb.DuckDBPyConnection, mode: str) -> pd.DataFrame:
    entries = funnel.compute_entries(con, SPEC, log_from_touchpoints(con), mode=mode)
    entries["day"] = (entries.entered_at - D0).dt.total_seconds() / 86400
    frame = entries[["case_key", "stage", "day", "status"]]
    return frame.sort_values(["case_key", "stage"]).reset_index(drop=True)


@pytest.mark.parametrize("mode", ["ordered", "strict", "any"])
def test_where_and_occurrence_match_the_definitions(mode: str) -> None:
    got = _entries(_make(EVENTS), mode)
    expected = _reference(EVENTS, mode)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_where_and_occurrence_by_hand() -> None:
    """A few rows read off the log above, so the reference itself is pinned."""
    con = _make(EVENTS)
    ordered = _entries(con, "ordered").set_index(["case_key", "stage"])
    assert ordered.loc[(2, "paid"), "day"] == 5  # the free invoice is not a payment
    assert ordered.loc[(2, "renewed"), "day"] == 35  # second paid invoice since paying
    assert ordered.loc[(2, "renewed"), "status"] == "converted"  # then cancelled
    assert ordered.loc[(1, "renewed"), "day"] == 31
    assert ordered.loc[(1, "renewed"), "status"] == "dropped"  # no cancellation in 40 days
    assert ordered.loc[(3, "trial"), "status"] == "dropped"  # 500 and "lots" are not >= 1000
    assert (5, "paid") not in ordered.index  # no plan: not proven to be a paid plan
    assert ordered.loc[(8, "renewed"), "day"] == 80  # same instant, the later event renews
    assert ordered.loc[(9, "trial"), "status"] == "open"
    assert ordered.loc[(6, "renewed"), "day"] == 31  # a new trial in between is ignored
    strict = _entries(con, "strict").set_index(["case_key", "stage"])
    assert strict.loc[(6, "paid"), "status"] == "dropped"  # went back to trial
    assert strict.loc[(4, "paid"), "status"] == "dropped"  # churned before renewing
    anyorder = _entries(con, "any").set_index(["case_key", "stage"])
    assert anyorder.loc[(7, "churned"), "day"] == 0
    assert anyorder.loc[(4, "churned"), "day"] == 10


def test_funnel_counts_follow_an_independent_count() -> None:
    """stage_funnel entered/converted per stage against a pandas count of the reference."""
    con = _make(EVENTS)
    got = funnel.write_stage_funnel(con, SPEC, log_from_touchpoints(con))
    got = got[got.segment == "all"].set_index("stage")
    expected = _reference(EVENTS, "ordered")
    for stage, part in expected.groupby("stage"):
        assert got.loc[stage, "entered"] == len(part)
        assert got.loc[stage, "converted"] == (part.status == "converted").sum()
        assert got.loc[stage, "dropped"] == (part.status == "dropped").sum()


def test_the_log_may_carry_the_attributes_itself() -> None:
    """A log with an ``attributes`` column needs no touchpoints table to join."""
    con = _make(EVENTS)
    con.execute(
        "CREATE TABLE own_log AS SELECT person_id AS case_key, activity, occurred_at AS ts, seq, "
        "attributes FROM touchpoints"
    )
    con.execute("DROP TABLE touchpoints")
    entries = funnel.compute_entries(con, SPEC, "own_log")
    entries["day"] = (entries.entered_at - D0).dt.total_seconds() / 86400
    got = entries[["case_key", "stage", "day", "status"]].sort_values(["case_key", "stage"])
    expected = _reference(EVENTS, "ordered")
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected, check_dtype=False)


def test_the_spec_mode_is_the_default() -> None:
    con = _make(EVENTS)
    strict = spec_from_dict({**_raw(), "mode": "strict"})
    entries = funnel.compute_entries(con, strict, log_from_touchpoints(con))
    statuses = _statuses(entries)
    assert statuses[(6, "paid")] == "dropped"  # strict, as the spec says
    entries = funnel.compute_entries(con, SPEC, log_from_touchpoints(con))
    statuses = _statuses(entries)
    assert statuses[(6, "paid")] == "converted"  # ordered, the default


def _statuses(entries: pd.DataFrame) -> dict[tuple[int, str], str]:
    return {(r.case_key, r.stage): r.status for r in entries.itertuples()}


def _raw() -> dict[str, object]:
    return {
        "name": "lifecycle",
        "window": "40d",
        "stages": [
            {"name": s.name, "activities": list(s.activities), "occurrence": s.occurrence}
            | ({"where": {c.key: {c.op: c.value} for c in s.where}} if s.where else {})
            for s in SPEC.stages
        ],
    }


def test_conformance_reads_renewals_and_going_back() -> None:
    con = _make(EVENTS)
    cases = conformance.check_conformance(con, SPEC, log_from_touchpoints(con), with_fitness=False)
    stages = dict(zip(cases.case_key, cases.stages, strict=True))
    # Churning is an outcome, not a stage of the designed path: the one who renewed and then
    # cancelled conforms; the one who cancelled after paying never reached renewed (drop-off),
    # where judging churn as the goal called it "skipped renewed", finishing the journey.
    assert "churned" in {s.name for s in SPEC.stages}
    assert stages[1] == ["trial", "paid", "renewed"]
    assert stages[2] == ["trial", "paid", "renewed"]
    assert stages[4] == ["trial", "paid"]
    assert stages[6] == ["trial", "paid", "trial", "renewed"]
    by_case = cases.set_index("case_key")
    assert by_case.loc[2, "conforms"] and by_case.loc[2, "completed"]
    assert by_case.loc[4, "deviations"] == ["never reached renewed"]
    assert not by_case.loc[4, "judged"] and not by_case.loc[4, "completed"]
    assert "moved back to trial" in by_case.loc[6, "deviations"]


def test_check_attributes_names_what_exists() -> None:
    con = _make(EVENTS)
    spec = spec_from_dict(
        {
            "name": "t",
            "stages": [
                {
                    "name": "paid",
                    "activities": ["billing.invoice_paid"],
                    "where": {"plann": "pro", "plan": "pro"},
                }
            ],
        }
    )
    assert check_attributes(spec, con) == [
        "stage 'paid': where attribute 'plann' is on no touchpoint of "
        "['billing.invoice_paid']; they carry ['amount_paid', 'plan']"
    ]
    assert check_attributes(SPEC, con) == []


def test_occurrence_counts_after_entering_a_stage_of_other_activities() -> None:
    """``active`` = the third page view after signing up: views before the signup don't
    count, and the signup itself is not a view (so it is not the first of the three)."""
    spec = spec_from_dict(
        {
            "name": "t",
            "window": "10d",
            "stages": [
                {"name": "signup", "activities": ["web.signed_up"]},
                {"name": "active", "activities": ["web.page_view:*"], "occurrence": 3},
            ],
        }
    )
    view = "web.page_view:/"
    rows: list[tuple[int, float, str, dict[str, object]]] = [
        (1, 0, view, {}),
        (1, 0.5, view, {}),
        (1, 1, "web.signed_up", {}),
        (1, 2, view, {}),
        (1, 3, view, {}),
        (1, 4, view, {}),  # the third view since signing up
        (2, 1, "web.signed_up", {}),
        (2, 2, view, {}),
        (2, 3, view, {}),  # only two: dropped once the window is over
        (3, 30, view, {}),  # the cut-off
    ]
    con = _make(rows)
    for mode in ("ordered", "strict"):
        entries = funnel.compute_entries(con, spec, log_from_touchpoints(con), mode=mode)
        entries = entries.set_index(["case_key", "stage"])
        assert entries.loc[(1, "active"), "entered_at"] == D0 + timedelta(days=4), mode
        assert entries.loc[(2, "signup"), "status"] == "dropped", mode
    # any order: the third view of the whole journey, before the signup
    entries = funnel.compute_entries(con, spec, log_from_touchpoints(con), mode="any")
    entries = entries.set_index(["case_key", "stage"])
    assert entries.loc[(1, "active"), "entered_at"] == D0 + timedelta(days=2)
    assert (2, "active") not in entries.index  # two views in all


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        # rows: 0 {plan: pro, seats: 2, trial: true}, 1 {plan: free, seats: "2.0"},
        #       2 {seats: 10, trial: false}, 3 {} , 4 {plan: "it's", seats: "x"}
        ({"plan": "pro"}, [0]),
        ({"plan": {"!=": "free"}}, [0, 4]),  # a missing plan is not "not free"
        ({"plan": {"in": ["pro", "it's"]}}, [0, 4]),  # quotes reach SQL as literals
        ({"plan": {"not in": ["pro"]}}, [1, 4]),
        ({"seats": 2}, [0, 1]),  # numbers compare as numbers: "2.0" is 2
        ({"seats": {"in": [2, 10]}}, [0, 1, 2]),
        ({"seats": {">": 2}}, [2]),  # "x" is not a number: fails every comparison
        ({"seats": {"<=": 2, ">=": 2}}, [0, 1]),
        ({"trial": True}, [0]),
        ({"trial": {"!=": True}}, [2]),
    ],
)
def test_each_operator_on_json_attributes(where: dict[str, object], expected: list[int]) -> None:
    rows = [
        {"plan": "pro", "seats": 2, "trial": True},
        {"plan": "free", "seats": "2.0"},
        {"seats": 10, "trial": False},
        {},
        {"plan": "it's", "seats": "x"},
    ]
    spec = spec_from_dict(
        {"name": "t", "stages": [{"name": "s", "activities": ["a"], "where": where}]}
    )
    con = duckdb.connect()
    con.execute("CREATE TABLE t (i INT, activity VARCHAR, attributes JSON)")
    con.executemany(
        "INSERT INTO t VALUES (?, 'a', ?)", [(i, json.dumps(r)) for i, r in enumerate(rows)]
    )
    sql = markers.marker_sql(spec.stages[0], "activity", "attributes")
    got = [i for (i,) in con.execute(f"SELECT i FROM t WHERE {sql} ORDER BY i").fetchall()]
    assert got == expected


SEGMENTED = spec_from_dict(
    {
        "name": "t",
        "window": "10d",
        "stages": [
            {"name": "visit", "activities": ["web.page_view:*"]},
            {"name": "signup", "activities": ["web.signed_up"]},
        ],
        "segments": [
            "utm_source",
            {
                "name": "size",
                "attribute": "NumberOfEmployees",
                "bins": [50],
                "labels": ["SMB", "Enterprise"],
                "from": "account",
            },
            {"name": "own_size", "attribute": "NumberOfEmployees", "bins": [50, 200]},
            {"name": "region", "attribute": "country", "map": {"Germany": "EU", "France": "EU"}},
        ],
    }
)
# (person, account, day, activity, attributes); person None = an account-level record
SEGMENT_ROWS: list[tuple[int | None, int | None, float, str, dict[str, object]]] = [
    (None, 10, -5, "crm.account_created", {"NumberOfEmployees": 20}),
    (1, 10, 0, "web.page_view:/", {"utm_source": "ads", "country": "Germany"}),
    (1, 10, 1, "web.signed_up", {}),
    (2, 20, 0, "web.page_view:/", {"country": "France"}),
    (None, 20, 0.5, "segment.group", {"NumberOfEmployees": "250"}),  # told after the visit
    (2, 20, 1, "web.signed_up", {"utm_source": "mail"}),
    (3, None, 0, "web.page_view:/", {"NumberOfEmployees": "many", "country": "USA"}),
    (4, 10, 2, "web.page_view:/", {}),  # the account's size was known long before
    (4, 10, 3, "web.signed_up", {"NumberOfEmployees": 500}),
    (5, 30, -1, "web.form_submitted", {"NumberOfEmployees": 50}),  # on a bin edge
    (5, 30, 0, "web.page_view:/", {}),
    (5, 30, 0.5, "web.signed_up", {"NumberOfEmployees": 10}),  # later: the first one holds
    (6, None, 20, "web.page_view:/", {}),  # the cut-off
]


def _segment_warehouse() -> tuple[duckdb.DuckDBPyConnection, pd.DataFrame]:
    rows = SEGMENT_ROWS
    frame = pd.DataFrame(
        {
            "event_id": range(1, len(rows) + 1),
            "person_id": pd.array([r[0] for r in rows], dtype="Int64"),
            "account_id": pd.array([r[1] for r in rows], dtype="Int64"),
            "occurred_at": [D0 + timedelta(days=r[2]) for r in rows],
            "activity": [r[3] for r in rows],
            "attributes": [json.dumps(r[4]) for r in rows],
        }
    )
    con = duckdb.connect()
    con.register("frame", frame)
    con.execute(
        "CREATE TABLE touchpoints AS SELECT event_id, person_id, account_id, activity, "
        "'customer' AS actor, occurred_at, event_id AS seq, NULL AS owner, "
        "attributes::JSON AS attributes FROM frame"
    )
    frame["attributes"] = [r[4] for r in rows]
    return con, frame


def _known(tp: pd.DataFrame, person: int, attribute: str, account: bool, at: datetime) -> object:
    """The first value of ``attribute`` on the person's (and account's) touchpoints by ``at``."""
    accounts = set(tp.loc[tp.person_id == person, "account_id"].dropna())
    mine = (tp.person_id == person).fillna(False)
    theirs = tp.account_id.isin(accounts).fillna(False) if account else False
    rows = tp[(mine | theirs) & (tp.occurred_at <= at)].sort_values(["occurred_at", "event_id"])
    values = [a[attribute] for a in rows["attributes"] if attribute in a]
    return values[0] if values else None


def _binned(value: object, edges: list[float], labels: list[str]) -> str:
    number = _number(value)
    if number is None:
        return "(unknown)"
    return labels[sum(number >= e for e in edges)]


def test_segments_bin_map_and_read_the_account() -> None:
    con, tp = _segment_warehouse()
    frame = funnel.write_stage_funnel(con, SEGMENTED, log_from_touchpoints(con))
    ranked = frame.sort_values("segment_rank").segment.drop_duplicates().tolist()
    # bins keep their order, whatever the labels' alphabet; (unknown) comes last
    assert [s for s in ranked if s.startswith("size=")] == [
        "size=SMB", "size=Enterprise", "size=(unknown)"
    ]  # fmt: skip
    assert [s for s in ranked if s.startswith("own_size=")] == [
        "own_size=50-200",
        "own_size=>=200",
        "own_size=(unknown)",
    ]
    got = frame.set_index(["segment", "stage"]).entered.to_dict()
    entries = con.execute("SELECT case_key, stage, entered_at FROM stage_entries").df()
    labels: list[tuple[str, str]] = []
    for e in entries.itertuples():

        def value(attribute: str, account: bool = False, e: object = e) -> object:
            return _known(tp, e.case_key, attribute, account, e.entered_at)  # type: ignore[attr-defined]

        utm = value("utm_source")
        country = value("country")
        region = {"Germany": "EU", "France": "EU"}.get(str(country), country)
        labels += [
            (f"utm_source={utm if utm is not None else '(unknown)'}", e.stage),
            (
                f"size={_binned(value('NumberOfEmployees', True), [50], ['SMB', 'Enterprise'])}",
                e.stage,
            ),
            (
                f"own_size={_binned(value('NumberOfEmployees'), [50, 200], ['<50', '50-200', '>=200'])}",
                e.stage,
            ),
            (f"region={region if region is not None else '(unknown)'}", e.stage),
        ]
    expected = pd.Series(labels).value_counts().to_dict()
    assert {k: v for k, v in got.items() if k[0] != "all"} == expected
    # read off the rows by hand, so the reference is pinned too
    assert got[("size=SMB", "visit")] == 2  # persons 1 and 4: their account has 20 people
    assert got[("size=Enterprise", "visit")] == 1  # person 5: 50 is on the edge, the upper bin
    assert got[("size=(unknown)", "visit")] == 3  # 2 (told later), 3 ("many"), 6
    assert got[("size=Enterprise", "signup")] == 2  # person 2's account by then, and 5
    assert got[("own_size=(unknown)", "visit")] == 5  # own touchpoints only: only 5 knows
    assert got[("region=EU", "visit")] == 2 and got[("region=USA", "visit")] == 1


@pytest.fixture
def sample(sample_copy: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The loaded sample, writable: these tests write the funnel tables again."""
    con = duckdb.connect(str(sample_copy))
    yield con
    con.close()


def test_the_sample_renewals_and_churn_come_back(sample: duckdb.DuckDBPyConnection) -> None:
    """In ``any`` order every stage counts whoever reached it: the planted truths."""
    truths = sample_truths()
    spec = load_spec(SAMPLE_JOURNEY)
    assert [s.name for s in spec.stages][-3:] == ["paid", "renewed", "churned"]
    log = log_from_touchpoints(sample, case=spec.case)
    got = funnel.write_stage_funnel(sample, spec, log, mode="any")
    entered = got[got.segment == "all"].set_index("stage").entered
    retention = truths["retention"]
    assert entered["paid"] == truths["stages"]["paid"]
    assert entered["renewed"] == retention["renewed"] == truths["stages"]["renewal"]
    assert entered["churned"] == truths["stages"]["churned"]
    assert entered["churned"] == retention["churned_after_paying"] + retention["cancelled_in_trial"]
    entries = sample.execute("SELECT case_key, stage, entered_at FROM stage_entries").df()
    at = entries.pivot(index="case_key", columns="stage", values="entered_at")
    payers = at[at.paid.notna()]
    month = payers.paid.dt.tz_convert("UTC").dt.strftime("%Y-%m")
    for cohort, expected in retention["by_first_payment_month"].items():
        assert (month == cohort).sum() == expected["paid"], cohort
        assert payers[month == cohort].renewed.notna().sum() == expected["renewed"], cohort
        churned = payers[month == cohort].churned > payers[month == cohort].paid
        assert churned.sum() == expected["churned"], cohort


def test_the_sample_renewals_in_order(sample: duckdb.DuckDBPyConnection) -> None:
    """In the designed order: of the people who entered ``paid``, those with another paid
    invoice within 45 days renewed (pandas over the invoices)."""
    spec = load_spec(SAMPLE_JOURNEY)
    got = funnel.write_stage_funnel(sample, spec, log_from_touchpoints(sample, case=spec.case))
    assert spec.mode == "ordered"
    paid = sample.execute(
        "SELECT case_key, entered_at, entered_seq FROM stage_entries WHERE stage = 'paid'"
    ).df()
    invoices = sample.execute(
        "SELECT person_id AS case_key, occurred_at, seq FROM touchpoints "
        "WHERE activity = 'billing.invoice_paid'"
    ).df()
    joined = invoices.merge(paid, on="case_key")
    later = (joined.occurred_at > joined.entered_at) | (
        (joined.occurred_at == joined.entered_at) & (joined.seq > joined.entered_seq)
    )
    within = joined.occurred_at <= joined.entered_at + pd.Timedelta(days=45)
    renewed = joined[later & within].case_key.nunique()
    rows = got[got.segment == "all"].set_index("stage")
    assert rows.loc["renewed", "entered"] == rows.loc["paid", "converted"] == renewed > 0
    sizes = got[got.segment.str.startswith("size=") & (got.stage == "demo_held")]
    assert set(sizes.segment) <= {"size=SMB", "size=Enterprise", "size=(unknown)"}
    assert sizes.entered.sum() == rows.loc["demo_held", "entered"]


def test_drivers_leave_out_only_the_events_that_mark_a_stage() -> None:
    """``signup`` is a form sent with ``kind = "signup"``: those events are progress, never a
    driver; the same activity with another kind (a newsletter form) may be one."""
    from journeymine.analyses.drivers import drivers

    spec = spec_from_dict(
        {
            "name": "t",
            "window": "3d",
            "stages": [
                {"name": "visit", "activities": ["web.page_view:*"]},
                {"name": "signup", "activities": ["web.form"], "where": {"kind": "signup"}},
            ],
        }
    )
    rows: list[tuple[int, float, str, dict[str, object]]] = []
    for person in range(1, 201):
        start = person / 24
        rows.append((person, start, "web.page_view:/", {}))
        newsletter = person % 2 == 0
        if newsletter:  # half subscribe first; 80% of them sign up, 20% of the others
            rows.append((person, start + 0.1, "web.form", {"kind": "newsletter"}))
        if person % 10 < (8 if newsletter else 2):
            rows.append((person, start + 1, "web.form", {"kind": "signup"}))
    rows.append((999, 60, "web.page_view:/", {}))  # the cut-off
    con = _make(rows)
    con.execute(
        "ALTER TABLE touchpoints ADD COLUMN channel VARCHAR; "
        "ALTER TABLE touchpoints ADD COLUMN owner_name VARCHAR"
    )
    funnel.write_stage_funnel(con, spec, log_from_touchpoints(con))
    found = drivers(con, "visit", spec=spec, horizon_s=0.5 * 86400).set_index("feature")
    form = found.loc["did: web.form"]
    newsletter = [r[0] for r in rows if r[3].get("kind") == "newsletter"]
    signed = {r[0] for r in rows if r[3].get("kind") == "signup"}
    assert form.people == len(newsletter) == 100  # the signup forms are not counted
    assert form.rate_with == pytest.approx(len(signed & set(newsletter)) / len(newsletter))
    assert form.finding
