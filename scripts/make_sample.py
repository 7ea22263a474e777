"""Generate the bundled sample: realistic exports of a B2B SaaS company, with planted truths.

    python scripts/make_sample.py [--out data/sample] [--seed 7] [--persons 2500]

"Northwind Metrics" sells analytics seats. Over 2026-08-01 .. 2026-10-31 people visit the site
(Segment page calls; GA4 on the docs site), sign up, request a demo (Segment track + a Salesforce
Lead owned by one of four reps), get a follow-up call, see a demo, start a Stripe trial, pay,
renew monthly, churn or fail a payment. SendGrid sends lifecycle and dunning emails.

Everything is drawn from one seeded random generator and written in sorted order, so the same
seed gives byte-identical files. Every number planted is written to ``truths.json`` (computed
from the generated people, not typed in) and explained in the sample's README.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import math
import random
import shutil
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from journeymine.sources.salesforce import sf_id18

START = datetime(2026, 8, 1, tzinfo=UTC)
CUTOFF = datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC)
SIZES = ["1-10", "11-50", "51-200", "201-1000"]
SIZE_EMPLOYEES = {"1-10": 6, "11-50": 30, "51-200": 120, "201-1000": 600}
UTM_SOURCES = [
    ("google", "cpc"),
    ("linkedin", "paid_social"),
    ("newsletter", "email"),
    ("direct", None),
]
COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne"]
PAGES = ["/", "/pricing", "/features", "/blog/journey-mapping", "/customers", "/about"]
HOSTILE_TITLE = "<script>alert(1)</script>"
HOSTILE_UTM = '"><img src=x onerror=alert(1)>'
# Four sales reps; the median hours from a demo request to their first call.
REPS = [
    ("005000000000R01", "Ana Ruiz", 0.5),
    ("005000000000R02", "Ben Okafor", 3.0),
    ("005000000000R03", "Chloe Martin", 20.0),
    ("005000000000R04", "Dev Patel", 50.0),
]
# Chance a demo is held, by how long the person waited for the first follow-up (hours).
DEMO_CHANCE = [(1, 0.70), (4, 0.60), (24, 0.45), (48, 0.35), (math.inf, 0.25)]
LATENCY_BUCKETS = ["<1h", "1-4h", "4-24h", "24-48h", ">48h"]
TRIAL_CHANCE = {"1-10": 0.20, "11-50": 0.65, "51-200": 0.65, "201-1000": 0.65}


def bucket(hours: float) -> str:
    return next(
        name for (edge, _), name in zip(DEMO_CHANCE, LATENCY_BUCKETS, strict=True) if hours < edge
    )


@dataclass
class Person:
    index: int
    company: str
    size: str
    first_name: str
    devices: list[str]
    utm: tuple[str, str | None]
    tz_offset: int  # hours, for the offsets Segment keeps in timestamps
    user_id: str | None = None
    email: str | None = None
    stages: dict[str, datetime] = field(default_factory=dict)
    rep: str | None = None
    latency_h: float | None = None
    nodes: set[str] = field(default_factory=set)  # identifiers that reached the exports
    links: list[tuple[str, str]] = field(default_factory=list)  # links that reached them

    def link(self, a: str, b: str | None = None) -> None:
        self.nodes.add(a)
        if b:
            self.nodes.add(b)
            self.links.append((a, b))

    def islands(self) -> int:
        """How many persons the exports can show for this one human being."""
        parent = {n: n for n in self.nodes}

        def find(n: str) -> str:
            while parent[n] != n:
                n = parent[n]
            return n

        for a, b in self.links:
            parent[find(a)] = find(b)
        return len({find(n) for n in self.nodes})


class Sample:
    def __init__(self, seed: int, persons: int) -> None:
        self.rng = random.Random(seed)
        self.n = persons
        self.segment: list[tuple[datetime, dict[str, Any]]] = []
        self.ga4: list[tuple[datetime, dict[str, Any]]] = []
        self.sendgrid: list[tuple[datetime, dict[str, Any]]] = []
        self.stripe: list[tuple[datetime, dict[str, Any]]] = []
        self.sf: dict[str, list[dict[str, str]]] = defaultdict(list)
        self.people: list[Person] = []
        self.counters: Counter[str] = Counter()
        self.truths: dict[str, Any] = {}
        self.examples: list[dict[str, Any]] = []

    # -- ids -----------------------------------------------------------------------------
    def uid(self, prefix: str, n: int = 16) -> str:
        return prefix + "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    def sfid(self, prefix: str) -> str:
        self.counters[prefix] += 1
        return sf_id18(f"{prefix}{self.counters[prefix]:012d}")

    # -- emitters ------------------------------------------------------------------------
    def seg(self, p: Person, kind: str, at: datetime, anon: str | None, **body: Any) -> None:
        if at > CUTOFF:
            return
        local = at.astimezone(UTC) + timedelta(hours=p.tz_offset)
        sign = "+" if p.tz_offset >= 0 else "-"
        stamp = local.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + f"{sign}{abs(p.tz_offset):02d}:00"
        call: dict[str, Any] = {"type": kind, "messageId": self.uid("ajs-"), "timestamp": stamp}
        if anon:
            call["anonymousId"] = anon
        if p.user_id and kind != "page" or (p.user_id and anon is None):
            call["userId"] = p.user_id
        call.update(body)
        self.segment.append((at, call))
        user = call.get("userId")
        p.link(
            f"user:{user}" if user else f"anon:{anon}", f"anon:{anon}" if user and anon else None
        )
        email = (body.get("traits") or {}).get("email")
        if email:
            p.link(f"user:{user}" if user else f"anon:{anon}", f"email:{email.strip().lower()}")

    def email(self, p: Person, at: datetime, category: str, opened: float = 0.6) -> None:
        """One SendGrid message: processed, delivered, then maybe open and click."""
        assert p.email
        msg = self.uid("msg-", 12)
        steps = [("processed", 0.0), ("delivered", 0.01)]
        if self.rng.random() < 0.02:
            steps[1] = ("bounce", 0.01)
        elif self.rng.random() < opened:
            steps.append(("open", self.rng.uniform(0.2, 30)))
            if self.rng.random() < 0.4:
                steps.append(("click", steps[-1][1] + self.rng.uniform(0.01, 0.2)))
        for event, hours in steps:
            when = at + timedelta(hours=hours)
            if when > CUTOFF:
                continue
            item: dict[str, Any] = {
                "email": p.email,
                "timestamp": int(when.timestamp()),
                "event": event,
                "sg_event_id": self.uid("sg-", 20),
                "sg_message_id": msg,
                "category": [category],
                "smtp-id": f"<{msg}@ismtpd>",
            }
            if p.user_id:
                item["user_id"] = p.user_id
            p.link(f"email:{p.email}", f"user:{p.user_id}" if p.user_id else None)
            if event == "click":
                item["url"] = "https://northwind.io/pricing"
            if event == "bounce":
                item.update(reason="550 5.1.1 mailbox unavailable", status="5.1.1", type="bounce")
            if event in ("open", "click"):
                item["ip"], item["useragent"] = "203.0.113.7", "Mozilla/5.0"
            self.sendgrid.append((when, item))

    def stripe_event(self, at: datetime, kind: str, obj: dict[str, Any], basil: bool) -> None:
        if at > CUTOFF:
            return
        version = "2025-03-31.basil" if basil else "2024-06-20"
        if obj.get("object") == "invoice":
            sub = obj.pop("subscription")
            if basil:
                obj["parent"] = {
                    "type": "subscription_details",
                    "subscription_details": {"subscription": sub},
                }
            else:
                obj["subscription"] = sub
        self.stripe.append(
            (
                at,
                {
                    "id": self.uid("evt_", 24),
                    "object": "event",
                    "api_version": version,
                    "created": int(at.timestamp()),
                    "type": kind,
                    "livemode": False,
                    "data": {"object": obj},
                },
            )
        )

    # -- the journey ---------------------------------------------------------------------
    def make_person(self, i: int) -> Person:
        rng = self.rng
        company = f"{rng.choice(COMPANIES)}{i}"
        devices = [self.uid("anon-", 12) for _ in range(2 if rng.random() < 0.15 else 1)]
        return Person(
            index=i,
            company=company,
            size=rng.choices(SIZES, [0.3, 0.3, 0.25, 0.15])[0],
            first_name=rng.choice(["Jane", "Omar", "Li", "Sara", "Tom", "Ines", "Raj", "Eva"]),
            devices=devices,
            utm=rng.choice(UTM_SOURCES),
            tz_offset=rng.choice([0, 0, 2, -5]),
        )

    def visits(self, p: Person, start: datetime) -> datetime:
        t = start
        for d, anon in enumerate(p.devices):
            t = start + timedelta(days=d * self.rng.uniform(0.5, 4))
            for _ in range(self.rng.randint(1, 4)):
                page = self.rng.choice(PAGES)
                title = HOSTILE_TITLE if self.rng.random() < 0.01 else page.strip("/").title()
                campaign: dict[str, Any] = {"source": p.utm[0]}
                if p.utm[1]:
                    campaign["medium"] = p.utm[1]
                if self.rng.random() < 0.01:
                    campaign["name"] = HOSTILE_UTM
                    self.counters["hostile_utm"] += t <= CUTOFF
                if title == HOSTILE_TITLE:
                    self.counters["hostile_title"] += t <= CUTOFF
                self.seg(
                    p,
                    "page",
                    t,
                    anon,
                    name=title,
                    properties={"path": page, "title": title, "url": f"https://northwind.io{page}"},
                    context={"campaign": campaign, "ip": "198.51.100.4"},
                )
                t += timedelta(minutes=self.rng.uniform(0.5, 8))
            if self.rng.random() < 0.3:  # docs site on GA4
                self.ga4_visit(p, anon, t + timedelta(hours=self.rng.uniform(1, 48)))
        return t

    def ga4_visit(self, p: Person, anon: str, at: datetime) -> None:
        for k, path in enumerate(["/guides/setup", "/reference/api"][: self.rng.randint(1, 2)]):
            when = at + timedelta(minutes=3 * k)
            if when > CUTOFF:
                return
            micros = int(when.timestamp() * 1_000_000) + self.rng.randint(0, 999_999)
            row: dict[str, Any] = {
                "event_date": when.strftime("%Y%m%d"),
                "event_timestamp": micros,
                "event_name": "page_view",
                "user_pseudo_id": anon.replace("anon-", "ga."),
                "event_params": [
                    {
                        "key": "page_location",
                        "value": {"string_value": f"https://docs.northwind.io{path}"},
                    },
                    {"key": "page_title", "value": {"string_value": path.split("/")[-1]}},
                    {"key": "ga_session_id", "value": {"int_value": int(at.timestamp())}},
                ],
                "device": {"category": "desktop"},
                "geo": {"country": "Germany"},
                "collected_traffic_source": {"manual_source": p.utm[0]},
                "batch_event_index": 0,
                "batch_page_id": micros // 1000,
                "batch_ordering_id": 1,
                "stream_id": "4242",
            }
            if p.user_id and when >= p.stages.get("signup", CUTOFF):
                row["user_id"] = p.user_id
                self.counters["ga4_linked_rows"] += 1
            self.ga4.append((when, row))
            pseudo = "ga:" + row["user_pseudo_id"]
            p.link(
                f"user:{row['user_id']}" if "user_id" in row else pseudo,
                pseudo if "user_id" in row else None,
            )

    def signup(self, p: Person, at: datetime, email: str) -> None:
        p.user_id, p.email, p.stages["signup"] = f"u-{p.index:05d}", email, at
        anon = p.devices[-1]
        self.seg(
            p,
            "identify",
            at,
            anon,
            traits={
                "email": email if p.index % 5 else f"  {email.title()} ",
                "company": p.company,
                "company_size": p.size,
                "name": p.first_name,
            },
        )
        self.seg(
            p,
            "track",
            at + timedelta(seconds=2),
            anon,
            event="Signed Up",
            properties={"plan": "free"},
            context={"campaign": {"source": p.utm[0]}},
        )
        if len(p.devices) > 1:  # the other device logs in later: one person, two devices
            self.seg(p, "identify", at + timedelta(days=1), p.devices[0], traits={"email": email})
        self.email(p, at + timedelta(minutes=1), "welcome")

    def demo_request(self, p: Person, at: datetime) -> None:
        rng = self.rng
        p.stages["demo_requested"] = at
        self.seg(
            p, "track", at, None, event="Demo Requested", properties={"seats": rng.randint(2, 40)}
        )
        rep = REPS[p.index % len(REPS)]
        p.rep = rep[0]
        created = at + timedelta(minutes=rng.uniform(1, 10))
        if created > CUTOFF:
            return
        lead_email = f" {p.email.title()} " if p.email and p.index % 3 == 0 else p.email
        lead = {
            "Id": self.sfid("00Q"),
            "IsDeleted": "false",
            "FirstName": p.first_name,
            "LastName": f"Person{p.index}",
            "Email": lead_email or "",
            "Company": p.company,
            "LeadSource": "Web - Demo Request",
            "Status": "Open - Not Contacted",
            "OwnerId": sf_id18(rep[0]),
            "NumberOfEmployees": str(SIZE_EMPLOYEES[p.size]),
            "Country": "Germany",
            "IsConverted": "false",
            "ConvertedDate": "",
            "ConvertedContactId": "",
            "ConvertedAccountId": "",
            "ConvertedOpportunityId": "",
            "CreatedDate": sfdt(created),
            "SystemModstamp": sfdt(created),
        }
        self.sf["Lead"].append(lead)
        p.link(f"lead:{lead['Id']}", f"email:{(lead_email or '').strip().lower()}")
        latency = rng.lognormvariate(math.log(rep[2]), 0.6)
        followed = created + timedelta(hours=latency)
        if followed > CUTOFF:
            self.counters["open_demo_requests"] += int(CUTOFF - created < timedelta(hours=48))
            return
        p.latency_h = (followed - created).total_seconds() / 3600
        who = lead["Id"][:15] if p.index % 7 == 0 else lead["Id"]  # some references in 15 chars
        self.sf["Task"].append(
            {
                "Id": self.sfid("00T"),
                "WhoId": who,
                "WhatId": "",
                "OwnerId": sf_id18(rep[0]),
                "Subject": "Call: demo request",
                "Status": "Completed",
                "TaskSubtype": "Call",
                "ActivityDate": followed.strftime("%Y-%m-%d"),
                "CompletedDateTime": sfdt(followed),
                "CreatedDate": sfdt(created),
            }
        )
        chance = next(c for edge, c in DEMO_CHANCE if p.latency_h < edge)
        if rng.random() >= chance:
            return
        demo = followed + timedelta(days=rng.uniform(1, 5))
        if demo > CUTOFF:
            return
        p.stages["demo_held"] = demo
        self.sf["Event"].append(
            {
                "Id": self.sfid("00U"),
                "WhoId": lead["Id"],
                "WhatId": "",
                "OwnerId": sf_id18(rep[0]),
                "Subject": f"Demo - {p.company}",
                "Type": "Demo",
                "StartDateTime": sfdt(demo),
                "EndDateTime": sfdt(demo + timedelta(hours=1)),
                "CreatedDate": sfdt(followed),
            }
        )
        self.convert(p, lead, demo)

    def convert(self, p: Person, lead: dict[str, str], at: datetime) -> None:
        contact, account, opp = self.sfid("003"), self.sfid("001"), self.sfid("006")
        lead.update(
            IsConverted="true",
            ConvertedDate=at.strftime("%Y-%m-%d"),
            ConvertedContactId=contact,
            ConvertedAccountId=account,
            ConvertedOpportunityId=opp,
            Status="Qualified",
            SystemModstamp=sfdt(at),
        )
        stamp = sfdt(at + timedelta(minutes=5))
        p.link(f"contact:{contact}", f"lead:{lead['Id']}")
        p.link(f"opp:{opp}", f"contact:{contact}")
        self.sf["Account"].append(
            {
                "Id": account,
                "Name": p.company,
                "Industry": "Software",
                "NumberOfEmployees": str(SIZE_EMPLOYEES[p.size]),
                "CreatedDate": stamp,
            }
        )
        self.sf["Contact"].append(
            {
                "Id": contact,
                "AccountId": account,
                "Email": p.email or "",
                "FirstName": p.first_name,
                "LastName": f"Person{p.index}",
                "OwnerId": lead["OwnerId"],
                "CreatedDate": stamp,
            }
        )
        self.sf["Opportunity"].append(
            {
                "Id": opp,
                "AccountId": account,
                "Name": f"{p.company} seats",
                "StageName": "Qualification",
                "Amount": "4800",
                "OwnerId": lead["OwnerId"],
                "CreatedDate": stamp,
            }
        )
        self.sf["OpportunityContactRole"].append(
            {
                "Id": self.sfid("00K"),
                "ContactId": contact,
                "OpportunityId": opp,
                "IsPrimary": "true",
                "Role": "Decision Maker",
                "CreatedDate": stamp,
            }
        )
        self.sf["OpportunityHistory"].append(
            {
                "Id": self.sfid("008"),
                "OpportunityId": opp,
                "StageName": "Qualification",
                "CreatedDate": stamp,
            }
        )
        if self.rng.random() < TRIAL_CHANCE[p.size]:
            self.trial(p, at + timedelta(days=self.rng.uniform(0.5, 3)), opp, contact)

    def trial(self, p: Person, at: datetime, opp: str | None, contact: str | None) -> None:
        if at > CUTOFF:
            return
        p.stages["trial"] = at
        rng = self.rng
        if opp is None:
            self.counters["self_serve_trials"] += 1
        elif contact and rng.random() < 0.08:  # planted deviation: a second demo in the trial
            again = at + timedelta(days=rng.uniform(2, 5))
            if again <= CUTOFF:
                self.counters["second_demo_after_trial"] += 1
                self.sf["Event"].append(
                    {
                        "Id": self.sfid("00U"),
                        "WhoId": contact,
                        "WhatId": opp,
                        "OwnerId": sf_id18(REPS[p.index % 4][0]),
                        "Subject": f"Demo - {p.company} (team)",
                        "Type": "Demo",
                        "StartDateTime": sfdt(again),
                        "EndDateTime": sfdt(again + timedelta(hours=1)),
                        "CreatedDate": sfdt(at),
                    }
                )
        customer, sub = self.uid("cus_", 14), self.uid("sub_", 14)
        basil = p.index % 2 == 0
        billing_email = f"billing@{p.company.lower()}.example" if p.index % 10 == 0 else p.email
        if billing_email != p.email:
            self.counters["stripe_linked_by_user_id_only"] += 1
        p.link(f"cus:{customer}", f"user:{p.user_id}")
        p.link(f"cus:{customer}", f"email:{billing_email}")
        self.stripe_event(
            at,
            "customer.created",
            {
                "id": customer,
                "object": "customer",
                "email": billing_email,
                "metadata": {"user_id": p.user_id},
            },
            basil,
        )
        self.stripe_event(
            at + timedelta(seconds=5),
            "customer.subscription.created",
            {
                "id": sub,
                "object": "subscription",
                "customer": customer,
                "status": "trialing",
                "items": {"data": [{"price": {"id": "price_team"}}]},
            },
            basil,
        )
        self.seg(p, "track", at + timedelta(seconds=8), None, event="Trial Started")
        if opp:
            history = {
                "Id": self.sfid("008"),
                "OpportunityId": opp,
                "StageName": "Trial",
                "CreatedDate": sfdt(at),
            }
            self.sf["OpportunityHistory"].append(history)
        self.email(p, at + timedelta(minutes=2), "trial")
        if rng.random() >= 0.7:
            self.stripe_event(
                at + timedelta(days=14),
                "customer.subscription.deleted",
                {
                    "id": sub,
                    "object": "subscription",
                    "customer": customer,
                    "status": "canceled",
                    "cancellation_details": {"reason": "cancellation_requested"},
                },
                basil,
            )
            return
        pay = at + timedelta(days=14)
        while pay <= CUTOFF:
            invoice = {
                "id": self.uid("in_", 14),
                "object": "invoice",
                "customer": customer,
                "customer_email": billing_email,
                "subscription": sub,
                "amount_due": 4900,
                "currency": "eur",
                "billing_reason": "subscription_cycle",
            }
            if rng.random() < 0.15:  # failed payment, dunning email, maybe a call, then retry
                self.stripe_event(
                    pay, "invoice.payment_failed", {**invoice, "attempt_count": 1}, basil
                )
                self.counters["payment_failed"] += 1
                self.email(p, pay + timedelta(hours=rng.uniform(0.1, 6)), "dunning", opened=0.5)
                if rng.random() < 0.8:
                    pay += timedelta(days=rng.uniform(1, 3))
                else:
                    break
            if pay > CUTOFF:
                break
            self.stripe_event(pay, "invoice.paid", {**invoice, "amount_paid": 4900}, basil)
            p.stages.setdefault("paid", pay)
            if pay > p.stages["paid"]:
                p.stages.setdefault("renewal", pay)
            pay += timedelta(days=30)
            if rng.random() < 0.1:
                break

    def run(self) -> None:
        rng = self.rng
        for i in range(self.n):
            p = self.make_person(i)
            self.people.append(p)
            start = START + timedelta(seconds=rng.uniform(0, (CUTOFF - START).total_seconds()))
            t = self.visits(p, start)
            if rng.random() >= 0.55:
                continue
            self.signup(
                p,
                t + timedelta(minutes=rng.uniform(1, 60)),
                f"{p.first_name.lower()}.p{i}@{p.company.lower()}.example",
            )
            if rng.random() < 0.6:
                self.demo_request(p, p.stages["signup"] + timedelta(hours=rng.uniform(0.1, 72)))
            elif rng.random() < 0.08:  # planted deviation: a self-serve trial, no demo at all
                self.trial(p, p.stages["signup"] + timedelta(days=rng.uniform(1, 5)), None, None)
        self.shared_mailbox()
        self.outbound_leads()
        for rep_id, name, _ in REPS:  # the sales reps behind OwnerId, as User.csv exports them
            first, last = name.split()
            self.sf["User"].append(
                {
                    "Id": sf_id18(rep_id),
                    "FirstName": first,
                    "LastName": last,
                    "Name": name,
                    "IsActive": "true",
                    "Title": "Account Executive",
                    "CreatedDate": "2025-01-06T09:00:00.000Z",
                }
            )

    def shared_mailbox(self) -> None:
        """Two colleagues who both sign up with the team's info@ address: two people."""
        for k in range(2):
            p = self.make_person(self.n + k)
            p.company = "Sharedco"
            self.people.append(p)
            at = START + timedelta(days=20 + k)
            self.seg(p, "page", at, p.devices[0], properties={"path": "/"})
            p.devices = p.devices[:1]
            self.signup(p, at + timedelta(minutes=5), "info@sharedco.example")
        self.truths["shared_mailbox_user_ids"] = [f"u-{self.n:05d}", f"u-{self.n + 1:05d}"]

    def outbound_leads(self) -> None:
        for k in range(150):
            at = START + timedelta(hours=self.rng.uniform(0, 2000))
            self.sf["Lead"].append(
                {
                    "Id": self.sfid("00Q"),
                    "IsDeleted": "false",
                    "FirstName": "Out",
                    "LastName": f"Bound{k}",
                    "Email": f"out{k}@prospect{k}.example",
                    "Company": f"Prospect{k}",
                    "LeadSource": "Outbound" if k % 3 else "Partner",
                    "Status": "Working",
                    "OwnerId": sf_id18(REPS[k % 4][0]),
                    "NumberOfEmployees": "250",
                    "Country": "France",
                    "IsConverted": "false",
                    "ConvertedDate": "",
                    "ConvertedContactId": "",
                    "ConvertedAccountId": "",
                    "ConvertedOpportunityId": "",
                    "CreatedDate": sfdt(at),
                    "SystemModstamp": sfdt(at),
                }
            )


