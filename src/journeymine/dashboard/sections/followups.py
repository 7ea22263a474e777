"""Where we keep customers waiting: time to the first reply per follow-up rule against its SLA
and per owner (``followups``), and what the waiting costs (``cost_of_waiting``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import timedelta

import duckdb
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from journeymine.analyses.followups import NO_REPLY, summarise_followups
from journeymine.analyses.followups import cost_of_waiting as analysed_cost
from journeymine.analyses.stats import wilson
from journeymine.dashboard.reading import Data, MissingTable, columns, degrades, exists, query
from journeymine.dashboard.style import WAIT_TICKS_H, duration, label, style
from journeymine.sql import ident

OWNER_STATUSES = [  # (label, colour) of the per-owner bars, best first
    ("within the SLA", "#2a9d8f"),
    ("answered late", "#e9c46a"),
    ("no reply", "#d62828"),
    ("open", "#b8c4cc"),
]
# How the follow-up latency buckets of analyses.followups read on the page.
BUCKET_LABELS = {
    "<1h": "under 1 h",
    "1-4h": "1-4 h",
    "4-24h": "4-24 h",
    "24-48h": "1-2 days",
    ">48h": "over 2 days",
    NO_REPLY: "no reply",
}


# The columns ``summarise_followups`` reads besides the rule and the owner, as they are read:
# the status as an ENUM (a byte a row, not text); a column the table lacks as NULL.
SUMMARISED = {
    "status": "status::ENUM('answered', 'unanswered', 'open')",
    **{c: c for c in ("sla_breached", "latency_s", "business_latency_s", "wait_s")},
}


def _owner_counts(data: Data, top: int, min_triggers: int) -> pd.DataFrame:
    """Per rule and owner (responsible at trigger time): the triggers by outcome, from
    ``summarise_followups`` (its counts and rates, the one definition of them), worst breach
    rate first; the ``top`` of them. Only the triggers with an owner and the columns the
    summary reads leave DuckDB (every column of every trigger was gigabytes at volume)."""
    cols = columns(data, "followups")
    key = "owner_name" if "owner_name" in cols else "owner"
    if key not in cols:
        return pd.DataFrame()
    read = ", ".join(
        f"{expr if name in cols else 'NULL::DOUBLE'} AS {name}" for name, expr in SUMMARISED.items()
    )
    frame = query(
        data,
        "followups",
        f"SELECT rule, {ident(key)}, {read} FROM {{t}} WHERE {ident(key)} IS NOT NULL",
    )
    if frame.empty:
        return pd.DataFrame()
    table = summarise_followups(frame, by=key).rename(columns={key: "owner"})
    table = table[table.triggers >= min_triggers]
    table["within the SLA"] = table.answered - (table.breached - table.unanswered)
    table["answered late"] = table.breached - table.unanswered
    table["no reply"] = table.unanswered
    order = table.sort_values(["breach_rate", "triggers"], ascending=[False, False])
    return order.head(top).reset_index(drop=True)


def _rule_waits(data: Data) -> pd.DataFrame:
    """Per rule: triggers, answered, the p5/p25/p50/p75/p95 answered wait in hours of the SLA's
    unit (``quantile_cont``), breach rate, SLA and unit; rules without an answer left out."""
    cols = columns(data, "followups")
    wait = "wait_s" if "wait_s" in cols else "latency_s"
    unit = "any_value(sla_unit)" if "sla_unit" in cols else "'hours'"
    sla = "max(sla_s)" if "sla_s" in cols else "NULL::DOUBLE"
    rules = query(
        data,
        "followups",
        f"""
        SELECT rule::VARCHAR AS rule, count(*) AS triggers,
               count(*) FILTER (WHERE status = 'answered') AS answered,
               quantile_cont(greatest({wait}, 60) / 3600, [0.05, 0.25, 0.5, 0.75, 0.95])
                   FILTER (WHERE status = 'answered' AND {wait} IS NOT NULL) AS q,
               avg(sla_breached::INT) FILTER (WHERE status <> 'open') AS breach_rate,
               {sla} AS sla_s, {unit} AS unit
        FROM {{t}} GROUP BY 1 ORDER BY 1
        """,
    )
    rules = rules[rules.q.notna()].reset_index(drop=True)
    if rules.empty:
        raise MissingTable("The followups table has no answered triggers yet.")
    return rules


def _rule_boxes(fig: go.Figure, rules: pd.DataFrame, sla_hours: Mapping[str, float] | None) -> bool:
    """Top panel: one box per rule and its SLA mark; whether any rule has an SLA."""
    names = [
        label(r) + (" (business h)" if u == "business hours" else "")
        for r, u in zip(rules.rule, rules.unit, strict=True)
    ]
    q = np.array(rules.q.tolist(), dtype=float)
    fig.add_trace(
        go.Box(
            y=names,
            lowerfence=q[:, 0].tolist(),
            q1=q[:, 1].tolist(),
            median=q[:, 2].tolist(),
            q3=q[:, 3].tolist(),
            upperfence=q[:, 4].tolist(),
            orientation="h",
            name="time to reply",
            marker_color="#264653",
            fillcolor="rgba(42,157,143,0.35)",
            hoverinfo="x",
        ),
        row=1,
        col=1,
    )
    sla_h = [
        (s / 3600 if pd.notna(s) else (sla_hours or {}).get(str(r), math.nan))
        for r, s in zip(rules.rule, rules.sla_s, strict=True)
    ]
    if not any(pd.notna(s) for s in sla_h):
        return False
    fig.add_trace(
        go.Scatter(
            y=names,
            x=sla_h,
            mode="markers",
            name="SLA",
            marker={
                "symbol": "line-ns",
                "size": 34,
                "color": "#d62828",
                "line": {"width": 3, "color": "#d62828"},
            },
            customdata=np.stack(
                [rules.breach_rate.fillna(0).astype(float), rules.answered.astype(float)],
                axis=1,
            ).tolist(),
            hovertemplate="SLA %{x:.1f} h<br>%{customdata[0]:.0%} of decided triggers "
            "breached it<extra></extra>",
        ),
        row=1,
        col=1,
    )
    return True


def _owner_bars(fig: go.Figure, owners: pd.DataFrame) -> None:
    """Bottom panel: every trigger per owner, stacked by outcome."""
    many_rules = owners.rule.nunique() > 1
    who = [
        f"{label(o)} · {label(r)}" if many_rules else label(o)
        for o, r in zip(owners.owner, owners.rule, strict=True)
    ]
    details = np.stack(
        [owners.breach_rate.fillna(0).astype(float), owners.median_wait_h.astype(float)],
        axis=1,
    ).tolist()
    for name, colour in OWNER_STATUSES:
        fig.add_trace(
            go.Bar(
                y=who,
                x=owners[name].astype(float).tolist(),
                orientation="h",
                name=name,
                marker_color=colour,
                customdata=details,
                hovertemplate="%{y}: %{x:,} " + name + "<br>%{customdata[0]:.0%} of "
                "decided triggers later than the SLA · median wait %{customdata[1]:.1f} h "
                "(SLA unit)<extra></extra>",
            ),
            row=2,
            col=1,
        )
    fig.update_layout(barmode="stack")
    fig.update_xaxes(title_text="triggers", row=2, col=1)
    fig.update_yaxes(autorange="reversed", row=2, col=1)


@degrades
def followup_latency(
    data: Data,
    sla_hours: Mapping[str, float] | None = None,
    *,
    top_owners: int = 12,
    min_triggers: int = 5,
) -> go.Figure:
    """How long customers wait for a reply: per rule, the distribution of answered waits in the
    unit the SLA is judged in (``wait_s``: business hours where the rule says so; box: quartiles
    and median, whiskers p5 and p95, ``quantile_cont``) with the rule's SLA (``sla_s``, else
    ``sla_hours``); below, per owner responsible at trigger time, every trigger by outcome
    (within the SLA, late, no reply, open), the worst breach rate first."""
    rules = _rule_waits(data)
    owners = _owner_counts(data, top_owners, min_triggers)
    with_owners = not owners.empty
    fig = make_subplots(
        rows=2 if with_owners else 1,
        cols=1,
        row_heights=[0.45, 0.55] if with_owners else [1.0],
        vertical_spacing=0.3 if len(rules) < 3 else 0.2,
        subplot_titles=(
            "Time to the first reply per rule, in the SLA's unit (box: middle half, "
            "whiskers: 5%–95%)",
            f"Every trigger per owner responsible at the time (owners with ≥{min_triggers})",
        )
        if with_owners
        else ("Time to the first reply per rule (box: middle half, whiskers: 5%–95%)",),
    )
    has_sla = _rule_boxes(fig, rules, sla_hours)
    fig.update_xaxes(
        type="log",
        tickvals=WAIT_TICKS_H,
        ticktext=[duration(t * 3600) for t in WAIT_TICKS_H],
        title_text="time until the first reply (log scale"
        + ("; red mark: the SLA)" if has_sla else ")"),
        row=1,
        col=1,
    )
    fig.update_yaxes(autorange="reversed", row=1, col=1)
    if with_owners:
        _owner_bars(fig, owners)
    height = 160 + 44 * len(rules) + (140 + 30 * len(owners) if with_owners else 0)
    style(fig, "", max(height, 320))
    fig.update_layout(title=None, margin={"t": 40, "l": 220}, showlegend=with_owners)
    return fig


def _cost_frame(
    con: duckdb.DuckDBPyConnection,
    rule: str | None,
    target_activities: Sequence[str],
    window: timedelta,
) -> tuple[pd.DataFrame, str]:
    """The ``cost_of_waiting`` rows of ``rule`` (default: the rule with most people): from the
    stored table, else computed now by the same analysis from ``followups``."""
    if not exists(con, "cost_of_waiting"):
        columns(con, "followups")  # says which table is missing
    if rule is None:
        source = "cost_of_waiting" if exists(con, "cost_of_waiting") else "followups"
        counted = "sum(people)" if source == "cost_of_waiting" else "count(*)"
        row = con.execute(
            f"SELECT rule FROM {source} GROUP BY 1 ORDER BY {counted} DESC, 1 LIMIT 1"
        ).fetchall()
        if not row:
            raise MissingTable(f"The {source} table has no rows yet.")
        rule = str(row[0][0])
    if exists(con, "cost_of_waiting"):
        frame = con.execute(
            "SELECT * FROM cost_of_waiting WHERE rule = ? ORDER BY bucket_order", [rule]
        ).df()
        if len(frame):
            return frame, rule
    if not target_activities:
        raise MissingTable(
            "Say which activities count as converting (a follow-up rule with converts_to)."
        )
    # The analysis reads this rule's triggers and these columns only; the rows keep their order.
    followups = query(
        con,
        "followups",
        "SELECT rule, person_id, status, triggered_at, latency_s FROM {t} WHERE rule = ?",
        [rule],
    )
    return (
        analysed_cost(con, followups, rule, tuple(target_activities), window),
        rule,
    )


def _cost_bar(frame: pd.DataFrame) -> go.Bar:
    """Conversion per latency bucket with its 95% Wilson interval."""
    bounds = [wilson(int(c), int(n)) for c, n in zip(frame.converted, frame.people, strict=True)]
    rate = (frame.converted / frame.people).to_numpy(dtype=float)
    low = np.array([b[0] for b in bounds])
    high = np.array([b[1] for b in bounds])
    names = [BUCKET_LABELS.get(str(b), str(b)) for b in frame.bucket]
    return go.Bar(
        x=[label(b) for b in names],
        y=rate.tolist(),
        marker_color=["#b8c4cc" if b == NO_REPLY else "#2a9d8f" for b in frame.bucket],
        name="conversion",
        error_y={
            "type": "data",
            "symmetric": False,
            "array": (high - rate).tolist(),
            "arrayminus": (rate - low).tolist(),
            "color": "#444",
        },
        customdata=np.stack(
            [frame.converted.astype(float), frame.people.astype(float), low, high], axis=1
        ).tolist(),
        hovertemplate="waited %{x}: %{y:.1%} converted<br>%{customdata[0]:,} of "
        "%{customdata[1]:,} people (95% interval %{customdata[2]:.1%}–%{customdata[3]:.1%})"
        "<extra></extra>",
    )


@degrades
def cost_of_waiting(
    data: Data,
    *,
    target_activities: Sequence[str] = (),
    rule: str | None = None,
    window: timedelta = timedelta(days=30),
    target: str | None = None,
) -> go.Figure:
    """Conversion by follow-up latency bucket, with 95% Wilson intervals, as defined by
    ``analyses.followups.cost_of_waiting`` (docs/metrics.md): from the stored
    ``cost_of_waiting`` table, else computed by that function for ``rule`` and
    ``target_activities``; or from a frame with ``bucket, people, converted``."""
    if isinstance(data, pd.DataFrame):
        frame = data.copy()
    else:
        frame, rule = _cost_frame(data, rule, target_activities, window)
        if target is None and "target" in frame.columns and len(frame):
            target = str(frame.target.iloc[0])
    frame = frame[frame.people > 0]
    if frame.empty:
        raise MissingTable("No decided follow-ups yet to compare conversion by waiting time.")
    goal = label(target or " or ".join(target_activities) or "the next stage")
    fig = go.Figure(_cost_bar(frame))
    fig.update_yaxes(tickformat=".0%", range=[0, 1], title=f"reached {goal}")
    fig.update_xaxes(
        title="time until the first reply, wall clock" + (f" ({label(rule)})" if rule else "")
    )
    style(fig, "", 380)
    fig.update_layout(title=None, margin={"t": 30})
    return fig
