"""A small hand-made warehouse with exactly the DESIGN §3.2 columns, hostile strings included.

40 people sign up and request a demo; the company replies (or not) after a latency that cycles
through the buckets; two in three pay within three days. Activity names, owners, attributes and
identifiers carry script payloads and email addresses that must never reach the dashboard raw.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from tests.fixtures import SampleRun

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
TITLE_PAYLOAD = "<img src=x onerror=\"document.title='pwned'\">"
TITLE_SCRIPT = "<script>document.title='pwned'</script>"
EMAIL_OWNER = "bob.sales@acme.io"
START = datetime(2026, 1, 5, 9, tzinfo=UTC)
LATENCIES_H: list[float | None] = [0.5, 2.0, 10.0, 30.0, None]  # None: never answered
OWNERS = [f"Ann {SCRIPT}", EMAIL_OWNER, IMG]
SIGNUP, DEMO, CALL, PAID = (
    "web.signed_up",
    f"web.demo_requested {TITLE_PAYLOAD}",
    f"crm.call_completed {SCRIPT}",
    f"billing.invoice_paid {IMG}",
)


@dataclass
class Warehouse:
    path: Path
    people: int = 40
    cost: dict[str, tuple[int, int]] = field(default_factory=dict)  # bucket -> converted, people


def _bucket(latency_h: float | None) -> str:
    if latency_h is None:
        return "no reply"
    return (
        "under 1 h"
        if latency_h < 1
        else "1-4 h"
        if latency_h < 4
        else "4-24 h"
        if latency_h < 24
        else "1-2 days"
    )


def build(path: Path) -> Warehouse:
    con = duckdb.connect(str(path))
    touch: list[tuple[object, ...]] = []
    follow: list[tuple[object, ...]] = []
    wh = Warehouse(path)
    eid = 0

    def add(person: int, activity: str, actor: str, at: datetime, owner: str | None) -> int:
        nonlocal eid
        eid += 1
        attributes = json.dumps(
            {"utm_source": SCRIPT, "email": "jane.doe@example.com", "title": IMG}
        )
        channel = activity.split(".")[0]
        touch.append(
            (eid, person, None, "segment", activity, actor, at, channel, owner, attributes)
        )
        return eid

    for p in range(wh.people):
        t0 = START + timedelta(hours=5 * p)
        add(p, SIGNUP, "customer", t0, None)
        trigger_at = t0 + timedelta(hours=1)
        trigger = add(p, DEMO, "customer", trigger_at, None)
        latency = LATENCIES_H[p % len(LATENCIES_H)]
        response, responded = None, None
        if latency is not None:
            responded = trigger_at + timedelta(hours=latency)
            response = add(p, CALL, "company", responded, OWNERS[p % len(OWNERS)])
        converted = p % 3 != 0
        if converted:
            add(p, PAID, "customer", trigger_at + timedelta(days=3), None)
        status = "answered" if latency is not None else "unanswered"
        breached = latency is None or latency > 4
        follow.append(
            (
                "demo_request",
                p,
                trigger,
                trigger_at,
                responded,
                response,
                None if latency is None else latency * 3600,
                None if latency is None else latency * 1800,
                status,
                breached,
                OWNERS[p % len(OWNERS)],  # the owner responsible at trigger time
                None if latency is None else latency * 1800,  # wait in the SLA's unit
                "business hours",
            )
        )
        bucket = _bucket(latency)
        done, total = wh.cost.get(bucket, (0, 0))
        wh.cost[bucket] = (done + int(converted), total + 1)
    # One person acting late: moves the cut-off so every window above has passed, and
    # leaves an open trigger (SLA not passed) of a second, hostile-named rule.
    late = START + timedelta(days=90)
    add(99, SIGNUP, "customer", late, None)
    trig = add(99, DEMO, "customer", late, None)
    follow.append(
        (SCRIPT, 99, trig, late, None, None, None, None, "open", False, None, None, "hours")
    )

    con.execute(
        "CREATE TABLE touchpoints (event_id BIGINT, person_id BIGINT, account_id BIGINT, "
        "source VARCHAR, activity VARCHAR, actor VARCHAR, occurred_at TIMESTAMPTZ, "
        "channel VARCHAR, owner VARCHAR, attributes JSON)"
    )
    con.executemany("INSERT INTO touchpoints VALUES (?,?,?,?,?,?,?,?,?,?)", touch)
    con.execute(
        "CREATE TABLE persons AS SELECT person_id, min(occurred_at) AS first_seen, "
        "max(occurred_at) AS last_seen, count(*) AS events, "
        "['email:' || person_id || '.jane@example.com', 'anon:" + SCRIPT + "'] AS identifiers "
        "FROM touchpoints GROUP BY person_id"
    )
    con.execute(
        "CREATE TABLE followups (rule VARCHAR, person_id BIGINT, trigger_event_id BIGINT, "
        "triggered_at TIMESTAMPTZ, responded_at TIMESTAMPTZ, response_event_id BIGINT, "
        "latency_s DOUBLE, business_latency_s DOUBLE, status VARCHAR, sla_breached BOOLEAN, "
        "owner VARCHAR, wait_s DOUBLE, sla_unit VARCHAR)"
    )
    con.executemany("INSERT INTO followups VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", follow)
    con.execute(
        "CREATE TABLE dfg (source_activity VARCHAR, target_activity VARCHAR, frequency BIGINT, "
        "cases BIGINT, wait_mean_s DOUBLE, wait_median_s DOUBLE, wait_p90_s DOUBLE)"
    )
    con.executemany(
        "INSERT INTO dfg VALUES (?,?,?,?,?,?,?)",
        [
            (SIGNUP, DEMO, 41, 41, 3600, 3600, 3600),
            (DEMO, CALL, 32, 32, 40000, 36000, 108000),
            (CALL, PAID, 21, 21, 200000, 190000, 250000),
            (DEMO, PAID, 6, 6, 259200, 259200, 259200),
            (PAID, SIGNUP, 2, 2, 86400 * 5, 86400 * 5, 86400 * 6),  # a loop back
            (CALL, CALL, 3, 2, 600, 600, 900),  # a self-loop
            ("web.page_view:/blog", SIGNUP, 1, 1, 60, 60, 60),  # the rarest: hidden at N=4
        ],
    )
    con.execute(
        "CREATE TABLE variants (variant VARCHAR, cases BIGINT, share DOUBLE, "
        "median_duration_s DOUBLE)"
    )
    variants = [
        (" → ".join([SIGNUP, DEMO, CALL, PAID]), 18, 18 / 41, 3 * 86400),
        (" → ".join([SIGNUP, DEMO, CALL]), 14, 14 / 41, 36000),
        (" → ".join([SIGNUP, DEMO, PAID]), 6, 6 / 41, 3 * 86400),
        (" → ".join([SIGNUP, DEMO]), 3, 3 / 41, 3600),
    ]
    con.executemany("INSERT INTO variants VALUES (?,?,?,?)", variants)
    con.execute(
        "CREATE TABLE stage_funnel (segment VARCHAR, stage VARCHAR, entered BIGINT, "
        "converted BIGINT, dropped BIGINT, open BIGINT, conversion_rate DOUBLE, "
        "conversion_ci_low DOUBLE, conversion_ci_high DOUBLE)"
    )
    funnel = []
    for segment, scale in (("all", 1), (f"utm_source={SCRIPT}", 0.5)):
        for stage, entered, conv, drop, opn in (
            ("signed up", 41, 41, 0, 0),
            (f"demo {IMG}", 41, 26, 14, 1),
            ("paid", 26, 0, 0, 0),
        ):
            e, c, d, o = (int(v * scale) for v in (entered, conv, drop, opn))
            rate = c / (c + d) if c + d else None
            low = None if rate is None else max(0.0, rate - 0.1)
            high = None if rate is None else min(1.0, rate + 0.08)
            funnel.append((segment, stage, e, c, d, o, rate, low, high))
    con.executemany("INSERT INTO stage_funnel VALUES (?,?,?,?,?,?,?,?,?)", funnel)
    con.close()
    return wh


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    return build(tmp_path_factory.mktemp("warehouse") / "w.duckdb")


@pytest.fixture
def con(warehouse: Warehouse) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(warehouse.path), read_only=True)


@pytest.fixture(scope="session")
def sample_dashboard(sample_run: SampleRun) -> Path:
    """The session's sample (tests/conftest.py) loaded, analysed and exported;
    ``warehouse.duckdb`` beside the page (read it, never write it)."""
    return sample_run.dashboard
