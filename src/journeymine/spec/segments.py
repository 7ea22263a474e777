"""``segments``: the attributes results are broken down by, each read as a :class:`Segment`
(a plain attribute, numeric bins with labels, or a map of values to groups)."""

from __future__ import annotations

import math
from typing import Any

from journeymine.errors import SpecError
from journeymine.spec.model import Segment
from journeymine.spec.values import as_string, as_strings, as_table, check_keys, check_segment_name

SEGMENT_KEYS = {"name", "attribute", "bins", "labels", "map", "from"}
SEGMENT_SOURCES = ("person", "account")


def read_segments(value: object, where: str) -> tuple[Segment, ...]:
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
    check_keys(raw, SEGMENT_KEYS, where)
    name = check_segment_name(as_string(raw.get("name"), f"{where}.name"), f"{where}.name")
    attribute = raw.get("attribute", name)
    check_segment_name(as_string(attribute, f"{where}.attribute"), f"{where}.attribute")
    source = raw.get("from", "person")
    if source not in SEGMENT_SOURCES:
        raise SpecError(f"{where}.from: use one of {list(SEGMENT_SOURCES)}, got {source!r}")
    if "bins" in raw and "map" in raw:
        raise SpecError(f"{where}: give either bins or map, not both")
    bins = _bins(raw["bins"], f"{where}.bins") if "bins" in raw else ()
    labels = as_strings(raw.get("labels", []), f"{where}.labels")
    if labels and not bins:
        raise SpecError(f"{where}.labels: labels name bins; add bins = [...]")
    if bins and labels and len(labels) != len(bins) + 1:
        raise SpecError(
            f"{where}.labels: {len(bins)} bin edge(s) make {len(bins) + 1} groups, "
            f"got {len(labels)} label(s)"
        )
    if bins and not labels:
        labels = _bin_labels(bins)
    mapping = as_table(raw.get("map", {}), f"{where}.map")
    groups = tuple((str(k), as_string(v, f"{where}.map.{k}")) for k, v in mapping.items())
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
