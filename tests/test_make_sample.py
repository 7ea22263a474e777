"""The sample generator: deterministic to the byte, and truths.json agrees with the files it wrote.

These checks read the landing files with nothing but json, gzip, csv and pyarrow, independently of
journeymine's parsers, so that a parser bug cannot hide a generator bug (or the other way round).
"""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

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
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample")
    generate(out)
    return out


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
    assert sum(p.stat().st_size for p in landing.rglob("*") if p.is_file()) < 8_000_000
    assert {p.name for p in landing.iterdir()} == {
        "segment",
        "ga4",
        "sendgrid",
        "salesforce",
        "stripe",
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
    assert owners == set(truths["reps"])


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
