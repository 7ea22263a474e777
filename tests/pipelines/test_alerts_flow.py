"""Alerts in the nightly flow: evaluated after the analyses, recorded, first in the run summary,
and emitted as Prefect events an Automation can act on."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from journeymine.analyses.alerts import COLUMNS, EVENT, alert_event
from journeymine.errors import SpecError
from journeymine.ingest import load, stage
from journeymine.pipelines.nightly import nightly
from journeymine.summary import markdown_summary
from tests.ingest import fake_source

FIGURES = pd.DataFrame(
    [("persons", "people", 4.0, "count", True)],
    columns=["key", "label", "value", "unit", "higher_is_better"],
)


def _alert_rows(rows: list[tuple[str, bool, str, str, bool]]) -> pd.DataFrame:
    """(name, fired, severity, message, evaluated) as an ``evaluate_alerts`` frame."""
    return pd.DataFrame(
        [
            {
                "name": n,
                "metric": "persons",
                "stage_or_rule": None,
                "value": 1.0,
                "bound": 2.0,
                "previous": None,
                "fired": f,
                "severity": s,
                "message": m,
                "evaluated": e,
            }
            for n, f, s, m, e in rows
        ],  # fmt: skip
        columns=COLUMNS,
    )


def test_fired_alerts_open_the_summary_most_severe_first() -> None:
    alerts = _alert_rows(
        [
            ("quiet", False, "critical", "People is 5, not below 2.", True),
            ("soft", True, "info", "People is 1, below the bound of 2.", True),
            ("loud", True, "critical", "Conversion at stage demo is 30.0%, below 40.0%.", True),
            ("broken", False, "warning", "Cannot evaluate alert broken: no table.", False),
        ]
    )
    text = markdown_summary(load.LoadReport("r1"), FIGURES, {}, alerts)
    lines = text.splitlines()
    assert lines[2:6] == [
        "## Alerts fired (2)",
        "",
        "- **critical** `loud`: Conversion at stage demo is 30.0%, below 40.0%.",
        "- **info** `soft`: People is 1, below the bound of 2.",
    ]
    assert "- `broken`: Cannot evaluate alert broken: no table." in lines
    assert "quiet" not in text
    assert text.index("Alerts fired") < text.index("| source |")
    without = markdown_summary(load.LoadReport("r1"), FIGURES, {})
    assert "Alerts" not in without and without == markdown_summary(
        load.LoadReport("r1"), FIGURES, {}, alerts.iloc[0:0]
    )


JOURNEY = """
name = "tiny"
window = "1d"
[[stages]]
name = "signup"
activities = ["web.signed_up"]
[[stages]]
name = "paid"
activities = ["web.paid"]
[[followups]]
name = "welcome"
triggers = ["web.signed_up"]
responses = ["email.welcome_sent"]
sla = "1h"
business_hours = false

[[alerts]]
name = "{low}"
metric = "conversion"
stage = "signup"
below = 0.5
severity = "critical"

[[alerts]]
name = "{high}"
metric = "conversion"
stage = "signup"
below = 0.2

[[alerts]]
name = "{wait}"
metric = "median_wait"
rule = "welcome"
above = 2
"""

# Day 0: u1, u2, u3 sign up; u1 pays an hour later. Day 10: u4 signs up, which moves the
# cut-off: u2 and u3 dropped out (window 1 day elapsed), u4 is still open.
# Conversion at signup = 1 / (1 + 2) = 33.3%: below 0.5, not below 0.2.
LANDING = """k1,1785000000,user_id,u1,web.signed_up
k2,1785000060,user_id,u2,web.signed_up
k3,1785000120,user_id,u3,web.signed_up
k4,1785003600,user_id,u1,web.paid
k5,1785864000,user_id,u4,web.signed_up
"""


def _fired_events(resource_id: str, timeout_s: float = 30.0) -> list[object]:
    """The ``journeymine.alert.fired`` events of one resource, read back from the Prefect API
    (events are persisted asynchronously: poll until they arrive)."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all()
    wanted = EventFilter(
        event=EventNameFilter(name=[EVENT]), resource=EventResourceFilter(id=[resource_id])
    )
    deadline = time.monotonic() + timeout_s
    while True:
        with get_client(sync_client=True) as client:
            events = client.read_events(filter=wanted, limit=50).events  # the API caps it
        if events or time.monotonic() > deadline:
            return list(events)
        time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_a_nightly_run_records_the_alert_and_emits_its_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stage, "parser_for", lambda source: fake_source.parse_file)
    tag = uuid.uuid4().hex[:8]  # the session's Prefect API is shared by other tests
    names = {"low": f"signup-low-{tag}", "high": f"signup-very-low-{tag}", "wait": f"wait-{tag}"}
    journey = tmp_path / "journey.toml"
    journey.write_text(JOURNEY.format(**names))
    (tmp_path / "landing" / "segment").mkdir(parents=True)
    (tmp_path / "landing" / "segment" / "a.txt").write_text(LANDING)
    db = tmp_path / "w.duckdb"
    nightly(
        landing=str(tmp_path / "landing"), warehouse_path=str(db), journey=str(journey),
        out=str(tmp_path / "out"),
    )  # fmt: skip
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT name, value, bound, fired, severity, evaluated, message FROM latest_alerts"
        ).df()
    by_name = rows.set_index("name")
    low, high, wait = (by_name.loc[names[k]] for k in ("low", "high", "wait"))
    assert low.value == pytest.approx(1 / 3) and low.bound == 0.5
    assert bool(low.fired) and low.severity == "critical"
    assert high.value == pytest.approx(1 / 3) and not bool(high.fired)
    # No welcome email was ever sent: the rule has triggers but no answered one.
    assert not bool(wait.evaluated) and not bool(wait.fired)
    assert wait.message.endswith("follow-up rule welcome has no answered trigger yet.")

    fired = _fired_events(f"journeymine.alert.{names['low']}")
    assert len(fired) == 1
    event = fired[0]
    assert event.payload["value"] == pytest.approx(1 / 3)  # type: ignore[attr-defined]
    assert event.payload["bound"] == 0.5  # type: ignore[attr-defined]
    assert event.payload["severity"] == "critical"  # type: ignore[attr-defined]
    assert _fired_events(f"journeymine.alert.{names['high']}", timeout_s=2) == []
    summary = _summary_naming(names["low"]).splitlines()
    assert summary[2:5] == [
        "## Alerts fired (1)",
        "",
        f"- **critical** `{names['low']}`: Conversion at stage signup is 33.3%, "
        "below the bound of 50.0%.",
    ]


