"""Ingest at volume: generate raw vendor exports, then time ``journeymine load`` against DuckDB.

    python benchmarks/bench_ingest.py --rows 100000 --rows 1000000

For each size: write a landing folder under ``benchmarks/data/landing-<rows>/`` (git-ignored)
with the eight formats (Segment ``.jsonl.gz`` per day, GA4 newline-delimited JSON per day,
SendGrid webhook JSON arrays per day, Salesforce CSV exports per month, Stripe event JSONL per
month, Zendesk incremental ticket pages and ticket-event pages with their users per week,
Typeform response pages per week, a survey tool's CSV per month), then, each in its own fresh
subprocess so the figures are that run's alone (each with its CPU seconds, its own and its
workers': on a shared machine they swing much less than wall time):

* ``journeymine load`` into a new warehouse: wall time, raw rows/s, peak RSS (of the main
  process and of the largest parse worker);
* the same load again, phase by phase (scan, staging, SQL load, identity, touchpoints);
* staging alone, source by source (parse and Parquet, every worker): raw rows/s per source;
* DuckDB's own generic scan of the same files (``read_json_auto`` / ``read_csv_auto``, schema
  auto-detection, ``count(*)``; at most 256 files per call): the reference a loader should not
  be slower than.

Row mix: Segment 38 %, GA4 24 %, SendGrid 19 %, Salesforce 10 %, Stripe 5 %, Zendesk 2 %
(tickets, comment events, users), Typeform 1 %, survey CSV 1 %; one person per 25 rows. Free
text (ticket bodies, comments, survey answers) is scored by VADER while it is parsed. The same
``--seed`` gives the same files. ``--files-per-day N`` cuts the same records into the many small
files real exports come in (Segment and GA4 N files a day, SendGrid N webhook bodies a day, Stripe
N ``/v1/events`` list pages per day of a month), in a landing of its own, ``landing-<rows>-xN``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from journeymine.ingest.sources.salesforce import sf_id18

START = datetime(2026, 8, 1, tzinfo=UTC)
DAYS = 92
MONTH_ENDS = ("2026-08-31", "2026-09-30", "2026-10-31")
MIX = {
    "segment": 0.38, "ga4": 0.24, "sendgrid": 0.19, "salesforce": 0.10, "stripe": 0.05,
    "zendesk": 0.02, "typeform": 0.01, "survey": 0.01,
}  # fmt: skip
WEEKS = DAYS // 7
COMMENTS = (
    "Thanks, the setup guide was great and everything works now.",
    "Still waiting for an answer, this is really frustrating.",
    "The export keeps failing with an error, please help.",
    "Love the new funnel view, really helpful!",
    "Billing charged me twice this month.",
)
SURVEY_HEADER = ["Response ID", "Date", "Email", "Score", "Comment"]
# The survey CSV's column mapping, as a journey spec's [sources.survey] declares it.
SURVEY_MAPPING = {
    "who": "Email", "who_type": "email", "when": "Date", "date_format": "%d/%m/%Y %H:%M",
    "score": "Score", "scale": "nps", "comment": "Comment", "response_id": "Response ID",
    "name": "bench",
}  # fmt: skip
LEAD_HEADER = [
    "Id", "IsDeleted", "FirstName", "LastName", "Email", "Company", "LeadSource", "Status",
    "OwnerId", "NumberOfEmployees", "Country", "IsConverted", "ConvertedDate",
    "ConvertedContactId", "ConvertedAccountId", "ConvertedOpportunityId", "CreatedDate",
    "SystemModstamp",
]  # fmt: skip
TASK_HEADER = [
    "Id", "WhoId", "WhatId", "OwnerId", "Subject", "Status", "TaskSubtype", "ActivityDate",
    "CompletedDateTime", "CreatedDate",
]  # fmt: skip
OWNER = sf_id18("0055e00000Ana01")


class Generator:
    """Records of ``persons`` people, drawn from one seeded random generator."""

    def __init__(self, rows: int, seed: int) -> None:
        self.rows = rows
        self.rand = random.Random(seed)
        self.persons = max(rows // 25, 10)
        self.serial = 0

    def person(self) -> int:
        return self.rand.randrange(self.persons)

    def moment(self, day: int) -> datetime:
        return START + timedelta(days=day, seconds=self.rand.randrange(86_400))

    def next_id(self) -> int:
        self.serial += 1
        return self.serial

    def segment(self, day: int) -> dict[str, object]:
        p, at = self.person(), self.moment(day)
        base = {
            "messageId": f"ajs-{self.next_id():016x}",
            "timestamp": at.isoformat().replace("+00:00", "Z"),
            "anonymousId": f"anon-{p:012x}",
        }
        kind = self.rand.random()
        if kind < 0.7:
            path = self.rand.choice(["/", "/pricing", "/docs", "/blog/journeys"])
            return {**base, "type": "page", "name": path, "properties": {"path": path}}
        if kind < 0.8:
            traits = {"email": f"p{p}@co{p % 997}.example", "company_size": "11-50"}
            return {**base, "type": "identify", "userId": f"u-{p:07d}", "traits": traits}
        event = self.rand.choice(["Signed Up", "Demo Requested", "Invited Teammate"])
        return {**base, "type": "track", "userId": f"u-{p:07d}", "event": event, "properties": {}}

    def ga4(self, day: int) -> dict[str, object]:
        p, at = self.person(), self.moment(day)
        micros = int(at.timestamp()) * 1_000_000 + self.rand.randrange(1_000_000)
        url = self.rand.choice(["https://docs.example.io/", "https://docs.example.io/sql"])
        return {
            "event_date": at.strftime("%Y%m%d"),
            "event_timestamp": micros,
            "event_name": self.rand.choice(["page_view", "page_view", "scroll"]),
            "event_params": [
                {"key": "page_location", "value": {"string_value": url}},
                {"key": "ga_session_id", "value": {"int_value": micros // 10**9}},
            ],
            "user_pseudo_id": f"{p}.1726936480",
            "user_id": f"u-{p:07d}" if self.rand.random() < 0.3 else None,
            "device": {"category": "desktop"},
            "geo": {"country": "France"},
        }

    def sendgrid(self, day: int) -> dict[str, object]:
        p, at = self.person(), self.moment(day)
        return {
            "email": f"p{p}@co{p % 997}.example",
            "timestamp": int(at.timestamp()),
            "event": self.rand.choice(["processed", "delivered", "open", "click"]),
            "sg_event_id": f"{self.next_id():022x}",
            "sg_message_id": f"{p:022x}.filterdrecv",
            "category": ["lifecycle"],
        }

    def stripe(self, day: int) -> dict[str, object]:
        p, at = self.person(), self.moment(day)
        obj = {"id": f"cus_{p:014x}", "object": "customer", "email": f"p{p}@co{p % 997}.example"}
        return {
            "id": f"evt_{self.next_id():024x}",
            "object": "event",
            "api_version": "2024-06-20",
            "created": int(at.timestamp()),
            "type": "customer.created",
            "livemode": False,
            "data": {"object": {**obj, "metadata": {"user_id": f"u-{p:07d}"}}},
        }

    def ticket(self, day: int) -> dict[str, object]:
        n, p, at = self.next_id(), self.person(), self.moment(day)
        stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        text = self.rand.choice(COMMENTS)
        rating = {"id": n, "score": self.rand.choice(["good", "bad"]), "created_at": stamp}
        return {"id": n, "created_at": stamp, "updated_at": stamp, "subject": text[:30],
                "description": text, "status": "solved", "requester_id": 100_000 + p,
                "assignee_id": 9001, "via": {"channel": "email"}, "tags": ["bench"],
                "satisfaction_rating": rating}  # fmt: skip

    def ticket_event(self, day: int, ticket: int, author: int) -> dict[str, object]:
        n, at = self.next_id(), self.moment(day)
        comment = {"id": n, "event_type": "Comment", "author_id": author, "public": True,
                   "body": self.rand.choice(COMMENTS)}  # fmt: skip
        return {"id": n, "ticket_id": ticket, "timestamp": int(at.timestamp()),
                "created_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "updater_id": author,
                "event_type": "Audit", "child_events": [comment]}  # fmt: skip

    def zendesk_user(self, user: int) -> dict[str, object]:
        p = user - 100_000
        return {"id": user, "name": f"P{p}", "email": f"p{p}@co{p % 997}.example",
                "external_id": f"u-{p:07d}", "role": "end-user",
                "created_at": "2026-07-01T00:00:00Z",
                "updated_at": "2026-07-01T00:00:00Z"}  # fmt: skip

    def typeform(self, day: int) -> dict[str, object]:
        n, p, at = self.next_id(), self.person(), self.moment(day)
        stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        answers = [
            {"field": {"id": "nps1", "ref": "nps", "type": "nps"}, "type": "number",
             "number": self.rand.randrange(11)},
            {"field": {"id": "why1", "ref": "why", "type": "long_text"}, "type": "text",
             "text": self.rand.choice(COMMENTS)},
        ]  # fmt: skip
        return {"response_id": f"r{n:012x}", "landed_at": stamp, "submitted_at": stamp,
                "hidden": {"user_id": f"u-{p:07d}"}, "answers": answers}  # fmt: skip

    def survey(self, day: int) -> list[str]:
        n, p, at = self.next_id(), self.person(), self.moment(day)
        return [f"rsp_{n:012x}", at.strftime("%d/%m/%Y %H:%M"), f"p{p}@co{p % 997}.example",
                str(self.rand.randrange(11)), self.rand.choice(COMMENTS)]  # fmt: skip

    def lead(self, day: int) -> list[str]:
        n, p, at = self.next_id(), self.person(), self.moment(day)
        stamp = at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        lead_id = sf_id18(f"00Q5e{n:010d}")
        email, company = f"p{p}@co{p % 997}.example", f"Co{p % 997}"
        return [lead_id, "false", "Ana", f"P{p}", email, company, "Web", "Open", OWNER, "30",
                "France", "false", "", "", "", "", stamp, stamp]  # fmt: skip

    def task(self, day: int) -> list[str]:
        n, at = self.next_id(), self.moment(day)
        who = sf_id18(f"00Q5e{self.rand.randrange(1, max(self.serial, 2)):010d}")
        stamp = at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        return [sf_id18(f"00T5e{n:010d}"), who, "", OWNER, "Call: follow-up", "Completed",
                "Call", stamp[:10], stamp, stamp]  # fmt: skip


def split(total: int, parts: int) -> Iterator[int]:
    """``total`` items over ``parts`` buckets as evenly as integers allow."""
    for i in range(parts):
        yield total * (i + 1) // parts - total * i // parts


def generate(root: Path, rows: int, seed: int, files_per_day: int = 1) -> int:
    """Write the landing folder; return the number of raw rows written.

    ``files_per_day`` > 1 cuts the same records, in the same order, into more files, as real
    exports come: Segment and GA4 that many files a day, SendGrid that many webhook bodies a
    day, Stripe that many list pages per day of each month instead of one file a month.
    Salesforce, Zendesk, Typeform and the survey stay as they are. 1 writes today's landing,
    byte for byte.
    """
    shutil.rmtree(root, ignore_errors=True)
    gen, n_files = Generator(rows, seed), files_per_day
    counts = {source: int(rows * share) for source, share in MIX.items()}
    for day, n in enumerate(split(counts["segment"], DAYS)):
        folder = root / "segment" / f"{(START + timedelta(days=day)):%Y/%m/%d}"
        lines = [json.dumps(gen.segment(day)) + "\n" for _ in range(n)]
        for part, cut in parts(lines, n_files):  # Segment's S3 export: many files a day
            write(folder / f"events{part and f'-{part}'}.jsonl.gz", "".join(cut))
    for day, n in enumerate(split(counts["ga4"], DAYS)):
        name = f"events_{(START + timedelta(days=day)):%Y%m%d}"
        lines = [json.dumps(gen.ga4(day)) + "\n" for _ in range(n)]
        for part, cut in parts(lines, n_files, width=12):  # BigQuery's sharded export names
            write(root / "ga4" / f"{name}{part and f'-{part}'}.json", "".join(cut))
    for day, n in enumerate(split(counts["sendgrid"], DAYS)):
        folder = root / "sendgrid" / f"{(START + timedelta(days=day)):%Y/%m/%d}"
        events = [gen.sendgrid(day) for _ in range(n)]
        for part, cut in parts(events, n_files, first=1):  # one POST of the webhook each
            write(folder / f"webhook-{part or 1}.json", json.dumps(cut))
    for month, n in enumerate(split(counts["stripe"], len(MONTH_ENDS))):
        days = range(month * 30, month * 30 + 30)
        events = [gen.stripe(gen.rand.choice(days)) for _ in range(n)]
        stripe(root / "stripe", month, events, n_files * len(days) if n_files > 1 else 1)
    for month, n in enumerate(split(counts["salesforce"], len(MONTH_ENDS))):
        folder = root / "salesforce" / f"export-{MONTH_ENDS[month]}"
        days = range(month * 30, month * 30 + 30)
        leads = [gen.lead(gen.rand.choice(days)) for _ in range(n * 6 // 10)]
        tasks = [gen.task(gen.rand.choice(days)) for _ in range(n - len(leads))]
        write(folder / "Lead.csv", to_csv(LEAD_HEADER, leads))
        write(folder / "Task.csv", to_csv(TASK_HEADER, tasks))
    feedback(root, gen, counts)
    return sum(counts.values())


def parts(items: list[Any], n: int, width: int = 2, first: int = 0) -> Iterator[tuple[str, Any]]:
    """``items`` cut into ``n`` runs in order, each with its part number as zero-padded text
    (from ``first``), or ``""`` when ``n`` is 1 (today's single file). An empty run is no
    file: an exporter writes none for an hour without events."""
    if n == 1:
        yield "", items
        return
    start = 0
    for i, size in enumerate(split(len(items), n)):
        if size:
            yield f"{i + first:0{width}d}", items[start : start + size]
        start += size


def stripe(folder: Path, month: int, events: list[dict[str, object]], pages: int) -> None:
    """A month of Stripe events: one JSON-lines file (``pages`` 1), or ``pages`` list pages of
    ``GET /v1/events`` (``has_more`` on all but the last). A month's events fall on random days
    of it, so the pages sit in a folder per month: a day in their names would be false."""
    if pages == 1:  # today's shape
        text = "".join(json.dumps(event) + "\n" for event in events)
        write(folder / f"events-2026-{month + 8:02d}.jsonl", text)
        return
    cuts = list(parts(events, pages, width=4, first=1))
    for part, cut in cuts:
        page = {"object": "list", "url": "/v1/events", "has_more": part != cuts[-1][0],
                "data": cut}  # fmt: skip
        write(folder / f"2026-{month + 8:02d}" / f"events-page-{part}.json", json.dumps(page))


def feedback(root: Path, gen: Generator, counts: dict[str, int]) -> None:
    """Zendesk, Typeform and survey exports: a week per page, a month per CSV."""
    for week, n in enumerate(split(counts["zendesk"], WEEKS)):
        days = range(week * 7, week * 7 + 7)
        tickets = [gen.ticket(gen.rand.choice(days)) for _ in range(n * 4 // 10)]
        events = [
            gen.ticket_event(gen.rand.choice(days), int(str(t["id"])), int(str(t["requester_id"])))
            for t in tickets[: n * 4 // 10]
        ]
        users = [gen.zendesk_user(int(str(t["requester_id"]))) for t in tickets]
        users = list({u["id"]: u for u in users}.values())[: max(0, n - len(tickets) - len(events))]
        folder = root / "zendesk" / f"week-{week:02d}"
        write(folder / "tickets.json", json.dumps({"tickets": tickets, "end_of_stream": True}))
        write(folder / "ticket-events.json", json.dumps({"ticket_events": events, "users": users}))
    for week, n in enumerate(split(counts["typeform"], WEEKS)):
        days = range(week * 7, week * 7 + 7)
        items = [gen.typeform(gen.rand.choice(days)) for _ in range(n)]
        path = root / "typeform" / "bench-nps" / f"responses-week-{week:02d}.json"
        write(path, json.dumps({"total_items": n, "page_count": 1, "items": items}))
    for month, n in enumerate(split(counts["survey"], len(MONTH_ENDS))):
        days = range(month * 30, month * 30 + 30)
        rows = [gen.survey(gen.rand.choice(days)) for _ in range(n)]
        write(root / "survey" / f"nps-{MONTH_ENDS[month]}.csv", to_csv(SURVEY_HEADER, rows))


def to_csv(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode(), compresslevel=5))
    else:
        path.write_text(text)


# CPU seconds of a child and of the workers it has reaped: on the shared machine wall time swings
# with the other sessions' load, CPU time much less.
CPU = """
def cpu():
    import resource
    return sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
"""
# Every child script gets the survey mapping as its last argument (the spec's source options).
OPTIONS = (
    CPU
    + """
from journeymine.spec import SurveyMapping
options = {"survey": {"mapping": SurveyMapping(**json.loads(sys.argv[3]))}}
"""
)

LOAD = (
    """
import json, resource, sys, time
from journeymine.ingest.load import load_landing
"""
    + OPTIONS
    + """
start = time.perf_counter()
report = load_landing(sys.argv[1], sys.argv[2], options=options)
print(json.dumps({"seconds": time.perf_counter() - start, "cpu": cpu(), **report.totals(),
                  "touchpoints": report.touchpoints, "errors": len(report.errors),
                  "rss_main_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rss_worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""
)

PHASES = (
    """
import json, resource, shutil, sys, time
from pathlib import Path
from typing import Any
from journeymine import warehouse
try:
    from journeymine.warehouse.settings import apply_memory_limit
except ImportError:  # a checkout from before the cap (to measure "before" with this script)
    apply_memory_limit = lambda con: None
from journeymine.canonical import identity
from journeymine.ingest import load
from journeymine.canonical import touchpoints
from journeymine.ingest.sources import TOUCHPOINT_FIXUPS
db, landing = Path(sys.argv[1]), Path(sys.argv[2])
"""
    + OPTIONS
    + """
times, cpus, peaks, start, start_cpu = {}, {}, {}, time.perf_counter(), cpu()
def lap(name):
    global start, start_cpu
    times[name] = round(time.perf_counter() - start, 2)
    cpus[name], start_cpu = round(cpu() - start_cpu, 2), cpu()
    peaks[name] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    start = time.perf_counter()
files = load.scan_landing(landing).files; lap("scan+hash")
staged = load.stage_files(files, db.parent / (db.name + ".phases"), options=options)
lap("stage (parse, Parquet)")
con = warehouse.connect(db); apply_memory_limit(con); con.begin()
load.load_staged(con, [staged.folder], "bench"); lap("load_staged (SQL)")
identity.stitch(con, "bench"); lap("identity.stitch")
touchpoints.build(con, TOUCHPOINT_FIXUPS); lap("touchpoints.build")
con.commit(); con.close(); lap("commit")
shutil.rmtree(staged.folder)
print(json.dumps({"times": times, "cpus": cpus, "peaks": peaks}))
"""
)

# Staging alone, source by source (parse + Parquet, all workers): raw rows/s per source.
STAGE = (
    """
import json, shutil, sys, time
from pathlib import Path
from typing import Any
import pyarrow.parquet as pq
from journeymine.ingest import load
folder, landing = Path(sys.argv[1]), Path(sys.argv[2])
"""
    + OPTIONS
    + """
files = load.scan_landing(landing).files
rates = {}
for source in load.SOURCES:
    mine = [f for f in files if f.source == source]
    if not mine:
        continue
    start, start_cpu = time.perf_counter(), cpu()
    staged = load.stage_files(mine, folder / source, options=options)
    seconds, cpu_s = time.perf_counter() - start, cpu() - start_cpu
    rows = sum(pq.read_table(staged.folder / "files.parquet")["rows_read"].to_pylist())
    rates[source] = [rows, round(seconds, 2), round(cpu_s, 2)]
    shutil.rmtree(staged.folder)
print(json.dumps(rates))
"""
)

SCAN = (
    CPU
    + """
import json, resource, sys, time
from pathlib import Path
from typing import Any
import duckdb
root = Path(sys.argv[1])
con = duckdb.connect()
start, rows = time.perf_counter(), 0
def scan(records, files):
    # read_json_auto with union_by_name reserves ~32 MiB per file up front: more than ~580 files
    # in one call fail with "Out of Memory" at the default limit. 256 files per call: the 92
    # files a source has in the default landing are still one call.
    return sum(con.execute(f"SELECT coalesce(sum({records}), 0) FROM read_json_auto(?, "
                           "union_by_name = true)", [files[i:i + 256]]).fetchone()[0]
               for i in range(0, len(files), 256))
for source, pattern in (("segment", "*"), ("ga4", "*"), ("sendgrid", "*"), ("stripe", "*.jsonl")):
    files = sorted(str(p) for p in (root / source).rglob(pattern) if p.is_file())
    rows += scan("1", files)
pages = {  # JSON pages: count the records in their arrays
    "zendesk": "coalesce(len(tickets), 0) + coalesce(len(ticket_events), 0)"
               " + coalesce(len(users), 0)",
    "typeform": "len(items)",
    "stripe": "len(data)",  # list pages of GET /v1/events (--files-per-day above 1)
}
for source, records in pages.items():
    rows += scan(records, sorted(str(p) for p in (root / source).rglob("*.json")))
for path in sorted([*(root / "salesforce").rglob("*.csv"), *(root / "survey").rglob("*.csv")]):
    rows += con.execute("SELECT count(*) FROM read_csv_auto(?)", [str(path)]).fetchone()[0]
print(json.dumps({"seconds": time.perf_counter() - start, "rows": rows, "cpu": cpu(),
                  "rss_main_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""
)


def child(script: str, *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", script, *args], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def print_load(load: dict[str, Any]) -> None:
    load_rate = load["rows_read"] / load["seconds"]
    print(f"journeymine load : {load['seconds']:7.1f} s  {load_rate:>9,.0f} rows/s  "
          f"CPU {load['cpu']:.1f} s ({load['rows_read'] / load['cpu']:,.0f} rows/CPU s)  "
          f"peak RSS {load['rss_main_mb']:,.0f} MB main, "
          f"{load['rss_worker_mb']:,.0f} MB largest worker")  # fmt: skip
    print(f"   rows read {load['rows_read']:,} = loaded {load['rows_loaded']:,} + duplicates "
          f"{load['duplicates']:,} + quarantined {load['quarantined']:,}; "
          f"{load['touchpoints']:,} touchpoints; {load['errors']} file errors")  # fmt: skip


def bench(
    rows: int, data: Path, seed: int, reuse: bool, load_only: bool = False, files_per_day: int = 1
) -> None:
    # Another shape is another landing (and warehouse): both can be kept and run in turn.
    tag = f"{rows}" if files_per_day == 1 else f"{rows}-x{files_per_day}"
    landing, stamp = data / f"landing-{tag}", data / f"landing-{tag}.json"
    started = time.perf_counter()
    wanted = {"rows": rows, "seed": seed, "files_per_day": files_per_day}
    # A stamp from before the option was of today's shape, one file per day.
    previous = json.loads(stamp.read_text()) if reuse and stamp.exists() else {}
    if {k: previous.get(k, 1 if k == "files_per_day" else None) for k in wanted} == wanted:
        written = previous["written"]
    else:
        stamp.unlink(missing_ok=True)
        written = generate(landing, rows, seed, files_per_day)
        stamp.write_text(json.dumps({**wanted, "written": written}))
    size_mb = sum(p.stat().st_size for p in landing.rglob("*") if p.is_file()) / 1e6
    files = sum(1 for p in landing.rglob("*") if p.is_file())
    print(f"\n{written:,} raw rows in {files} files ({files_per_day} per day), {size_mb:.0f} MB "
          f"on disk (generated in {time.perf_counter() - started:.1f} s)")  # fmt: skip
    warehouse = data / f"bench-{tag}.duckdb"
    for stale in data.glob(f"bench-{tag}.duckdb*"):
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    mapping = json.dumps(SURVEY_MAPPING)
    load = child(LOAD, str(warehouse), str(landing), mapping)
    if load_only:
        print_load(load)
        return
    scan = child(SCAN, str(landing))
    for stale in data.glob(f"phases-{tag}.duckdb*"):
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    phases = child(PHASES, str(data / f"phases-{tag}.duckdb"), str(landing), mapping)
    shutil.rmtree(data / f"stage-{tag}", ignore_errors=True)
    stage = child(STAGE, str(data / f"stage-{tag}"), str(landing), mapping)
    print_load(load)
    print(f"DuckDB auto scan : {scan['seconds']:7.1f} s  {scan['rows'] / scan['seconds']:>9,.0f}"
          f" rows/s  CPU {scan['cpu']:.1f} s ({scan['rows'] / scan['cpu']:,.0f} rows/CPU s)  "
          f"peak RSS {scan['rss_main_mb']:,.0f} MB ({scan['rows']:,} rows)")  # fmt: skip
    print("load phases (s), a separate run: "
          + ", ".join(f"{k} {v}" for k, v in phases["times"].items()))  # fmt: skip
    print("load phases, CPU s (main process and reaped workers): "
          + ", ".join(f"{k} {v}" for k, v in phases["cpus"].items()))  # fmt: skip
    print("main process peak RSS (MB) so far, after each phase: "
          + ", ".join(f"{k} {v:,}" for k, v in phases["peaks"].items()))  # fmt: skip
    print("staging per source (rows, s, rows/s; CPU s, rows/CPU s), a separate run: " + ", ".join(
        f"{source} {n:,} in {s} s = {n / s:,.0f}/s; {c} CPU s = {n / c:,.0f}/CPU s"
        for source, (n, s, c) in stage.items()
    ))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, action="append", help="raw rows (repeatable)")
    parser.add_argument("--data", type=Path, default=Path(__file__).parent / "data")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--reuse", action="store_true", help="keep a landing generated before with these rows/seed"
    )
    parser.add_argument(
        "--memory-limit",
        help="the writer's DuckDB cap for every run (JOURNEYMINE_MEMORY_LIMIT; default: its own)",
    )
    parser.add_argument(
        "--files-per-day",
        type=int,
        default=1,
        help="cut the same records into N files a day (Segment, GA4, SendGrid) and N Stripe "
        "list pages per day of a month, as real exports come; default 1: one file a day",
    )
    parser.add_argument(
        "--load-only", action="store_true", help="only the load (no scan, phases, per source)"
    )
    args = parser.parse_args()
    if args.memory_limit:
        os.environ["JOURNEYMINE_MEMORY_LIMIT"] = args.memory_limit  # the children inherit it
    print(f"python {sys.version.split()[0]}, {resource.getpagesize()} B pages")
    for rows in args.rows or [100_000]:
        bench(rows, args.data, args.seed, args.reuse, args.load_only, args.files_per_day)


if __name__ == "__main__":
    main()
