"""The statistics of a study, pure functions on plain numbers (no I/O).

* :func:`mean_ci`: the mean and its two-sided Student t confidence interval (95 % by default).
* :func:`paired_outcome`: a method against a baseline on the same cases, one metric: the mean paired
  difference, its t-interval and the verdict. A **win** needs the mean paired difference to be at least
  ``margin`` (1 %) of the baseline's mean *and* its confidence interval to lie entirely on the better side of
  zero; a **loss** is the mirror image; anything else is a **tie**. For a lower-is-better metric "better"
  means smaller. Fewer than two pairs give no interval, hence a tie.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
MARGIN = 0.01  # a win needs a mean paired difference of at least 1 % of the baseline's mean
CI_METHOD = "Student t-interval, two-sided 95 %"


def mean_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(mean, low, high): the t-interval ``mean -/+ t_{(1+c)/2, n-1} s / sqrt(n)``; NaN bounds when n < 2."""
    from scipy.stats import t

    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan
    half = float(t.ppf((1 + confidence) / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return mean, mean - half, mean + half


@dataclass(frozen=True)
class PairedResult:
    """One metric, one method against the baseline: mean paired difference (method - baseline), CI, verdict."""

    n: int
    difference: float
    ci_low: float
    ci_high: float
    outcome: str  # "win", "tie" or "loss"


def paired_outcome(
    values: Sequence[float],
    baseline: Sequence[float],
    direction: str = "higher",
    margin: float = MARGIN,
    confidence: float = CONFIDENCE,
) -> PairedResult:
    """Compare paired ``values`` with ``baseline`` (same cases, same order) for a metric where ``direction``
    (``"higher"`` or ``"lower"``) is better."""
    if direction not in ("higher", "lower"):
        raise ValueError(f"direction must be 'higher' or 'lower', not {direction!r}")
    a, b = np.asarray(values, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same length, got {a.size} and {b.size}")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    diff, low, high = mean_ci(a - b, confidence)
    threshold = margin * abs(float(b.mean())) if b.size else math.nan
    sign = 1.0 if direction == "higher" else -1.0
    outcome = "tie"
    if a.size >= 2 and np.isfinite(low):
        better_low, better_high = sorted((sign * low, sign * high))
        if sign * diff >= threshold and better_low > 0:
            outcome = "win"
        elif sign * diff <= -threshold and better_high < 0:
            outcome = "loss"
    return PairedResult(int(a.size), diff, low, high, outcome)
