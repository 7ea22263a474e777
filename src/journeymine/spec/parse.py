"""The journey spec: one TOML file that says what the designed journey is.

It declares the case notion, which activities are company actions, the designed journey as
ordered stages (with optional and alternative stages and conversion windows), follow-up rules
with SLAs and a business-hours calendar, and the attributes to break results down by.
Activity patterns are shell-style globs (``fnmatch``) over canonical activity names.
"""

from __future__ import annotations

import fnmatch
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

from journeymine.errors import SpecError

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


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_DURATION = timedelta(days=3660)  # ten years: a window or SLA beyond it is a typo
# Segment attributes become SQL identifiers and JSON keys: only plain names are accepted.
SEGMENT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
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
    "outcome_activities",
    "groups",
    "labels",
    "retention",
    "alerts",  # read by analyses.alerts.load_alerts
    "mode",
    "drift",
    "sources",
    "driver_outcomes",
}
# What a driver can be a driver of: converting, converting fast, later feedback being a
# detractor's NPS or a bad CSAT (analyses.drivers.POPULATIONS, in this order).
DRIVER_OUTCOMES = ("conversion", "speed", "detractor", "bad_csat")
SOURCE_OPTION_KEYS = {"survey"}  # the sources that read options from the spec
SURVEY_KEYS = {
    "who",
    "who_type",
    "when",
    "score",
    "comment",
    "response_id",
    "name",
    "date_format",
    "scale",
}
# What the ``who`` column of a survey may hold: an identity node type of the other sources.
SURVEY_WHO_TYPES = ("email", "user_id", "stripe_customer", "anonymous_id")
SURVEY_SCALES = ("nps", "rating")
DRIFT_KEYS = {"window"}
RETENTION_KEYS = {"stage", "active", "churn", "period", "periods"}
STAGE_KEYS = {
    "name",
    "activities",
    "optional",
    "group",
    "window",
    "repeatable",
    "horizon",
    "where",
    "occurrence",
}
MAX_OCCURRENCE = 1000
RULE_KEYS = {"name", "triggers", "responses", "sla", "business_hours", "converts_to"}
CALENDAR_KEYS = {"timezone", "workdays", "hours", "holidays"}


