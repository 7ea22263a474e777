"""The journey map as the practice draws it: designed stages by channel, drawn from data.

Every touchpoint is placed in the stage its case was in when it happened: the last stage
entered at or before it in event order ``(occurred_at, seq)``, from ``stage_entries``.
Touchpoints before a case's first stage entry (or of cases that never entered one) belong to
no stage and are left out. Channels are the sources' (``web``, ``email``, ``crm``,
``billing``, ``support``); Typeform's ``survey`` is drawn as ``feedback``; any other channel
gets its own row after these, and touchpoints without one are ``other``.

Columns of ``journey_grid`` (one row per designed stage x channel, empty cells included):

* ``position``, ``stage`` (label as in ``stage_funnel``), ``channel``;
* ``events``, ``people`` (distinct cases), ``customer_events``, ``company_events`` (actor,
  with the spec's ``company_activities`` counted as company actions);
* ``customer_activities``, ``company_activities``: the cell's activities, most frequent first;
* ``top_owner`` and ``owners`` (up to 3): the ``owner_name`` on most of the cell's events;
* ``stage_drop_off_rate`` = dropped / (converted + dropped) and ``stage_median_time_s`` =
  median time to convert out of the stage, both the stage's (``stage_funnel``, segment
  ``all``), the same in every channel of the stage; null before an outcome stage (converting
  into ``churned`` is no progress, and staying no drop-off);
* ``followup_rules``, ``followup_triggers``, ``followup_median_wait_s`` (aligned lists, by
  rule name): the follow-up rules with triggers in the cell, how many, and the median
  wall-clock wait of their answered triggers (``followups.latency_s``; null if none answered).

E-mail addresses in any text are replaced by ``[email]``.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from journeymine import vocabulary
from journeymine.analyses.followups import read_followups
from journeymine.analyses.funnel import CASE_COLUMNS
from journeymine.analyses.opportunities import redact_emails
from journeymine.spec import JourneySpec, step_labels, steps_before_outcomes
from journeymine.sql import glob_any, literal
from journeymine.warehouse import replace_table, require_tables
from journeymine.warehouse.schema import declared

CHANNEL_ROWS = {vocabulary.SURVEY: "feedback"}  # a source's channel -> the grid row it is drawn in
CHANNELS = tuple(CHANNEL_ROWS.get(channel, channel) for channel in vocabulary.CHANNELS)
TOP_OWNERS = 3
# The stored table's columns, as warehouse/schema_analyses.py declares them.
COLUMNS = [column.name for column in declared("journey_grid").columns]


LIST_COLUMNS = (
    "customer_activities", "company_activities", "owners", "followup_rules",
    "followup_triggers", "followup_median_wait_s",
)  # fmt: skip


def _as_list(value: object) -> list[object]:
    """A cell's list of plain Python values (DuckDB hands lists back as lists or arrays; an
    empty cell has none). NumPy scalars would be stored as their repr, e.g. 'np.int64(2)'."""
    if isinstance(value, np.ndarray):
        return list(value.tolist())
    if isinstance(value, list | tuple):
        return [v.item() if isinstance(v, np.generic) else v for v in value]
    return []


def _placed_sql(spec: JourneySpec) -> str:
    """SQL: every touchpoint with the stage its case was in (``pos``), its grid channel and
    who acted."""
    column = CASE_COLUMNS[spec.case]
    company = glob_any("t.activity::VARCHAR", spec.company_activities)
    rows = " ".join(f"WHEN {literal(k)} THEN {literal(v)}" for k, v in CHANNEL_ROWS.items())
    return f"""
        SELECT t.event_id, t.{column} AS case_key, t.activity::VARCHAR AS activity,
               CASE WHEN {company} THEN 'company' ELSE t.actor END AS who,
               coalesce(CASE t.channel {rows} ELSE t.channel END, 'other') AS channel,
               t.owner_name, e.pos
        FROM touchpoints t JOIN stage_entries e ON e.case_key = t.{column}
         AND (e.entered_at < t.occurred_at
              OR (e.entered_at = t.occurred_at AND e.entered_seq <= t.seq))
        QUALIFY row_number() OVER (
            PARTITION BY t.event_id ORDER BY e.entered_at DESC, e.entered_seq DESC, e.pos DESC
        ) = 1
    """


def _cells(con: duckdb.DuckDBPyConnection, spec: JourneySpec) -> pd.DataFrame:
    """Per stage position and channel: counts, activities by actor, owners."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE jm_grid_placed AS {_placed_sql(spec)}")
    return con.execute(
        f"""
        WITH acts AS (
            SELECT pos, channel, who, activity, count(*) AS n
            FROM jm_grid_placed GROUP BY ALL
        ), owners AS (
            SELECT pos, channel, owner_name, count(*) AS n FROM jm_grid_placed
            WHERE owner_name IS NOT NULL GROUP BY ALL
        ), owner_lists AS (
            SELECT pos, channel, list(owner_name ORDER BY n DESC, owner_name) AS owners
            FROM owners GROUP BY ALL
        ), activity_lists AS (
            SELECT pos, channel,
                   list(activity ORDER BY n DESC, activity) FILTER (WHERE who = 'customer')
                       AS customer_activities,
                   list(activity ORDER BY n DESC, activity) FILTER (WHERE who = 'company')
                       AS company_activities
            FROM acts GROUP BY ALL
        ), counts AS (
            SELECT pos, channel, count(*) AS events, count(DISTINCT case_key) AS people,
                   count(*) FILTER (WHERE who = 'customer') AS customer_events,
                   count(*) FILTER (WHERE who = 'company') AS company_events
            FROM jm_grid_placed GROUP BY ALL
        )
        SELECT c.*, a.customer_activities, a.company_activities,
               o.owners[1] AS top_owner, o.owners[1:{TOP_OWNERS}] AS owners
        FROM counts c JOIN activity_lists a USING (pos, channel)
        LEFT JOIN owner_lists o USING (pos, channel)
        """
    ).df()


