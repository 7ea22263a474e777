"""Alerts: thresholds on the journey's figures, checked after every analysis run.

Declared in the journey spec as an array of tables::

    [[alerts]]
    name = "demo-conversion"     # letters, digits, ``_ . -``; names the Prefect event resource
    metric = "conversion"        # conversion | breach_rate | median_wait | a headline key
    stage = "demo_held"          # conversion: the stage; breach_rate / median_wait: ``rule``
    below = 0.4                  # or ``above``: one bound at most
    change = "significant"       # and/or: fire on a significant change
    severity = "critical"        # info | warning (default) | critical

What each metric reads (the analyses' tables; never a copy of their definitions):

* ``conversion`` of a ``stage``: ``stage_funnel`` (segment ``all``) ``conversion_rate``. Its
  change is the drift test of ``drift_stages``: the last 30 days before the cut-off against the
  30 days before them, two-proportion test, significant when p < 0.05 (either direction);
  ``previous`` is the earlier period's rate.
* ``breach_rate`` / ``median_wait`` of a follow-up ``rule``: the headline figures
  ``breach_rate:<rule>`` / ``median_wait:<rule>``, read from ``analyses.headlines`` (share of
  decided triggers that breached the SLA; median wait of answered triggers in hours, business
  hours for business-hours rules). ``breach_rate`` without a rule is the headline over all rules.
* any other headline key (``persons``, ``reached_last_stage``...): ``headlines``.

For every metric but conversion, ``change = "significant"`` compares with the previous run's
figure (``run_history``) and fires when it moved by more than ``tolerance`` (relative, default
0.1): a threshold, not a statistical test, because the history keeps figures, not counts.

An alert that cannot be evaluated (its table is missing, its stage or rule has no figure yet)
gives a row with ``evaluated = false`` and a message saying why; it never stops the run.
"""

from __future__ import annotations

import math
import re
import tomllib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from journeymine.analyses.headlines import format_value, previous_figures, read_headlines
from journeymine.errors import SpecError
from journeymine.warehouse import table_exists

ALERT_KEYS = {
    "name",
    "metric",
    "stage",
    "rule",
    "below",
    "above",
    "change",
    "tolerance",
    "severity",
}
SEVERITIES = ("info", "warning", "critical")
RULE_METRICS = ("breach_rate", "median_wait")
HEADLINE_KEYS = ("persons", "journeys_started", "reached_last_stage", "breach_rate")
ALPHA = 0.05  # the drift test's level, as the dashboard's drift section uses
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
EVENT = "journeymine.alert.fired"
COLUMNS = [
    "name", "metric", "stage_or_rule", "value", "bound", "previous", "fired", "severity",
    "message", "evaluated",
]  # fmt: skip
TABLE = (
    "CREATE TABLE IF NOT EXISTS alerts (run_id VARCHAR, evaluated_at TIMESTAMPTZ, name VARCHAR, "
    "metric VARCHAR, stage_or_rule VARCHAR, value DOUBLE, bound DOUBLE, previous DOUBLE, "
    "fired BOOLEAN, severity VARCHAR, message VARCHAR, evaluated BOOLEAN)"
)
# Tonight's alerts: the rows of the latest evaluation (the table keeps every night's).
LATEST = (
    "CREATE OR REPLACE VIEW latest_alerts AS SELECT * FROM alerts "
    "WHERE run_id = (SELECT arg_max(run_id, evaluated_at) FROM alerts)"
)


@dataclass(frozen=True)
class Alert:
    name: str
    metric: str
    target: str | None = None  # the stage (conversion) or follow-up rule
    below: float | None = None
    above: float | None = None
    change: bool = False
    tolerance: float = 0.1
    severity: str = "warning"


@dataclass
class Reading:
    """What the warehouse says about one alert's metric."""

    value: float | None = None
    unit: str = "share"
    label: str = ""
    previous: float | None = None
    changed: bool | None = None  # None: the change could not be judged
    change_note: str = ""
    problem: str | None = None  # why the value cannot be read


