"""Checks of a spec's activity patterns: whether two globs can match one activity (so two
stages would be marked by one event), and which patterns or ``where`` attributes the data never
meets."""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING

from journeymine.errors import SpecError
from journeymine.spec.model import Condition, JourneySpec, Stage, outcome_stages

if TYPE_CHECKING:
    import duckdb


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


def check_overlaps(stages: tuple[Stage, ...], where: str) -> None:
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


def check_patterns(spec: JourneySpec, activities: list[str]) -> list[str]:
    """Patterns in the spec that match none of ``activities``, and stages named like an
    outcome that are not one (:func:`_unmarked_outcomes`), as readable messages."""
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
    return problems + _unmarked_outcomes(spec)


# Words in a stage's name that say the journey ends there (a cancellation, a lost deal).
OUTCOME_WORDS = ("churn", "cancel", "lost", "disqualif", "deleted")


def _unmarked_outcomes(spec: JourneySpec) -> list[str]:
    """Stages named like an outcome that are not outcome stages (their activities are no
    outcome activity): they would be drawn and mined as progress, so the spec should name
    their activities in ``outcome_activities``."""
    outcomes = outcome_stages(spec)
    return [
        f"stage {s.name!r} reads like an outcome, but {list(s.activities)} are no outcome "
        "activities: list them in outcome_activities, or reaching it counts as progress"
        for s in spec.stages
        if s.name not in outcomes and any(w in s.name.lower() for w in OUTCOME_WORDS)
    ]


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
