"""Confidence intervals of a list's quality: Wilson's for a proportion (sensitivity, specificity, and the strict
list's specificity target while learning), a class-stratified percentile bootstrap for balanced accuracy."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np


def wilson_interval(successes: float, n: int, level: float) -> tuple[float, float]:
    """The Wilson score interval of a proportion `successes / n` at confidence `level` (`successes` may be a mean
    count, e.g. over fold seeds)."""
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


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
