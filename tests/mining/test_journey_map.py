"""The journey map always shows the designed journey; what it hides is said in people."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from journeymine.mining import discovery
from journeymine.mining.eventlog import log_from_touchpoints
from journeymine.mining.journey_map import build_journey_map
from journeymine.spec import FollowupRule, JourneySpec, Stage

SPEC = JourneySpec(
    name="t",
    window=timedelta(days=30),
    stages=(
        Stage("visit", ("web.page_view:*",)),
        Stage("demo", ("crm.meeting:demo",)),
        Stage("paid", ("billing.invoice_paid",)),
    ),
    followups=(
        FollowupRule("call", ("web.demo_requested",), ("crm.call_completed",), timedelta(hours=4)),
    ),
    labels=(("crm.meeting:demo", "Demo held"),),
)


def test_rare_crm_and_billing_stages_are_drawn_and_page_views_folded(touchpoints) -> None:  # type: ignore[no-untyped-def]
    rows = []
    for person in range(1, 61):  # lots of web traffic, few demos and payments
        day = f"2026-01-{1 + person % 28:02d}"
        for k, page in enumerate(["/", "/pricing", "/blog", "/docs"][: 1 + person % 4]):
            rows.append((person, f"web.page_view:{page}", "customer", f"{day} 0{k}:00+00"))
        rows.append((person, f"web.scroll_{person % 9}", "customer", f"{day} 05:00+00"))
        if person % 10 == 0:
            rows.append((person, "web.demo_requested", "customer", f"{day} 06:00+00"))
            rows.append((person, "crm.call_completed", "company", f"{day} 07:00+00"))
            rows.append((person, "crm.meeting:demo", "company", f"{day} 09:00+00"))
        if person % 20 == 0:
            rows.append((person, "billing.invoice_paid", "customer", f"{day} 12:00+00"))
    con = touchpoints(rows)
    log = discovery.materialise_log(con, log_from_touchpoints(con))
    result = build_journey_map(con, SPEC, log, keep=3, max_edges=4)
    nodes = result.nodes.set_index("node")
    # every page view is one node; the rare stage markers and rule steps are their own nodes
    assert nodes.loc["web.page_view", ["kind", "stage", "people"]].tolist() == [
        "stage",
        "visit",
        60,
    ]
    assert nodes.loc["crm.meeting:demo", ["kind", "stage", "label"]].tolist() == [
        "stage",
        "demo",
        "Demo held",
    ]
    assert nodes.loc["billing.invoice_paid", "people"] == 3
    assert nodes.loc["crm.call_completed", "kind"] == "rule"
    # of nine scroll kinds, the three reached by most people stay, six fold into "web (other)"
    assert (nodes.kind == "activity").sum() == 3 and "web (other)" in nodes.index
    edges = result.edges.set_index(["source", "target"])
    assert edges.loc[("crm.meeting:demo", "billing.invoice_paid"), "shown"]  # designed, though rare
    assert edges.shown.sum() >= 4
    # independent count of the relabelled log: page views collapse into one node (self-loops)
    frame = con.execute("SELECT person_id, activity, occurred_at, seq FROM touchpoints").df()
    frame = frame.sort_values(["person_id", "occurred_at", "seq"])
    frame["node"] = frame.activity.where(
        ~frame.activity.str.startswith("web.page_view"), "web.page_view"
    )
    frame["next"] = frame.groupby("person_id").node.shift(-1)
    pairs = frame.dropna(subset=["next"]).groupby(["node", "next"]).size()
    assert (
        edges.loc[("web.page_view", "web.page_view"), "frequency"]
        == pairs[("web.page_view", "web.page_view")]
    )
    # hidden edges: the share of people with at least one step along one of them
    hidden = {k for k, shown in edges.shown.items() if not shown}
    mapped = frame.node.where(frame.node.isin(nodes.index), "web (other)")
    frame["node"], frame["next"] = mapped, frame.groupby("person_id").node.shift(-1)
    touched = frame[
        [(a, b) in hidden for a, b in zip(frame.node, frame.next, strict=True)]
    ].person_id
    assert result.hidden_people_share == touched.nunique() / 60
    assert isinstance(result.edges, pd.DataFrame)
