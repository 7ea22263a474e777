from __future__ import annotations

from journeymine.pipelines.nightly import FLOW_NAME, build_deployment, nightly


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


def test_prefect_yaml_matches_the_flow() -> None:
    import inspect
    from pathlib import Path

    import yaml

    config = yaml.safe_load((Path(__file__).resolve().parents[2] / "prefect.yaml").read_text())
    deployment = config["deployments"][0]
    assert deployment["entrypoint"] == "pipelines/nightly.py:nightly"
    assert deployment["schedules"][0]["cron"] == "0 2 * * *"
    params = inspect.signature(nightly.fn).parameters
    assert set(deployment["parameters"]) <= set(params)
