"""The funnel section: the stage funnel carries the table; the time-to-convert curve is the
Kaplan–Meier estimate computed by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from journeymine.analyses.funnel import time_to_convert_curve, write_stage_funnel
from journeymine.analyses.journey_grid import compute_journey_grid
from journeymine.dashboard.sections import drift, funnel
from journeymine.dashboard.style import label
from journeymine.mining.eventlog import log_from_touchpoints
from journeymine.spec import JourneySpec, Stage
from tests.dashboard.conftest import IMG, SCRIPT


def test_stage_funnel_carries_the_table(con: duckdb.DuckDBPyConnection) -> None:
    table = con.execute(
        "SELECT * FROM stage_funnel WHERE segment = 'all' ORDER BY entered DESC, converted DESC"
    ).df()
    fig = funnel.stage_funnel(con)
    bars = {t.name: list(t.x) for t in fig.data if t.type == "bar"}
    assert set(bars) == {"converted", "dropped", "open", "reached the last stage"}
    for status in ("converted", "dropped", "open"):
        assert bars[status] == table[status].astype(float).tolist()
    assert list(fig.data[0].y) == ["signed up", label(f"demo {IMG}"), "paid"]
    rates = next(t for t in fig.data if t.type == "scatter")
    assert rates.x[:2] == pytest.approx(table.conversion_rate[:2].tolist())
    assert rates.error_x.array[:2] == pytest.approx(
        (table.conversion_ci_high - table.conversion_rate)[:2].tolist()
    )
    assert rates.error_x.arrayminus[:2] == pytest.approx(
        (table.conversion_rate - table.conversion_ci_low)[:2].tolist()
    )


def test_stage_funnel_segments_side_by_side(con: duckdb.DuckDBPyConnection) -> None:
    segment = f"utm_source={SCRIPT}"
    fig = funnel.stage_funnel(con, segments=["all", segment])
    stages, segments = fig.data[0].y
    assert list(segments) == ["all", label(segment)] * 3
    assert SCRIPT not in fig.to_json()
    # A frame works as well as the warehouse.
    frame = con.execute("SELECT * FROM stage_funnel").df()
    assert funnel.stage_funnel(frame).data[0].x == fig.data[0].x[::2]


def _entries(
    rows: list[tuple[str, int, str, float | None, float | None, float]],
) -> duckdb.DuckDBPyConnection:
    """A ``stage_entries`` table: (stage, pos, status, entered hours before the cut-off, hours
    to convert, window hours)."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE stage_entries (stage VARCHAR, pos INT, status VARCHAR, "
        "entered_at TIMESTAMPTZ, converted_at TIMESTAMPTZ, time_to_convert_s DOUBLE, "
        "window_s DOUBLE)"
    )
    for stage, pos, status, before_h, convert_h, window_h in rows:
        entered = CUTOFF - timedelta(hours=before_h or 0)
        converted = None if convert_h is None else entered + timedelta(hours=convert_h)
        seconds = None if convert_h is None else convert_h * 3600
        con.execute(
            "INSERT INTO stage_entries VALUES (?, ?, ?, ?, ?, ?, ?)",
            [stage, pos, status, entered, converted, seconds, window_h * 3600],
        )
    return con


CUTOFF = datetime(2026, 3, 1, tzinfo=UTC)
VISIT = f"visit {SCRIPT}"


