"""The journey spec's model: the dataclasses a TOML spec is read into, their vocabularies, and
what follows from a spec without reading data (its ordered positions, outcome stages, the
parsers' options).

It declares the case notion, which activities are company actions, the designed journey as
ordered stages (with optional and alternative stages and conversion windows), follow-up rules
with SLAs and a business-hours calendar, and the attributes to break results down by.
Activity patterns are shell-style globs (``fnmatch``) over canonical activity names.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from typing import Any

CASE_NOTIONS = ("person", "account", "deal")
MODES = ("ordered", "strict", "any")
# How a ``where`` condition compares an attribute with its value (docs/metrics.md).
EQUALITY_OPS = ("=", "!=")
LIST_OPS = ("in", "not in")
NUMERIC_OPS = (">", ">=", "<", "<=")


@dataclass(frozen=True)
class Condition:
    """``attributes.<key> <op> <value>`` on a marking touchpoint; a missing attribute fails
    every condition (``!=`` included: an unknown plan is not proven to be a paid one)."""

    key: str
    op: str
    value: str | float | bool | tuple[str | float | bool, ...]


@dataclass(frozen=True)
class Segment:
    """A breakdown: the value of ``attribute`` known when a step is entered, binned
    (``bins`` are lower bounds: ``[50]`` splits into ``< 50`` and ``>= 50``, one label each)
    or mapped to groups (values not in ``map`` keep their own), taken from the person's own
    touchpoints or (``source = "account"``) also from those of the person's account."""

    name: str
    attribute: str
    bins: tuple[float, ...] = ()
    labels: tuple[str, ...] = ()
    map: tuple[tuple[str, str], ...] = ()
    source: str = "person"


@dataclass(frozen=True)
class Stage:
    """One stage of the designed journey, marked by any activity matching ``activities``.

    Stages sharing a ``group`` are alternatives at one position (either marks progress).
    ``window`` is the time allowed to reach this stage from the previous one (None: the
    spec's overall window). A ``repeatable`` stage may be marked again later (browsing the
    website after signing up) without that being a deviation. ``horizon`` is how long after
    entering this stage the drivers of leaving it are observed (None: from the data).
    """

    name: str
    activities: tuple[str, ...]
    optional: bool = False
    group: str | None = None
    window: timedelta | None = None
    repeatable: bool = False
    horizon: timedelta | None = None
    where: tuple[Condition, ...] = ()
    occurrence: int = 1


@dataclass(frozen=True)
class Calendar:
    """Business hours: working days (0 = Monday), daily opening hours, holidays, time zone."""

    timezone: str = "UTC"
    workdays: tuple[int, ...] = (0, 1, 2, 3, 4)
    opens: time = time(9, 0)
    closes: time = time(17, 0)
    holidays: tuple[date, ...] = ()


@dataclass(frozen=True)
class FollowupRule:
    """A customer action (trigger) that the company should answer with a response activity."""

    name: str
    triggers: tuple[str, ...]
    responses: tuple[str, ...]
    sla: timedelta
    business_hours: bool = True
    converts_to: str | None = None  # the stage whose conversion the wait may cost


@dataclass(frozen=True)
class RetentionSpec:
    """Retention cohorts: who starts (a stage, by default the last one), which activities make a
    period active (by default the start stage's), which mean churn, and the period."""

    stage: str | None = None
    active: tuple[str, ...] = ()
    churn: tuple[str, ...] = ("billing.subscription_canceled",)
    period: str = "month"
    periods: int = 6


@dataclass(frozen=True)
class SurveyMapping:
    """``[sources.survey]``: which columns of a generic survey CSV say who answered, when, the
    score and the comment (docs/activities.md, source ``survey``).

    ``who_type`` is the identity node the ``who`` column holds (:data:`SURVEY_WHO_TYPES`);
    ``scale`` says what the score is: ``nps`` (a whole number 0-10, classed promoter /
    passive / detractor) or ``rating`` (any number, kept as ``rating``, no NPS).
    ``date_format`` is a ``strptime`` format (None: ISO-8601); a time without an offset is UTC.
    ``response_id`` names the column of the survey tool's answer id (the dedup key; without
    it, who + when + survey). ``name`` is the survey's name, kept as attribute ``survey``.
    """

    who: str
    when: str
    who_type: str = "email"
    score: str | None = None
    comment: str | None = None
    response_id: str | None = None
    name: str | None = None
    date_format: str | None = None
    scale: str = "nps"

    def columns(self) -> dict[str, str]:
        """The mapped columns by their spec key, for the header check."""
        keys = ("who", "when", "score", "comment", "response_id")
        return {key: getattr(self, key) for key in keys if getattr(self, key) is not None}


