"""Follow-ups: how long a customer waits for the company after acting, and what it costs.

Definitions (docs/metrics.md):

* a **trigger** is a customer touchpoint matching a rule's ``triggers``; its **response** is the
  first company touchpoint of the same person matching ``responses``, strictly after the
  trigger (a response at or before the trigger is not a response);
* ``latency_s`` is wall-clock seconds, ``business_latency_s`` the open seconds of the spec's
  calendar between trigger and response (see ``business_hours``);
* **answered**: a response exists (by the cut-off). **unanswered**: none, and the SLA has
  passed at the cut-off. **open**: none yet, SLA not passed (right-censored);
* ``wait_s`` is the latency in the unit the SLA is judged in (``sla_unit``: business hours or
  hours), what the charts and headlines show;
* ``sla_breached``: answered later than the SLA, or unanswered. The SLA is measured in
  business time when the rule says ``business_hours = true``, else in wall-clock time;
* ``owner`` is who was **responsible at trigger time**, answered or not: the trigger's own
  owner (a Salesforce lead created by a web form has its ``OwnerId``); else the owner named by
  the person's latest CRM record (lead, contact, opportunity: ``OWNER_RECORDS``) at or before
  the trigger; if none, the first such record after it; else whoever responded.
  ``owner_source`` says which (``trigger`` / ``crm_at_trigger`` / ``crm_after_trigger`` /
  ``responder``); ``responder`` is who actually answered. A rep who never calls back keeps
  every unanswered trigger.

Without rules in the spec, a default rule asks for the next company touchpoint after any
customer action.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import numpy as np
import pandas as pd

from journeymine.analyses.business_hours import business_seconds
from journeymine.analyses.funnel import conversion
from journeymine.spec import FollowupRule, JourneySpec
from journeymine.sql import data_cutoff, glob_bound, statement
from journeymine.warehouse import replace_table, table_exists

# CRM records whose OwnerId names who owns the person (docs/activities.md); a task or a
# meeting names who acted, not who owns.
OWNER_RECORDS = (
    "crm.lead_created",
    "crm.lead_converted",
    "crm.contact_created",
    "crm.opportunity_created",
)
DEFAULT_RULE = FollowupRule("next_company_touch", ("*",), ("*",), timedelta(days=2), False)
LATENCY_BUCKETS = [
    (3600, "<1h"),
    (4 * 3600, "1-4h"),
    (86400, "4-24h"),
    (2 * 86400, "24-48h"),
    (np.inf, ">48h"),
]


def _rule_rows(
    con: duckdb.DuckDBPyConnection,
    rule: FollowupRule,
    table: str,
    company: tuple[str, ...],
    cutoff: datetime,
) -> pd.DataFrame:
    # The spec's company_activities make an activity a company action whatever the source said.
    params: dict[str, object] = {"cutoff": cutoff}
    company_act = glob_bound("activity", "company", company, params)
    sql = statement("journeymine.analyses", "followups_rule.sql").format(
        table=table,
        who=f"CASE WHEN {company_act} THEN 'company' ELSE actor END" if company else "actor",
        triggered=glob_bound("activity", "triggers", rule.triggers, params),
        responded=glob_bound("activity", "responses", rule.responses, params),
        owner_record=glob_bound("activity", "owner_records", OWNER_RECORDS, params),
    )
    return con.execute(sql, params).df()


def compute_followups(
    con: duckdb.DuckDBPyConnection,
    spec: JourneySpec,
    *,
    table: str = "touchpoints",
    cutoff: datetime | None = None,
) -> pd.DataFrame:
    """One row per trigger event and rule: response, latencies, status and SLA breach.

    Only events at or before ``cutoff`` (default: the latest touchpoint) are seen: a response
    after the cut-off does not exist yet. A trigger is ``unanswered`` when its SLA deadline
    (trigger + SLA, in business time for business-hours rules) is at or before the cut-off.
    """
    if cutoff is None:
        cutoff = data_cutoff(con, table, "occurred_at")
    frames = []
    for rule in spec.followups or (DEFAULT_RULE,):
        rows = _rule_rows(con, rule, table, spec.company_activities, cutoff)
        if rows.empty:
            continue
        rows.insert(0, "rule", rule.name)
        frames.append(_judge_triggers(rows, rule, spec, cutoff))
    columns = [
        "rule",
        "person_id",
        "trigger_event_id",
        "trigger_activity",
        "triggered_at",
        "responded_at",
        "response_event_id",
        "latency_s",
        "business_latency_s",
        "status",
        "sla_breached",
        "sla_s",
        "wait_s",
        "sla_unit",
        "owner",
        "owner_name",
        "owner_source",
        "responder",
        "channel",
    ]
    return (
        pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)
    )


def _judge_triggers(
    rows: pd.DataFrame, rule: FollowupRule, spec: JourneySpec, cutoff: datetime
) -> pd.DataFrame:
    """Add to one rule's triggers (``_rule_rows``) their latencies, wall-clock and business,
    and, judged at the cut-off in the rule's unit, the status and SLA breach."""
    rows["latency_s"] = (rows.responded_at - rows.triggered_at).dt.total_seconds()
    rows["business_latency_s"] = business_seconds(
        spec.calendar, rows.triggered_at, rows.responded_at
    )
    cut = pd.Series(pd.Timestamp(cutoff), index=rows.index)
    if rule.business_hours:
        waited = business_seconds(spec.calendar, rows.triggered_at, cut)
        latency = rows.business_latency_s
    else:
        waited = (cut - rows.triggered_at).dt.total_seconds()
        latency = rows.latency_s
    sla = rule.sla.total_seconds()
    answered = rows.responded_at.notna()
    rows["status"] = np.where(answered, "answered", np.where(waited >= sla, "unanswered", "open"))
    rows["sla_breached"] = np.where(answered, latency > sla, rows.status == "unanswered")
    rows["sla_s"] = sla
    rows["wait_s"] = latency  # in the unit the SLA is judged in
    rows["sla_unit"] = "business hours" if rule.business_hours else "hours"
    return rows


