"""Readers of single spec values (durations, strings, lists, tables, activity patterns): each
returns the value typed or raises :class:`SpecError` naming where in the spec it stands."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from journeymine.errors import SpecError

DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_DURATION = timedelta(days=3660)  # ten years: a window or SLA beyond it is a typo
# Segment attributes become SQL identifiers and JSON keys: only plain names are accepted.
SEGMENT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")


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


def check_keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    """Refuse keys the spec does not know (a typo would otherwise be silently ignored)."""
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")


def as_table(value: object, where: str) -> dict[str, Any]:
    """A TOML table."""
    if not isinstance(value, dict):
        raise SpecError(f"{where}: expected a table, got {type(value).__name__} {value!r}")
    return value


def as_tables(value: object, where: str) -> list[dict[str, Any]]:
    """An array of tables (``[[stages]]``); each element checked."""
    if not isinstance(value, list):
        raise SpecError(f"{where}: expected an array of tables ([[...]]), got {value!r}")
    return [as_table(v, f"{where}[{i}]") for i, v in enumerate(value)]


def as_string(value: object, where: str) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def as_bool(value: object, where: str) -> bool:
    """``true`` or ``false`` (not 0 / 1)."""
    if not isinstance(value, bool):
        raise SpecError(f"{where}: expected true or false, got {value!r}")
    return value


def as_strings(value: object, where: str) -> tuple[str, ...]:
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


def as_patterns(value: object, where: str) -> tuple[str, ...]:
    """One activity pattern or a non-empty list of them."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise SpecError(f"{where}: expected a non-empty list of activity patterns")
    if not all(v.strip() for v in value):
        raise SpecError(f"{where}: empty activity pattern in {value!r}")
    return tuple(value)


def is_scalar(value: object) -> bool:
    """Whether a ``where`` value is one TOML string, number or boolean."""
    return isinstance(value, str | int | float | bool)
