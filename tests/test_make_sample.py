"""The sample generator: deterministic to the byte, and truths.json agrees with the files it wrote.

These checks read the landing files with nothing but json, gzip, csv and pyarrow, independently of
journeymine's parsers, so that a parser bug cannot hide a generator bug (or the other way round).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "make_sample.py"
HOSTILE_TITLE = "<script>alert(1)</script>"
HOSTILE_UTM = '"><img src=x onerror=alert(1)>'
SF_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def generate(out: Path, *extra: str) -> None:
    subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), *extra], check=True, capture_output=True
    )


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def sample(generated_sample: Path) -> Path:
    """The generator's default output, run once per session (tests/conftest.py)."""
    return generated_sample


@pytest.fixture(scope="module")
def truths(sample: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((sample / "truths.json").read_text())
    return result


def segment_lines(sample: Path) -> list[str]:
    lines: list[str] = []
    for path in sorted((sample / "landing" / "segment").rglob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            lines += [line.rstrip("\n") for line in fh if line.strip()]
    return lines


def parse(lines: list[str]) -> tuple[list[dict[str, Any]], int]:
    """Parsed JSON objects and the number of lines that are not JSON."""
    good, broken = [], 0
    for line in lines:
        try:
            good.append(json.loads(line))
        except json.JSONDecodeError:
            broken += 1
    return good, broken


def sendgrid_events(sample: Path) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for path in sorted((sample / "landing" / "sendgrid").rglob("*.json")):
        body = json.loads(path.read_text())
        assert isinstance(body, list)
        events += body
    return events


def stripe_events(sample: Path) -> tuple[list[dict[str, Any]], int]:
    lines: list[str] = []
    for path in sorted((sample / "landing" / "stripe").glob("events-*.jsonl")):
        lines += [x for x in path.read_text().splitlines() if x.strip()]
    events, broken = parse(lines)
    for path in sorted((sample / "landing" / "stripe").glob("list-page-*.json")):
        page = json.loads(path.read_text())
        assert page["object"] == "list" and page["url"] == "/v1/events" and not page["has_more"]
        events += page["data"]
    return events, broken


def ga4_rows(sample: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in sorted((sample / "landing" / "ga4").iterdir()):
        if path.suffix == ".parquet":
            rows += pq.read_table(path).to_pylist()
        else:
            rows += [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return rows


def salesforce(sample: Path, obj: str) -> list[dict[str, str]]:
    path = sample / "landing" / "salesforce" / "export-2026-10-31" / f"{obj}.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def id18(id15: str) -> str:
    suffix = ""
    for start in (0, 5, 10):
        bits = sum(1 << i for i, ch in enumerate(id15[start : start + 5]) if ch.isupper())
        suffix += SF_CHECKSUM[bits]
    return id15 + suffix


def test_same_seed_same_bytes_and_another_seed_differs(sample: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate(again)
    assert tree(again) == tree(sample)
    other = tmp_path / "other"
    generate(other, "--seed", "8", "--persons", "300")
    assert tree(other)["truths.json"] != tree(sample)["truths.json"]


def test_the_landing_folder_is_modest_and_shaped_like_the_vendors(sample: Path) -> None:
    landing = sample / "landing"
    assert sum(p.stat().st_size for p in landing.rglob("*") if p.is_file()) < 10_000_000
    assert {p.name for p in landing.iterdir()} == {
        "segment",
        "ga4",
        "sendgrid",
        "salesforce",
        "stripe",
        "zendesk",
        "typeform",
        "survey",
    }
    assert list(landing.glob("segment/2026/08/01/segment-2026-08-01.jsonl.gz"))
    assert list(landing.glob("ga4/events_202608??.json")) and list(landing.glob("ga4/*.parquet"))
    assert list(landing.glob("sendgrid/2026/??/??/webhook-1.json"))
    objects = {p.stem for p in landing.glob("salesforce/export-2026-10-31/*.csv")}
    assert objects >= {
        "Lead",
        "Contact",
        "Account",
        "Opportunity",
        "OpportunityHistory",
        "OpportunityContactRole",
        "Task",
        "Event",
    }
    assert list(landing.glob("stripe/events-2026-??.jsonl")) and list(landing.glob("stripe/list-*"))


def test_file_and_record_counts(sample: Path, truths: dict[str, Any]) -> None:
    files = truths["files"]
    segment = segment_lines(sample)
    assert files["segment/*.jsonl.gz"]["records"] == len(segment)
    assert sum(files[k]["records"] for k in files if k.startswith("ga4/")) == len(ga4_rows(sample))
    assert files["sendgrid/*.json"]["records"] == len(sendgrid_events(sample))
    events, broken = stripe_events(sample)
    stripe_total = sum(files[k]["records"] for k in files if k.startswith("stripe/"))
    assert stripe_total == len(events) + broken
    for key, count in files.items():
        if key.startswith("salesforce/"):
            assert len(salesforce(sample, key.split("/")[1][:-4])) == count["records"], key
    for source, total in truths["records_per_source"].items():
        assert total == sum(c["records"] for k, c in files.items() if k.startswith(source + "/"))


def test_segment_noise_counts(sample: Path, truths: dict[str, Any]) -> None:
    noise = truths["noise"]["segment"]
    calls, broken = parse(segment_lines(sample))
    assert broken == noise["broken_json"]
    assert sum(1 for c in calls if not c.get("messageId")) == noise["missing_message_id"]
    ids = Counter(c["messageId"] for c in calls if c.get("messageId"))
    assert sum(n - 1 for n in ids.values()) == noise["duplicates"] > 0
    assert noise["quarantined"] == noise["broken_json"] + noise["missing_message_id"]
    # a retry also lands in another day's file
    files_of: dict[str, set[str]] = {}
    for path in sorted((sample / "landing" / "segment").rglob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                try:
                    mid = json.loads(line).get("messageId")
                except json.JSONDecodeError:
                    continue
                if mid:
                    files_of.setdefault(mid, set()).add(path.name)
    across = sum(1 for names in files_of.values() if len(names) > 1)
    assert across == noise["duplicates_in_another_file"] > 0
    kinds = Counter(c["type"] for c in calls)
    assert {"page", "track", "identify", "alias", "group"} <= set(kinds)
    events = Counter(c.get("event") for c in calls if c["type"] == "track")
    assert {"Signed Up", "Demo Requested", "Trial Started", "Feature Used"} <= set(events)
    zones = Counter(c["timestamp"][-6:] for c in calls if c.get("timestamp"))
    assert zones["+02:00"] > 0 and zones["-05:00"] > 0


def test_sendgrid_stripe_ga4_salesforce_noise_counts(sample: Path, truths: dict[str, Any]) -> None:
    noise = truths["noise"]
    sg = sendgrid_events(sample)
    ids = Counter(e["sg_event_id"] for e in sg if "sg_event_id" in e)
    assert sum(n - 1 for n in ids.values()) == noise["sendgrid"]["duplicates"] > 0
    assert sum(1 for e in sg if "sg_event_id" not in e) == noise["sendgrid"]["missing_sg_event_id"]
    millis = sum(1 for e in sg if e["timestamp"] > 1e11)
    assert millis == noise["sendgrid"]["timestamp_in_milliseconds"]
    assert {"processed", "delivered", "open", "click", "bounce", "unsubscribe", "dropped"} <= {
        e["event"] for e in sg
    }
    assert any("user_id" in e for e in sg) and any("user_id" not in e for e in sg)

    events, broken = stripe_events(sample)
    assert broken == noise["stripe"]["broken_json"]
    assert (
        sum(1 for e in events if e["created"] > 1e11) == noise["stripe"]["created_in_milliseconds"]
    )
    assert len({e["id"] for e in events}) == len(events)  # no Stripe duplicates planted
    invoices = [e["data"]["object"] for e in events if e["type"].startswith("invoice.")]
    assert any("subscription" in i for i in invoices)  # before 2025-03-31.basil
    assert any("parent" in i for i in invoices)  # basil: parent.subscription_details
    types = {e["type"] for e in events}
    assert {
        "customer.created",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "invoice.paid",
        "invoice.payment_failed",
    } <= types

    rows = ga4_rows(sample)
    assert sum(1 for r in rows if isinstance(r["event_timestamp"], str)) == 1
    orphans = sum(1 for r in rows if not r.get("user_pseudo_id") and not r.get("user_id"))
    assert orphans == noise["ga4"]["missing_user_pseudo_id"] == noise["ga4"]["quarantined"]
    assert {"page_view", "scroll", "generate_lead"} <= {r["event_name"] for r in rows}

    leads = salesforce(sample, "Lead")
    assert sum(1 for r in leads if r["IsDeleted"] == "true") == noise["salesforce"]["quarantined"]


def test_hostile_strings_are_planted_exactly(sample: Path, truths: dict[str, Any]) -> None:
    calls, _ = parse(segment_lines(sample))
    unique = {c["messageId"]: c for c in calls if c.get("messageId")}.values()
    titles = sum(1 for c in unique if (c.get("properties") or {}).get("title") == HOSTILE_TITLE)
    utms = sum(
        1
        for c in unique
        if ((c.get("context") or {}).get("campaign") or {}).get("name") == HOSTILE_UTM
    )
    hostile = truths["hostile"]
    assert titles == hostile["page_titles"] > 0
    assert utms == hostile["segment_utm_campaigns"] > 0
    rows = [r for r in ga4_rows(sample) if r.get("user_pseudo_id")]
    ga4_utms = sum(
        1 for r in rows if r["collected_traffic_source"].get("manual_campaign_name") == HOSTILE_UTM
    )
    assert ga4_utms == hostile["ga4_utm_campaigns"]
    assert hostile["utm_campaigns"] == utms + ga4_utms


def test_salesforce_ids_and_fifteen_char_references(sample: Path, truths: dict[str, Any]) -> None:
    prefixes = {"Lead": "00Q", "Contact": "003", "Account": "001", "Opportunity": "006"}
    prefixes |= {"Task": "00T", "Event": "00U", "User": "005"}
    for obj, prefix in prefixes.items():
        for row in salesforce(sample, obj):
            assert row["Id"].startswith(prefix) and len(row["Id"]) == 18
            assert id18(row["Id"][:15]) == row["Id"], row["Id"]
    lead_ids = {r["Id"] for r in salesforce(sample, "Lead")}
    tasks = salesforce(sample, "Task")
    short = [t["WhoId"] for t in tasks if len(t["WhoId"]) == 15]
    assert len(short) == truths["persons"]["task_who_id_15_chars"] > 0
    assert all(id18(w) in lead_ids for w in short)
    assert {t["TaskSubtype"] for t in tasks} == {"Call", "Email"}
    assert {r["LeadSource"] for r in salesforce(sample, "Lead")} == {
        "Web - Demo Request",
        "Website",
        "Outbound",
        "Partner",
    }
    owners = {r["OwnerId"] for r in salesforce(sample, "Lead")}
    assert owners == set(truths["reps"]) | {truths["followup_owners"]["never_called_back"]["owner"]}


def test_people_and_stage_truths_are_consistent(sample: Path, truths: dict[str, Any]) -> None:
    persons = truths["persons"]
    assert len(persons["example_groups"]) == 10 == len(persons["examples"])
    features = {f for ex in persons["examples"] for f in ex["features"]}
    assert {"two_devices", "alias", "stripe_email_differs", "lead_email_not_normalised"} <= features
    stages = truths["stages"]
    order = ["signup", "demo_requested", "demo_held", "trial", "paid", "renewal"]
    assert all(stages[a] >= stages[b] > 0 for a, b in zip(order, order[1:], strict=False))
    calls, _ = parse(segment_lines(sample))
    signed = {c["userId"] for c in calls if c.get("event") == "Signed Up"}
    assert len(signed) == stages["signup"]  # the two shared-mailbox colleagues included
    demo = {c["userId"] for c in calls if c.get("event") == "Demo Requested"}
    assert len(demo) == stages["demo_requested"]
    demos = salesforce(sample, "Event")
    assert len(demos) == stages["demo_held"] + truths["deviations"]["second_demo_after_trial"]
    small = truths["trial_after_demo_small_vs_larger"]
    assert small["1-10"] < 0.35 < 0.5 < small["11+"]
    reps = sorted(r["median_latency_h"] for r in truths["reps"].values())
    assert reps[0] < 1 < reps[1] < 6 < reps[2] < 30 < reps[3]
    buckets = truths["demo_held_by_latency_bucket"]
    assert buckets["<1h"]["rate"] > buckets[">48h"]["rate"] + 0.25
    assert truths["demo_requests_without_followup_last_2_days"] > 0
    identities = {
        "user": {c["userId"] for c in calls if c.get("userId")},
        "anon": {c["anonymousId"] for c in calls if c.get("anonymousId")},
    }
    for group in persons["example_groups"]:
        for node in group:
            kind, value = node.split(":", 1)
            if kind in identities:
                assert value in identities[kind], node


# -- the second stream's truths, re-counted from the files ---------------------------------------
BERLIN = ZoneInfo("Europe/Berlin")
HOLIDAYS = {date(2026, 10, 3), date(2026, 12, 24), date(2026, 12, 25), date(2026, 12, 26)}
CUTOFF = datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC)


def when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)


def in_business_hours(start: datetime, end: datetime) -> float:
    """Seconds of [start, end) on Berlin working days between 09:00 and 17:00, hour by hour
    (a different method from the generator's day-by-day one)."""
    seconds, t = 0.0, start
    while t < end:
        step = min(end, t.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1))
        local = t.astimezone(BERLIN)
        if local.weekday() < 5 and local.date() not in HOLIDAYS and 9 <= local.hour < 17:
            seconds += (step - t).total_seconds()
        t = step
    return seconds


@pytest.fixture(scope="module")
def calls(sample: Path) -> list[dict[str, Any]]:
    unique = {c["messageId"]: c for c in parse(segment_lines(sample))[0] if c.get("messageId")}
    return list(unique.values())


@pytest.fixture(scope="module")
def user_of_email(calls: list[dict[str, Any]]) -> dict[str, str]:
    emails = {}
    for c in calls:
        email = (c.get("traits") or {}).get("email")
        if c["type"] == "identify" and email and c.get("userId"):
            emails[email.strip().lower()] = c["userId"]
    return emails


def first_track(calls: list[dict[str, Any]], event: str) -> dict[str, datetime]:
    firsts: dict[str, datetime] = {}
    for c in calls:
        if c.get("event") == event and c.get("userId"):
            at = when(c["timestamp"])
            firsts[c["userId"]] = min(at, firsts.get(c["userId"], at))
    return firsts


@pytest.fixture(scope="module")
def billing(sample: Path) -> dict[str, dict[str, Any]]:
    """Per Stripe customer: its user id, creation time, paid invoices and cancellations."""
    events, _ = stripe_events(sample)
    customers: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"paid": [], "deleted": [], "reasons": []}
    )
    for e in sorted(events, key=lambda e: e["created"]):
        if e["created"] > 1e11:  # the planted milliseconds copy
            continue
        obj, at = e["data"]["object"], datetime.fromtimestamp(e["created"], UTC)
        if e["type"] == "customer.created":
            customers[obj["id"]].update(user=obj["metadata"]["user_id"], created=at)
        elif e["type"] == "invoice.paid":
            customers[obj["customer"]]["paid"].append(at)
            customers[obj["customer"]]["reasons"].append(obj["billing_reason"])
        elif e["type"] == "customer.subscription.deleted":
            customers[obj["customer"]]["deleted"].append(at)
    return dict(customers)


def test_a_rep_who_never_calls_back_ranks_worst_by_breach_rate(
    sample: Path, truths: dict[str, Any]
) -> None:
    leads = [r for r in salesforce(sample, "Lead") if r["LeadSource"] == "Web - Demo Request"]
    called: dict[str, datetime] = {}
    for t in salesforce(sample, "Task"):
        if t["TaskSubtype"] == "Call" and t["Status"] == "Completed":
            who = id18(t["WhoId"]) if len(t["WhoId"]) == 15 else t["WhoId"]
            at = when(t["CompletedDateTime"])
            called[who] = min(at, called.get(who, at))
    rows: dict[str, Counter[str]] = defaultdict(Counter)
    for lead in leads:
        created, row = when(lead["CreatedDate"]), rows[lead["OwnerId"]]
        row["requests"] += 1
        waited = in_business_hours(created, called.get(lead["Id"], CUTOFF))
        row["answered"] += lead["Id"] in called
        row["breached"] += waited > 4 * 3600
        row["open"] += lead["Id"] not in called and waited <= 4 * 3600
    planted = truths["followup_owners"]
    for owner, row in rows.items():
        expected = planted["by_owner"][owner]
        assert {k: expected[k] for k in row} == dict(row) | {"open": row["open"]}, owner
        assert expected["breach_rate"] == round(
            row["breached"] / (row["requests"] - row["open"]), 4
        )
    evan = planted["never_called_back"]
    assert rows[evan["owner"]]["answered"] == 0 < rows[evan["owner"]]["requests"]
    assert rows[evan["owner"]]["requests"] == evan["demo_requests"] == 24
    rates = {o: r["breached"] / (r["requests"] - r["open"]) for o, r in rows.items()}
    assert (
        max(rates, key=rates.__getitem__) == evan["owner"] == planted["worst_owner_by_breach_rate"]
    )
    assert sorted(rates.values())[-2] < 1.0  # nobody else never answers
    users = {u["Id"]: u["Name"] for u in salesforce(sample, "User")}
    assert users[evan["owner"]] == evan["name"] == "Evan Reed"
    evan_leads = {r["Id"] for r in leads if r["OwnerId"] == evan["owner"]}
    assert not [e for e in salesforce(sample, "Event") if e["WhoId"] in evan_leads]


def test_company_size_is_known_only_from_signup(
    calls: list[dict[str, Any]], truths: dict[str, Any]
) -> None:
    signed = first_track(calls, "Signed Up")
    sized: dict[str, datetime] = {}
    for c in calls:
        if "company_size" in (c.get("traits") or {}):
            assert c["type"] in ("identify", "group") and c.get("userId"), c
            at = when(c["timestamp"])
            sized[c["userId"]] = min(at, sized.get(c["userId"], at))
    assert not [c for c in calls if c["type"] == "page" and "traits" in c]
    assert set(sized) == set(signed)
    before = [u for u in sized if sized[u] < signed[u] - timedelta(seconds=5)]
    planted = truths["company_size"]
    assert (
        len(sized) == planted["set_at_signup"] and len(before) == planted["set_before_signup"] == 0
    )
    sizes = {
        c["userId"]: c["traits"]["company_size"]
        for c in calls
        if c["type"] == "identify" and "company_size" in c.get("traits", {})
    }
    requested = set(first_track(calls, "Demo Requested"))
    by_size: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for user, at in signed.items():
        if at <= CUTOFF - timedelta(days=3):
            by_size[sizes[user]][0] += user in requested
            by_size[sizes[user]][1] += 1
    expected = planted["demo_request_after_signup_by_size"]
    assert {s: [v["requested"], v["of"]] for s, v in expected.items()} == dict(by_size)
    assert all(v["rate"] < 0.8 for v in expected.values())  # no size converts 100%


def test_a_weekly_newsletter_keeps_going_to_people_who_dropped(
    sample: Path,
    truths: dict[str, Any],
    user_of_email: dict[str, str],
    billing: dict[str, dict[str, Any]],
) -> None:
    planted = truths["weekly_newsletter"]
    sent: dict[str, tuple[datetime, str]] = {}
    for e in sendgrid_events(sample):
        if planted["category"] in e["category"]:
            assert e["category"][0] == "newsletter" and "user_id" not in e
            at = datetime.fromtimestamp(e["timestamp"], UTC)
            if e["smtp-id"] not in sent or at < sent[e["smtp-id"]][0]:
                sent[e["smtp-id"]] = (at, user_of_email[e["email"]])
    assert len(sent) == planted["messages"] > 0
    assert len({u for _, u in sent.values()}) == planted["recipients"]
    by_user: dict[str, list[datetime]] = defaultdict(list)
    for at, user in sent.values():
        by_user[user].append(at)
    out: dict[str, Counter[str]] = {"paid": Counter(), "dropped": Counter()}
    for c in billing.values():
        ended = c["paid"][:1] or c["deleted"][:1]
        if c["user"] not in by_user or not ended or c["created"] + timedelta(days=14) > CUTOFF:
            continue
        row = out["paid" if c["paid"] else "dropped"]
        row["people"] += 1
        row["first_14_days"] += sum(
            d < c["created"] + timedelta(days=14) for d in by_user[c["user"]]
        )
        row["after_outcome"] += sum(d >= ended[0] for d in by_user[c["user"]])
    expected = planted["by_trial_outcome"]
    for outcome, row in out.items():
        assert {k: expected[outcome][k] for k in row} == dict(row), outcome
    # the null: equal exposure in the trial, more only after dropping out
    paid, dropped = out["paid"], out["dropped"]
    assert paid["first_14_days"] / paid["people"] == dropped["first_14_days"] / dropped["people"]
    assert paid["after_outcome"] == 0 < dropped["after_outcome"]


def test_renewals_and_churn_per_cohort_of_first_payment(
    truths: dict[str, Any], billing: dict[str, dict[str, Any]]
) -> None:
    cohorts: dict[str, Counter[str]] = defaultdict(Counter)
    for c in billing.values():
        assert set(c["reasons"]) <= {"subscription_cycle"}
        if not c["paid"]:
            continue
        first, row = c["paid"][0], cohorts[c["paid"][0].strftime("%Y-%m")]
        row["paid"] += 1
        row["renewal_due"] += first + timedelta(days=30) <= CUTOFF
        row["renewed"] += len(c["paid"]) > 1
        row["churned"] += any(d > first for d in c["deleted"])
        for k in (1, 2):
            if first + timedelta(days=30 * k) <= CUTOFF:
                row[f"due_{k}"] += 1
                row[f"paid_{k}"] += len(c["paid"]) > k
    planted = truths["retention"]
    for month, row in cohorts.items():
        expected = planted["by_first_payment_month"][month]
        assert {k: expected[k] for k in ("paid", "renewal_due", "renewed", "churned")} == {
            k: row[k] for k in ("paid", "renewal_due", "renewed", "churned")
        }, month
        for k, period in expected["periods"].items():
            assert (period["due"], period["paid"]) == (row[f"due_{k}"], row[f"paid_{k}"])
    assert set(cohorts) == set(planted["by_first_payment_month"])
    assert (
        planted["renewed"]
        == sum(r["renewed"] for r in cohorts.values())
        == truths["stages"]["renewal"]
    )
    assert planted["churned_after_paying"] == sum(r["churned"] for r in cohorts.values()) > 0
    dropped = sum(1 for c in billing.values() if c["deleted"] and not c["paid"])
    assert planted["cancelled_in_trial"] == dropped


def test_number_of_employees_agrees_with_company_size(
    sample: Path, calls: list[dict[str, Any]], truths: dict[str, Any], user_of_email: dict[str, str]
) -> None:
    employees = truths["number_of_employees"]["employees_by_size"]
    sizes = {
        c["userId"]: c["traits"]["company_size"]
        for c in calls
        if c["type"] == "identify" and "company_size" in c.get("traits", {})
    }
    staff = {  # an account's contact who signed up in the product (not the outside consultant)
        c["AccountId"]: user_of_email[c["Email"]]
        for c in salesforce(sample, "Contact")
        if c["Email"] in user_of_email
    }
    for account in salesforce(sample, "Account"):
        user = staff[account["Id"]]
        assert int(account["NumberOfEmployees"]) == employees[sizes[user]], account["Name"]
    leads = {r["Id"]: r for r in salesforce(sample, "Lead")}
    demos: dict[str, datetime] = {}
    for e in salesforce(sample, "Event"):
        if e["WhoId"] in leads:
            at = when(e["StartDateTime"])
            demos[e["WhoId"]] = min(at, demos.get(e["WhoId"], at))
    trials = {u for u in first_track(calls, "Trial Started")}
    bins: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for lead_id, at in demos.items():
        if at < CUTOFF - timedelta(days=3):
            n = int(leads[lead_id]["NumberOfEmployees"])
            user = user_of_email[leads[lead_id]["Email"].strip().lower()]
            bins["SMB" if n < 50 else "Enterprise"][0] += user in trials
            bins["SMB" if n < 50 else "Enterprise"][1] += 1
    expected = truths["number_of_employees"]["trial_after_demo"]
    assert {k: [v["trials"], v["of"]] for k, v in expected.items()} == dict(bins)
    assert expected["SMB"]["rate"] < expected["Enterprise"]["rate"]


def test_accounts_one_company_in_every_system_and_a_pair_kept_apart(
    sample: Path, calls: list[dict[str, Any]], truths: dict[str, Any], user_of_email: dict[str, str]
) -> None:
    """Accounts re-stitched by hand: account nodes that share a person (by user id or e-mail)
    are one company, never two Salesforce Accounts or two Segment groups together."""
    links: list[tuple[str, str]] = []  # (person: user id, else e-mail; account node)
    for c in calls:
        if c["type"] == "group":
            links.append((c["userId"], "group:" + c["groupId"]))
    for contact in salesforce(sample, "Contact"):
        email = contact["Email"].strip().lower()
        links.append((user_of_email.get(email, email), "account:" + contact["AccountId"]))
    parent = {node: node for _, node in links}
    members = {node: {node} for node in parent}

    def find(n: str) -> str:
        while parent[n] != n:
            n = parent[n]
        return n

    by_person: dict[str, list[str]] = defaultdict(list)
    for person, node in links:
        by_person[person].append(node)
    refused = []
    for person, nodes in sorted(by_person.items()):
        for node in nodes[1:]:
            a, b = find(nodes[0]), find(node)
            if a == b:
                continue
            kinds = [n.split(":")[0] for n in members[a] | members[b]]
            if max(Counter(kinds).values()) > 1:
                refused.append(person)
                continue
            parent[b] = a
            members[a] |= members.pop(b)
    planted = truths["accounts"]
    assert len(members) == planted["expected_accounts"]
    assert len({n for n in parent if n.startswith("group:")}) == planted["segment_groups"]
    north = planted["all_systems"]
    cluster = members[find("group:" + north["group_id"])]
    assert cluster == {"group:" + north["group_id"], "account:" + north["account_id"]}
    in_group = {c["userId"] for c in calls if c.get("groupId") == north["group_id"]}
    assert in_group == set(north["user_ids"]) and len(in_group) == 3
    contacts = [c for c in salesforce(sample, "Contact") if c["AccountId"] == north["account_id"]]
    assert {user_of_email[c["Email"]] for c in contacts} == in_group
    roles = salesforce(sample, "OpportunityContactRole")
    assert {r["ContactId"] for r in roles if r["OpportunityId"] == north["opportunity_id"]} == {
        c["Id"] for c in contacts
    }
    opp = [o for o in salesforce(sample, "Opportunity") if o["Id"] == north["opportunity_id"]]
    assert opp[0]["AccountId"] == north["account_id"]
    customer = [c for c in billing_of(sample) if c[0] == north["stripe_customer"]]
    assert customer and customer[0][1] in in_group and customer[0][2] > 0
    apart = planted["kept_apart"]
    names = {a["Id"]: a["Name"] for a in salesforce(sample, "Account")}
    assert [names[a] for a in apart["account_ids"]] == [apart["name"]] * 2
    piper = {find("account:" + a) for a in apart["account_ids"]}
    assert len(piper) == 2 and refused == [apart["bridging_contact_email"]]
    for group, account in zip(apart["group_ids"], apart["account_ids"], strict=True):
        assert find("group:" + group) == find("account:" + account)


def billing_of(sample: Path) -> list[tuple[str, str, int]]:
    """(customer, metadata.user_id, number of invoice.paid) per Stripe customer."""
    events, _ = stripe_events(sample)
    users = {
        e["data"]["object"]["id"]: e["data"]["object"]["metadata"]["user_id"]
        for e in events
        if e["type"] == "customer.created"
    }
    paid = Counter(e["data"]["object"]["customer"] for e in events if e["type"] == "invoice.paid")
    return [(c, u, paid[c]) for c, u in users.items()]


# -- feelings: Zendesk and Typeform ------------------------------------------------------------
STAGES = ("signup", "demo_requested", "demo_held", "trial", "paid")


@pytest.fixture(scope="module")
def stage_times(
    sample: Path,
    calls: list[dict[str, Any]],
    user_of_email: dict[str, str],
    billing: dict[str, dict[str, Any]],
) -> dict[str, dict[str, datetime]]:
    """When each user first entered each designed stage, from Segment, Salesforce and Stripe."""
    times: dict[str, dict[str, datetime]] = defaultdict(dict)

    def enter(user: str, stage: str, at: datetime) -> None:
        times[user][stage] = min(at, times[user].get(stage, at))

    for c in calls:
        if c["type"] == "identify" and "company_size" in c.get("traits", {}):
            enter(c["userId"], "signup", when(c["timestamp"]))
    for user, at in first_track(calls, "Demo Requested").items():
        enter(user, "demo_requested", at)
    leads = {r["Id"]: r["Email"].strip().lower() for r in salesforce(sample, "Lead")}
    for e in salesforce(sample, "Event"):
        if e["WhoId"] in leads:
            enter(user_of_email[leads[e["WhoId"]]], "demo_held", when(e["StartDateTime"]))
    for c in billing.values():
        enter(c["user"], "trial", c["created"])
        if c["paid"]:
            enter(c["user"], "paid", c["paid"][0])
    return dict(times)


def stage_of(times: dict[str, datetime], at: datetime) -> str:
    entered = [(t, s) for s, t in times.items() if t <= at]
    return max(entered)[1] if entered else "visit"


def zendesk_pages(sample: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((sample / "landing" / "zendesk").iterdir())]


def typeform_items(sample: Path) -> list[tuple[str, dict[str, Any]]]:
    items = []
    for path in sorted((sample / "landing" / "typeform").rglob("*.json")):
        page = json.loads(path.read_text())
        assert page["total_items"] >= len(page["items"]) > 0
        items += [(path.parent.name, item) for item in page["items"]]
    return items


SURVEY_CSV = "survey/onboarding-nps-2026-10-31.csv"


def survey_rows(sample: Path) -> tuple[bytes, list[dict[str, str]]]:
    """The survey CSV's raw bytes and its rows, read with nothing but csv."""
    data = (sample / "landing" / SURVEY_CSV).read_bytes()
    text = data.decode("utf-8").removeprefix("\ufeff")
    return data, list(csv.DictReader(io.StringIO(text, newline="")))


def survey_answers(sample: Path) -> list[tuple[str, datetime, int, str]]:
    """(email, when, score, comment) of every usable row: an email and a numeric score."""
    return [
        (
            row["Email"].strip().lower(),
            datetime.strptime(row["Date"], "%d/%m/%Y %H:%M").replace(tzinfo=UTC),
            int(row["Score"]),
            row["Comment"],
        )
        for row in survey_rows(sample)[1]
        if row["Email"].strip() and row["Score"].isdigit()
    ]


def first_agent_replies(sample: Path) -> dict[int, datetime]:
    """Ticket id -> its first public comment by an agent (roles from the users of the page)."""
    replies: dict[int, datetime] = {}
    for page in zendesk_pages(sample):
        roles = {u["id"]: u["role"] for u in page.get("users", [])}
        for event in page.get("ticket_events", []):
            for child in event["child_events"]:
                if child["event_type"] != "Comment":
                    continue
                assert child["author_id"] in roles  # authors resolve within the same page
                if roles[child["author_id"]] == "agent" and child["public"]:
                    at = when(event["created_at"])
                    replies[event["ticket_id"]] = min(at, replies.get(event["ticket_id"], at))
    return replies


def zendesk_requesters(sample: Path) -> dict[int, str]:
    """Zendesk end-user id -> the product user id (``external_id``)."""
    return {
        u["id"]: u["external_id"]
        for page in zendesk_pages(sample)
        for u in page.get("users", [])
        if u["role"] == "end-user"
    }


def test_support_tickets_first_replies_and_requesters(
    sample: Path, truths: dict[str, Any], user_of_email: dict[str, str]
) -> None:
    pages = zendesk_pages(sample)
    tickets = [t for page in pages for t in page.get("tickets", [])]
    support = truths["feelings"]["support"]
    assert len(tickets) == len({t["id"] for t in tickets}) == support["tickets"]
    for page in pages:
        for user in page.get("users", []):
            if user["role"] == "end-user":  # the requester is the product user, by both ids
                assert user_of_email[user["email"]] == user["external_id"]
    replies = first_agent_replies(sample)
    waits = [
        (replies[t["id"]] - when(t["created_at"])).total_seconds() / 3600
        for t in tickets
        if t["id"] in replies
    ]
    assert len(waits) == support["agent_replied"]
    assert round(statistics.median(waits), 3) == support["median_first_reply_h"]
    assert sum(w > 24 for w in waits) == support["first_reply_over_24h"] > 0
    assert {t["status"] for t in tickets} <= {"new", "open", "solved"}
    assert {"good", "bad"} <= {t["satisfaction_rating"]["score"] for t in tickets}


def voices(sample: Path) -> list[tuple[str, datetime, str]]:
    """(user id, when, text) of every customer's own words in the Zendesk and Typeform files:
    their ticket comments, CSAT comments and free-text survey answers."""
    requesters = zendesk_requesters(sample)
    out = []
    for page in zendesk_pages(sample):
        roles = {u["id"]: u["role"] for u in page.get("users", [])}
        for t in page.get("tickets", []):
            rating = t["satisfaction_rating"]
            if rating.get("comment"):
                user = requesters[t["requester_id"]]
                out.append((user, when(rating["created_at"]), rating["comment"]))
        for event in page.get("ticket_events", []):
            for child in event["child_events"]:
                if child["event_type"] == "Comment" and roles[child["author_id"]] == "end-user":
                    user = requesters[child["author_id"]]
                    out.append((user, when(event["created_at"]), child["body"]))
    for _, item in typeform_items(sample):
        for answer in item["answers"]:
            if answer["type"] == "text":
                out.append((item["hidden"]["user_id"], when(item["submitted_at"]), answer["text"]))
    users = user_of_emails(sample)
    out += [(users[email], at, text) for email, at, _, text in survey_answers(sample) if text]
    return out


def user_of_emails(sample: Path) -> dict[str, str]:
    """Normalised email -> user id, from the Segment identify calls (not a fixture: voices())."""
    return {
        c["traits"]["email"].strip().lower(): c["userId"]
        for c in parse(segment_lines(sample))[0]
        if c.get("type") == "identify" and (c.get("traits") or {}).get("email") and c.get("userId")
    }


def test_the_survey_csv_is_an_excel_export_with_a_few_unusable_rows(
    sample: Path, truths: dict[str, Any]
) -> None:
    data, rows = survey_rows(sample)
    assert data.startswith(b"\xef\xbb\xbfResponse ID,Date,Email,Score,Comment,Country\r\n")
    planted = truths["feelings"]["survey_csv"]
    assert planted["file"] == SURVEY_CSV
    assert truths["files"]["survey/*.csv"]["records"] == len(rows)
    unusable = [r for r in rows if not r["Email"].strip() or not r["Score"].isdigit()]
    assert len(unusable) == planted["bad_rows"] == truths["noise"]["survey"]["quarantined"] == 3
    assert len(rows) == planted["answers"] + planted["bad_rows"]
    assert len({r["Response ID"] for r in rows}) == len(rows)  # nothing to deduplicate
    assert any("\n" in r["Comment"] for r in rows)  # a comment over two lines, quoted
    assert any(r["Email"] != r["Email"].lower() for r in rows)  # typed in capitals


def test_the_onboarding_nps_per_stage_is_counted_from_the_survey_csv(
    sample: Path,
    truths: dict[str, Any],
    user_of_email: dict[str, str],
    stage_times: dict[str, dict[str, datetime]],
) -> None:
    groups: dict[str, Counter[str]] = defaultdict(Counter)
    for email, at, score, _ in survey_answers(sample):
        stage = stage_of(stage_times[user_of_email[email]], at)
        group = "detractors" if score <= 6 else "promoters" if score >= 9 else "passives"
        groups[stage][group] += 1
        groups[stage]["responses"] += 1
    planted = truths["feelings"]["survey_csv"]["by_stage"]
    assert set(groups) == set(planted) and "signup" in groups  # NPS before any Typeform form
    for stage, c in groups.items():
        assert {k: planted[stage][k] for k in c} == dict(c), stage
        nps = 100 * (c["promoters"] - c["detractors"]) / c["responses"]
        assert planted[stage]["nps"] == round(nps, 1), stage


def test_sentiment_dips_in_the_trial(
    sample: Path, truths: dict[str, Any], stage_times: dict[str, dict[str, datetime]]
) -> None:
    analyzer = SentimentIntensityAnalyzer()
    by_stage: dict[str, list[float]] = defaultdict(list)
    spoken = voices(sample)
    for user, at, text in spoken:
        by_stage[stage_of(stage_times[user], at)].append(analyzer.polarity_scores(text)["compound"])
    planted = truths["feelings"]["sentiment_by_stage"]
    assert set(by_stage) == set(planted) <= set(STAGES)
    for stage, scores in by_stage.items():
        assert len(scores) == planted[stage]["voices"], stage
        assert sum(x <= -0.05 for x in scores) == planted[stage]["negative"], stage
        assert statistics.fmean(scores) == pytest.approx(planted[stage]["mean_sentiment"], abs=1e-4)
    means = {s: statistics.fmean(v) for s, v in by_stage.items()}
    assert min(means, key=means.__getitem__) == truths["feelings"]["sentiment_dip_stage"] == "trial"
    assert all(means["trial"] < m - 0.15 for s, m in means.items() if s != "trial")
    contact = sum("+49 30 5550" in text for _, _, text in spoken)
    assert contact == truths["feelings"]["support"]["voices_with_contact_details"] > 0


def test_trial_users_who_waited_long_for_support_are_detractors_more_often(
    sample: Path, truths: dict[str, Any], stage_times: dict[str, dict[str, datetime]]
) -> None:
    requesters, replies = zendesk_requesters(sample), first_agent_replies(sample)
    waited: set[str] = set()  # a ticket opened in the trial waited > 24 h (or is unanswered)
    for page in zendesk_pages(sample):
        for t in page.get("tickets", []):
            user, created = requesters[t["requester_id"]], when(t["created_at"])
            in_trial = stage_of(stage_times[user], created) == "trial"
            if in_trial and replies.get(t["id"], CUTOFF) - created > timedelta(hours=24):
                waited.add(user)
    groups: dict[str, Counter[str]] = defaultdict(Counter)
    for form, item in typeform_items(sample):
        score = next(a["number"] for a in item["answers"] if a["field"]["ref"] == "nps")
        user = item["hidden"]["user_id"]
        keys = [form]
        if form == "trial-nps":
            keys.append(form + ("/waited_over_24h" if user in waited else "/no_long_wait"))
        group = "detractors" if score <= 6 else "promoters" if score >= 9 else "passives"
        for key in keys:
            groups[key]["responses"] += 1
            groups[key][group] += 1
    planted = truths["feelings"]["nps"]
    assert set(groups) == {k for k in planted if k != "planted_detractor_chance"}
    for key, c in groups.items():
        assert {k: planted[key][k] for k in c} == dict(c), key
    slow, fast = planted["trial-nps/waited_over_24h"], planted["trial-nps/no_long_wait"]
    assert slow["detractor_rate"] > fast["detractor_rate"] + 0.3 and slow["responses"] >= 10
