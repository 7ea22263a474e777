"""The journey spec: one TOML file that says what the designed journey is.

It declares the case notion, which activities are company actions, the designed journey as
ordered stages (with optional and alternative stages and conversion windows), follow-up rules
with SLAs and a business-hours calendar, and the attributes to break results down by.
Activity patterns are shell-style globs (``fnmatch``) over canonical activity names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time, timedelta

CASE_NOTIONS = ("person", "account", "deal")


@dataclass(frozen=True)
class Stage:
    """One stage of the designed journey, marked by any activity matching ``activities``.

    Stages sharing a ``group`` are alternatives at one position (either marks progress).
    ``window`` is the time allowed to reach this stage from the previous one (None: the
    spec's overall window).
    """

    name: str
    activities: tuple[str, ...]
    optional: bool = False
    group: str | None = None
    window: timedelta | None = None


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


@dataclass(frozen=True)
class JourneySpec:
    name: str
    case: str = "person"
    company_activities: tuple[str, ...] = ()
    stages: tuple[Stage, ...] = ()
    window: timedelta = timedelta(days=30)
    followups: tuple[FollowupRule, ...] = ()
    calendar: Calendar = field(default_factory=Calendar)
    segments: tuple[str, ...] = ()
