"""The journey spec: one TOML file that says what the designed journey is.

``model`` holds the dataclasses and their vocabularies, ``parse`` reads and checks the TOML,
``values`` the single-value readers it uses, ``patterns`` the checks of activity globs. The names
below are the ones the rest of journeymine imports from ``journeymine.spec``.
"""

from __future__ import annotations

from journeymine.spec.model import (
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
    outcome_stages,
    positions,
    source_options,
    step_label,
    step_labels,
    steps_before_outcomes,
)
from journeymine.spec.parse import load_spec, spec_from_dict
from journeymine.spec.patterns import check_attributes, check_patterns, patterns_overlap
from journeymine.spec.values import parse_duration

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
    "step_label",
    "step_labels",
    "steps_before_outcomes",
    "source_options",
    "spec_from_dict",
]