def summarise_followups(followups: pd.DataFrame, by: str = "rule") -> pd.DataFrame:
    """Per rule (and ``owner``, ``owner_name``, ``responder`` or ``channel`` when asked): count,
    median and p90 latency over answered triggers (hours, wall clock and business; p90 with
    linear interpolation, as DuckDB ``quantile_cont``), breach rate and never-answered rate
    over decided triggers; open triggers are left out of the rates (their outcome is not known
    yet)."""
    keys = ["rule"] if by == "rule" else ["rule", by]
    rows = []
    for key, part in followups.groupby(keys, dropna=False):
        decided = part[part.status != "open"]
        answered = part[part.status == "answered"]
        rows.append(
            {
                **dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True)),
                "triggers": len(part),
                "answered": len(answered),
                "open": int((part.status == "open").sum()),
                "unanswered": int((part.status == "unanswered").sum()),
                "breached": int(part.sla_breached.sum()),
                "median_latency_h": answered.latency_s.median() / 3600,
                "p90_latency_h": answered.latency_s.quantile(0.9) / 3600,
                "median_business_latency_h": answered.business_latency_s.median() / 3600,
                "p90_business_latency_h": answered.business_latency_s.quantile(0.9) / 3600,
                "median_wait_h": (answered.wait_s.median() / 3600 if "wait_s" in part else np.nan),
                "breach_rate": decided.sla_breached.mean() if len(decided) else np.nan,
                "never_answered_rate": (
                    (decided.status == "unanswered").mean() if len(decided) else np.nan
                ),
            }
        )
    return pd.DataFrame(rows)


NO_REPLY = "no reply"  # unanswered: a different thing from a slow reply, so its own bucket


def latency_bucket(seconds: float) -> str:
    """``<1h``, ``1-4h``, ``4-24h``, ``24-48h``, ``>48h``; ``no reply`` without a reply."""
    if pd.isna(seconds):
        return NO_REPLY
    return next(label for edge, label in LATENCY_BUCKETS if seconds < edge)


def cost_of_waiting(
    con: duckdb.DuckDBPyConnection,
    followups: pd.DataFrame,
    rule: str,
    target_activities: tuple[str, ...],
    window: timedelta,
    *,
    table: str = "touchpoints",
    cutoff: datetime | None = None,
) -> pd.DataFrame:
    """Conversion to a next step by follow-up latency bucket, with Wilson intervals (wall-clock
    buckets ``LATENCY_BUCKETS``, then ``no reply`` for unanswered triggers).

    For each person's first trigger of ``rule``: converted if the person does a
    ``target_activities`` touchpoint within ``window`` after the trigger; dropped if the window
    passed without one; open (left out) if the window had not passed at the cut-off.
    """
    # Only the columns used below: a copy of every column of a rule's decided triggers was
    # the step's peak memory at volume (millions of rows of text).
    decided = (followups.rule == rule) & (followups.status != "open")
    first = followups.loc[decided, ["person_id", "triggered_at", "latency_s"]]
    first = first.sort_values("triggered_at").drop_duplicates("person_id")
    if cutoff is None:
        cutoff = data_cutoff(con, table, "occurred_at")
    if first.empty:  # nothing decided yet: every bucket empty
        first = first.assign(triggered_at=pd.to_datetime(first.triggered_at, utc=True))
    reached = _first_reached(con, first, target_activities, window, table, cutoff)
    first = first.merge(reached, on="person_id", how="left")
    censored = first.reached_at.isna() & (first.triggered_at + window > pd.Timestamp(cutoff))
    first = first[~censored]
    first["bucket"] = first.latency_s.map(latency_bucket)
    return _conversion_by_bucket(first)


