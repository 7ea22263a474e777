from __future__ import annotations

from pipelines.nightly import FLOW_NAME, build_deployment, nightly


def test_deployment_carries_the_cron_schedule_and_parameters() -> None:
    dep = build_deployment("30 3 * * *", "Europe/Berlin", landing="/data/landing")
    assert dep.flow_name == FLOW_NAME == nightly.name
    assert len(dep.schedules) == 1
    schedule = dep.schedules[0].schedule
    assert schedule.cron == "30 3 * * *"  # type: ignore[union-attr]
    assert schedule.timezone == "Europe/Berlin"  # type: ignore[union-attr]
    assert dep.parameters == {"landing": "/data/landing"}


def test_default_schedule_is_two_in_the_morning() -> None:
    schedule = build_deployment().schedules[0].schedule
    assert schedule.cron == "0 2 * * *"  # type: ignore[union-attr]