def _waits(con: duckdb.DuckDBPyConnection, followups: pd.DataFrame) -> pd.DataFrame:
    """Per stage position and channel of the trigger: rules, triggers, median answered wait."""
    con.register("jm_grid_followups", followups[["rule", "trigger_event_id", "latency_s"]])
    try:
        return con.execute(
            """
            WITH per_rule AS (
                SELECT p.pos, p.channel, f.rule, count(*) AS triggers,
                       median(f.latency_s) AS wait
                FROM jm_grid_followups f JOIN jm_grid_placed p ON p.event_id = f.trigger_event_id
                GROUP BY ALL
            )
            SELECT pos, channel, list(rule ORDER BY rule) AS followup_rules,
                   list(triggers ORDER BY rule) AS followup_triggers,
                   list(wait ORDER BY rule) AS followup_median_wait_s
            FROM per_rule GROUP BY ALL
            """
        ).df()
    finally:
        con.unregister("jm_grid_followups")


def _frame(spec: JourneySpec, channels: list[str]) -> pd.DataFrame:
    """Every designed stage x channel."""
    labels = step_labels(spec)
    return pd.DataFrame(
        [(p, label, ch) for p, label in enumerate(labels) for ch in channels],
        columns=["position", "stage", "channel"],
    )


def _stage_figures(con: duckdb.DuckDBPyConnection, spec: JourneySpec) -> pd.DataFrame:
    """Each stage's drop-off and median time to convert; none for a stage whose next one is an
    outcome (``spec.steps_before_outcomes``): converting there is cancelling, not progress."""
    return con.execute(
        """
        SELECT position,
               CASE WHEN converted + dropped > 0 AND NOT list_contains($ends, stage)
                    THEN dropped / (converted + dropped) END AS stage_drop_off_rate,
               CASE WHEN NOT list_contains($ends, stage)
                    THEN time_to_convert_p50_s END AS stage_median_time_s
        FROM stage_funnel WHERE segment = 'all'
        """,
        {"ends": sorted(steps_before_outcomes(spec))},
    ).df()


def compute_journey_grid(
    con: duckdb.DuckDBPyConnection, spec: JourneySpec, *, followups: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The journey grid (module docstring); needs ``stage_entries`` and ``stage_funnel``;
    ``followups`` is read from the warehouse (computed when absent) unless given."""
    if spec.case not in CASE_COLUMNS:
        raise ValueError(f"the journey grid needs a person or account case, not {spec.case!r}")
    require_tables(con, *("touchpoints", "stage_entries", "stage_funnel"))
    if followups is None:
        followups = read_followups(con, spec)
    cells = _cells(con, spec)
    waits = _waits(con, followups)
    con.execute("DROP TABLE jm_grid_placed")
    seen = sorted(set(cells.channel) - set(CHANNELS))
    grid = (
        _frame(spec, [*CHANNELS, *seen])
        .merge(cells.rename(columns={"pos": "position"}), on=["position", "channel"], how="left")
        .merge(waits.rename(columns={"pos": "position"}), on=["position", "channel"], how="left")
        .merge(_stage_figures(con, spec), on="position", how="left")
    )
    for column in ("events", "people", "customer_events", "company_events"):
        grid[column] = grid[column].fillna(0).astype("int64")
    for column in LIST_COLUMNS:
        grid[column] = grid[column].map(_as_list)
    return redact_emails(grid)[COLUMNS]


def write_journey_grid(
    con: duckdb.DuckDBPyConnection, spec: JourneySpec, *, followups: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Compute and store the ``journey_grid`` table; return it."""
    grid = compute_journey_grid(con, spec, followups=followups)
    replace_table(con, "journey_grid", grid[COLUMNS])
    return grid
