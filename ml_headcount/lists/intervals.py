"""Confidence intervals of a list's quality: Wilson's for a proportion (sensitivity, specificity, and the strict
list's specificity target while learning), a class-stratified percentile bootstrap for balanced accuracy."""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest


def wilson_interval(successes: float, n: int, level: float) -> tuple[float, float]:
    """The Wilson score interval of a proportion `successes / n` at confidence `level` (scipy's); a mean count (over
    fold seeds, say) is rounded to the nearest whole count, which moves the interval by at most half a count."""
    return tuple(float(b) for b in binomtest(round(successes), n).proportion_ci(level, method="wilson"))


def bootstrap_balanced_accuracy(
    sensitivity: float, n_positive: int, specificity: float, n_negative: int, level: float, resamples: int, seed: int
) -> tuple[float, float]:
    """Percentile interval of balanced accuracy over class-stratified resamples of the CVs."""
    rng = np.random.default_rng(seed)
    resampled = (
        rng.binomial(n_positive, sensitivity, resamples) / n_positive
        + rng.binomial(n_negative, specificity, resamples) / n_negative
    ) / 2
    low, high = np.quantile(resampled, [0.5 - level / 2, 0.5 + level / 2])
    return float(low), float(high)
