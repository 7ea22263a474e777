"""Generate the bundled sample: realistic exports of a B2B SaaS company, with planted truths.

    python scripts/make_sample.py [--out data/sample] [--seed 7] [--persons 3000]

"Northwind Metrics" sells analytics seats. Over 2026-08-01 .. 2026-10-31 people visit the site
(Segment page calls; GA4 on the docs site), sign up, request a demo (Segment track + a Salesforce
Lead owned by one of four reps), get a follow-up call, see a demo, start a Stripe trial, pay,
renew monthly, churn or fail a payment. SendGrid sends lifecycle, newsletter and dunning emails;
outbound and partner leads exist only in Salesforce. A second seeded generator (seed + 1000) adds,
after all of that, the later cases: a rep who never calls back, a weekly newsletter to trial users,
one company in every system and two that must stay apart, Zendesk tickets and Typeform NPS answers.

Everything is drawn from seeded random generators and written in sorted order, so the same
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
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

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
SF_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne"]
PAGES = ["/", "/pricing", "/features", "/blog/journey-mapping", "/customers", "/about"]
PAGE_TITLES = {
    "/": "Northwind Metrics - Customer journey analytics",
    "/pricing": "Pricing | Northwind Metrics",
    "/features": "Features | Northwind Metrics",
    "/blog/journey-mapping": "Journey mapping is guesswork | Northwind blog",
    "/customers": "Customers | Northwind Metrics",
    "/about": "About us | Northwind Metrics",
}
APP_FEATURES = ["dashboards", "funnels", "alerts", "exports", "sql_editor"]
DOCS_PAGES = ["/guides/setup", "/guides/segment", "/reference/api", "/reference/sql"]
COUNTRIES = ["Germany", "Germany", "France", "United States", "United Kingdom", "Netherlands"]
NEWSLETTERS = [datetime(2026, m, d, 8, 0, tzinfo=UTC) for m, d in ((8, 18), (9, 15), (10, 20))]
CAMPAIGNS = {"google": "q3_brand", "linkedin": "q3_abm", "newsletter": "aug_digest"}
HOSTILE_TITLE = "<script>alert(1)</script>"
HOSTILE_UTM = '"><img src=x onerror=alert(1)>'
# Four sales reps; the median hours from a demo request to their first call.
REPS = [
    ("0055e00000Ana01", "Ana Ruiz", 0.5),
    ("0055e00000BeN02", "Ben Okafor", 3.0),
    ("0055e00000ChL03", "Chloe Martin", 20.0),
    ("0055e00000DeV04", "Dev Patel", 50.0),
]
# Chance a demo is held, by how long the person waited for the first follow-up (hours).
DEMO_CHANCE = [(1, 0.70), (4, 0.60), (24, 0.45), (48, 0.35), (math.inf, 0.25)]
LATENCY_BUCKETS = ["<1h", "1-4h", "4-24h", "24-48h", ">48h"]
TRIAL_CHANCE = {"1-10": 0.20, "11-50": 0.65, "51-200": 0.65, "201-1000": 0.65}
# Added by the second random stream (``Sample.extend``), after everything above.
EVAN = ("0055e00000EvR05", "Evan Reed")  # a rep who never calls a demo request back
EVAN_REQUESTS = 24
SLA_S = 4 * 3600  # the demo-request rule: first call within 4 business hours
BERLIN = ZoneInfo("Europe/Berlin")  # the spec's calendar: Mon-Fri 09:00-17:00, holidays
HOLIDAYS = {date(2026, 10, 3), date(2026, 12, 24), date(2026, 12, 25), date(2026, 12, 26)}
ZENDESK_API = "https://northwind.zendesk.com/api/v2/incremental"
DIGEST = "weekly_digest"  # third SendGrid category of the weekly newsletter
DIGEST_DAYS = [datetime(2026, 8, 4, 7, tzinfo=UTC) + timedelta(weeks=k) for k in range(13)]
# Zendesk and Typeform (feelings): customers write more negatively in the trial; trial users who
# waited more than a day for the first agent reply become detractors more often.
AGENTS = [(9001, "Sam Rivera"), (9002, "Noor Haddad"), (9003, "Lena Fischer")]
ZENDESK_USER_BASE, ZENDESK_TICKET_BASE = 20000, 1001
NEGATIVE_CHANCE = {"trial": 0.6, "other": 0.15}
DETRACTOR_CHANCE = {True: 0.65, False: 0.15}  # by "waited > 24 h for a first reply in trial"
STAGE_ORDER = ("signup", "demo_requested", "demo_held", "trial", "paid")
NEGATIVE_TEXTS = [
    "The dashboard keeps crashing and I am really frustrated.",
    "This is terrible: the import failed again and we lost a day of work.",
    "Very disappointed, the trial numbers look wrong and nobody answers.",
    "The export is broken again. Unacceptable during a trial.",
    "I am stuck and annoyed, the setup does not work.",
]
POSITIVE_TEXTS = [
    "Thanks, the setup guide was great and everything works now.",
    "Love the new funnel view, really helpful!",
    "Great support, thank you so much.",
    "Works perfectly now, happy with it.",
]
QUESTIONS = [
    "How do I add a second workspace?",
    "Where can I find the API key for the SQL editor?",
    "Can I change the billing address on the invoice?",
]
AGENT_TEXTS = [
    "Hi, thanks for reaching out! Could you send us a screenshot?",
    "Hello, we have looked into this and pushed a fix. Could you try again?",
    "Thanks for the question: you will find it under Settings > Workspace.",
]
CSAT_TEXTS = {True: "Quick and helpful, thank you!", False: "Took far too long to get an answer."}
# A generic survey tool's CSV export (source ``survey``, mapped in journey.toml): an onboarding
# NPS a few days after signing up, the only NPS before the trial. Excel-style: a BOM, CRLF.
SURVEY_FILE = "survey/onboarding-nps-2026-10-31.csv"
SURVEY_COLUMNS = ["Response ID", "Date", "Email", "Score", "Comment", "Country"]
SURVEY_DATE_FORMAT = "%d/%m/%Y %H:%M"  # day first, UTC, as the tool exports it
SURVEY_CHANCE = 0.3
SURVEY_GROUPS = [("detractor", 0.25), ("passive", 0.3), ("promoter", 0.45)]
# Bad rows the export holds, each quarantined: (what is wrong, column, value).
SURVEY_BAD_ROWS = [("empty email", "Email", ""), ("empty email", "Email", "  "),
                   ("score not a number", "Score", "n/a")]  # fmt: skip


def sf_id18(id15: str) -> str:
    """The 18-character form of a 15-character Salesforce id.

    Each 5-character chunk gives one suffix character: bit i is set when character i of the chunk
    is an upper-case letter; the 5-bit number indexes ``A..Z0..5``.
    """
    if len(id15) == 18:
        return id15
    assert len(id15) == 15, id15
    suffix = ""
    for start in (0, 5, 10):
        bits = sum(1 << i for i, ch in enumerate(id15[start : start + 5]) if "A" <= ch <= "Z")
        suffix += SF_CHECKSUM[bits]
    return id15 + suffix


def base62(n: int, width: int) -> str:
    digits = ""
    for _ in range(width):
        n, r = divmod(n, 62)
        digits = BASE62[r] + digits
    return digits


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
    country: str = "Germany"
    last_name: str = ""
    user_id: str | None = None
    email: str | None = None
    stages: dict[str, datetime] = field(default_factory=dict)
    rep: str | None = None
    lead_created: datetime | None = None
    latency_h: float | None = None
    nodes: set[str] = field(default_factory=set)  # identifiers that reached the exports
    flags: set[str] = field(default_factory=set)  # planted identity features, for truths.json
    links: list[tuple[str, str]] = field(default_factory=list)  # links that reached them
    payments: list[datetime] = field(default_factory=list)  # invoice.paid times
    cancels: list[datetime] = field(default_factory=list)  # subscription.deleted times
    company_key: str = ""  # the real company behind the person (two may share a name)
    digests: list[datetime] = field(default_factory=list)  # weekly newsletters sent
    tickets: list[tuple[datetime, datetime | None]] = field(default_factory=list)  # -> 1st reply
    surveys: list[tuple[datetime, str, int]] = field(default_factory=list)  # (when, form, NPS)
    voices: list[tuple[datetime, str]] = field(default_factory=list)  # the customer's own words

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
        self.company_of_node: dict[str, str] = {}  # "group:<id>" / "account:<Id>" -> company
        self.sf_only: list[Person] = []  # people known only to Salesforce (not outbound leads)
        self.core = 0  # people made by the first random stream; later ones are extensions
        self.first_flags: dict[int, frozenset[str]] = {}
        self.zendesk_users: dict[int, dict[str, Any]] = {}
        self.tickets: list[tuple[datetime, dict[str, Any]]] = []
        self.ticket_events: list[tuple[datetime, dict[str, Any]]] = []
        self.responses: dict[str, list[tuple[datetime, dict[str, Any]]]] = defaultdict(list)
        self.survey_rows: list[tuple[datetime, dict[str, str]]] = []

    # -- ids -----------------------------------------------------------------------------
    def uid(self, prefix: str, n: int = 16) -> str:
        return prefix + "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    def sfid(self, prefix: str) -> str:
        """A real-looking 18-char id: key prefix, pod ``5e``, zeros, a base-62 record number."""
        self.counters[prefix] += 1
        return sf_id18(f"{prefix}5e00000{base62(self.counters[prefix] * 7919 + 40000, 5)}")

    # -- emitters ------------------------------------------------------------------------
    def seg(self, p: Person, kind: str, at: datetime, anon: str | None, **body: Any) -> None:
        if at > CUTOFF:
            return
        local = at.astimezone(UTC) + timedelta(hours=p.tz_offset)
        sign = "+" if p.tz_offset >= 0 else "-"
        zone = f"{sign}{abs(p.tz_offset):02d}:00" if p.tz_offset else "Z"
        stamp = local.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + zone
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

    def email(
        self, p: Person, at: datetime, category: str, opened: float = 0.6, tag: str | None = None
    ) -> None:
        """One SendGrid message: processed, delivered, then maybe open, click, unsubscribe.

        Product emails carry the custom arg ``user_id``; the marketing newsletter does not. A
        person who unsubscribed gets later newsletters ``dropped``.
        """
        assert p.email
        rng = self.rng
        product = category != "newsletter"
        msg = self.uid("", 22)
        steps: list[tuple[str, float]] = [("processed", 0.0)]
        if not product and "unsubscribed" in p.flags:
            steps = [("dropped", 0.0)]
        elif rng.random() < 0.02:
            steps.append(("bounce", 0.01))
        else:
            steps.append(("delivered", 0.01))
            if rng.random() < opened:
                steps.append(("open", rng.uniform(0.2, 30)))
                if rng.random() < 0.4:
                    steps.append(("click", steps[-1][1] + rng.uniform(0.01, 0.2)))
                elif not product and rng.random() < 0.08:
                    steps.append(("unsubscribe", steps[-1][1] + rng.uniform(0.01, 0.2)))
        for event, hours in steps:
            when = at + timedelta(hours=hours)
            if when > CUTOFF:
                continue
            item: dict[str, Any] = {
                "email": p.email,
                "timestamp": int(when.timestamp()),
                "event": event,
                "sg_event_id": self.uid("", 22),
                "sg_message_id": f"{msg}.filterdrecv-7bc86b958d-{rng.randint(10000, 99999)}",
                "category": [category, "product" if product else "marketing"] + [tag] * bool(tag),
                "smtp-id": f"<{msg}@geopod-ismtpd-3>",
            }
            if product and p.user_id:
                item["user_id"] = p.user_id
                p.link(f"email:{p.email}", f"user:{p.user_id}")
            else:
                p.link(f"email:{p.email}")
            if event == "click":
                item["url"] = rng.choice(
                    ["https://northwind.io/pricing", "https://app.northwind.io/billing"]
                )
            if event == "bounce":
                item.update(reason="550 5.1.1 mailbox unavailable", status="5.1.1", type="bounce")
            if event == "dropped":
                item["reason"] = "Unsubscribed Address"
            if event == "unsubscribe":
                p.flags.add("unsubscribed")
            if event in ("open", "click", "unsubscribe"):
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
            country=rng.choice(COUNTRIES),
            last_name=rng.choice(["Doe", "Novak", "Chen", "Berg", "Silva", "Khan", "Moreau"]),
        )

    def visits(self, p: Person, start: datetime) -> datetime:
        t = start
        for d, anon in enumerate(p.devices):
            t = start + timedelta(days=d * self.rng.uniform(0.5, 4))
            for _ in range(self.rng.randint(1, 4)):
                page = self.rng.choice(PAGES)
                title = HOSTILE_TITLE if self.rng.random() < 0.01 else page.strip("/").title()
                if title != HOSTILE_TITLE:
                    title = PAGE_TITLES[page]
                campaign: dict[str, Any] = {"source": p.utm[0]}
                if p.utm[1]:
                    campaign["medium"] = p.utm[1]
                    campaign["name"] = CAMPAIGNS.get(p.utm[0], "always_on")
                if p.utm[0] == "google":
                    campaign["term"] = self.rng.choice(["journey analytics", "funnel tool"])
                if p.utm[0] == "linkedin":
                    campaign["content"] = self.rng.choice(["carousel_a", "video_b"])
                if self.rng.random() < 0.01:
                    campaign["name"] = HOSTILE_UTM
                url = f"https://northwind.io{page}"
                referrer = "https://www.google.com/" if p.utm[0] == "google" else ""
                page_props = {"path": page, "title": title, "url": url, "referrer": referrer}
                self.seg(
                    p,
                    "page",
                    t,
                    anon,
                    name=title,
                    properties=page_props,
                    context={
                        "campaign": campaign,
                        "ip": "198.51.100.4",
                        "page": {**page_props, "search": ""},
                        "library": {"name": "analytics.js", "version": "4.1.0"},
                        "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5)",
                    },
                )
                t += timedelta(minutes=self.rng.uniform(0.5, 8))
            if self.rng.random() < 0.2:  # docs site on GA4
                self.ga4_visit(p, anon, t + timedelta(hours=self.rng.uniform(1, 48)))
        return t

    def ga4_visit(self, p: Person, anon: str, at: datetime) -> None:
        """A docs-site session on GA4: page views, scrolls, now and then a contact form."""
        rng = self.rng
        session = int(at.timestamp())
        device = rng.choice(["desktop", "desktop", "mobile", "tablet"])
        cookie = int(anon[5:], 16)  # GA4 pseudo ids are stable per browser: "<random>.<first seen>"
        pseudo = f"{cookie % 10**10}.{1_722_470_400 + cookie % 8_000_000}"
        pages = rng.sample(DOCS_PAGES, rng.randint(1, 3))
        when = at
        for k, path in enumerate(pages):
            when += timedelta(seconds=rng.uniform(20, 240))
            names = ["page_view"] + (["scroll"] if rng.random() < 0.5 else [])
            if k == len(pages) - 1 and rng.random() < 0.05:
                names.append("generate_lead")
            for b, name in enumerate(names):
                stamp = when + timedelta(seconds=b * rng.uniform(5, 40))
                if stamp > CUTOFF:
                    return
                micros = int(stamp.timestamp()) * 1_000_000 + rng.randint(0, 999_999)
                title = path.rsplit("/", 1)[-1].replace("-", " ").title() + " | Northwind Docs"
                if rng.random() < 0.01:
                    title = HOSTILE_TITLE
                params: list[dict[str, Any]] = [
                    {
                        "key": "page_location",
                        "value": {"string_value": f"https://docs.northwind.io{path}"},
                    },
                    {"key": "page_title", "value": {"string_value": title}},
                    {"key": "ga_session_id", "value": {"int_value": session}},
                ]
                if name == "scroll":
                    params.append({"key": "percent_scrolled", "value": {"int_value": 90}})
                if name == "generate_lead":
                    params.append({"key": "value", "value": {"double_value": 1.0}})
                    params.append({"key": "form_id", "value": {"string_value": "contact-sales"}})
                traffic: dict[str, Any] = {"manual_source": p.utm[0]}
                if p.utm[1]:
                    traffic["manual_medium"] = p.utm[1]
                    traffic["manual_campaign_name"] = CAMPAIGNS.get(p.utm[0], "always_on")
                    if rng.random() < 0.01:
                        traffic["manual_campaign_name"] = HOSTILE_UTM
                row: dict[str, Any] = {
                    "event_date": stamp.strftime("%Y%m%d"),
                    "event_timestamp": micros,
                    "event_name": name,
                    "event_params": params,
                    "user_pseudo_id": pseudo,
                    "user_id": None,
                    "device": {"category": device},
                    "geo": {"country": p.country},
                    "collected_traffic_source": traffic,
                    "stream_id": "4242424242",
                    "batch_event_index": b,
                    "batch_page_id": int(when.timestamp() * 1000) + k,
                    "batch_ordering_id": k + 1,
                }
                if p.user_id and stamp >= p.stages.get("signup", CUTOFF):
                    row["user_id"] = p.user_id
                    p.flags.add("ga4_logged_in")
                self.ga4.append((stamp, row))
                gnode = f"ga:{pseudo}"
                p.link(f"user:{p.user_id}" if row["user_id"] else gnode, gnode)

    def signup(self, p: Person, at: datetime, email: str, group_id: str | None = None) -> None:
        p.user_id, p.email, p.stages["signup"] = f"u-{p.index:05d}", email, at
        group_id = group_id or f"grp_{p.company.lower()}"
        if at + timedelta(seconds=3) <= CUTOFF:
            self.company_of_node[f"group:{group_id}"] = p.company_key or p.company
        anon = p.devices[-1]
        padded = p.index % 5 == 0  # " Jane.Doe@Acme.io " as typed, not as stored elsewhere
        if padded:
            p.flags.add("segment_email_not_normalised")
        self.seg(
            p,
            "identify",
            at,
            anon,
            traits={
                "email": f"  {email.title()} " if padded else email,
                "name": f"{p.first_name} {p.last_name}",
                "company": p.company,
                "company_size": p.size,
                "plan": "free",
                "createdAt": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        )
        self.seg(
            p,
            "track",
            at + timedelta(seconds=2),
            anon,
            event="Signed Up",
            properties={"plan": "free", "method": self.rng.choice(["email", "google"])},
            context={"campaign": {"source": p.utm[0]}},
        )
        self.seg(
            p,
            "group",
            at + timedelta(seconds=3),
            anon,
            groupId=group_id,
            traits={"name": p.company, "company_size": p.size, "plan": "free"},
        )
        if len(p.devices) > 1:  # the other device logs in later: one person, two devices
            p.flags.add("two_devices")
            later = at + timedelta(days=1)
            if p.index % 2:
                self.seg(p, "identify", later, p.devices[0], traits={"email": email})
            else:  # the app aliases the old anonymous id to the user instead
                p.flags.add("alias")
                self.seg(p, "alias", later, None, previousId=p.devices[0])
                if later <= CUTOFF:
                    p.link(f"anon:{p.devices[0]}", f"user:{p.user_id}")
        self.email(p, at + timedelta(minutes=1), "welcome")

    def demo_request(self, p: Person, at: datetime) -> None:
        rng = self.rng
        if at > CUTOFF:
            return
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
        if lead_email != p.email:
            p.flags.add("lead_email_not_normalised")
        lead = {
            "Id": self.sfid("00Q"),
            "IsDeleted": "false",
            "FirstName": p.first_name,
            "LastName": p.last_name,
            "Email": lead_email or "",
            "Company": p.company,
            "LeadSource": "Web - Demo Request",
            "Status": "Open - Not Contacted",
            "OwnerId": sf_id18(rep[0]),
            "NumberOfEmployees": str(SIZE_EMPLOYEES[p.size]),
            "Country": p.country,
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
        p.lead_created = created
        latency = rng.lognormvariate(math.log(rep[2]), 0.6)
        followed = created + timedelta(hours=latency)
        if followed > CUTOFF:  # not called yet: the rep's task is still open
            self.sf["Task"].append(
                {
                    "Id": self.sfid("00T"),
                    "WhoId": lead["Id"],
                    "WhatId": "",
                    "OwnerId": sf_id18(rep[0]),
                    "Subject": "Call: demo request",
                    "Status": "Not Started",
                    "TaskSubtype": "Call",
                    "ActivityDate": (created + timedelta(days=1)).strftime("%Y-%m-%d"),
                    "CompletedDateTime": "",
                    "CreatedDate": sfdt(created),
                }
            )
            return
        p.latency_h = (followed - created).total_seconds() / 3600
        who = lead["Id"]
        if p.index % 7 == 0:  # some references come in the 15-character form
            who = who[:15]
            p.flags.add("task_who_id_15_chars")
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
        held = rng.random() < chance
        mailed = followed + timedelta(minutes=rng.uniform(5, 40))
        if (held or rng.random() < 0.5) and mailed <= CUTOFF:  # the rep emails after the call
            self.sf["Task"].append(
                {
                    "Id": self.sfid("00T"),
                    "WhoId": lead["Id"],
                    "WhatId": "",
                    "OwnerId": sf_id18(rep[0]),
                    "Subject": "Email: demo invite" if held else "Email: sorry we missed you",
                    "Status": "Completed",
                    "TaskSubtype": "Email",
                    "ActivityDate": mailed.strftime("%Y-%m-%d"),
                    "CompletedDateTime": sfdt(mailed),
                    "CreatedDate": sfdt(mailed),
                }
            )
        if not held:
            return
        demo = followed + timedelta(days=rng.uniform(0.5, 3))
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
        self.company_of_node[f"account:{account}"] = p.company_key or p.company
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
                "LastName": p.last_name,
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
                "IsClosed": "false",
                "IsWon": "false",
                "CloseDate": (at + timedelta(days=30)).strftime("%Y-%m-%d"),
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
                "Amount": "4800",
                "CloseDate": (at + timedelta(days=30)).strftime("%Y-%m-%d"),
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
        if billing_email != p.email:  # only metadata.user_id ties this customer to the person
            p.flags.add("stripe_email_differs")
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
        self.seg(
            p,
            "track",
            at + timedelta(seconds=8),
            None,
            event="Trial Started",
            properties={"plan": "team", "trial_days": 14},
        )
        for _ in range(rng.randint(1, 6)):  # the product app during the trial
            used = at + timedelta(hours=rng.uniform(0.1, 13 * 24))
            feature = rng.choice(APP_FEATURES)
            self.seg(p, "track", used, None, event="Feature Used", properties={"feature": feature})
        self.opp_stage(p, opp, "Trial", at)
        self.email(p, at + timedelta(minutes=2), "trial")
        subscription = {"id": sub, "object": "subscription", "customer": customer}
        if rng.random() >= 0.7:
            self.cancel(p, opp, subscription, at + timedelta(days=14), "cancellation_requested")
            return
        pay = at + timedelta(days=14)
        first = True
        while pay <= CUTOFF:
            invoice = {
                "id": self.uid("in_", 14),
                "object": "invoice",
                "customer": customer,
                "customer_email": billing_email,
                "subscription": sub,
                "amount_due": 4900,
                "currency": "eur",
                "status": "open",
                "billing_reason": "subscription_cycle",
            }
            if rng.random() < 0.15:  # failed payment, dunning email, maybe a call, then retry
                self.stripe_event(
                    pay, "invoice.payment_failed", {**invoice, "attempt_count": 1}, basil
                )
                self.counters["payment_failed"] += 1
                self.email(p, pay + timedelta(hours=rng.uniform(0.1, 6)), "dunning", opened=0.5)
                if contact and rng.random() < 0.4:
                    self.dunning_call(p, contact, pay + timedelta(hours=rng.uniform(2, 30)))
                if rng.random() < 0.8:
                    pay += timedelta(days=rng.uniform(1, 3))
                else:
                    self.cancel(p, opp, subscription, pay + timedelta(days=7), "payment_failed")
                    break
            if pay > CUTOFF:
                break
            if first:
                self.stripe_event(
                    pay - timedelta(seconds=1),
                    "customer.subscription.updated",
                    {
                        **subscription,
                        "status": "active",
                        "previous_attributes": {"status": "trialing"},
                    },
                    basil,
                )
                self.opp_stage(p, opp, "Closed Won", pay)
                first = False
            paid = {**invoice, "status": "paid", "amount_paid": 4900}
            self.stripe_event(pay, "invoice.paid", paid, basil)
            p.payments.append(pay)
            p.stages.setdefault("paid", pay)
            if pay > p.stages["paid"]:
                p.stages.setdefault("renewal", pay)
            pay += timedelta(days=30)
            if rng.random() < 0.1:
                self.cancel(
                    p, None, subscription, pay - timedelta(days=2), "cancellation_requested"
                )
                break

    def cancel(
        self, p: Person, opp: str | None, subscription: dict[str, Any], at: datetime, why: str
    ) -> None:
        if at > CUTOFF:
            return
        p.stages.setdefault("churned", at)
        p.cancels.append(at)
        self.stripe_event(
            at,
            "customer.subscription.deleted",
            {**subscription, "status": "canceled", "cancellation_details": {"reason": why}},
            p.index % 2 == 0,
        )
        self.opp_stage(p, opp, "Closed Lost", at)

    def opp_stage(self, p: Person, opp: str | None, stage: str, at: datetime) -> None:
        """A stage change of the person's opportunity: a history row, and the current stage."""
        if opp is None or at > CUTOFF:
            return
        self.sf["OpportunityHistory"].append(
            {
                "Id": self.sfid("008"),
                "OpportunityId": opp,
                "StageName": stage,
                "Amount": "4800",
                "CloseDate": (at + timedelta(days=30)).strftime("%Y-%m-%d"),
                "CreatedDate": sfdt(at),
            }
        )
        row = next(r for r in self.sf["Opportunity"] if r["Id"] == opp)
        row.update(StageName=stage, IsClosed=str(stage.startswith("Closed")).lower())
        row["IsWon"] = str(stage == "Closed Won").lower()

    def dunning_call(self, p: Person, contact: str, at: datetime) -> None:
        if at > CUTOFF:
            return
        self.counters["dunning_calls"] += 1
        self.sf["Task"].append(
            {
                "Id": self.sfid("00T"),
                "WhoId": contact,
                "WhatId": "",
                "OwnerId": sf_id18(REPS[p.index % 4][0]),
                "Subject": "Call: payment failed",
                "Status": "Completed",
                "TaskSubtype": "Call",
                "ActivityDate": at.strftime("%Y-%m-%d"),
                "CompletedDateTime": sfdt(at),
                "CreatedDate": sfdt(at - timedelta(hours=1)),
            }
        )

    def run(self) -> None:
        rng = self.rng
        for i in range(self.n):
            p = self.make_person(i)
            self.people.append(p)
            start = START + timedelta(seconds=rng.uniform(0, (CUTOFF - START).total_seconds()))
            t = self.visits(p, start)
            signed = t + timedelta(minutes=rng.uniform(1, 60))
            if rng.random() >= 0.55 or signed > CUTOFF:
                continue
            self.signup(
                p,
                signed,
                f"{p.first_name.lower()}.{p.last_name.lower()}{i}@{p.company.lower()}.example",
            )
            if rng.random() < 0.2:  # reads the docs while logged in: GA4 rows carry user_id
                self.ga4_visit(p, p.devices[-1], signed + timedelta(hours=rng.uniform(1, 240)))
            if rng.random() < 0.6:
                self.demo_request(p, p.stages["signup"] + timedelta(hours=rng.uniform(0.1, 72)))
            elif rng.random() < 0.08:  # planted deviation: a self-serve trial, no demo at all
                self.trial(p, p.stages["signup"] + timedelta(days=rng.uniform(1, 5)), None, None)
            elif rng.random() < 0.05:  # a contact-us form: a Website lead, answered by email
                self.website_lead(p, p.stages["signup"] + timedelta(days=rng.uniform(1, 10)))
            if rng.random() < 0.2:  # opted in to the monthly newsletter
                for sent in NEWSLETTERS:
                    if sent > p.stages["signup"]:
                        self.email(p, sent + timedelta(seconds=p.index), "newsletter", 0.35)
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

    def website_lead(self, p: Person, at: datetime) -> None:
        """A Website lead: matched to the signed-up person only through the (padded) email."""
        if at > CUTOFF:
            return
        self.counters["website_leads"] += 1
        owner = sf_id18(REPS[p.index % 4][0])
        lead_id = self.sfid("00Q")
        email = f"{p.email or ''}".upper()
        self.sf["Lead"].append(
            self.lead_row(lead_id, p.first_name, p.last_name, email, p.company, "Website", owner)
            | {"NumberOfEmployees": str(SIZE_EMPLOYEES[p.size]), "Country": p.country}
            | {"CreatedDate": sfdt(at), "SystemModstamp": sfdt(at)}
        )
        p.link(f"lead:{lead_id}", f"email:{email.strip().lower()}")
        p.flags.add("website_lead_by_email_only")
        mailed = at + timedelta(hours=self.rng.uniform(1, 30))
        if mailed <= CUTOFF:
            self.sf["Task"].append(
                self.email_task(lead_id, owner, "Email: thanks for reaching out", mailed)
            )

    def lead_row(
        self, lead_id: str, first: str, last: str, email: str, company: str, source: str, owner: str
    ) -> dict[str, str]:
        return {
            "Id": lead_id,
            "IsDeleted": "false",
            "FirstName": first,
            "LastName": last,
            "Email": email,
            "Company": company,
            "LeadSource": source,
            "Status": "Working - Contacted",
            "OwnerId": owner,
            "NumberOfEmployees": "",
            "Country": "",
            "IsConverted": "false",
            "ConvertedDate": "",
            "ConvertedContactId": "",
            "ConvertedAccountId": "",
            "ConvertedOpportunityId": "",
            "CreatedDate": "",
            "SystemModstamp": "",
        }

    def email_task(self, who: str, owner: str, subject: str, at: datetime) -> dict[str, str]:
        return {
            "Id": self.sfid("00T"),
            "WhoId": who,
            "WhatId": "",
            "OwnerId": owner,
            "Subject": subject,
            "Status": "Completed",
            "TaskSubtype": "Email",
            "ActivityDate": at.strftime("%Y-%m-%d"),
            "CompletedDateTime": sfdt(at),
            "CreatedDate": sfdt(at),
        }

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
        """Leads the reps found themselves (or partners sent): no web activity, email cadences."""
        rng = self.rng
        for k in range(max(20, self.n // 20)):
            at = START + timedelta(hours=rng.uniform(0, 2000))
            owner = sf_id18(REPS[k % 4][0])
            lead_id = self.sfid("00Q")
            source = "Outbound" if k % 3 else "Partner"
            row = self.lead_row(
                lead_id,
                "Alex",
                f"Prospect{k}",
                f"alex{k}@prospect{k}.example",
                f"Prospect{k}",
                source,
                owner,
            )
            size = rng.choice(SIZES)
            row.update(
                NumberOfEmployees=str(SIZE_EMPLOYEES[size]),
                Country=rng.choice(COUNTRIES),
                CreatedDate=sfdt(at),
                SystemModstamp=sfdt(at),
            )
            self.sf["Lead"].append(row)
            self.counters["outbound_leads"] += 1
            for step in range(rng.randint(0, 3)):
                mailed = at + timedelta(days=2 * step, hours=rng.uniform(0.2, 6))
                if mailed <= CUTOFF:
                    who = lead_id[:15] if step == 1 else lead_id
                    self.counters["outbound_tasks_15_char_who"] += step == 1
                    task = self.email_task(who, owner, f"Email: outreach step {step + 1}", mailed)
                    self.sf["Task"].append(task)

    # -- the second random stream: cases added after the first stream's people ---------------
    def extend(self, seed: int) -> None:
        """Cases the first stream lacks, drawn from a second generator so that every person,
        record and id of the first stays exactly as it was (all of these come after them)."""
        self.rng = random.Random(seed + 1000)
        self.core = len(self.people)
        # The examples are chosen by the first stream's flags (new newsletters add unsubscribes).
        self.first_flags = {p.index: frozenset(p.flags) for p in self.people}
        self.evan_requests()
        self.northstar()
        self.piper_labs()
        self.weekly_digest()
        self.support_and_surveys()
        self.onboarding_survey()
        first, last = EVAN[1].split()
        self.sf["User"].append(
            {
                "Id": sf_id18(EVAN[0]),
                "FirstName": first,
                "LastName": last,
                "Name": EVAN[1],
                "IsActive": "true",
                "Title": "Account Executive",
                "CreatedDate": "2026-07-27T09:00:00.000Z",
            }
        )

    def new_person(self, company: str, key: str = "") -> Person:
        p = self.make_person(len(self.people))
        p.devices, p.company, p.company_key = p.devices[:1], company, key or company
        self.people.append(p)
        return p

    def plain_visit(self, p: Person, at: datetime) -> datetime:
        """One to three marketing-site pages on one device (no hostile strings)."""
        t = at
        for _ in range(self.rng.randint(1, 3)):
            page = self.rng.choice(PAGES)
            props = {"path": page, "title": PAGE_TITLES[page], "url": f"https://northwind.io{page}"}
            campaign = {"source": p.utm[0]} | ({"medium": p.utm[1]} if p.utm[1] else {})
            self.seg(
                p,
                "page",
                t,
                p.devices[0],
                name=PAGE_TITLES[page],
                properties=props,
                context={"campaign": campaign, "page": {**props, "search": ""}},
            )
            t += timedelta(minutes=self.rng.uniform(0.5, 8))
        return t

    def web_lead(self, p: Person, created: datetime, owner: str) -> dict[str, str]:
        """The Lead a web demo request creates (assignment rule: ``owner``)."""
        lead_id = self.sfid("00Q")
        lead = self.lead_row(
            lead_id,
            p.first_name,
            p.last_name,
            p.email or "",
            p.company,
            "Web - Demo Request",
            sf_id18(owner),
        )
        lead.update(
            Status="Open - Not Contacted",
            NumberOfEmployees=str(SIZE_EMPLOYEES[p.size]),
            Country=p.country,
            CreatedDate=sfdt(created),
            SystemModstamp=sfdt(created),
        )
        self.sf["Lead"].append(lead)
        p.link(f"lead:{lead_id}", f"email:{p.email}")
        p.rep, p.lead_created = owner, created
        return lead

    def evan_requests(self) -> None:
        """Web-form demo requests routed to a new rep, Evan Reed, who never calls anyone back."""
        rng = self.rng
        span = (CUTOFF - START - timedelta(days=4)).total_seconds()
        for _ in range(EVAN_REQUESTS):
            p = self.new_person(f"{rng.choice(COMPANIES)}{len(self.people)}")
            t = self.plain_visit(p, START + timedelta(seconds=rng.uniform(0, span)))
            email = f"{p.first_name.lower()}.{p.last_name.lower()}{p.index}@{p.company.lower()}"
            self.signup(p, t + timedelta(minutes=rng.uniform(1, 60)), email + ".example")
            at = p.stages["signup"] + timedelta(hours=rng.uniform(0.1, 72))
            if at > CUTOFF:
                continue
            p.stages["demo_requested"] = at
            seats = rng.randint(2, 40)
            self.seg(p, "track", at, None, event="Demo Requested", properties={"seats": seats})
            created = at + timedelta(minutes=rng.uniform(1, 10))
            if created <= CUTOFF:
                self.web_lead(p, created, EVAN[0])

    def sf_row(self, obj: str, prefix: str, at: datetime, **values: str) -> str:
        """Append one Salesforce record of ``obj`` created at ``at``; returns its new id."""
        record_id = self.sfid(prefix)
        self.sf[obj].append({"Id": record_id, **values, "CreatedDate": sfdt(at)})
        return record_id

    def account(self, name: str, key: str, size: str, at: datetime) -> str:
        employees = str(SIZE_EMPLOYEES[size])
        account = self.sf_row(
            "Account", "001", at, Name=name, Industry="Software", NumberOfEmployees=employees
        )
        self.company_of_node[f"account:{account}"] = key
        return account

    def contact(self, p: Person, account: str, at: datetime, email: str | None = None) -> str:
        """A Contact a rep adds by hand: only its e-mail ties it to the person."""
        email = email or p.email or ""
        contact = self.sf_row(
            "Contact",
            "003",
            at,
            AccountId=account,
            Email=email,
            FirstName=p.first_name,
            LastName=p.last_name,
            OwnerId=sf_id18(REPS[0][0]),
        )
        p.link(f"contact:{contact}", f"email:{email}")
        return contact

    def northstar(self) -> None:
        """One company in every system: three colleagues in one Segment group, one Salesforce
        Account holding their three Contacts and an opportunity, one Stripe customer."""
        names = [("Ada", "Lind"), ("Bo", "Karlsson"), ("Cy", "Osei")]
        joined = [datetime(2026, 8, 10, 8, tzinfo=UTC) + timedelta(days=d) for d in (0, 10, 24)]
        people = []
        for (first, last), at in zip(names, joined, strict=True):
            p = self.new_person("Northstar")
            p.first_name, p.last_name, p.size = first, last, "51-200"
            t = self.plain_visit(p, at)
            self.signup(p, t + timedelta(minutes=5), f"{first}.{last}@northstar.example".lower())
            people.append(p)
        ada = people[0]
        requested = ada.stages["signup"] + timedelta(hours=3)
        ada.stages["demo_requested"] = requested
        self.seg(ada, "track", requested, None, event="Demo Requested", properties={"seats": 25})
        lead = self.web_lead(ada, requested + timedelta(minutes=4), REPS[0][0])
        called = requested + timedelta(minutes=40)
        ada.latency_h = (called - requested - timedelta(minutes=4)).total_seconds() / 3600
        owner = sf_id18(REPS[0][0])
        call = {"TaskSubtype": "Call", "Subject": "Call: demo request", "Status": "Completed"}
        self.sf_row(
            "Task",
            "00T",
            called,
            WhoId=lead["Id"],
            WhatId="",
            OwnerId=owner,
            **call,
            ActivityDate=called.strftime("%Y-%m-%d"),
            CompletedDateTime=sfdt(called),
        )
        demo = called + timedelta(days=2)
        ada.stages["demo_held"] = demo
        self.sf_row(
            "Event",
            "00U",
            called,
            WhoId=lead["Id"],
            WhatId="",
            OwnerId=owner,
            Subject="Demo - Northstar",
            Type="Demo",
            StartDateTime=sfdt(demo),
            EndDateTime=sfdt(demo + timedelta(hours=1)),
        )
        account = self.account("Northstar", "Northstar", "51-200", demo + timedelta(minutes=5))
        opp = self.sf_row(
            "Opportunity",
            "006",
            demo + timedelta(minutes=5),
            AccountId=account,
            Name="Northstar seats",
            StageName="Qualification",
            IsClosed="false",
            IsWon="false",
            CloseDate=(demo + timedelta(days=30)).strftime("%Y-%m-%d"),
            Amount="14400",
            OwnerId=owner,
        )
        self.opp_stage(ada, opp, "Qualification", demo + timedelta(minutes=5))
        roles = ["Decision Maker", "Evaluator", "End User"]
        contacts = []
        for p, role in zip(people, roles, strict=True):
            added = max(demo, p.stages["signup"]) + timedelta(hours=20)
            contacts.append(self.contact(p, account, added))
            self.sf_row(
                "OpportunityContactRole",
                "00K",
                added,
                ContactId=contacts[-1],
                OpportunityId=opp,
                IsPrimary=str(p is ada).lower(),
                Role=role,
            )
        lead.update(
            IsConverted="true",
            Status="Qualified",
            ConvertedDate=demo.strftime("%Y-%m-%d"),
            ConvertedContactId=contacts[0],
            ConvertedAccountId=account,
            ConvertedOpportunityId=opp,
            SystemModstamp=sfdt(demo),
        )
        ada.link(f"contact:{contacts[0]}", f"lead:{lead['Id']}")
        ada.link(f"opp:{opp}", f"contact:{contacts[0]}")
        customer = self.company_subscription(ada, opp, demo + timedelta(days=1))
        self.truths["northstar"] = {
            "name": "Northstar",
            "group_id": "grp_northstar",
            "account_id": account,
            "opportunity_id": opp,
            "contact_ids": contacts,
            "stripe_customer": customer,
            "user_ids": [p.user_id for p in people],
        }

    def company_subscription(self, p: Person, opp: str, at: datetime) -> str:
        """A company-paid trial that converts and renews monthly until the cut-off."""
        p.stages["trial"] = at
        customer, sub, basil = self.uid("cus_", 14), self.uid("sub_", 14), p.index % 2 == 0
        billing = f"billing@{p.company.lower()}.example"
        p.link(f"cus:{customer}", f"user:{p.user_id}")
        p.link(f"cus:{customer}", f"email:{billing}")
        meta = {"user_id": p.user_id, "company": p.company}
        self.stripe_event(
            at,
            "customer.created",
            {"id": customer, "object": "customer", "email": billing, "metadata": meta},
            basil,
        )
        subscription = {"id": sub, "object": "subscription", "customer": customer}
        trialing = {**subscription, "status": "trialing"}
        self.stripe_event(
            at + timedelta(seconds=5), "customer.subscription.created", trialing, basil
        )
        trial = {"plan": "team", "trial_days": 14}
        self.seg(
            p, "track", at + timedelta(seconds=8), None, event="Trial Started", properties=trial
        )
        self.opp_stage(p, opp, "Trial", at)
        pay = at + timedelta(days=14)
        active = {**subscription, "status": "active", "previous_attributes": {"status": "trialing"}}
        self.stripe_event(
            pay - timedelta(seconds=1), "customer.subscription.updated", active, basil
        )
        self.opp_stage(p, opp, "Closed Won", pay)
        while pay <= CUTOFF:
            invoice = {
                "id": self.uid("in_", 14),
                "object": "invoice",
                "customer": customer,
                "customer_email": billing,
                "subscription": sub,
                "amount_due": 14700,
                "amount_paid": 14700,
                "currency": "eur",
                "status": "paid",
                "billing_reason": "subscription_cycle",
            }
            self.stripe_event(pay, "invoice.paid", invoice, basil)
            p.payments.append(pay)
            p.stages.setdefault("paid", pay)
            if pay > p.stages["paid"]:
                p.stages.setdefault("renewal", pay)
            pay += timedelta(days=30)
        return customer

    def piper_labs(self) -> None:
        """Two companies that must stay two accounts: both named Piper Labs, one e-mail domain,
        one outside consultant who is a Contact at both (the only link between them)."""
        sites = [("Berlin", "Pia", "Vogel", 12), ("Austin", "Paul", "Reyes", 16)]
        accounts = []
        for city, first, last, day_of_month in sites:
            key = f"Piper Labs ({city})"
            p = self.new_person("Piper Labs", key)
            p.first_name, p.last_name, p.size = first, last, "11-50"
            t = self.plain_visit(p, datetime(2026, 9, day_of_month, 9, tzinfo=UTC))
            email = f"{first}.{last}@piperlabs.example".lower()
            self.signup(p, t + timedelta(minutes=3), email, f"grp_piperlabs_{city.lower()}")
            added = p.stages["signup"] + timedelta(days=1)
            accounts.append(self.account("Piper Labs", key, p.size, added))
            self.contact(p, accounts[-1], added + timedelta(minutes=2))
        quinn = self.make_person(len(self.people) + len(self.sf_only))
        quinn.first_name, quinn.last_name, quinn.company = "Quinn", "Hale", "Ridge Advisors"
        quinn.devices, quinn.company_key = [], "Ridge Advisors"
        email = "quinn.hale@ridgeadvisors.example"
        for k, account in enumerate(accounts):
            self.contact(quinn, account, datetime(2026, 9, 25 + k, 10, tzinfo=UTC), email)
        self.sf_only.append(quinn)
        self.truths["kept_apart"] = {
            "name": "Piper Labs",
            "account_ids": accounts,
            "group_ids": ["grp_piperlabs_berlin", "grp_piperlabs_austin"],
            "bridging_contact_email": email,
        }

    def weekly_digest(self) -> None:
        """A weekly newsletter to everyone in a trial. Those who pay move to the customer list;
        those who drop out stay on it: a null touchpoint they simply receive more of later."""
        for p in self.people:
            if "trial" not in p.stages or not p.email:
                continue
            stop = p.payments[0] if p.payments else CUTOFF
            for sent in DIGEST_DAYS:
                if p.stages["trial"] < sent < stop:
                    at = sent + timedelta(seconds=p.index)
                    self.email(p, at, "newsletter", opened=0.3, tag=DIGEST)
                    p.digests.append(at)

    # -- feelings: Zendesk tickets and Typeform NPS answers --------------------------------
    def support_and_surveys(self) -> None:
        """Support tickets through a journey, and NPS surveys in the trial and after paying.

        Planted: customers write negatively far more often during the trial (the dip), and trial
        users who waited more than a day for a first agent reply are detractors more often."""
        rng = self.rng
        for p in self.people:
            if not p.user_id or not p.email or p.company == "Sharedco":
                continue
            if "trial" in p.stages and rng.random() < 0.5:
                self.ticket(p, p.stages["trial"] + timedelta(days=rng.uniform(0.5, 6)))
            elif rng.random() < 0.08:
                self.ticket(p, p.stages["signup"] + timedelta(days=rng.uniform(0, 40)))
        for p in self.people:
            if "trial" in p.stages and rng.random() < 0.7:
                self.survey(p, p.stages["trial"] + timedelta(days=10), "trial-nps")
            if p.payments and rng.random() < 0.6:
                self.survey(p, p.payments[0] + timedelta(days=20), "customer-nps")

    def voice_limit(self, p: Person) -> datetime:
        """People speak before renewing or cancelling: their stage is then one of the six."""
        return min([CUTOFF, *p.payments[1:2], *p.cancels[:1]])

    def customer_text(self, p: Person, at: datetime) -> str:
        rng = self.rng
        negative = NEGATIVE_CHANCE.get(stage_at(p, at), NEGATIVE_CHANCE["other"])
        pool = (
            NEGATIVE_TEXTS if rng.random() < negative else rng.choice([POSITIVE_TEXTS, QUESTIONS])
        )
        text = rng.choice(pool)
        if rng.random() < 0.1:  # contact details typed into the message: never to be shown
            text += f" You can reach me at {p.email} or +49 30 5550{p.index:04d}."
        return text

    def zendesk_user(self, p: Person, at: datetime) -> int:
        user_id = ZENDESK_USER_BASE + p.index
        if user_id not in self.zendesk_users:
            self.zendesk_users[user_id] = {
                "id": user_id,
                "name": f"{p.first_name} {p.last_name}",
                "email": p.email,
                "external_id": p.user_id,
                "role": "end-user",
                "created_at": zdt(at),
                "updated_at": zdt(at),
            }
        return user_id

    def ticket(self, p: Person, created: datetime) -> None:
        """One ticket: the customer's message, maybe an agent's reply, a reply back, a solve
        and a CSAT rating, each only if it happened by the cut-off."""
        rng = self.rng
        created = created.replace(microsecond=0)
        if created >= self.voice_limit(p):
            return
        ticket_id = ZENDESK_TICKET_BASE + len(self.tickets)
        requester = self.zendesk_user(p, created)
        agent = rng.choice(AGENTS)[0]
        body = self.customer_text(p, created)
        events = [self.comment_event(ticket_id, created, requester, body, "Create")]
        wait_h = rng.lognormvariate(math.log(8), 1.4)
        replied = (created + timedelta(hours=wait_h)).replace(microsecond=0)
        status, updated = "new", created
        if replied <= CUTOFF:
            status, updated = self.thread(p, ticket_id, (requester, agent), replied, events)
        ticket: dict[str, Any] = {
            "id": ticket_id,
            "url": f"https://northwind.zendesk.com/api/v2/tickets/{ticket_id}.json",
            "created_at": zdt(created),
            "updated_at": zdt(updated),
            "type": "question",
            "subject": body.split(".")[0][:60],
            "description": body,  # also the first comment, as Zendesk exports it
            "priority": "normal",
            "status": status,
            "requester_id": requester,
            "submitter_id": requester,
            "assignee_id": agent if status != "new" else None,
            "via": {"channel": rng.choice(["email", "web"])},
            "tags": [stage_at(p, created)],
            "satisfaction_rating": {"score": "unoffered"},
        }
        if status == "solved":
            self.rate(p, ticket, updated, slow=wait_h > 24)
        self.tickets.append((created, ticket))
        self.ticket_events += [(created, e) for e in events]
        for e in events:
            child = e["child_events"][0]
            if child["author_id"] == requester:
                p.voices.append((datetime.fromtimestamp(e["timestamp"], UTC), child["body"]))
        p.tickets.append((created, replied if replied <= CUTOFF else None))

    def thread(
        self,
        p: Person,
        ticket_id: int,
        who: tuple[int, int],
        replied: datetime,
        events: list[dict[str, Any]],
    ) -> tuple[str, datetime]:
        """After the agent's first reply: a note, the customer's answer, the solve.
        Appends the comments to ``events``; returns the ticket's status and last update."""
        rng, (requester, agent) = self.rng, who
        events.append(self.comment_event(ticket_id, replied, agent, rng.choice(AGENT_TEXTS)))
        status, updated = "open", replied
        if rng.random() < 0.1:
            note = self.comment_event(ticket_id, replied, agent, "Escalated to engineering.")
            note["child_events"][0]["public"] = False
            events.append(note)
        answer = (replied + timedelta(hours=rng.uniform(0.5, 20))).replace(microsecond=0)
        if rng.random() < 0.5 and answer < self.voice_limit(p):
            text = self.customer_text(p, answer)
            events.append(self.comment_event(ticket_id, answer, requester, text))
            updated = answer
        solved = (updated + timedelta(hours=rng.uniform(1, 48))).replace(microsecond=0)
        if solved <= CUTOFF:
            status, updated = "solved", solved
        return status, updated

    def rate(self, p: Person, ticket: dict[str, Any], solved: datetime, slow: bool) -> None:
        """Maybe a CSAT rating after the solve; a slow first reply makes it bad more often."""
        rng = self.rng
        rated = (solved + timedelta(hours=rng.uniform(1, 24))).replace(microsecond=0)
        if rng.random() >= 0.4 or rated >= self.voice_limit(p):
            return
        good = rng.random() < (0.3 if slow else 0.85)
        rating: dict[str, Any] = {"id": ticket["id"] + 50000, "score": "good" if good else "bad"}
        if rng.random() < 0.6:
            rating["comment"] = CSAT_TEXTS[good]
            p.voices.append((rated, rating["comment"]))
        ticket["satisfaction_rating"] = rating | {"created_at": zdt(rated)}
        ticket["updated_at"] = zdt(rated)

    def comment_event(
        self, ticket_id: int, at: datetime, author: int, body: str, *also: str
    ) -> dict[str, Any]:
        """A ticket audit holding one public comment (and, on creation, the Create event)."""
        self.counters["zendesk_event"] += 1
        n = self.counters["zendesk_event"]
        children: list[dict[str, Any]] = [
            {"id": n * 10 + 1, "event_type": "Comment", "author_id": author, "public": True}
            | {"body": body}
        ]
        children += [{"id": n * 10 + 2 + k, "event_type": kind} for k, kind in enumerate(also)]
        if author in dict(AGENTS):
            children.append({"id": n * 10 + 5, "event_type": "Notification", "subject": "Re"})
        return {
            "id": 70000000 + n,
            "ticket_id": ticket_id,
            "timestamp": int(at.timestamp()),
            "created_at": zdt(at),
            "updater_id": author,
            "via": "Web form",
            "event_type": "Audit",
            "child_events": children,
        }

    def survey(self, p: Person, at: datetime, form: str) -> None:
        """A Typeform NPS answer; in the trial, a long first wait for support makes detractors."""
        rng = self.rng
        at = (at + timedelta(hours=rng.uniform(1, 30))).replace(microsecond=0)
        if at >= self.voice_limit(p):
            return
        waited = any(
            (reply or CUTOFF) - created > timedelta(hours=24)
            for created, reply in p.tickets
            if stage_at(p, created) == "trial"
        )
        chance = DETRACTOR_CHANCE[waited] if form == "trial-nps" else DETRACTOR_CHANCE[False]
        if rng.random() < chance:
            score = rng.randint(0, 6)
        else:
            score = rng.randint(9, 10) if rng.random() < 0.6 else rng.randint(7, 8)
        token = self.uid("", 32)
        answers: list[dict[str, Any]] = [
            {"field": {"id": "nPs4Qx", "ref": "nps", "type": "nps"}, "type": "number"}
            | {"number": score}
        ]
        if rng.random() < 0.7:
            pool = NEGATIVE_TEXTS if score <= 6 else POSITIVE_TEXTS if score >= 9 else QUESTIONS
            text = rng.choice(pool)
            answers.append(
                {"field": {"id": "wHy8Lm", "ref": "why", "type": "long_text"}, "type": "text"}
                | {"text": text}
            )
            p.voices.append((at, text))
        self.responses[form].append(
            (
                at,
                {
                    "landing_id": token,
                    "token": token,
                    "response_id": token,
                    "landed_at": zdt(at - timedelta(minutes=2)),
                    "submitted_at": zdt(at),
                    "metadata": {"platform": "other", "browser": "default"}
                    | {"referer": f"https://northwind.typeform.com/to/{form}"},
                    "hidden": {"user_id": p.user_id, "email": p.email},
                    "calculated": {"score": 0},
                    "answers": answers,
                },
            )
        )
        p.surveys.append((at, form, score))

    # -- the survey CSV: an onboarding NPS from a generic tool ----------------------------
    def onboarding_survey(self) -> None:
        """A few days after signing up, some people answer an onboarding NPS (the only NPS
        before the trial); the export also holds a few rows no one can use (quarantined)."""
        rng = self.rng
        for p in self.people:
            if not p.email or p.company == "Sharedco" or "signup" not in p.stages:
                continue
            if rng.random() >= SURVEY_CHANCE:
                continue
            at = (p.stages["signup"] + timedelta(days=rng.uniform(2, 5))).replace(second=0)
            if at >= self.voice_limit(p):
                continue
            self.survey_answer(p, at.replace(microsecond=0))
        for what, column, value in SURVEY_BAD_ROWS:
            at, row = rng.choice(self.survey_rows)
            bad = row | {"Response ID": self.uid("bad_", 8), column: value, "Comment": what}
            self.survey_rows.append((at, bad))

    def survey_answer(self, p: Person, at: datetime) -> None:
        rng = self.rng
        draw, group = rng.random(), "promoter"
        for name, chance in SURVEY_GROUPS:
            if draw < chance:
                group = name
                break
            draw -= chance
        score = {"detractor": rng.randint(0, 6), "passive": rng.randint(7, 8)}.get(
            group, rng.randint(9, 10)
        )
        comment = ""
        if rng.random() < 0.6:
            pool = NEGATIVE_TEXTS if score <= 6 else POSITIVE_TEXTS if score >= 9 else QUESTIONS
            comment = rng.choice(pool)
            if rng.random() < 0.2:  # typed over two lines: a quoted field with a new line
                comment += "\n" + rng.choice(pool)
            p.voices.append((at, comment))
        email = str(p.email)
        typed = email.upper() if rng.random() < 0.1 else email  # as the person typed it
        row = {"Response ID": self.uid("rsp_", 12), "Date": at.strftime(SURVEY_DATE_FORMAT)}
        row |= {"Email": typed, "Score": str(score), "Comment": comment, "Country": p.country}
        self.survey_rows.append((at, row))
        p.surveys.append((at, "onboarding-csv", score))


def sfdt(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def zdt(at: datetime) -> str:
    """Zendesk and Typeform timestamps: ISO-8601 UTC to the second."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stage_at(p: Person, at: datetime) -> str:
    """The designed stage a person was in at ``at``: the last one first entered by then."""
    entered = [(t, s) for s, t in p.stages.items() if s in STAGE_ORDER and t <= at]
    return max(entered)[1] if entered else "visit"


# -- noise: what real exports contain ---------------------------------------------------------
def add_noise(sample: Sample) -> dict[str, dict[str, int]]:
    """Duplicates, broken lines, missing ids and wrong units; returns the expected accounting.

    ``duplicates`` and ``quarantined`` are what a loader must report per source; the other keys
    say what the quarantined rows are.
    """
    rng = sample.rng
    noise: dict[str, Counter[str]] = {
        s: Counter() for s in ("segment", "ga4", "sendgrid", "salesforce", "stripe")
    }
    # Segment retries: the same message again, in the same day's file or the next day's.
    for at, call in rng.sample(sample.segment, len(sample.segment) // 100):
        later = at + timedelta(days=rng.choice([0, 1])) if at + timedelta(days=1) <= CUTOFF else at
        sample.segment.append((later, dict(call)))
        noise["segment"]["duplicates"] += 1
        noise["segment"]["duplicates_in_another_file"] += day(later) != day(at)
    for k in range(3):
        at, _ = sample.segment[k * 97]
        sample.segment.append((at, {"__broken__": '{"type": "track", "messageId": "ajs-broken'}))
        noise["segment"]["broken_json"] += 1
    for at, call in sample.segment[5:7]:
        sample.segment.append((at, {**call, "messageId": None}))
        noise["segment"]["missing_message_id"] += 1
    # SendGrid re-posts a batch it did not get a 2xx for: events arrive twice.
    for at, item in rng.sample(sample.sendgrid, len(sample.sendgrid) // 100):
        sample.sendgrid.append((at + timedelta(minutes=30), dict(item)))
        noise["sendgrid"]["duplicates"] += 1
    for k, (at, item) in enumerate(sample.sendgrid[10:14]):
        bad = {**item, "sg_event_id": sample.uid("", 22)}
        if k < 2:
            bad.pop("sg_event_id")
            noise["sendgrid"]["missing_sg_event_id"] += 1
        else:
            bad["timestamp"] = item["timestamp"] * 1000  # milliseconds where seconds belong
            noise["sendgrid"]["timestamp_in_milliseconds"] += 1
        sample.sendgrid.append((at, bad))
    # Stripe: one truncated line, one event with created in milliseconds.
    at, event = sample.stripe[3]
    sample.stripe.append((at, {"__broken__": json.dumps(event)[:60]}))
    noise["stripe"]["broken_json"] += 1
    sample.stripe.append(
        (at, {**event, "id": sample.uid("evt_", 24), "created": event["created"] * 1000})
    )
    noise["stripe"]["created_in_milliseconds"] += 1
    # GA4: a row whose microsecond timestamp is a string (valid: BigQuery JSON gives it so), and
    # a consent-mode row without user_pseudo_id or user_id (nobody to attach it to).
    first_day = min(at.strftime("%Y%m%d") for at, _ in sample.ga4)
    row = next(r for at, r in sample.ga4 if at.strftime("%Y%m%d") == first_day)
    row["event_timestamp"] = str(row["event_timestamp"])
    noise["ga4"]["string_event_timestamp_not_quarantined"] += 1
    at, row = sample.ga4[len(sample.ga4) // 2]
    anonymous = {**row, "user_pseudo_id": None, "user_id": None, "event_name": "page_view"}
    anonymous["event_timestamp"] = int(row["event_timestamp"]) + 1
    sample.ga4.append((at, anonymous))
    noise["ga4"]["missing_user_pseudo_id"] += 1
    # Salesforce: a deleted lead still in the export.
    deleted = {**sample.sf["Lead"][-1], "Id": sample.sfid("00Q"), "IsDeleted": "true"}
    sample.sf["Lead"].append(deleted)
    noise["salesforce"]["is_deleted"] += 1
    for counts in noise.values():
        counts["quarantined"] = sum(
            n
            for key, n in counts.items()
            if key not in ("duplicates", "duplicates_in_another_file")
            and not key.endswith("not_quarantined")
        )
        counts["duplicates"] += 0
    return {k: dict(sorted(v.items())) for k, v in noise.items()}


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


def compact(item: Any) -> str:
    return json.dumps(item, separators=(",", ":"))


def line_of(item: dict[str, Any]) -> str:
    return item["__broken__"] if "__broken__" in item else compact(item)


FileCounts = dict[str, dict[str, int]]  # file type -> {"files": n, "records": n}


def tally(counts: FileCounts, kind: str, records: int) -> None:
    entry = counts.setdefault(kind, {"files": 0, "records": 0})
    entry["files"] += 1
    entry["records"] += records


def write_segment(sample: Sample, root: Path) -> FileCounts:
    counts: FileCounts = {}
    by_day: dict[str, list[str]] = defaultdict(list)
    for at, call in sorted(sample.segment, key=lambda x: x[0]):
        by_day[day(at)].append(line_of(call))
    for d, lines in sorted(by_day.items()):
        write_gz(
            root / "segment" / d / f"segment-{d.replace('/', '-')}.jsonl.gz",
            "\n".join(lines) + "\n",
        )
        tally(counts, "segment/*.jsonl.gz", len(lines))
    return counts


def write_ga4(sample: Sample, root: Path) -> FileCounts:
    """NDJSON per day, as ``bq extract`` writes it; every 30th and the last day as Parquet."""
    counts: FileCounts = {}
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for at, row in sorted(sample.ga4, key=lambda x: x[0]):
        by_day[at.strftime("%Y%m%d")].append(row)
    days = sorted(by_day)
    for n, d in enumerate(days):
        if n % 30 == 29 or d == days[-1]:
            table = pa.Table.from_pylist(by_day[d])
            pq.write_table(table, root / "ga4" / f"events_{d}.parquet", compression="snappy")
            tally(counts, "ga4/*.parquet", len(by_day[d]))
        else:
            text = "".join(compact(r) + "\n" for r in by_day[d])
            write_text(root / "ga4" / f"events_{d}.json", text)
            tally(counts, "ga4/*.json", len(by_day[d]))
    return counts


def write_sendgrid(sample: Sample, root: Path) -> FileCounts:
    """One file per webhook POST: up to 100 events, as SendGrid batches them."""
    counts: FileCounts = {}
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for at, item in sorted(sample.sendgrid, key=lambda x: x[0]):
        by_day[day(at)].append(item)
    for d, items in sorted(by_day.items()):
        for n in range(0, len(items), 100):
            batch = items[n : n + 100]
            body = "[" + ",".join(compact(i) for i in batch) + "]"
            write_text(root / "sendgrid" / d / f"webhook-{n // 100 + 1}.json", body)
            tally(counts, "sendgrid/*.json", len(batch))
    return counts


def write_salesforce(sample: Sample, root: Path) -> FileCounts:
    """Data Export CSVs: API names in the header, every value quoted, CRLF line ends."""
    counts: FileCounts = {}
    folder = root / "salesforce" / "export-2026-10-31"
    for obj, rows in sorted(sample.sf.items()):
        fields = list(dict.fromkeys(k for r in rows for k in r))
        buf = io.StringIO()
        writer = csv.DictWriter(
            buf, fieldnames=fields, lineterminator="\r\n", quoting=csv.QUOTE_ALL, restval=""
        )
        writer.writeheader()
        writer.writerows(rows)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{obj}.csv").write_bytes(buf.getvalue().encode())
        tally(counts, f"salesforce/{obj}.csv", len(rows))
    return counts


def write_stripe(sample: Sample, root: Path) -> FileCounts:
    """Monthly JSON-lines dumps, and the newest 25 events as one ``/v1/events`` list page."""
    counts: FileCounts = {}
    events = sorted(sample.stripe, key=lambda x: x[0])
    page, rest = events[-25:], events[:-25]
    by_month: dict[str, list[str]] = defaultdict(list)
    for at, event in rest:
        by_month[at.strftime("%Y-%m")].append(line_of(event))
    for month, lines in sorted(by_month.items()):
        write_text(root / "stripe" / f"events-{month}.jsonl", "\n".join(lines) + "\n")
        tally(counts, "stripe/events-*.jsonl", len(lines))
    listing = {
        "object": "list",
        "data": [e for _, e in reversed(page)],  # newest first, as Stripe lists them
        "has_more": False,
        "url": "/v1/events",
    }
    write_text(root / "stripe" / "list-page-2026-10-31.json", json.dumps(listing, indent=2) + "\n")
    tally(counts, "stripe/list-page-*.json", len(page))
    return counts


def write_zendesk(sample: Sample, root: Path) -> FileCounts:
    """Incremental Export pages: tickets 100 a page; all ticket events in one page together with
    the users (agents and requesters), as the exporter writes them, so comment authors resolve."""
    counts: FileCounts = {}
    tickets = [t for _, t in sorted(sample.tickets, key=lambda x: (x[0], x[1]["id"]))]
    pages = [tickets[n : n + 100] for n in range(0, len(tickets), 100)]
    for k, page in enumerate(pages, start=1):
        body = {
            "tickets": page,
            "count": len(page),
            "end_time": max(int(when_of(t["updated_at"]).timestamp()) for t in page),
            "next_page": None if k == len(pages) else f"{ZENDESK_API}/tickets.json?cursor=p{k + 1}",
            "end_of_stream": k == len(pages),
        }
        write_text(root / "zendesk" / f"tickets-page-{k}.json", json.dumps(body, indent=1) + "\n")
        tally(counts, "zendesk/*.json", len(page))
    events = [e for _, e in sorted(sample.ticket_events, key=lambda x: (x[0], x[1]["id"]))]
    staff = [
        {"id": i, "name": n, "email": f"{n.split()[0].lower()}@northwind.io", "role": "agent"}
        | {"created_at": "2025-01-06T09:00:00Z", "updated_at": "2025-01-06T09:00:00Z"}
        for i, n in AGENTS
    ]
    users = staff + [sample.zendesk_users[i] for i in sorted(sample.zendesk_users)]
    body = {"ticket_events": events, "users": users, "count": len(events), "end_of_stream": True}
    write_text(root / "zendesk" / "ticket-events-page-1.json", json.dumps(body, indent=1) + "\n")
    tally(counts, "zendesk/*.json", len(events) + len(users))
    return counts


def write_typeform(sample: Sample, root: Path) -> FileCounts:
    """Responses API pages per form, newest first, 100 responses a page."""
    counts: FileCounts = {}
    for form, answered in sorted(sample.responses.items()):
        items = [r for _, r in sorted(answered, key=lambda x: x[0], reverse=True)]
        pages = [items[n : n + 100] for n in range(0, len(items), 100)]
        for k, page in enumerate(pages, start=1):
            body = {"total_items": len(items), "page_count": len(pages), "items": page}
            path = root / "typeform" / form / f"responses-page-{k}.json"
            write_text(path, json.dumps(body, indent=1) + "\n")
            tally(counts, "typeform/*.json", len(page))
    return counts


def write_survey(sample: Sample, root: Path) -> FileCounts:
    """The survey tool's CSV export: oldest first, a BOM and CRLF line ends (Excel)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, SURVEY_COLUMNS)  # CRLF, quotes where a field needs them
    writer.writeheader()
    rows = sorted(sample.survey_rows, key=lambda x: (x[0], x[1]["Response ID"]))
    writer.writerows(row for _, row in rows)
    path = root / SURVEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\ufeff" + buffer.getvalue()).encode("utf-8"))
    counts: FileCounts = {}
    tally(counts, "survey/*.csv", len(rows))
    return counts


def when_of(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


# -- truths ----------------------------------------------------------------------------------
def rate(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def compute_truths(
    sample: Sample, noise: dict[str, dict[str, int]], files: FileCounts
) -> dict[str, Any]:
    people = sample.people
    examples = pick_examples(people[: sample.core], sample.first_flags)  # as before extending
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
    outbound_ids = {
        r["Id"]
        for r in sample.sf["Lead"]
        if r["LeadSource"] in ("Outbound", "Partner") and r["IsDeleted"] == "false"
    }
    assert len(outbound_ids) == outbound
    web_leads = sum(1 for p in people for n in p.nodes if n.startswith("lead:"))

    def flagged(flag: str) -> int:
        return sum(1 for p in people if flag in p.flags)

    def demo_requests_open(within: timedelta) -> int:
        return sum(
            1
            for p in people
            if p.rep
            and p.latency_h is None
            and "demo_requested" in p.stages
            and CUTOFF - p.stages["demo_requested"] <= within
        )

    return {
        "cutoff": CUTOFF.isoformat(),
        "persons": {
            "expected_persons": sum(p.islands() for p in people + sample.sf_only) + outbound,
            "humans": len(people) + len(sample.sf_only) + outbound,
            "salesforce_only_contacts": len(sample.sf_only),
            "outbound_leads": outbound,
            "signed_up": sum(1 for p in people if p.user_id),
            "anonymous_visitors": sum(1 for p in people if not p.user_id),
            "humans_split_into_several_persons": sum(1 for p in people if p.islands() > 1),
            "with_two_devices": sum(1 for p in people if len(p.devices) == 2),
            "signed_up_with_two_devices_merged": flagged("two_devices"),
            "second_device_linked_by_alias": flagged("alias"),
            "segment_email_not_normalised": flagged("segment_email_not_normalised"),
            "lead_email_not_normalised": flagged("lead_email_not_normalised"),
            "sf_leads_matched_only_by_email": web_leads,
            "website_leads_matched_only_by_email": flagged("website_lead_by_email_only"),
            "stripe_linked_by_user_id_only": flagged("stripe_email_differs"),
            "task_who_id_15_chars": flagged("task_who_id_15_chars")
            + sample.counters["outbound_tasks_15_char_who"],
            "ga4_logged_in": flagged("ga4_logged_in"),
            "example_groups": [ex["identifiers"] for ex in examples],
            "examples": examples,
        },
        "shared_mailbox": {
            "email": "info@sharedco.example",
            "user_ids": sample.truths["shared_mailbox_user_ids"],
        },
        "noise": noise,
        "hostile": hostile_counts(sample),
        "files": files,
        "records_per_source": {
            source: sum(c["records"] for k, c in files.items() if k.startswith(source + "/"))
            for source in (
                "segment",
                "ga4",
                "sendgrid",
                "salesforce",
                "stripe",
                "zendesk",
                "typeform",
                "survey",
            )
        },
        "stages": {
            s: sum(1 for p in people if s in p.stages)
            for s in (
                "signup",
                "demo_requested",
                "demo_held",
                "trial",
                "paid",
                "renewal",
                "churned",
            )
        },
        "reps": reps,
        "demo_held_by_latency_bucket": {
            b: {"held": h, "of": n, "rate": rate(h, n)} for b, (h, n) in by_bucket.items()
        },
        "trial_after_demo_by_company_size": {
            s: {"trials": h, "of": n, "rate": rate(h, n)} for s, (h, n) in by_size.items()
        },
        "trial_after_demo_small_vs_larger": {
            "1-10": rate(by_size["1-10"][0], by_size["1-10"][1]),
            "11+": rate(
                sum(by_size[s][0] for s in SIZES[1:]), sum(by_size[s][1] for s in SIZES[1:])
            ),
            "planted": {"1-10": TRIAL_CHANCE["1-10"], "11+": TRIAL_CHANCE["11-50"]},
        },
        "demo_requests_without_followup_at_cutoff": demo_requests_open(CUTOFF - START),
        "demo_requests_without_followup_last_2_days": demo_requests_open(timedelta(days=2)),
        "payment_failed": sample.counters["payment_failed"],
        "dunning_calls": sample.counters["dunning_calls"],
        "website_leads": sample.counters["website_leads"],
        "deviations": {
            "self_serve_trial_skipping_demo": sample.counters["self_serve_trials"],
            "second_demo_after_trial": sample.counters["second_demo_after_trial"],
        },
        "followup_owners": followup_owners(people),
        "company_size": company_size_truths(people),
        "weekly_newsletter": digest_truths(people),
        "retention": retention_truths(people),
        "number_of_employees": employees_truths(people),
        "accounts": account_truths(sample),
        "feelings": feelings_truths(people),
    }


# -- truths of the second stream ---------------------------------------------------------------
def business_seconds(start: datetime, end: datetime) -> float:
    """Seconds of ``[start, end)`` inside the spec's business hours (Berlin, Mon-Fri 9-17)."""
    total, day = 0.0, start.astimezone(BERLIN).date()
    while (opens := datetime.combine(day, time(9), BERLIN)) < end:
        if day.weekday() < 5 and day not in HOLIDAYS:
            closes = datetime.combine(day, time(17), BERLIN)
            total += max(0.0, (min(end, closes) - max(start, opens)).total_seconds())
        day += timedelta(days=1)
    return total


def followup_owners(people: list[Person]) -> dict[str, Any]:
    """Web-form demo requests per Lead owner: lead created -> first completed call, judged
    against 4 business hours. Unanswered past the deadline is a breach; unanswered within it at
    the cut-off is open; the breach rate is over the requests that are not open."""
    rows: dict[str, Counter[str]] = defaultdict(Counter)
    for p in people:
        if p.rep is None or p.lead_created is None:
            continue
        row = rows[sf_id18(p.rep)]
        row["requests"] += 1
        if p.latency_h is not None:
            row["answered"] += 1
            called = p.lead_created + timedelta(hours=p.latency_h)
            row["breached"] += business_seconds(p.lead_created, called) > SLA_S
        elif business_seconds(p.lead_created, CUTOFF) > SLA_S:
            row["breached"] += 1
        else:
            row["open"] += 1
    names = {sf_id18(i): n for i, n, _ in REPS} | {sf_id18(EVAN[0]): EVAN[1]}
    table = {
        owner: {
            "name": names[owner],
            **{k: c[k] for k in ("requests", "answered", "open", "breached")},
            "breach_rate": rate(c["breached"], c["requests"] - c["open"]),
        }
        for owner, c in sorted(rows.items())
    }
    worst = max(table, key=lambda o: (table[o]["breach_rate"] or 0, o))
    evan = table[sf_id18(EVAN[0])]
    return {
        "sla_business_hours": SLA_S / 3600,
        "by_owner": table,
        "worst_owner_by_breach_rate": worst,
        "never_called_back": {
            "owner": sf_id18(EVAN[0]),
            "name": EVAN[1],
            "demo_requests": evan["requests"],
            "demo_held": sum(1 for p in people if p.rep == EVAN[0] and "demo_held" in p.stages),
        },
    }


def company_size_truths(people: list[Person]) -> dict[str, Any]:
    """Company size is an identify trait set at signup and never before: the visit step has
    no size for anyone; from signup on, everyone who signed up has one."""
    signed = [p for p in people if "signup" in p.stages]
    settled = [p for p in signed if p.stages["signup"] <= CUTOFF - timedelta(days=3)]
    by_size: dict[str, list[int]] = {s: [0, 0] for s in SIZES}
    for p in settled:
        by_size[p.size][0] += int("demo_requested" in p.stages)
        by_size[p.size][1] += 1
    return {
        "set_at_signup": len(signed),
        "set_before_signup": 0,
        "demo_request_after_signup_by_size": {
            s: {"requested": h, "of": n, "rate": rate(h, n)} for s, (h, n) in by_size.items()
        },
    }


def digest_truths(people: list[Person]) -> dict[str, Any]:
    """The weekly newsletter, by how the trial ended: equal exposure in the trial's first 14
    days, but only people who dropped keep receiving it afterwards."""
    out: dict[str, Counter[str]] = {"paid": Counter(), "dropped": Counter()}
    for p in people:
        if not p.digests:
            continue
        ended = p.payments[:1] or p.cancels[:1]
        if not ended or p.stages["trial"] + timedelta(days=14) > CUTOFF:
            continue
        outcome = "paid" if p.payments else "dropped"
        first14 = sum(1 for d in p.digests if d < p.stages["trial"] + timedelta(days=14))
        out[outcome]["people"] += 1
        out[outcome]["first_14_days"] += first14
        out[outcome]["after_outcome"] += sum(1 for d in p.digests if d >= ended[0])
    return {
        "category": DIGEST,
        "recipients": sum(1 for p in people if p.digests),
        "messages": sum(len(p.digests) for p in people),
        "by_trial_outcome": {
            k: dict(c) | {"first_14_days_per_person": rate(c["first_14_days"], c["people"])}
            for k, c in out.items()
        },
    }


def retention_truths(people: list[Person]) -> dict[str, Any]:
    """Per month of the first paid invoice: who renewed (a second ``invoice.paid``, billing
    reason ``subscription_cycle``, about 30 days later) and who churned (subscription deleted
    after paying). A renewal is observable once 30 days have passed since the first payment."""
    cohorts: dict[str, Counter[str]] = defaultdict(Counter)
    for p in people:
        if not p.payments:
            continue
        row = cohorts[p.payments[0].strftime("%Y-%m")]
        row["paid"] += 1
        row["renewal_due"] += p.payments[0] + timedelta(days=30) <= CUTOFF
        row["renewed"] += len(p.payments) > 1
        row["churned"] += any(c > p.payments[0] for c in p.cancels)
        for k in range(1, 3):  # period k is observable once k months (30 days) have passed
            if p.payments[0] + timedelta(days=30 * k) <= CUTOFF:
                row[f"due_{k}"] += 1
                row[f"paid_{k}"] += len(p.payments) > k
    table = {
        month: {
            **{k: c[k] for k in ("paid", "renewal_due", "renewed", "churned")},
            "renewal_rate": rate(c["renewed"], c["renewal_due"]),
            "periods": {
                str(k): {"due": c[f"due_{k}"], "paid": c[f"paid_{k}"]}
                for k in range(1, 3)
                if c[f"due_{k}"]
            },
        }
        for month, c in sorted(cohorts.items())
    }
    return {
        "renewed": sum(1 for p in people if len(p.payments) > 1),
        "churned_after_paying": sum(
            1 for p in people if p.payments and any(c > p.payments[0] for c in p.cancels)
        ),
        "cancelled_in_trial": sum(1 for p in people if p.cancels and not p.payments),
        "by_first_payment_month": table,
        "planted": {"monthly_churn": 0.10, "payment_failure": 0.15, "failed_then_cancelled": 0.2},
    }


def employees_truths(people: list[Person]) -> dict[str, Any]:
    """Trial after a demo by Salesforce ``NumberOfEmployees`` binned at 50 (SMB / Enterprise)."""
    bins: dict[str, list[int]] = {"SMB": [0, 0], "Enterprise": [0, 0]}
    for p in people:
        if "demo_held" in p.stages and p.stages["demo_held"] < CUTOFF - timedelta(days=3):
            label = "SMB" if SIZE_EMPLOYEES[p.size] < 50 else "Enterprise"
            bins[label][0] += int("trial" in p.stages)
            bins[label][1] += 1
    return {
        "bins": [50],
        "employees_by_size": SIZE_EMPLOYEES,
        "trial_after_demo": {
            k: {"trials": h, "of": n, "rate": rate(h, n)} for k, (h, n) in bins.items()
        },
    }


def account_truths(sample: Sample) -> dict[str, Any]:
    """One account per real company that named itself to Segment (a group) or Salesforce (an
    Account): the company, not the name, decides (two Piper Labs stay two)."""
    companies = set(sample.company_of_node.values())
    return {
        "expected_accounts": len(companies),
        "segment_groups": sum(1 for n in sample.company_of_node if n.startswith("group:")),
        "salesforce_accounts": sum(1 for n in sample.company_of_node if n.startswith("account:")),
        "all_systems": sample.truths["northstar"],
        "kept_apart": sample.truths["kept_apart"],
    }


def feelings_truths(people: list[Person]) -> dict[str, Any]:
    """Support and survey voices: first-reply waits, NPS by wait in the trial, sentiment per stage.

    A voice is the customer's own text: a public comment they wrote on a ticket, a CSAT comment,
    a free-text survey answer; its stage is the last designed stage they had entered by then."""
    analyzer = SentimentIntensityAnalyzer()
    waits = [(r - c).total_seconds() / 3600 for p in people for c, r in p.tickets if r]
    stages: dict[str, list[float]] = defaultdict(list)
    for p in people:
        for at, text in p.voices:
            stages[stage_at(p, at)].append(analyzer.polarity_scores(text)["compound"])
    by_stage = {
        s: {
            "voices": len(v),
            "mean_sentiment": round(statistics.fmean(v), 4),
            "negative": sum(1 for x in v if x <= -0.05),
        }
        for s, v in sorted(stages.items())
    }
    return {
        "support": {
            "tickets": sum(len(p.tickets) for p in people),
            "requesters": sum(1 for p in people if p.tickets),
            "agent_replied": len(waits),
            "median_first_reply_h": round(statistics.median(waits), 3),
            "first_reply_over_24h": sum(1 for w in waits if w > 24),
            "voices_with_contact_details": sum(
                1 for p in people for _, text in p.voices if "+49 30 5550" in text
            ),
        },
        "nps": nps_truths(people),
        "survey_csv": survey_truths(people),
        "sentiment_by_stage": by_stage,
        "sentiment_dip_stage": min(by_stage, key=lambda s: by_stage[s]["mean_sentiment"]),
        "planted_negative_text_chance": NEGATIVE_CHANCE,
    }


def survey_truths(people: list[Person]) -> dict[str, Any]:
    """The onboarding NPS of the survey CSV: answers per designed stage the person was in."""
    by_stage: dict[str, Counter[str]] = defaultdict(Counter)
    for p in people:
        for at, form, score in p.surveys:
            if form == "onboarding-csv":
                group = "detractors" if score <= 6 else "promoters" if score >= 9 else "passives"
                by_stage[stage_at(p, at)][group] += 1
                by_stage[stage_at(p, at)]["responses"] += 1
    out = {
        stage: {k: c[k] for k in ("responses", "promoters", "passives", "detractors")}
        | {"nps": round(100 * (c["promoters"] - c["detractors"]) / c["responses"], 1)}
        for stage, c in sorted(by_stage.items())
    }
    return {
        "file": SURVEY_FILE,
        "answers": sum(c["responses"] for c in by_stage.values()),
        "bad_rows": len(SURVEY_BAD_ROWS),
        "by_stage": out,
    }


def nps_truths(people: list[Person]) -> dict[str, Any]:
    """NPS per form; in the trial, split by whether the person waited over 24 h for a first
    agent reply on a ticket opened in the trial (no reply by the cut-off counts as waiting)."""
    groups: dict[str, Counter[str]] = defaultdict(Counter)
    for p in people:
        waited = any(
            (reply or CUTOFF) - created > timedelta(hours=24)
            for created, reply in p.tickets
            if stage_at(p, created) == "trial"
        )
        for _, form, score in p.surveys:
            if form == "onboarding-csv":  # the survey CSV: survey_truths
                continue
            keys = [form] + ([f"{form}/waited_over_24h" if waited else f"{form}/no_long_wait"])
            for key in keys if form == "trial-nps" else [form]:
                group = "detractors" if score <= 6 else "promoters" if score >= 9 else "passives"
                groups[key][group] += 1
                groups[key]["responses"] += 1
    out: dict[str, Any] = {}
    for key, c in sorted(groups.items()):
        out[key] = {k: c[k] for k in ("responses", "promoters", "passives", "detractors")}
        out[key]["detractor_rate"] = rate(c["detractors"], c["responses"])
        out[key]["nps"] = round(100 * (c["promoters"] - c["detractors"]) / c["responses"], 1)
    out["planted_detractor_chance"] = {
        "trial-nps/waited_over_24h": DETRACTOR_CHANCE[True],
        "otherwise": DETRACTOR_CHANCE[False],
    }
    return out


EXAMPLE_FEATURES = [
    "alias",
    "two_devices",
    "stripe_email_differs",
    "segment_email_not_normalised",
    "lead_email_not_normalised",
    "task_who_id_15_chars",
    "ga4_logged_in",
]


def pick_examples(
    people: list[Person], first_flags: dict[int, frozenset[str]], want: int = 10
) -> list[dict[str, Any]]:
    """Ten people from web visit to trial whose identifiers must end in exactly one person,
    chosen to cover every planted identity feature (two devices, alias, padded emails, ...)."""

    def richness(p: Person) -> tuple[int, int]:
        return -len(first_flags.get(p.index, p.flags)), p.index

    pool = [
        p
        for p in people
        if "trial" in p.stages
        and p.islands() == 1
        and {n.split(":")[0] for n in p.nodes} >= {"anon", "user", "email", "cus"}
    ]
    chosen: list[Person] = []
    for feature in EXAMPLE_FEATURES:  # first cover each feature, the richest person first
        ranked = sorted(
            (p for p in pool if feature in p.flags and p not in chosen),
            key=richness,
        )
        if ranked:
            chosen.append(ranked[0])
    rest = sorted((p for p in pool if p not in chosen), key=richness)
    chosen += rest[: max(0, want - len(chosen))]
    return [
        {
            "name": f"{p.first_name} {p.last_name}",
            "company": p.company,
            "user_id": p.user_id,
            "features": sorted(p.flags - {"unsubscribed"}),
            "identifiers": sorted(p.nodes),
        }
        for p in sorted(chosen, key=lambda p: p.index)
    ]


def hostile_counts(sample: Sample) -> dict[str, int]:
    """Touchpoints that carry a hostile string (each message once; quarantined rows excluded)."""
    seg_titles: set[str] = set()
    seg_utms: set[str] = set()
    for _, call in sample.segment:
        if not call.get("messageId"):
            continue
        if (call.get("properties") or {}).get("title") == HOSTILE_TITLE:
            seg_titles.add(call["messageId"])
        if ((call.get("context") or {}).get("campaign") or {}).get("name") == HOSTILE_UTM:
            seg_utms.add(call["messageId"])
    ga4 = [row for _, row in sample.ga4 if row.get("user_pseudo_id")]
    ga4_titles = sum(
        1
        for row in ga4
        for param in row["event_params"]
        if param["key"] == "page_title" and param["value"].get("string_value") == HOSTILE_TITLE
    )
    ga4_utms = sum(
        1
        for row in ga4
        if row["collected_traffic_source"].get("manual_campaign_name") == HOSTILE_UTM
    )
    return {
        "page_titles": len(seg_titles),  # Segment pages: touchpoint attribute ``title``
        "ga4_page_titles": ga4_titles,  # GA4 rows: touchpoint attribute ``page_title``
        "utm_campaigns": len(seg_utms) + ga4_utms,  # attribute ``utm_campaign``, both sources
        "segment_utm_campaigns": len(seg_utms),
        "ga4_utm_campaigns": ga4_utms,
    }


def generate(out: Path, seed: int, persons: int) -> dict[str, Any]:
    sample = Sample(seed, persons)
    sample.run()
    noise = add_noise(sample)
    sample.extend(seed)
    landing = out / "landing"
    if landing.exists():
        shutil.rmtree(landing)
    files: FileCounts = {}
    writers = (write_segment, write_ga4, write_sendgrid, write_salesforce, write_stripe)
    for writer in (*writers, write_zendesk, write_typeform, write_survey):
        files.update(writer(sample, landing))
    for source in ("zendesk", "typeform"):  # clean exports: nothing to drop or quarantine
        noise[source] = {"duplicates": 0, "quarantined": 0}
    noise["survey"] = {"duplicates": 0, "quarantined": len(SURVEY_BAD_ROWS)}
    truths = compute_truths(sample, noise, files)
    write_text(out / "truths.json", json.dumps(truths, indent=2, sort_keys=True) + "\n")
    return truths


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("data/sample"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--persons", type=int, default=3000)
    args = parser.parse_args()
    truths = generate(args.out, args.seed, args.persons)
    print(
        json.dumps(
            {"expected_persons": truths["persons"]["expected_persons"], "stages": truths["stages"]}
        )
    )


if __name__ == "__main__":
    main()
