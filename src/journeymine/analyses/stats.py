"""Small statistics used by the analyses: Wilson intervals, Kaplan–Meier, Benjamini–Hochberg."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

Z95 = 1.959963984540054


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion (95% by default); (nan, nan) for no trials."""
    if trials <= 0:
        return math.nan, math.nan
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = (
        z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    )
    return max(0.0, centre - half), min(1.0, centre + half)


def kaplan_meier(durations: np.ndarray, observed: np.ndarray) -> pd.DataFrame:
    """Kaplan–Meier estimate of the share *not yet converted* after each event time.

    ``observed`` is True for a conversion at ``duration`` and False for a censored person (still
    open at the cut-off, followed for ``duration``). Returns ``time_s, at_risk, events,
    survival`` and ``converted`` = 1 - survival.
    """
    t = np.asarray(durations, float)
    e = np.asarray(observed, bool)
    times, index, counts = np.unique(t, return_inverse=True, return_counts=True)
    events = np.bincount(index, weights=e, minlength=len(times)).astype(np.int64)
    at_risk = len(t) - np.concatenate(([0], np.cumsum(counts)[:-1]))  # still in before time t
    survival = np.cumprod(1 - events / at_risk)  # a time without events multiplies by 1
    keep = events > 0
    out = pd.DataFrame(
        {
            "time_s": times[keep],
            "at_risk": at_risk[keep].astype(np.int64),
            "events": events[keep],
            "survival": survival[keep],
        }
    )
    out["converted"] = 1 - out.survival
    return out


def benjamini_hochberg(p_values: np.ndarray, alpha: float = 0.05) -> np.ndarray:
    """Which hypotheses are discoveries at false-discovery rate ``alpha``."""
    p = np.asarray(p_values, float)
    order = np.argsort(p)
    ranked = p[order] * len(p) / np.arange(1, len(p) + 1)
    passed = np.zeros(len(p), bool)
    below = np.nonzero(ranked <= alpha)[0]
    if below.size:
        passed[order[: below.max() + 1]] = True
    return passed
