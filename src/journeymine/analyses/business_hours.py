"""Business-hours arithmetic, vectorised: seconds of open time between two instants.

``B(t)`` counts the calendar's open seconds from a fixed origin to ``t``: whole open days
before ``t``'s local date plus the open part of ``t``'s own day. The business time between
``a`` and ``b`` is ``B(b) - B(a)``. Days are taken in the calendar's time zone, so opening
hours stay 09:00–17:00 local on both sides of a daylight-saving change; weekends and holidays
have no open time.
"""

from __future__ import annotations

from datetime import time

import numpy as np
import pandas as pd

from journeymine.spec import Calendar


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def business_clock(calendar: Calendar, instants: pd.Series) -> pd.Series:
    """``B(t)`` in seconds for each instant (timezone-aware)."""
    local = pd.to_datetime(instants, utc=True).dt.tz_convert(calendar.timezone)
    days = local.dt.normalize().dt.tz_localize(None)
    start, end = days.min(), days.max()
    if pd.isna(start):
        return pd.Series(np.nan, index=instants.index)
    span = pd.date_range(start - pd.Timedelta(days=1), end, freq="D")
    opens, closes = _seconds(calendar.opens), _seconds(calendar.closes)
    holidays = {pd.Timestamp(h) for h in calendar.holidays}
    open_day = np.array([d.weekday() in calendar.workdays and d not in holidays for d in span])
    before = pd.Series(
        np.concatenate([[0], np.cumsum(open_day * (closes - opens))[:-1]]), index=span
    )
    second_of_day = local.dt.hour * 3600 + local.dt.minute * 60 + local.dt.second
    today = np.clip(second_of_day + local.dt.microsecond / 1e6 - opens, 0, closes - opens)
    is_open = pd.Series(open_day, index=span).reindex(days).to_numpy()
    return pd.Series(
        before.reindex(days).to_numpy() + np.where(is_open, today, 0), index=instants.index
    )


def business_seconds(calendar: Calendar, start: pd.Series, end: pd.Series) -> pd.Series:
    """Open seconds between ``start`` and ``end`` (NaN where ``end`` is missing)."""
    both = pd.concat([start, end.fillna(start)], ignore_index=True)
    clock = business_clock(calendar, both)
    n = len(start)
    out = clock.iloc[n:].to_numpy() - clock.iloc[:n].to_numpy()
    return pd.Series(np.where(end.isna(), np.nan, out), index=start.index)
