"""The journey spec: one TOML file that says what the designed journey is (``parse``). The
names below are the ones the rest of journeymine imports from ``journeymine.spec``.
"""

from __future__ import annotations

from journeymine.spec.parse import (
    DRIVER_OUTCOMES,
    MODES,
    NUMERIC_OPS,
    OUTCOME_ACTIVITIES,
    Calendar,
    Condition,
    FollowupRule,
    JourneySpec,
    RetentionSpec,
    Segment,
    Stage,
    SurveyMapping,
    check_attributes,
    check_patterns,
    load_spec,
    outcome_stages,
    parse_duration,
    patterns_overlap,
    positions,
    source_options,
    spec_from_dict,
)

__all__ = [
    "DRIVER_OUTCOMES",
    "MODES",
    "NUMERIC_OPS",
    "OUTCOME_ACTIVITIES",
    "Calendar",
    "Condition",
    "FollowupRule",
    "JourneySpec",
    "RetentionSpec",  # the type of JourneySpec.retention, for specs built in code
    "Segment",
    "Stage",
    "SurveyMapping",
    "check_attributes",
    "check_patterns",
    "load_spec",
    "outcome_stages",
    "parse_duration",
    "patterns_overlap",
    "positions",
    "source_options",
    "spec_from_dict",
]