def test_time_to_convert_is_the_kaplan_meier_curve_by_hand() -> None:
    con = _entries([
        (VISIT, 0, "converted", 50, 1, 10),
        (VISIT, 0, "converted", 50, 3, 10),
        (VISIT, 0, "converted", 50, 3, 10),
        (VISIT, 0, "open", 2, None, 10),  # still open: followed 2 h, censored there
        (VISIT, 0, "dropped", 50, None, 10),  # dropped: followed its whole 10 h window
        (VISIT, 0, "excluded", 50, None, 10),  # left out
        ("signup", 1, "converted", 40, 0.25, 24),
        ("signup", 1, "open", 5, None, 24),
        ("paid", 2, "open", 3, None, 48),  # nobody converted out of it: no curve
    ])  # fmt: skip
    fig = funnel.time_to_convert(con, cutoff=CUTOFF)
    assert [t.name for t in fig.data] == [f"1. {label(VISIT)}", "2. signup"]
    visit, signup = fig.data
    # By hand: at 1 h, 1 of 5 at risk converts (S = 4/5); the open person leaves the risk set
    # at 2 h; at 3 h, 2 of the 3 left convert (S = 4/5 * 1/3); held flat to the 10 h window.
    assert list(visit.x) == pytest.approx([1, 1, 3, 10])
    assert list(visit.y) == pytest.approx([0, 1 / 5, 1 - 4 / 15, 1 - 4 / 15])
    assert [c[1] for c in visit.customdata] == [5, 5, 3, 1]
    assert visit.line.shape == "hv"
    # 1 of 2 converts at 15 min; nobody dropped, so the curve ends at that conversion.
    assert list(signup.x) == pytest.approx([0.25, 0.25, 0.25])
    assert list(signup.y) == pytest.approx([0, 0.5, 0.5])
    assert SCRIPT not in fig.to_json()


def test_time_to_convert_censors_open_people_at_the_cut_off() -> None:
    rows = [("visit", 0, "converted", 50, 4, 10), ("visit", 0, "open", 6, None, 10)]
    # Cut-off as given: the open person was followed 6 h, past the conversion at 4 h: 1 - 1/2.
    assert funnel.time_to_convert(_entries(rows), cutoff=CUTOFF).data[0].y[1] == 0.5
    # A cut-off 3 h earlier: followed only 3 h, gone before 4 h; the one left converts.
    earlier = CUTOFF - timedelta(hours=3)
    assert funnel.time_to_convert(_entries(rows), cutoff=earlier).data[0].y[1] == 1.0


def test_a_long_curve_is_drawn_with_true_points_only() -> None:
    # 2,000 people converting at distinct times, nobody censored: by hand, the share converted
    # after the k-th conversion is k / 2000. Minutes 1..2000 span three decades of the axis.
    n = 2000
    con = _entries([("visit", 0, "converted", 5000, k / 60, 5000 / 60) for k in range(1, n + 1)])
    (curve,) = funnel.time_to_convert(con, cutoff=CUTOFF).data
    steps = list(zip(curve.x[1:-1], curve.y[1:-1], strict=True))
    assert len(steps) <= funnel.MAX_STEPS
    assert steps[0] == pytest.approx((1 / 60, 1 / n)) and steps[-1] == pytest.approx((n / 60, 1.0))
    for hours, share in steps:
        assert share == pytest.approx(round(hours * 60) / n)
    assert list(curve.x) == sorted(curve.x)