def _first_reached(
    con: duckdb.DuckDBPyConnection,
    first: pd.DataFrame,
    target_activities: tuple[str, ...],
    window: timedelta,
    table: str,
    cutoff: datetime,
) -> pd.DataFrame:
    """``person_id, reached_at``: when each person of ``first`` (their first trigger) first did
    a target activity within ``window`` after the trigger and by the cut-off."""
    con.register("jm_first", first[["person_id", "triggered_at"]])
    params: dict[str, object] = {"window": window.total_seconds(), "cutoff": cutoff}
    reaches = glob_bound("t.activity", "targets", target_activities, params)
    reached = con.execute(
        f"""
        SELECT f.person_id, min(t.occurred_at) AS reached_at FROM jm_first f
        JOIN {table} t ON t.person_id = f.person_id AND t.occurred_at >= f.triggered_at
         AND t.occurred_at <= f.triggered_at + to_seconds($window)
         AND t.occurred_at <= $cutoff AND {reaches}
        GROUP BY f.person_id
        """,
        params,
    ).df()
    con.unregister("jm_first")
    return reached


def _conversion_by_bucket(first: pd.DataFrame) -> pd.DataFrame:
    """People, converted and the conversion rate with its Wilson interval per latency bucket
    (``LATENCY_BUCKETS``, then ``no reply``), from decided first triggers with ``bucket``."""
    rows = []
    for _, label in [*LATENCY_BUCKETS, (np.nan, NO_REPLY)]:
        part = first[first.bucket == label]
        converted = int(part.reached_at.notna().sum())
        rate, low, high = conversion(converted, len(part) - converted)
        rows.append(
            {
                "bucket": label,
                "people": len(part),
                "converted": converted,
                "conversion_rate": rate,
                "ci_low": low,
                "ci_high": high,
            }
        )
    return pd.DataFrame(rows)


def rule_cost_of_waiting(
    con: duckdb.DuckDBPyConnection,
    spec: JourneySpec,
    followups: pd.DataFrame,
    rule: str,
    *,
    table: str = "touchpoints",
    cutoff: datetime | None = None,
) -> pd.DataFrame:
    """:func:`cost_of_waiting` for a spec rule with ``converts_to``: the target is that stage's
    activities within its window (else the spec's window)."""
    found = next((r for r in spec.followups if r.name == rule), None)
    if found is None or found.converts_to is None:
        raise ValueError(f"rule {rule!r} is not in the spec or has no converts_to stage")
    stage = next(s for s in spec.stages if s.name == found.converts_to)
    return cost_of_waiting(
        con,
        followups,
        rule,
        stage.activities,
        stage.window or spec.window,
        table=table,
        cutoff=cutoff,
    )


def read_followups(con: duckdb.DuckDBPyConnection, spec: JourneySpec) -> pd.DataFrame:
    """The stored ``followups`` table, or (none stored yet) the same rows computed now."""
    if table_exists(con, "followups"):
        return con.execute("SELECT * FROM followups").df()
    return compute_followups(con, spec)


def write_cost_of_waiting(
    con: duckdb.DuckDBPyConnection,
    spec: JourneySpec,
    followups: pd.DataFrame,
    *,
    table: str = "touchpoints",
    cutoff: datetime | None = None,
) -> pd.DataFrame:
    """Store ``cost_of_waiting``: :func:`rule_cost_of_waiting` for every rule with
    ``converts_to``, one row per rule and bucket (``bucket_order`` keeps the buckets' order)."""
    frames = [
        rule_cost_of_waiting(con, spec, followups, r.name, table=table, cutoff=cutoff).assign(
            rule=r.name, target=r.converts_to
        )
        for r in spec.followups
        if r.converts_to is not None
    ]
    columns = ["rule", "target", "bucket", "bucket_order", "people", "converted",
               "conversion_rate", "ci_low", "ci_high"]  # fmt: skip
    frame = (
        pd.concat([f.assign(bucket_order=range(len(f))) for f in frames], ignore_index=True)
        if frames
        else pd.DataFrame(columns=columns)
    )
    replace_table(con, "cost_of_waiting", frame[columns])
    return frame[columns]


def write_followups(
    con: duckdb.DuckDBPyConnection,
    spec: JourneySpec,
    *,
    table: str = "touchpoints",
    cutoff: datetime | None = None,
    rows: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Compute and store the ``followups`` table; return it. ``rows``: already computed per
    shard of persons (``scale_people``), stored instead of computing them here."""
    followups = compute_followups(con, spec, table=table, cutoff=cutoff) if rows is None else rows
    replace_table(con, "followups", followups)
    return followups
