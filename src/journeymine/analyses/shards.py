"""The funnel entries and follow-ups of a cluster run, merged from their per-shard files.

The shards are computed on the workers (:mod:`journeymine.pipelines.scale_people`); reading
them back in the single run's order belongs to the analyses, which store them with the same SQL
as the single-machine run (``analyse(..., people_folder=...)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from journeymine.analyses import followups
from journeymine.spec import JourneySpec


@dataclass(frozen=True)
class People:
    """The merged shards: relations for ``write_stage_funnel`` and the follow-up rows."""

    entries: str | None
    segments: str | None
    followups: pd.DataFrame


def read_people(con: duckdb.DuckDBPyConnection, folder: Path, spec: JourneySpec) -> People:
    """The shards merged: TEMP views of the funnel entries (in the single run's order: step,
    then case) and their segments, and the follow-up rows in the single run's order (rule
    as in the spec, then person; a person's rows keep their shard's order: time, then seq)."""
    shards = sorted(folder.glob("shard=*[0-9]"))
    entries = segments = None
    for name in ("entries", "segments"):
        paths = [str(s / f"{name}.parquet") for s in shards if (s / f"{name}.parquet").exists()]
        if paths:
            con.read_parquet(paths).create_view(f"jm_people_{name}")
    if any((s / "entries.parquet").exists() for s in shards):
        entries = "(SELECT * FROM jm_people_entries ORDER BY pos, case_key)"
    if any((s / "segments.parquet").exists() for s in shards):
        segments = "(SELECT * FROM jm_people_segments)"
    frames = [pd.read_parquet(s / "followups.parquet") for s in shards]
    found = [f for f in frames if len(f)]
    if not found:
        return People(entries, segments, frames[0])
    rows = pd.concat(found, ignore_index=True)
    rules = [r.name for r in spec.followups] or [followups.DEFAULT_RULE.name]
    key = pd.DataFrame(
        {"rule": rows.rule.map({name: i for i, name in enumerate(rules)}), "person": rows.person_id}
    )
    order = key.sort_values(["rule", "person"], kind="stable").index
    return People(entries, segments, rows.loc[order].reset_index(drop=True))
