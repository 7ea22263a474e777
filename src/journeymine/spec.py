"""The journey spec: one TOML file that says what the designed journey is.

It declares the case notion, which activities are company actions, the designed journey as
ordered stages (with optional and alternative stages and conversion windows), follow-up rules
with SLAs and a business-hours calendar, and the attributes to break results down by.
Activity patterns are shell-style globs (``fnmatch``) over canonical activity names.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any

from journeymine.errors import SpecError

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
    converts_to: str | None = None  # the stage whose conversion the wait may cost


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
    exclude: tuple[str, ...] = ()  # activities that take a person out of the funnel step


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TOP_KEYS = {
    "exclude",
    "name",
    "case",
    "window",
    "company_activities",
    "segments",
    "stages",
    "followups",
    "calendar",
}
STAGE_KEYS = {"name", "activities", "optional", "group", "window"}
RULE_KEYS = {"name", "triggers", "responses", "sla", "business_hours", "converts_to"}
CALENDAR_KEYS = {"timezone", "workdays", "hours", "holidays"}


def parse_duration(value: object, where: str) -> timedelta:
    """``"90m"``, ``"4h"``, ``"3d"``, ``"1w"`` (or a number of seconds) as a timedelta."""
    import re

    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return timedelta(seconds=value)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", str(value))
    if not match:
        raise SpecError(f"{where}: bad duration {value!r}; write e.g. '90m', '4h', '3d', '1w'")
    return timedelta(seconds=float(match[1]) * DURATION_UNITS[match[2]])


def _check_keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")


def _patterns(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise SpecError(f"{where}: expected a non-empty list of activity patterns")
    return tuple(value)


def _stage(raw: dict[str, Any], where: str) -> Stage:
    _check_keys(raw, STAGE_KEYS, where)
    if not isinstance(raw.get("name"), str) or not raw["name"].strip():
        raise SpecError(f"{where}: every stage needs a name")
    window = raw.get("window")
    return Stage(
        name=raw["name"],
        activities=_patterns(raw.get("activities"), f"{where}.activities"),
        optional=bool(raw.get("optional", False)),
        group=raw.get("group"),
        window=parse_duration(window, f"{where}.window") if window is not None else None,
    )


def _calendar(raw: dict[str, Any], where: str) -> Calendar:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    _check_keys(raw, CALENDAR_KEYS, where)
    tz = raw.get("timezone", "UTC")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise SpecError(f"{where}.timezone: unknown time zone {tz!r}") from None
    days = raw.get("workdays", list(WEEKDAYS[:5]))
    if not all(d in WEEKDAYS for d in days):
        raise SpecError(f"{where}.workdays: use {list(WEEKDAYS)}, got {days}")
    try:
        opens, closes = (
            time.fromisoformat(t.strip()) for t in raw.get("hours", "09:00-17:00").split("-")
        )
        holidays = tuple(date.fromisoformat(str(d)) for d in raw.get("holidays", []))
    except ValueError as exc:
        raise SpecError(
            f"{where}: {exc} (hours like '09:00-17:00', holidays like '2026-12-25')"
        ) from None
    if opens >= closes:
        raise SpecError(f"{where}.hours: opening {opens} is not before closing {closes}")
    return Calendar(tz, tuple(WEEKDAYS.index(d) for d in days), opens, closes, holidays)


def _rule(raw: dict[str, Any], where: str) -> FollowupRule:
    _check_keys(raw, RULE_KEYS, where)
    if not isinstance(raw.get("name"), str):
        raise SpecError(f"{where}: every follow-up rule needs a name")
    return FollowupRule(
        name=raw["name"],
        triggers=_patterns(raw.get("triggers"), f"{where}.triggers"),
        responses=_patterns(raw.get("responses"), f"{where}.responses"),
        sla=parse_duration(raw.get("sla"), f"{where}.sla"),
        business_hours=bool(raw.get("business_hours", True)),
        converts_to=raw.get("converts_to"),
    )


def load_spec(path: str | Path) -> JourneySpec:
    """Read and validate a journey spec; errors name the file and the key."""
    import tomllib

    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise SpecError(f"{path}: journey spec not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    where = str(path)
    _check_keys(raw, TOP_KEYS, where)
    case = raw.get("case", "person")
    if case not in CASE_NOTIONS:
        raise SpecError(f"{where}: case = {case!r}; use one of {list(CASE_NOTIONS)}")
    window = parse_duration(raw.get("window", "30d"), f"{where}: window")
    stages = tuple(_stage(s, f"{where}: stages[{i}]") for i, s in enumerate(raw.get("stages", [])))
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise SpecError(f"{where}: stage names repeat: {names}")
    _check_overlaps(stages, where)
    rules = tuple(
        _rule(r, f"{where}: followups[{i}]") for i, r in enumerate(raw.get("followups", []))
    )
    for i, rule in enumerate(rules):
        if rule.converts_to is not None and rule.converts_to not in names:
            raise SpecError(
                f"{where}: followups[{i}].converts_to: no stage {rule.converts_to!r}; "
                f"the stages are {names}"
            )
    return JourneySpec(
        name=str(raw.get("name", path.stem)),
        case=case,
        company_activities=tuple(raw.get("company_activities", [])),
        stages=stages,
        window=window,
        followups=rules,
        calendar=_calendar(raw.get("calendar", {}), f"{where}: calendar"),
        segments=tuple(raw.get("segments", [])),
        exclude=tuple(raw.get("exclude", [])),
    )


def _check_overlaps(stages: tuple[Stage, ...], where: str) -> None:
    """Two stages may not be marked by the same pattern: an event would mark both."""
    seen: dict[str, str] = {}
    for stage in stages:
        for pattern in stage.activities:
            if pattern in seen:
                raise SpecError(
                    f"{where}: stages {seen[pattern]!r} and {stage.name!r} overlap: "
                    f"both are marked by {pattern!r}"
                )
            seen[pattern] = stage.name


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


def stage_of(spec: JourneySpec, activity: str) -> str | None:
    """The stage an activity marks, if any (first matching stage)."""
    for stage in spec.stages:
        if any(fnmatch.fnmatchcase(activity, p) for p in stage.activities):
            return stage.name
    return None


def check_patterns(spec: JourneySpec, activities: list[str]) -> list[str]:
    """Patterns in the spec that match none of ``activities``, as readable messages."""
    problems = []
    for stage in spec.stages:
        for p in stage.activities:
            if not any(fnmatch.fnmatchcase(a, p) for a in activities):
                problems.append(f"stage {stage.name!r}: pattern {p!r} matches no activity")
    for rule in spec.followups:
        for kind, pats in (("trigger", rule.triggers), ("response", rule.responses)):
            for p in pats:
                if not any(fnmatch.fnmatchcase(a, p) for a in activities):
                    problems.append(f"follow-up {rule.name!r}: {kind} {p!r} matches no activity")
    return problems
