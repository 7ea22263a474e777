"""Small statistics used by the analyses: Wilson intervals, Kaplan–Meier, Benjamini–Hochberg,
the two-proportion test."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as sps

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


def two_proportion_p(k1: np.ndarray | int, n1: int, k2: np.ndarray | int, n2: int) -> np.ndarray:
    """Two-sided p-values of pooled z-tests that ``k1/n1`` and ``k2/n2`` are equal
    (vectorised over ``k1``, ``k2``); 1.0 where both shares are 0 or both are 1 (no variation
    to test); NaN when a group is empty."""
    k1, k2 = np.asarray(k1, float), np.asarray(k2, float)
    if min(n1, n2) == 0:
        return np.full(np.broadcast(k1, k2).shape, np.nan)
    pooled = (k1 + k2) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.abs(k1 / n1 - k2 / n2) / se
    return np.where(se > 0, 2 * sps.norm.sf(z), 1.0)
