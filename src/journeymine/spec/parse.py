"""Reading a journey spec (TOML) into a :class:`JourneySpec`: every key checked, every error
naming the file and the key."""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from journeymine.errors import SpecError
from journeymine.spec.model import (
    CASE_NOTIONS,
    DRIVER_OUTCOMES,
    EQUALITY_OPS,
    LIST_OPS,
    MODES,
    NUMERIC_OPS,
    SURVEY_SCALES,
    SURVEY_WHO_TYPES,
    Calendar,
    Condition,
    FollowupRule,
    JourneySpec,
    RetentionSpec,
    Stage,
    SurveyMapping,
)
from journeymine.spec.patterns import check_overlaps
from journeymine.spec.segments import read_segments
from journeymine.spec.values import (
    SEGMENT_NAME,
    as_bool,
    as_patterns,
    as_string,
    as_strings,
    as_table,
    as_tables,
    check_keys,
    is_scalar,
    parse_duration,
)

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


def _stage(raw: dict[str, Any], where: str) -> Stage:
    check_keys(raw, STAGE_KEYS, where)
    if not isinstance(raw.get("name"), str) or not raw["name"].strip():
        raise SpecError(f"{where}: every stage needs a name")
    window = raw.get("window")
    group = raw.get("group")
    horizon = raw.get("horizon")
    return Stage(
        name=raw["name"],
        activities=as_patterns(raw.get("activities"), f"{where}.activities"),
        optional=as_bool(raw.get("optional", False), f"{where}.optional"),
        group=as_string(group, f"{where}.group") if group is not None else None,
        window=parse_duration(window, f"{where}.window") if window is not None else None,
        repeatable=as_bool(raw.get("repeatable", False), f"{where}.repeatable"),
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
    table = as_table(value, where)
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
        if not isinstance(value, list) or not value or not all(is_scalar(v) for v in value):
            raise SpecError(f"{where}: {op!r} needs a non-empty list of strings or numbers")
        return Condition(key, op, tuple(value))
    if op in NUMERIC_OPS and (not is_scalar(value) or isinstance(value, str | bool)):
        raise SpecError(f"{where}: {op!r} compares numbers, got {value!r}")
    if not is_scalar(value):
        raise SpecError(f"{where}: expected a string, number or boolean, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise SpecError(f"{where}: {value!r} is not a finite number")
    return Condition(key, op, value)  # type: ignore[arg-type]


def _calendar(raw: dict[str, Any], where: str) -> Calendar:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    check_keys(raw, CALENDAR_KEYS, where)
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
    check_keys(raw, RULE_KEYS, where)
    if not isinstance(raw.get("name"), str) or not raw["name"].strip():
        raise SpecError(f"{where}: every follow-up rule needs a name")
    if "sla" not in raw:
        raise SpecError(f"{where}.sla: missing; write e.g. sla = '4h'")
    converts_to = raw.get("converts_to")
    return FollowupRule(
        name=raw["name"],
        triggers=as_patterns(raw.get("triggers"), f"{where}.triggers"),
        responses=as_patterns(raw.get("responses"), f"{where}.responses"),
        sla=parse_duration(raw.get("sla"), f"{where}.sla"),
        business_hours=as_bool(raw.get("business_hours", True), f"{where}.business_hours"),
        converts_to=as_string(converts_to, f"{where}.converts_to") if converts_to else None,
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
    check_keys(raw, TOP_KEYS, where)
    case = raw.get("case", "person")
    if case not in CASE_NOTIONS:
        raise SpecError(f"{where}: case = {case!r}; use one of {list(CASE_NOTIONS)}")
    window = parse_duration(raw.get("window", "30d"), f"{where}: window")
    stages = _stages(raw, where)
    names = [s.name for s in stages]
    rules = _rules(raw, names, where)
    name = raw.get("name", default_name)
    segments = read_segments(raw.get("segments", []), f"{where}: segments")
    return JourneySpec(
        name=as_string(name, f"{where}: name"),
        case=case,
        company_activities=as_strings(
            raw.get("company_activities", []), f"{where}: company_activities"
        ),
        stages=stages,
        window=window,
        followups=rules,
        calendar=_calendar(
            as_table(raw.get("calendar", {}), f"{where}: calendar"), f"{where}: calendar"
        ),
        segments=tuple(s.name for s in segments),
        segment_defs=segments,
        outcome_activities=as_strings(
            raw.get("outcome_activities", []), f"{where}: outcome_activities"
        ),
        groups=tuple(
            (as_string(name, f"{where}: groups"), as_patterns(pats, f"{where}: groups.{name}"))
            for name, pats in as_table(raw.get("groups", {}), f"{where}: groups").items()
        ),
        labels=tuple(
            (activity, as_string(text, f"{where}: labels.{activity}"))
            for activity, text in as_table(raw.get("labels", {}), f"{where}: labels").items()
        ),
        retention=_retention(
            as_table(raw.get("retention", {}), f"{where}: retention"), names, where
        ),
        exclude=as_strings(raw.get("exclude", []), f"{where}: exclude"),
        mode=_mode(raw.get("mode", "ordered"), where),
        drift_window=_drift(as_table(raw.get("drift", {}), f"{where}: drift"), where),
        survey=_sources(as_table(raw.get("sources", {}), f"{where}: sources"), where),
        driver_outcomes=_driver_outcomes(raw.get("driver_outcomes"), where),
    )


def _stages(raw: dict[str, Any], where: str) -> tuple[Stage, ...]:
    """``[[stages]]``: each stage read, then the checks across stages (unique names, adjacent
    alternatives, no activity marking two stages)."""
    stage_tables = as_tables(raw.get("stages", []), f"{where}: stages")
    if "stages" in raw and not stage_tables:  # left out means "discover only"; [] is a slip
        raise SpecError(f"{where}: stages = [] declares no stage; add [[stages]] tables")
    stages = tuple(_stage(s, f"{where}: stages[{i}]") for i, s in enumerate(stage_tables))
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise SpecError(f"{where}: stages: stage names repeat: {names}")
    _check_groups(stages, where)
    check_overlaps(stages, where)
    return stages


def _rules(raw: dict[str, Any], names: list[str], where: str) -> tuple[FollowupRule, ...]:
    """``[[followups]]``: unique rule names, each ``converts_to`` naming one of the stages."""
    rules = tuple(
        _rule(r, f"{where}: followups[{i}]")
        for i, r in enumerate(as_tables(raw.get("followups", []), f"{where}: followups"))
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
    return rules


def _driver_outcomes(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return JourneySpec.driver_outcomes
    outcomes = as_strings(value, f"{where}: driver_outcomes")
    unknown = [o for o in outcomes if o not in DRIVER_OUTCOMES]
    if unknown or not outcomes:
        raise SpecError(
            f"{where}: driver_outcomes: unknown {unknown}; use some of {list(DRIVER_OUTCOMES)}"
        )
    return tuple(dict.fromkeys(outcomes))


def _sources(raw: dict[str, Any], where: str) -> SurveyMapping | None:
    check_keys(raw, SOURCE_OPTION_KEYS, f"{where}: sources")
    if "survey" not in raw:
        return None
    return _survey(as_table(raw["survey"], f"{where}: sources.survey"), f"{where}: sources.survey")


def _survey(raw: dict[str, Any], where: str) -> SurveyMapping:
    check_keys(raw, SURVEY_KEYS, where)
    for key in ("who", "when"):
        if key not in raw:
            raise SpecError(f"{where}.{key}: missing; name the CSV column, e.g. {key} = 'Email'")

    def optional(key: str) -> str | None:
        return as_string(raw[key], f"{where}.{key}") if key in raw else None

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
        who=as_string(raw["who"], f"{where}.who"),
        when=as_string(raw["when"], f"{where}.when"),
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


def _mode(value: object, where: str) -> str:
    if value not in MODES:
        raise SpecError(f"{where}: mode = {value!r}; use one of {list(MODES)}")
    return str(value)


def _drift(raw: dict[str, Any], where: str) -> timedelta:
    check_keys(raw, DRIFT_KEYS, f"{where}: drift")
    return parse_duration(raw.get("window", "30d"), f"{where}: drift.window")


def _retention(raw: dict[str, Any], stages: list[str], where: str) -> RetentionSpec:
    where = f"{where}: retention"
    check_keys(raw, RETENTION_KEYS, where)
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
        active=as_strings(raw.get("active", []), f"{where}.active"),
        churn=as_strings(raw.get("churn", list(RetentionSpec.churn)), f"{where}.churn"),
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