def sfdt(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


# -- noise: what real exports contain ---------------------------------------------------------
def add_noise(sample: Sample) -> dict[str, dict[str, int]]:
    """Duplicates, broken lines, missing ids and wrong units; returns the expected accounting."""
    rng = sample.rng
    noise: dict[str, dict[str, int]] = {
        s: Counter() for s in ("segment", "ga4", "sendgrid", "salesforce", "stripe")
    }
    # Segment retries: the same message again, in the same day's file or the next day's.
    for at, call in rng.sample(sample.segment, len(sample.segment) // 100):
        later = at + timedelta(days=rng.choice([0, 1])) if at + timedelta(days=1) <= CUTOFF else at
        sample.segment.append((later, dict(call)))
        noise["segment"]["duplicates"] += 1
    for k in range(3):
        at, _ = sample.segment[k * 97]
        sample.segment.append((at, {"__broken__": '{"type": "track", "messageId": "ajs-broken'}))
        noise["segment"]["quarantined"] += 1
    for at, call in sample.segment[5:7]:
        sample.segment.append((at, {**call, "messageId": None}))
        noise["segment"]["quarantined"] += 1
    # SendGrid re-posts a batch it did not get a 2xx for: events arrive twice.
    for at, item in rng.sample(sample.sendgrid, len(sample.sendgrid) // 100):
        sample.sendgrid.append((at + timedelta(minutes=30), dict(item)))
        noise["sendgrid"]["duplicates"] += 1
    for k, (at, item) in enumerate(sample.sendgrid[10:14]):
        bad = {**item, "sg_event_id": sample.uid("sg-", 20)}
        if k < 2:
            bad.pop("sg_event_id")
        else:
            bad["timestamp"] = item["timestamp"] * 1000  # milliseconds where seconds belong
        sample.sendgrid.append((at, bad))
        noise["sendgrid"]["quarantined"] += 1
    # Stripe: one truncated line, one event with created in milliseconds.
    at, event = sample.stripe[3]
    sample.stripe.append((at, {"__broken__": json.dumps(event)[:60]}))
    sample.stripe.append(
        (at, {**event, "id": sample.uid("evt_", 24), "created": event["created"] * 1000})
    )
    noise["stripe"]["quarantined"] += 2
    # GA4: a row whose microsecond timestamp is a string (valid: BigQuery JSON gives it so).
    if sample.ga4:
        sample.ga4[0][1]["event_timestamp"] = str(sample.ga4[0][1]["event_timestamp"])
    # Salesforce: a deleted lead still in the export.
    deleted = {**sample.sf["Lead"][-1], "Id": sample.sfid("00Q"), "IsDeleted": "true"}
    sample.sf["Lead"].append(deleted)
    noise["salesforce"]["quarantined"] += 1
    return {k: dict(v) for k, v in noise.items()}


# -- writers ---------------------------------------------------------------------------------
def day(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y/%m/%d")


def write_gz(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
        fh.write(text.encode())


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def line_of(item: dict[str, Any]) -> str:
    return item["__broken__"] if "__broken__" in item else json.dumps(item)


def write_segment(sample: Sample, root: Path) -> None:
    by_day: dict[str, list[str]] = defaultdict(list)
    for at, call in sorted(sample.segment, key=lambda x: x[0]):
        by_day[day(at)].append(line_of(call))
    for d, lines in sorted(by_day.items()):
        write_gz(
            root / "segment" / d / f"segment-{d.replace('/', '-')}.jsonl.gz",
            "\n".join(lines) + "\n",
        )


def write_ga4(sample: Sample, root: Path) -> None:
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for at, row in sorted(sample.ga4, key=lambda x: x[0]):
        by_day[at.strftime("%Y%m%d")].append(row)
    days = sorted(by_day)
    for d in days[:-1]:
        write_text(
            root / "ga4" / f"events_{d}.json", "".join(json.dumps(r) + "\n" for r in by_day[d])
        )
    pq.write_table(
        pa.Table.from_pylist(by_day[days[-1]]), root / "ga4" / f"events_{days[-1]}.parquet"
    )


def write_sendgrid(sample: Sample, root: Path) -> None:
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for at, item in sorted(sample.sendgrid, key=lambda x: x[0]):
        by_day[day(at)].append(item)
    for d, items in sorted(by_day.items()):
        for n in range(0, len(items), 100):
            body = "[\n" + ",\n".join(json.dumps(i) for i in items[n : n + 100]) + "\n]\n"
            write_text(root / "sendgrid" / d / f"webhook-{n // 100 + 1}.json", body)


def write_salesforce(sample: Sample, root: Path) -> None:
    folder = root / "salesforce" / "export-2026-10-31"
    for obj, rows in sorted(sample.sf.items()):
        fields = list(dict.fromkeys(k for r in rows for k in r))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text(folder / f"{obj}.csv", buf.getvalue())


def write_stripe(sample: Sample, root: Path) -> None:
    events = sorted(sample.stripe, key=lambda x: x[0])
    page, rest = events[-25:], events[:-25]
    by_month: dict[str, list[str]] = defaultdict(list)
    for at, event in rest:
        by_month[at.strftime("%Y-%m")].append(line_of(event))
    for month, lines in sorted(by_month.items()):
        write_text(root / "stripe" / f"events-{month}.jsonl", "\n".join(lines) + "\n")
    listing = {
        "object": "list",
        "url": "/v1/events",
        "has_more": False,
        "data": [e for _, e in reversed(page)],
    }  # newest first, as Stripe lists them
    write_text(root / "stripe" / "list-page-2026-10-31.json", json.dumps(listing, indent=2) + "\n")


# -- truths ----------------------------------------------------------------------------------
def rate(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def compute_truths(sample: Sample, noise: dict[str, dict[str, int]]) -> dict[str, Any]:
    people = sample.people
    outbound = sum(
        1
        for r in sample.sf["Lead"]
        if r["LeadSource"] in ("Outbound", "Partner") and r["IsDeleted"] == "false"
    )
    settled = CUTOFF - timedelta(days=6)
    reps: dict[str, Any] = {}
    for rep_id, name, median_h in REPS:
        mine = [p.latency_h for p in people if p.rep == rep_id and p.latency_h is not None]
        reps[sf_id18(rep_id)] = {
            "name": name,
            "planted_median_h": median_h,
            "answered": len(mine),
            "median_latency_h": round(statistics.median(mine), 3) if mine else None,
        }
    by_bucket: dict[str, list[int]] = {b: [0, 0] for b in LATENCY_BUCKETS}
    for p in people:
        if p.latency_h is not None and p.stages["demo_requested"] < settled:
            by_bucket[bucket(p.latency_h)][0] += int("demo_held" in p.stages)
            by_bucket[bucket(p.latency_h)][1] += 1
    by_size: dict[str, list[int]] = {s: [0, 0] for s in SIZES}
    for p in people:
        if "demo_held" in p.stages and p.stages["demo_held"] < CUTOFF - timedelta(days=3):
            by_size[p.size][0] += int("trial" in p.stages)
            by_size[p.size][1] += 1
    examples = [
        p for p in people if len(p.devices) == 2 and "trial" in p.stages and p.islands() == 1
    ][:10]
    return {
        "cutoff": CUTOFF.isoformat(),
        "persons": {
            "expected_persons": sum(p.islands() for p in people) + outbound,
            "humans": len(people) + outbound,
            "with_two_devices": sum(1 for p in people if len(p.devices) == 2),
            "stripe_linked_by_user_id_only": sample.counters["stripe_linked_by_user_id_only"],
            "example_groups": [sorted(p.nodes) for p in examples],
        },
        "shared_mailbox": {
            "email": "info@sharedco.example",
            "user_ids": sample.truths["shared_mailbox_user_ids"],
        },
        "noise": noise,
        "hostile": {
            "page_titles": sample.counters["hostile_title"],
            "utm_campaigns": sample.counters["hostile_utm"],
        },
        "stages": {
            s: sum(1 for p in people if s in p.stages)
            for s in ("signup", "demo_requested", "demo_held", "trial", "paid", "renewal")
        },
        "reps": reps,
        "demo_held_by_latency_bucket": {
            b: {"held": h, "of": n, "rate": rate(h, n)} for b, (h, n) in by_bucket.items()
        },
        "trial_after_demo_by_company_size": {
            s: {"trials": h, "of": n, "rate": rate(h, n)} for s, (h, n) in by_size.items()
        },
        "demo_requests_without_followup_at_cutoff": sum(
            1 for p in people if p.rep and p.latency_h is None and "demo_requested" in p.stages
        ),
        "payment_failed": sample.counters["payment_failed"],
        "deviations": {
            "self_serve_trial_skipping_demo": sample.counters["self_serve_trials"],
            "second_demo_after_trial": sample.counters["second_demo_after_trial"],
        },
    }


def generate(out: Path, seed: int, persons: int) -> dict[str, Any]:
    sample = Sample(seed, persons)
    sample.run()
    noise = add_noise(sample)
    landing = out / "landing"
    if landing.exists():
        shutil.rmtree(landing)
    for writer in (write_segment, write_ga4, write_sendgrid, write_salesforce, write_stripe):
        writer(sample, landing)
    truths = compute_truths(sample, noise)
    write_text(out / "truths.json", json.dumps(truths, indent=2, sort_keys=True) + "\n")
    return truths


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("data/sample"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--persons", type=int, default=2500)
    args = parser.parse_args()
    truths = generate(args.out, args.seed, args.persons)
    print(
        json.dumps(
            {"expected_persons": truths["persons"]["expected_persons"], "stages": truths["stages"]}
        )
    )


if __name__ == "__main__":
    main()