@dataclass(frozen=True)
class JourneySpec:
    name: str
    case: str = "person"
    company_activities: tuple[str, ...] = ()
    stages: tuple[Stage, ...] = ()
    window: timedelta = timedelta(days=30)
    followups: tuple[FollowupRule, ...] = ()
    calendar: Calendar = field(default_factory=Calendar)
    segments: tuple[str, ...] = ()  # the names of ``segment_defs``
    segment_defs: tuple[Segment, ...] = ()
    exclude: tuple[str, ...] = ()  # activities that take a person out of the funnel step
    # activities that are the outcome itself (a lost deal, a cancellation), never a driver
    outcome_activities: tuple[str, ...] = ()
    # the journey map: nodes that fold several activities, and readable names
    groups: tuple[tuple[str, tuple[str, ...]], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    retention: RetentionSpec = field(default_factory=RetentionSpec)
    mode: str = "ordered"  # the funnel's order mode (analyses.funnel)
    drift_window: timedelta = timedelta(days=30)  # each period compared by the drift report
    survey: SurveyMapping | None = None  # [sources.survey]: the survey CSV's columns
    # what the drivers of each stage are drivers of (analyses.drivers, docs/metrics.md)
    driver_outcomes: tuple[str, ...] = ("conversion", "speed")

    def __post_init__(self) -> None:
        # A spec built in code may name plain attributes only: each is its own segment.
        if self.segments and not self.segment_defs:
            defs = tuple(Segment(name, name) for name in self.segments)
            object.__setattr__(self, "segment_defs", defs)


# What a stage's outcome looks like in the vendors' vocabulary (docs/activities.md): these are
# consequences of dropping, so they are never offered as its drivers. A spec may add its own.
OUTCOME_ACTIVITIES = (
    "crm.opportunity_stage:*[Ll]ost*",
    "crm.lead_disqualified",
    "billing.subscription_canceled",
    "billing.event:customer.subscription.deleted",
)
# What a driver can be a driver of: converting, converting fast, later feedback being a
# detractor's NPS or a bad CSAT (analyses.drivers.POPULATIONS, in this order).
DRIVER_OUTCOMES = ("conversion", "speed", "detractor", "bad_csat")
# What the ``who`` column of a survey may hold: an identity node type of the other sources.
SURVEY_WHO_TYPES = ("email", "user_id", "stripe_customer", "anonymous_id")
SURVEY_SCALES = ("nps", "rating")


def source_options(spec: JourneySpec | None) -> dict[str, dict[str, Any]]:
    """Per source, the keyword arguments its parser takes from the spec (``load.stage_files``)."""
    if spec is None or spec.survey is None:
        return {}
    return {"survey": {"mapping": spec.survey}}


def outcome_stages(spec: JourneySpec | None) -> set[str]:
    """Stages marked only by outcome activities (a cancellation): where a lifecycle ends, not
    the goal progress is measured towards."""
    if spec is None:
        return set()
    outcomes = OUTCOME_ACTIVITIES + spec.outcome_activities
    return {
        s.name
        for s in spec.stages
        if all(any(fnmatch.fnmatchcase(p, o) for o in outcomes) for p in s.activities)
    }


def positions(spec: JourneySpec) -> list[tuple[list[Stage], bool]]:
    """Stages grouped into ordered positions: alternatives share a position (same ``group``);
    a position is optional when all its stages are."""
    out: list[tuple[list[Stage], bool]] = []
    index: dict[str, int] = {}
    for stage in spec.stages:
        if stage.group is not None and stage.group in index:
            out[index[stage.group]][0].append(stage)
        else:
            if stage.group is not None:
                index[stage.group] = len(out)
            out.append(([stage], False))
    return [(group, all(s.optional for s in group)) for group, _ in out]


def step_label(stages: Sequence[Stage]) -> str:
    """A position's name as every table shows it: alternatives joined, ``trial | demo``."""
    return " | ".join(s.name for s in stages)


def step_labels(spec: JourneySpec) -> list[str]:
    """The label of each position of :func:`positions`, in order."""
    return [step_label(stages) for stages, _ in positions(spec)]


def steps_before_outcomes(spec: JourneySpec) -> set[str]:
    """The stages (names and step labels) whose next step holds an outcome stage: converting
    out of them is reaching the outcome (a cancellation), not progress, so neither the drivers
    of converting nor the opportunities to convert more are computed there."""
    outcomes = outcome_stages(spec)
    steps = [group for group, _ in positions(spec)]
    return {
        name
        for group, following in zip(steps, steps[1:], strict=False)
        if any(s.name in outcomes for s in following)
        for name in (step_label(group), *(s.name for s in group))
    }