def _random_entries(seed: int, n: int) -> duckdb.DuckDBPyConnection:
    """Entries of three stages (one nobody converts out of), every status, times to the
    microsecond, some conversions after the last entry (the fallback cut-off is theirs)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        pos = int(rng.integers(0, 3))
        status = str(rng.choice(["converted", "dropped", "open", "excluded"]))
        status = "open" if pos == 2 and status == "converted" else status
        before_h = float(rng.uniform(0.001, 500))
        convert_h = float(rng.exponential(30)) if status == "converted" else None
        rows.append((["visit", "signup", "paid"][pos], pos, status, before_h, convert_h, 72.0))
    return _entries(rows)


def _curves_from_the_whole_table(con: duckdb.DuckDBPyConnection) -> list[go.Scatter]:
    """The figure's traces as the dashboard drew them before: every entry read at once,
    ``time_to_convert_curve`` on the whole frame with no cut-off (its own fallback)."""
    entries = con.execute(f"SELECT {OLD_COLUMNS} FROM stage_entries").df()
    stages = entries[entries.status == "converted"].groupby("stage").pos.min().sort_values()
    traces = []
    for stage, position in stages.items():
        curve = time_to_convert_curve(entries, str(stage), None)
        dropped = entries[(entries.stage == stage) & (entries.status == "dropped")]
        last = float(np.nan_to_num(dropped.window_s.max()))
        traces.append(funnel._curve_trace(curve, last, str(stage), int(position)))
    return traces


OLD_COLUMNS = "stage, pos, status, entered_at, converted_at, time_to_convert_s, window_s"


@pytest.mark.parametrize(("seed", "n"), [(3, 60), (4, 3000)])
def test_time_to_convert_by_stage_equals_the_curve_of_the_whole_table(seed: int, n: int) -> None:
    con = _random_entries(seed, n)
    expected = _curves_from_the_whole_table(con)
    fig = funnel.time_to_convert(con)  # no headlines: the cut-off is the latest time
    assert [t.name for t in fig.data] == ["1. visit", "2. signup"] == [t.name for t in expected]
    for got, want in zip(fig.data, expected, strict=True):
        assert got.x == want.x and got.y == want.y  # to the bit
        assert [list(c) for c in got.customdata] == [list(c) for c in want.customdata]


def test_a_lifecycle_ends_before_its_outcome_stage(touchpoints) -> None:  # type: ignore[no-untyped-def]
    """visit -> demo -> churned: of 6 visitors, 4 ask for a demo and 3 of them cancel. Reaching
    churned is where a lifecycle ends, not a conversion: the funnel draws demo as the journey's
    last stage (4 reached it), no rate and no time-to-convert curve out of it, no churned row;
    the grid gives demo no drop-off, "What changed" no row. The stored funnel keeps every count
    as it is."""
    rows = [(p, "web.page_view:/", "customer", f"2026-03-01 0{p}:00+00") for p in range(1, 7)]
    rows += [(p, "web.demo_requested", "customer", f"2026-03-01 1{p}:00+00") for p in range(1, 5)]
    rows += [
        (p, "billing.subscription_canceled", "customer", "2026-03-02 10:00+00") for p in (1, 2, 3)
    ]
    rows += [(9, "web.page_view:/", "customer", "2026-03-20 10:00+00")]  # the cut-off
    con = touchpoints(rows)
    spec = JourneySpec(
        name="lifecycle",
        window=timedelta(days=3),
        stages=(
            Stage("visit", ("web.page_view:*",)),
            Stage("demo", ("web.demo_requested",)),
            Stage("churned", ("billing.subscription_canceled",)),
        ),
    )
    write_stage_funnel(con, spec, log_from_touchpoints(con))
    stored = con.execute(
        "SELECT stage, entered, converted, dropped, outcome FROM stage_funnel "
        "WHERE segment = 'all' ORDER BY position"
    ).fetchall()
    assert stored == [
        ("visit", 7, 4, 2, False),
        ("demo", 4, 3, 1, False),
        ("churned", 3, 0, 0, True),
    ]
    fig = funnel.stage_funnel(con)
    bars = {t.name: list(t.x) for t in fig.data if t.type == "bar"}
    assert list(fig.data[0].y) == ["visit", "demo"]
    assert bars["converted"] == [4.0, 0.0] and bars["reached the last stage"] == [0.0, 4.0]
    rates = next(t for t in fig.data if t.type == "scatter")
    assert rates.x[0] == pytest.approx(4 / 6) and np.isnan(rates.x[1])
    curves = [t.name for t in funnel.time_to_convert(con).data]
    assert len(curves) == 1 and "visit" in curves[0]
    grid = compute_journey_grid(con, spec).drop_duplicates("stage").set_index("stage")
    assert grid.loc["visit", "stage_drop_off_rate"] == pytest.approx(2 / 6)
    assert pd.isna(grid.loc["demo", "stage_drop_off_rate"])
    # "What changed" lists conversion per stage: not demo's, which is the cancellation rate
    con.execute(
        "CREATE TABLE drift_stages AS SELECT * FROM (VALUES ('visit', 0.5, 0.6, 10, 12, 0.4), "
        "('demo', 0.7, 0.9, 10, 10, 0.2)) v(stage, rate_before, rate_after, decided_before, "
        "decided_after, p_value)"
    )
    assert list(drift.drift_table(con).data[0].cells.values[0]) == ["visit"]