def _summary_naming(text: str) -> str:
    """The run summary artifact that mentions ``text`` (other tests publish summaries too)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["journeymine-run-summary"]))
        )
    found = [str(a.data) for a in artifacts if text in str(a.data)]
    assert len(found) == 1
    return found[0]


def test_the_readme_automation_is_valid_and_matches_our_events() -> None:
    import re

    import yaml
    from prefect.events.schemas.automations import AutomationCore
    from prefect.events.schemas.events import Resource

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## Alerts.*?```yaml\n(.*?)```", readme, re.S)
    assert block is not None
    automation = AutomationCore.model_validate(yaml.safe_load(block.group(1)))
    event = alert_event(
        {"name": "demo-conversion", "metric": "conversion", "stage_or_rule": "demo",
         "value": 0.3, "bound": 0.4, "previous": None, "severity": "critical", "message": "m"}
    )  # fmt: skip
    trigger = automation.trigger
    assert trigger.expect == {event["event"]}  # type: ignore[union-attr]
    assert trigger.match.matches(Resource.model_validate(event["resource"]))  # type: ignore[union-attr]
    assert not trigger.match.matches(  # type: ignore[union-attr]
        Resource.model_validate({"prefect.resource.id": "prefect.flow-run.1"})
    )


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_a_misspelt_alert_stops_the_run_before_anything_is_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stage, "parser_for", lambda source: fake_source.parse_file)
    journey = tmp_path / "journey.toml"
    bad = JOURNEY.format(low="a", high="b", wait="c").replace('stage = "signup"\nbelow = 0.2',
                                                              'stage = "sigup"\nbelow = 0.2')  # fmt: skip
    journey.write_text(bad)
    (tmp_path / "landing" / "segment").mkdir(parents=True)
    (tmp_path / "landing" / "segment" / "a.txt").write_text(LANDING)
    db = tmp_path / "w.duckdb"
    with pytest.raises(SpecError, match=r"journey.toml: alerts\[1\]\.stage: no stage 'sigup'"):
        nightly(
            landing=str(tmp_path / "landing"), warehouse_path=str(db), journey=str(journey),
            out=str(tmp_path / "out"),
        )  # fmt: skip
    assert not db.exists()


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_a_headline_alert_compares_with_the_previous_nights_figure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stage, "parser_for", lambda source: fake_source.parse_file)
    name = f"people-{uuid.uuid4().hex[:8]}"
    journey = tmp_path / "journey.toml"
    stages = JOURNEY.split("[[alerts]]")[0]
    journey.write_text(stages + f'[[alerts]]\nname = "{name}"\nmetric = "persons"\n'
                       'change = "significant"\n')  # fmt: skip
    root = tmp_path / "landing" / "segment"
    root.mkdir(parents=True)
    (root / "a.txt").write_text(LANDING)  # 4 people
    db = tmp_path / "w.duckdb"

    def night() -> None:
        nightly(
            landing=str(root.parent), warehouse_path=str(db), journey=str(journey),
            out=str(tmp_path / "out"),
        )  # fmt: skip

    night()
    (root / "b.txt").write_text("k6,1785864060,user_id,u5,web.signed_up\n")  # a 5th: +25%
    night()
    with duckdb.connect(str(db), read_only=True) as con:
        history = con.execute(
            "SELECT evaluated, fired, value, previous FROM alerts ORDER BY evaluated_at"
        ).fetchall()
    # Night 1 has no previous run: a change alone cannot be judged. Night 2: 5 against 4.
    assert history == [(False, False, 4.0, None), (True, True, 5.0, 4.0)]
    fired = _fired_events(f"journeymine.alert.{name}")
    assert [(e.payload["value"], e.payload["previous"]) for e in fired] == [(5.0, 4.0)]  # type: ignore[attr-defined]