# -- the spec ------------------------------------------------------------------------------


def load_alerts(journey_path: str | Path) -> list[Alert]:
    """The ``[[alerts]]`` of a journey spec (none: an empty list); errors name file and key."""
    path = Path(journey_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SpecError(f"{path}: cannot read the journey spec: {exc}") from None
    tables = raw.get("alerts", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise SpecError(f"{path}: alerts: expected an array of tables ([[alerts]])")
    known = _declared(raw)
    alerts = [_alert(t, f"{path}: alerts[{i}]", known) for i, t in enumerate(tables)]
    names = [a.name for a in alerts]
    if len(set(names)) != len(names):
        raise SpecError(f"{path}: alerts: names repeat: {names}")
    return alerts


def _declared(raw: dict[str, Any]) -> dict[str, list[str]]:
    """Stage and rule names the spec declares (to catch a misspelt ``stage`` or ``rule``)."""
    out: dict[str, list[str]] = {}
    for key, field in (("stages", "stage"), ("followups", "rule")):
        tables = raw.get(key)
        if isinstance(tables, list):
            out[field] = [str(t.get("name")) for t in tables if isinstance(t, dict)]
    return out


def _alert(table: dict[str, Any], where: str, known: dict[str, list[str]]) -> Alert:
    unknown = sorted(set(table) - ALERT_KEYS)
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(ALERT_KEYS)}")
    name = table.get("name")
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise SpecError(f"{where}.name: {name!r}; use letters, digits, '_', '.', '-' (max 64)")
    metric = table.get("metric")
    if not isinstance(metric, str):
        raise SpecError(f"{where}.metric: missing or not text: {metric!r}")
    target = _target(table, metric, where, known)
    below, above = (_number(table.get(k), f"{where}.{k}") for k in ("below", "above"))
    if below is not None and above is not None:
        raise SpecError(f"{where}: give one of below / above; declare two alerts for a range")
    change = table.get("change")
    if change not in (None, "significant"):
        raise SpecError(f'{where}.change: {change!r}; the only kind is "significant"')
    if below is None and above is None and change is None:
        raise SpecError(f'{where}: no condition; add below, above or change = "significant"')
    tolerance = _number(table.get("tolerance", 0.1), f"{where}.tolerance")
    if tolerance is None or tolerance <= 0:
        raise SpecError(f"{where}.tolerance: must be a positive relative change, e.g. 0.1")
    severity = table.get("severity", "warning")
    if severity not in SEVERITIES:
        raise SpecError(f"{where}.severity: {severity!r}; use one of {list(SEVERITIES)}")
    return Alert(name, metric, target, below, above, change is not None, tolerance, severity)


def _target(
    table: dict[str, Any], metric: str, where: str, known: dict[str, list[str]]
) -> str | None:
    """The stage or rule an alert is about, checked against the metric and the spec."""
    stage, rule = table.get("stage"), table.get("rule")
    if metric == "conversion":
        field, value, other = "stage", stage, "rule"
    elif metric in RULE_METRICS and (rule is not None or metric == "median_wait"):
        field, value, other = "rule", rule, "stage"
    elif metric in HEADLINE_KEYS or metric.startswith(tuple(f"{m}:" for m in RULE_METRICS)):
        if stage is not None or rule is not None:
            raise SpecError(f"{where}: metric {metric!r} takes no stage or rule")
        return None
    else:
        allowed = ["conversion", *RULE_METRICS, *HEADLINE_KEYS, "median_wait:<rule>"]
        raise SpecError(f"{where}.metric: {metric!r}; use one of {allowed}")
    if table.get(other) is not None:
        raise SpecError(f"{where}.{other}: metric {metric!r} takes a {field}, not a {other}")
    if not isinstance(value, str) or not value:
        raise SpecError(f"{where}.{field}: metric {metric!r} needs the {field} it is about")
    names = known.get(field)
    if names is not None and value not in names:
        raise SpecError(f"{where}.{field}: no {field} {value!r}; the spec declares {names}")
    return value


def _number(value: object, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise SpecError(f"{where}: expected a number, got {value!r}")
    return float(value)


# -- evaluation ----------------------------------------------------------------------------


def evaluate_alerts(con: duckdb.DuckDBPyConnection, alerts: list[Alert]) -> pd.DataFrame:
    """One row per alert: its value, bound, previous value, whether it fired, and why."""
    rows = [_evaluate(a, _read(con, a)) for a in alerts]
    return pd.DataFrame(rows, columns=COLUMNS)


def _read(con: duckdb.DuckDBPyConnection, alert: Alert) -> Reading:
    if alert.metric == "conversion":
        return _conversion(con, alert)
    if alert.target is not None:
        return _rule_metric(con, alert)
    return _headline(con, alert)


def _missing(table: str) -> str:
    return f"the warehouse has no {table} table (run `journeymine report` to compute it)"


def _conversion(con: duckdb.DuckDBPyConnection, alert: Alert) -> Reading:
    reading = Reading(label=f"Conversion at stage {alert.target}")
    if not table_exists(con, "stage_funnel"):
        reading.problem = _missing("stage_funnel")
        return reading
    rows = con.execute(
        "SELECT conversion_rate FROM stage_funnel WHERE segment = 'all' AND stage = ?",
        [alert.target],
    ).fetchall()
    if not rows:
        reading.problem = f"stage_funnel has no stage {alert.target!r}"
        return reading
    value = rows[0][0]
    if value is None or math.isnan(value):
        reading.problem = f"no one has converted or dropped out at stage {alert.target} yet"
        return reading
    reading.value = float(value)
    if alert.change:
        _drift(con, alert, reading)
    return reading


def _drift(con: duckdb.DuckDBPyConnection, alert: Alert, reading: Reading) -> None:
    """The change of a stage's conversion: the drift test of the last two 30-day periods."""
    if not table_exists(con, "drift_stages"):
        reading.change_note = _missing("drift_stages")
        return
    rows = con.execute(
        "SELECT rate_before, rate_after, p_value FROM drift_stages WHERE stage = ?", [alert.target]
    ).fetchall()
    before, after, p = rows[0] if rows else (None, None, None)
    if any(v is None or math.isnan(v) for v in (before, after, p)):
        reading.change_note = "too few people decided in one of the last two 30-day periods"
        return
    reading.previous, reading.changed = float(before), float(p) < ALPHA
    reading.change_note = (
        f"{after:.1%} in the last 30 days against {before:.1%} in the 30 days before "
        f"(two-proportion test p = {p:.3f})"
    )


def _rule_metric(con: duckdb.DuckDBPyConnection, alert: Alert) -> Reading:
    """A follow-up rule's breach rate or median wait: its headline figure (one definition,
    ``analyses.headlines``)."""
    rule = alert.target
    if alert.metric == "breach_rate":
        reading = Reading(label=f"The share of {rule} triggers answered later than the SLA")
    else:  # hours, or business hours for a business-hours rule
        reading = Reading(label=f"The median wait for a reply to {rule}")
    if not table_exists(con, "followups"):
        reading.problem = _missing("followups")
        return reading
    key = f"{alert.metric}:{rule}"
    figures = read_headlines(con).set_index("key")
    if key not in figures.index:
        which = "decided" if alert.metric == "breach_rate" else "answered"
        reading.problem = f"follow-up rule {rule} has no {which} trigger yet"
        return reading
    reading.value, reading.unit = float(figures.loc[key, "value"]), str(figures.loc[key, "unit"])
    _since_last_run(con, alert, key, reading)
    return reading


def _headline(con: duckdb.DuckDBPyConnection, alert: Alert) -> Reading:
    figures = read_headlines(con).set_index("key")
    reading = Reading(label=f"Headline {alert.metric}")
    if alert.metric not in figures.index:
        reading.problem = f"no headline figure {alert.metric!r} (its analysis table is missing)"
        return reading
    row = figures.loc[alert.metric]
    reading.value, reading.unit = float(row["value"]), str(row["unit"])
    reading.label = str(row["label"]).capitalize()
    _since_last_run(con, alert, alert.metric, reading)
    return reading


def _since_last_run(
    con: duckdb.DuckDBPyConnection, alert: Alert, key: str, reading: Reading
) -> None:
    """Change against the previous run's figure, judged by the alert's relative tolerance."""
    if not alert.change or reading.value is None:
        return
    before = previous_figures(con).get(key)
    if before is None:
        reading.change_note = "no previous run to compare with"
        return
    reading.previous = before
    moved = abs(reading.value - before)
    reading.changed = moved > alert.tolerance * abs(before) if before else moved > 0
    reading.change_note = (
        f"{format_value(before, reading.unit)} at the previous run "
        f"(tolerance {alert.tolerance:.0%} of it)"
    )


def _evaluate(alert: Alert, reading: Reading) -> dict[str, object]:
    bound = alert.below if alert.below is not None else alert.above
    row: dict[str, object] = {
        "name": alert.name, "metric": alert.metric, "stage_or_rule": alert.target,
        "value": reading.value, "bound": bound, "previous": reading.previous, "fired": False,
        "severity": alert.severity, "evaluated": False,
    }  # fmt: skip
    if reading.problem is None and bound is None and reading.changed is None:
        reading.problem = f"the change cannot be judged: {reading.change_note}"
    if reading.problem is not None or reading.value is None:
        row["message"] = f"Cannot evaluate alert {alert.name}: {reading.problem}."
        return row
    value = reading.value
    crossed = (alert.below is not None and value < alert.below) or (
        alert.above is not None and value > alert.above
    )
    row["fired"], row["evaluated"] = crossed or reading.changed is True, True
    row["message"] = _message(alert, reading, crossed)
    return row


def _message(alert: Alert, reading: Reading, crossed: bool) -> str:
    show = format_value(reading.value or 0.0, reading.unit)
    text = f"{reading.label} is {show}"
    if alert.below is not None or alert.above is not None:
        side, bound = ("below", alert.below) if alert.below is not None else ("above", alert.above)
        limit = format_value(bound or 0.0, reading.unit)
        text += f", {side} the bound of {limit}" if crossed else f", not {side} {limit}"
    if alert.change and reading.changed is not None:
        verdict = "a significant change" if reading.changed else "no significant change"
        text += f"; {verdict}: {reading.change_note}"
    elif alert.change:
        text += f"; the change cannot be judged: {reading.change_note}"
    return text + "."


# -- storage and events --------------------------------------------------------------------


def write_alerts(
    con: duckdb.DuckDBPyConnection,
    alerts: pd.DataFrame,
    run_id: str | None = None,
    at: datetime | None = None,
) -> None:
    """Append tonight's evaluation to ``alerts`` (every night's is kept); ``latest_alerts``
    shows the latest evaluation's rows."""
    con.execute(TABLE)
    name = f"jm_alerts_{uuid.uuid4().hex[:8]}"
    con.register(name, alerts[COLUMNS])
    try:
        con.execute(
            f"INSERT INTO alerts SELECT ?, ?, {', '.join(COLUMNS)} FROM {name}",
            [run_id or uuid.uuid4().hex[:12], at or datetime.now(UTC)],
        )
    finally:
        con.unregister(name)
    con.execute(LATEST)


def alert_event(row: dict[str, Any]) -> dict[str, Any]:
    """The Prefect event of one fired alert (keyword arguments of ``emit_event``)."""

    def plain(value: object) -> float | None:
        return None if value is None or pd.isna(value) else float(value)  # type: ignore[arg-type]

    return {
        "event": EVENT,
        "resource": {
            "prefect.resource.id": f"journeymine.alert.{row['name']}",
            "prefect.resource.name": str(row["name"]),
        },
        "payload": {
            "metric": row["metric"],
            "stage_or_rule": row["stage_or_rule"],
            "value": plain(row["value"]),
            "bound": plain(row["bound"]),
            "previous": plain(row["previous"]),
            "severity": row["severity"],
            "message": row["message"],
        },
    }