def parse_duration(value: object, where: str) -> timedelta:
    """``"90m"``, ``"4h"``, ``"3d"``, ``"1w"`` (or a number of seconds) as a timedelta."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _bounded(float(value), value, where)
    match = re.fullmatch(
        r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", value if isinstance(value, str) else ""
    )
    if not match:
        raise SpecError(f"{where}: bad duration {value!r}; write e.g. '90m', '4h', '3d', '1w'")
    return _bounded(float(match[1]) * DURATION_UNITS[match[2]], value, where)


def _bounded(seconds: float, value: object, where: str) -> timedelta:
    """A positive duration of at most ``MAX_DURATION``: longer ones overflow timestamp maths."""
    if not seconds > 0:
        raise SpecError(f"{where}: duration must be positive, got {value!r}")
    if seconds > MAX_DURATION.total_seconds():
        raise SpecError(
            f"{where}: duration {value!r} is longer than {MAX_DURATION.days} days; "
            "write a shorter one, e.g. '90d'"
        )
    return timedelta(seconds=seconds)


def _check_keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")


def _table(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SpecError(f"{where}: expected a table, got {type(value).__name__} {value!r}")
    return value


def _tables(value: object, where: str) -> list[dict[str, Any]]:
    """An array of tables (``[[stages]]``); each element checked."""
    if not isinstance(value, list):
        raise SpecError(f"{where}: expected an array of tables ([[...]]), got {value!r}")
    return [_table(v, f"{where}[{i}]") for i, v in enumerate(value)]


def _string(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise SpecError(f"{where}: expected true or false, got {value!r}")
    return value


def _strings(value: object, where: str) -> tuple[str, ...]:
    """A possibly empty list of non-empty strings."""
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise SpecError(f"{where}: expected a list of non-empty strings, got {value!r}")
    return tuple(value)


def check_segment_name(name: str, where: str) -> str:
    """A segment attribute name, refused unless plain (letters, digits, ``_ . -``)."""
    if not SEGMENT_NAME.fullmatch(name):
        raise SpecError(
            f"{where}: segment attribute {name!r} is not a plain name; use letters, digits, "
            "'_', '.' or '-' (e.g. 'company_size')"
        )
    return name


SEGMENT_KEYS = {"name", "attribute", "bins", "labels", "map", "from"}
SEGMENT_SOURCES = ("person", "account")


def _segments(value: object, where: str) -> tuple[Segment, ...]:
    """``segments``: attribute names, or tables (``{ name, attribute, bins, labels }``,
    ``{ name, attribute, map }``, optionally ``from = "account"``)."""
    if not isinstance(value, list):
        raise SpecError(f"{where}: expected a list of attribute names or tables, got {value!r}")
    out = []
    for i, entry in enumerate(value):
        at = f"{where}[{i}]"
        if isinstance(entry, str):
            out.append(Segment(check_segment_name(entry, at), entry))
        elif isinstance(entry, dict):
            out.append(_segment(entry, at))
        else:
            raise SpecError(f"{at}: expected an attribute name or a table, got {entry!r}")
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise SpecError(f"{where}: segment attributes repeat: {names}")
    return tuple(out)


def _segment(raw: dict[str, Any], where: str) -> Segment:
    _check_keys(raw, SEGMENT_KEYS, where)
    name = check_segment_name(_string(raw.get("name"), f"{where}.name"), f"{where}.name")
    attribute = raw.get("attribute", name)
    check_segment_name(_string(attribute, f"{where}.attribute"), f"{where}.attribute")
    source = raw.get("from", "person")
    if source not in SEGMENT_SOURCES:
        raise SpecError(f"{where}.from: use one of {list(SEGMENT_SOURCES)}, got {source!r}")
    if "bins" in raw and "map" in raw:
        raise SpecError(f"{where}: give either bins or map, not both")
    bins = _bins(raw["bins"], f"{where}.bins") if "bins" in raw else ()
    labels = _strings(raw.get("labels", []), f"{where}.labels")
    if labels and not bins:
        raise SpecError(f"{where}.labels: labels name bins; add bins = [...]")
    if bins and labels and len(labels) != len(bins) + 1:
        raise SpecError(
            f"{where}.labels: {len(bins)} bin edge(s) make {len(bins) + 1} groups, "
            f"got {len(labels)} label(s)"
        )
    if bins and not labels:
        labels = _bin_labels(bins)
    mapping = _table(raw.get("map", {}), f"{where}.map")
    groups = tuple((str(k), _string(v, f"{where}.map.{k}")) for k, v in mapping.items())
    return Segment(name, attribute, bins, labels, groups, source)


def _bins(value: object, where: str) -> tuple[float, ...]:
    numbers = isinstance(value, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    )
    if not isinstance(value, list) or not value or not numbers:
        raise SpecError(f"{where}: expected a non-empty list of numbers, got {value!r}")
    bins = tuple(float(v) for v in value)
    if not all(math.isfinite(b) for b in bins) or list(bins) != sorted(set(bins)):
        raise SpecError(f"{where}: bin edges must be finite and increasing, got {value!r}")
    return bins


def _bin_labels(bins: tuple[float, ...]) -> tuple[str, ...]:
    """``<50``, ``50-200``, ``>=200`` (each group holds its lower edge)."""
    edges = [f"{b:g}" for b in bins]
    inner = [f"{a}-{b}" for a, b in zip(edges, edges[1:], strict=False)]
    return (f"<{edges[0]}", *inner, f">={edges[-1]}")


def _patterns(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise SpecError(f"{where}: expected a non-empty list of activity patterns")
    if not all(v.strip() for v in value):
        raise SpecError(f"{where}: empty activity pattern in {value!r}")
    return tuple(value)


def _stage(raw: dict[str, Any], where: str) -> Stage:
    _check_keys(raw, STAGE_KEYS, where)
    if not isinstance(raw.get("name"), str) or not raw["name"].strip():
        raise SpecError(f"{where}: every stage needs a name")
    window = raw.get("window")
    group = raw.get("group")
    horizon = raw.get("horizon")
    return Stage(
        name=raw["name"],
        activities=_patterns(raw.get("activities"), f"{where}.activities"),
        optional=_bool(raw.get("optional", False), f"{where}.optional"),
        group=_string(group, f"{where}.group") if group is not None else None,
        window=parse_duration(window, f"{where}.window") if window is not None else None,
        repeatable=_bool(raw.get("repeatable", False), f"{where}.repeatable"),
        horizon=parse_duration(horizon, f"{where}.horizon") if horizon is not None else None,
        where=_conditions(raw.get("where", {}), f"{where}.where"),
        occurrence=_occurrence(raw.get("occurrence", 1), f"{where}.occurrence"),
    )


def _occurrence(value: object, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_OCCURRENCE:
        raise SpecError(f"{where}: a whole number from 1 to {MAX_OCCURRENCE}, got {value!r}")
    return value


def _conditions(value: object, where: str) -> tuple[Condition, ...]:
    """``{ key = value, key = { op = value } }`` as conditions, every one checked."""
    table = _table(value, where)
    out = []
    for key, test in table.items():
        if not SEGMENT_NAME.fullmatch(key):
            raise SpecError(
                f"{where}.{key}: attribute {key!r} is not a plain name; use letters, digits, "
                "'_', '.' or '-'"
            )
        if not isinstance(test, dict):
            test = {"=": test}
        if not test:
            raise SpecError(f'{where}.{key}: empty condition; write e.g. {{ "!=" = "free" }}')
        out += [_condition(key, op, v, f"{where}.{key}") for op, v in test.items()]
    return tuple(out)


def _condition(key: str, op: str, value: object, where: str) -> Condition:
    ops = EQUALITY_OPS + LIST_OPS + NUMERIC_OPS
    if op not in ops:
        raise SpecError(f"{where}: unknown operator {op!r}; use one of {list(ops)}")
    if op in LIST_OPS:
        if not isinstance(value, list) or not value or not all(_scalar(v) for v in value):
            raise SpecError(f"{where}: {op!r} needs a non-empty list of strings or numbers")
        return Condition(key, op, tuple(value))
    if op in NUMERIC_OPS and (not _scalar(value) or isinstance(value, str | bool)):
        raise SpecError(f"{where}: {op!r} compares numbers, got {value!r}")
    if not _scalar(value):
        raise SpecError(f"{where}: expected a string, number or boolean, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise SpecError(f"{where}: {value!r} is not a finite number")
    return Condition(key, op, value)  # type: ignore[arg-type]


def _scalar(value: object) -> bool:
    return isinstance(value, str | int | float | bool)


def _calendar(raw: dict[str, Any], where: str) -> Calendar:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    _check_keys(raw, CALENDAR_KEYS, where)
    tz = raw.get("timezone", "UTC")
    if not isinstance(tz, str):
        raise SpecError(f"{where}.timezone: expected a time zone name like 'Europe/Berlin'")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise SpecError(f"{where}.timezone: unknown time zone {tz!r}") from None
    days = raw.get("workdays", list(WEEKDAYS[:5]))
    if not isinstance(days, list) or not all(d in WEEKDAYS for d in days):
        raise SpecError(f"{where}.workdays: use a list of {list(WEEKDAYS)}, got {days!r}")
    hours = raw.get("hours", "09:00-17:00")
    if not isinstance(hours, str) or hours.count("-") != 1:
        raise SpecError(f"{where}.hours: write opening hours like '09:00-17:00', got {hours!r}")
    holidays_raw = raw.get("holidays", [])
    if not isinstance(holidays_raw, list):
        raise SpecError(f"{where}.holidays: expected a list of dates like 2026-12-25")
    try:
        opens, closes = (time.fromisoformat(t.strip()) for t in hours.split("-"))
    except ValueError as exc:
        raise SpecError(f"{where}.hours: {exc} (write e.g. '09:00-17:00')") from None
    holidays = []
    for i, day in enumerate(holidays_raw):
        if isinstance(day, datetime):  # a TOML datetime is not a day
            raise SpecError(f"{where}.holidays[{i}]: expected a date, got {day!r}")
        if isinstance(day, date):
            holidays.append(day)
            continue
        try:
            holidays.append(date.fromisoformat(str(day)))
        except ValueError:
            raise SpecError(
                f"{where}.holidays[{i}]: {day!r} is not a date like 2026-12-25"
            ) from None
    if opens >= closes:
        raise SpecError(f"{where}.hours: opening {opens} is not before closing {closes}")
    workdays = tuple(sorted({WEEKDAYS.index(d) for d in days}))
    return Calendar(tz, workdays, opens, closes, tuple(sorted(set(holidays))))


def _rule(raw: dict[str, Any], where: str) -> FollowupRule:
    _check_keys(raw, RULE_KEYS, where)
    if not isinstance(raw.get("name"), str) or not raw["name"].strip():
        raise SpecError(f"{where}: every follow-up rule needs a name")
    if "sla" not in raw:
        raise SpecError(f"{where}.sla: missing; write e.g. sla = '4h'")
    converts_to = raw.get("converts_to")
    return FollowupRule(
        name=raw["name"],
        triggers=_patterns(raw.get("triggers"), f"{where}.triggers"),
        responses=_patterns(raw.get("responses"), f"{where}.responses"),
        sla=parse_duration(raw.get("sla"), f"{where}.sla"),
        business_hours=_bool(raw.get("business_hours", True), f"{where}.business_hours"),
        converts_to=_string(converts_to, f"{where}.converts_to") if converts_to else None,
    )


def load_spec(path: str | Path) -> JourneySpec:
    """Read and validate a journey spec; errors name the file and the key.

    Raises :class:`SpecError` on unreadable TOML, unknown keys, values of the wrong type, bad
    durations, an unknown case notion or time zone, repeated stage or rule names, stages whose
    patterns overlap (one activity would mark two stages), alternatives (stages sharing a
    ``group``) that are not next to each other, and ``converts_to`` naming no stage.
    """
    import tomllib

    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"{path}: journey spec not found; pass --journey FILE") from None
    except IsADirectoryError:
        raise SpecError(f"{path}: is a folder; pass the journey spec file (TOML)") from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read the journey spec: {exc.strerror}") from None
    if not raw:
        raise SpecError(f"{path}: the journey spec is empty; see data/sample/journey.toml")
    return spec_from_dict(raw, str(path), default_name=path.stem)


def spec_from_dict(
    raw: dict[str, Any], where: str = "<spec>", default_name: str = "journey"
) -> JourneySpec:
    """Validate an already parsed spec (the TOML as a dict); ``where`` prefixes errors."""
    _check_keys(raw, TOP_KEYS, where)
    case = raw.get("case", "person")
    if case not in CASE_NOTIONS:
        raise SpecError(f"{where}: case = {case!r}; use one of {list(CASE_NOTIONS)}")
    window = parse_duration(raw.get("window", "30d"), f"{where}: window")
    stage_tables = _tables(raw.get("stages", []), f"{where}: stages")
    if "stages" in raw and not stage_tables:  # left out means "discover only"; [] is a slip
        raise SpecError(f"{where}: stages = [] declares no stage; add [[stages]] tables")
    stages = tuple(_stage(s, f"{where}: stages[{i}]") for i, s in enumerate(stage_tables))
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise SpecError(f"{where}: stages: stage names repeat: {names}")
    _check_groups(stages, where)
    _check_overlaps(stages, where)
    rules = tuple(
        _rule(r, f"{where}: followups[{i}]")
        for i, r in enumerate(_tables(raw.get("followups", []), f"{where}: followups"))
    )
    rule_names = [r.name for r in rules]
    if len(set(rule_names)) != len(rule_names):
        raise SpecError(f"{where}: followups: rule names repeat: {rule_names}")
    for i, rule in enumerate(rules):
        if rule.converts_to is not None and rule.converts_to not in names:
            raise SpecError(
                f"{where}: followups[{i}].converts_to: no stage {rule.converts_to!r}; "
                f"the stages are {names}"
            )
    name = raw.get("name", default_name)
    segments = _segments(raw.get("segments", []), f"{where}: segments")
    return JourneySpec(
        name=_string(name, f"{where}: name"),
        case=case,
        company_activities=_strings(
            raw.get("company_activities", []), f"{where}: company_activities"
        ),
        stages=stages,
        window=window,
        followups=rules,
        calendar=_calendar(
            _table(raw.get("calendar", {}), f"{where}: calendar"), f"{where}: calendar"
        ),
        segments=tuple(s.name for s in segments),
        segment_defs=segments,
        outcome_activities=_strings(
            raw.get("outcome_activities", []), f"{where}: outcome_activities"
        ),
        groups=tuple(
            (_string(name, f"{where}: groups"), _patterns(pats, f"{where}: groups.{name}"))
            for name, pats in _table(raw.get("groups", {}), f"{where}: groups").items()
        ),
        labels=tuple(
            (activity, _string(text, f"{where}: labels.{activity}"))
            for activity, text in _table(raw.get("labels", {}), f"{where}: labels").items()
        ),
        retention=_retention(_table(raw.get("retention", {}), f"{where}: retention"), names, where),
        exclude=_strings(raw.get("exclude", []), f"{where}: exclude"),
        mode=_mode(raw.get("mode", "ordered"), where),
        drift_window=_drift(_table(raw.get("drift", {}), f"{where}: drift"), where),
        survey=_sources(_table(raw.get("sources", {}), f"{where}: sources"), where),
        driver_outcomes=_driver_outcomes(raw.get("driver_outcomes"), where),
    )


def _driver_outcomes(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return JourneySpec.driver_outcomes
    outcomes = _strings(value, f"{where}: driver_outcomes")
    unknown = [o for o in outcomes if o not in DRIVER_OUTCOMES]
    if unknown or not outcomes:
        raise SpecError(
            f"{where}: driver_outcomes: unknown {unknown}; use some of {list(DRIVER_OUTCOMES)}"
        )
    return tuple(dict.fromkeys(outcomes))


def _sources(raw: dict[str, Any], where: str) -> SurveyMapping | None:
    _check_keys(raw, SOURCE_OPTION_KEYS, f"{where}: sources")
    if "survey" not in raw:
        return None
    return _survey(_table(raw["survey"], f"{where}: sources.survey"), f"{where}: sources.survey")


def _survey(raw: dict[str, Any], where: str) -> SurveyMapping:
    _check_keys(raw, SURVEY_KEYS, where)
    for key in ("who", "when"):
        if key not in raw:
            raise SpecError(f"{where}.{key}: missing; name the CSV column, e.g. {key} = 'Email'")

    def optional(key: str) -> str | None:
        return _string(raw[key], f"{where}.{key}") if key in raw else None

    who_type = raw.get("who_type", "email")
    if who_type not in SURVEY_WHO_TYPES:
        raise SpecError(f"{where}.who_type: use one of {list(SURVEY_WHO_TYPES)}, got {who_type!r}")
    scale = raw.get("scale", "nps")
    if scale not in SURVEY_SCALES:
        raise SpecError(f"{where}.scale: use one of {list(SURVEY_SCALES)}, got {scale!r}")
    date_format = optional("date_format")
    if date_format is not None and "%" not in date_format:
        raise SpecError(f"{where}.date_format: a strptime format like '%d/%m/%Y %H:%M'")
    mapping = SurveyMapping(
        who=_string(raw["who"], f"{where}.who"),
        when=_string(raw["when"], f"{where}.when"),
        who_type=who_type,
        score=optional("score"),
        comment=optional("comment"),
        response_id=optional("response_id"),
        name=optional("name"),
        date_format=date_format,
        scale=scale,
    )
    columns = list(mapping.columns().values())
    if len(set(columns)) != len(columns):
        raise SpecError(f"{where}: one column mapped twice: {mapping.columns()}")
    return mapping


def source_options(spec: JourneySpec | None) -> dict[str, dict[str, Any]]:
    """Per source, the keyword arguments its parser takes from the spec (``load.stage_files``)."""
    if spec is None or spec.survey is None:
        return {}
    return {"survey": {"mapping": spec.survey}}


def _mode(value: object, where: str) -> str:
    if value not in MODES:
        raise SpecError(f"{where}: mode = {value!r}; use one of {list(MODES)}")
    return str(value)


def _drift(raw: dict[str, Any], where: str) -> timedelta:
    _check_keys(raw, DRIFT_KEYS, f"{where}: drift")
    return parse_duration(raw.get("window", "30d"), f"{where}: drift.window")


def _retention(raw: dict[str, Any], stages: list[str], where: str) -> RetentionSpec:
    where = f"{where}: retention"
    _check_keys(raw, RETENTION_KEYS, where)
    stage = raw.get("stage")
    if stage is not None and stage not in stages:
        raise SpecError(f"{where}.stage: no stage {stage!r}; the stages are {stages}")
    period = raw.get("period", "month")
    if period not in ("day", "week", "month"):
        raise SpecError(f"{where}.period: use 'day', 'week' or 'month', got {period!r}")
    periods = raw.get("periods", 6)
    if not isinstance(periods, int) or isinstance(periods, bool) or not 1 <= periods <= 120:
        raise SpecError(f"{where}.periods: a whole number from 1 to 120, got {periods!r}")
    return RetentionSpec(
        stage=stage,
        active=_strings(raw.get("active", []), f"{where}.active"),
        churn=_strings(raw.get("churn", list(RetentionSpec.churn)), f"{where}.churn"),
        period=period,
        periods=periods,
    )


def _check_groups(stages: tuple[Stage, ...], where: str) -> None:
    """Alternatives (stages sharing a ``group``) must be listed next to each other."""
    closed: set[str] = set()
    current: str | None = None
    for i, stage in enumerate(stages):
        if stage.group != current:
            if current is not None:
                closed.add(current)
            if stage.group is not None and stage.group in closed:
                raise SpecError(
                    f"{where}: stages[{i}].group: alternatives of group {stage.group!r} must be "
                    f"listed next to each other ({stage.name!r} comes after another stage)"
                )
            current = stage.group


def _glob_tokens(pattern: str) -> list[frozenset[str] | None]:
    """A glob as tokens: ``None`` for ``*``, else the set of characters one position admits
    (``ANY`` for ``?``); ``[...]`` classes are expanded over the characters seen in either
    pattern plus a stand-in for every other character."""
    tokens: list[frozenset[str] | None] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            if not tokens or tokens[-1] is not None:
                tokens.append(None)
        elif c == "?":
            tokens.append(ANY)
        elif c == "[" and "]" in pattern[i + 2 :]:
            close = pattern.index("]", i + 2)
            body = pattern[i + 1 : close]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            chars = {
                ch
                for ch in _ALPHABET
                if fnmatch.fnmatchcase(ch, "[" + ("!" if negate else "") + body + "]")
            }
            tokens.append(frozenset(chars))
            i = close
        else:
            tokens.append(frozenset(c))
        i += 1
    return tokens


_ALPHABET = frozenset(chr(c) for c in range(32, 127)) | {"\u00e9", "\u2028"}
ANY = frozenset(_ALPHABET)


def patterns_overlap(a: str, b: str) -> bool:
    """Whether some activity name matches both globs (``fnmatch`` syntax, case-sensitive)."""
    from functools import cache

    ta, tb = _glob_tokens(a), _glob_tokens(b)

    @cache
    def meet(i: int, j: int) -> bool:
        if i == len(ta) and j == len(tb):
            return True
        if i < len(ta) and ta[i] is None:
            return meet(i + 1, j) or (j < len(tb) and meet(i, j + 1))
        if j < len(tb) and tb[j] is None:
            return meet(i, j + 1) or (i < len(ta) and meet(i + 1, j))
        if i == len(ta) or j == len(tb):
            return False
        x, y = ta[i], tb[j]
        assert x is not None and y is not None
        return bool(x & y) and meet(i + 1, j + 1)

    return meet(0, 0)


def _check_overlaps(stages: tuple[Stage, ...], where: str) -> None:
    """No activity may mark two stages (at different positions): an event would mark both.

    Patterns are compared as globs, so ``web.page_view:*`` and ``web.page_view:/pricing``
    overlap. Alternatives of one group may overlap (they mark the same position). So may two
    stages that :func:`markers_distinct` tells apart (the second paid invoice after the first;
    a ``where`` one event cannot meet for both)."""
    seen: list[tuple[Stage, str]] = []
    for stage in stages:
        for pattern in stage.activities:
            for other, earlier in seen:
                same_group = stage.group is not None and stage.group == other.group
                if (
                    other is not stage
                    and not same_group
                    and not markers_distinct(other, stage)
                    and patterns_overlap(earlier, pattern)
                ):
                    raise SpecError(
                        f"{where}: stages {other.name!r} and {stage.name!r} overlap: "
                        f"{earlier!r} and {pattern!r} can match the same activity; tell them "
                        "apart with a larger occurrence on the later stage or with exclusive "
                        "'where' conditions"
                    )
        seen += [(stage, p) for p in stage.activities]


def markers_distinct(earlier: Stage, later: Stage) -> bool:
    """Whether two stages sharing an activity still mark different progress: the later one
    needs a larger ``occurrence`` (a renewal is the second paid invoice, the first one made
    the person ``paid``), or some attribute's conditions exclude each other (``=`` two
    different values, ``=`` against ``!=`` or ``not in`` of that value, disjoint ``in``)."""
    if later.occurrence > earlier.occurrence:
        return True
    return any(_exclusive(a, b) for a in earlier.where for b in later.where if a.key == b.key)


def _exclusive(a: Condition, b: Condition) -> bool:
    """Whether no single value meets both conditions (checked for the equality and list
    operators; numeric ranges are not compared, so they never make stages distinct)."""
    allowed_a, allowed_b = _allowed(a), _allowed(b)
    if allowed_a is not None and allowed_b is not None:
        return not allowed_a & allowed_b
    for allowed, other in ((allowed_a, b), (allowed_b, a)):
        if allowed is not None and other.op in ("!=", "not in"):
            barred = set(other.value) if isinstance(other.value, tuple) else {other.value}
            return allowed <= barred
    return False


def _allowed(c: Condition) -> set[object] | None:
    """The values a ``=`` or ``in`` condition admits (None for the other operators)."""
    if c.op == "=":
        return {c.value}
    if c.op == "in" and isinstance(c.value, tuple):
        return set(c.value)
    return None


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
    for key, pats in (("company_activities", spec.company_activities), ("exclude", spec.exclude)):
        for p in pats:
            if not any(fnmatch.fnmatchcase(a, p) for a in activities):
                problems.append(f"{key}: pattern {p!r} matches no activity")
    return problems


def check_attributes(
    spec: JourneySpec, con: duckdb.DuckDBPyConnection, table: str = "touchpoints"
) -> list[str]:
    """``where`` attributes that no touchpoint of the stage's activities carries, as readable
    messages listing the attributes those touchpoints do carry (a typo is a silent zero)."""
    from journeymine.sql import glob_any

    problems = []
    for stage in spec.stages:
        keys = list(dict.fromkeys(c.key for c in stage.where))
        if not keys:
            continue
        found = (
            con.execute(
                f"SELECT list_sort(list_distinct(flatten(list(json_keys(attributes))))) "
                f"FROM {table} WHERE {glob_any('activity::VARCHAR', stage.activities)} "
                "AND json_type(attributes) = 'OBJECT'"
            ).fetchall()[0][0]
            or []
        )
        for key in keys:
            if key not in found:
                problems.append(
                    f"stage {stage.name!r}: where attribute {key!r} is on no touchpoint of "
                    f"{list(stage.activities)}; they carry {found}"
                )
    return problems
