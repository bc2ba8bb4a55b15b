"""What a new sample of rated CVs will see: a prediction interval of a list's sensitivity, specificity and balanced
accuracy on `cvs` CVs it never saw.

Three sources of error, simulated together (seeded, so a run's figures are reproducible):

1. the estimate's own noise: the cross-validated rates are a mean over fold seeds of pooled held-out matches of
   n CVs per class (binomial variance p(1 - p) / n), plus the spread between fold seeds over their number;
2. design selection: the learner's design was chosen on the same CVs, which cross-validation cannot see; the
   rates a new CV sees are lower by `design_optimism.sensitivity` / `.specificity`, give or take
   `design_optimism.sd` (settings, per list name; docs/lists.md says where they were measured);
3. the new sample's own binomial noise: `cvs` CVs, split between the classes as the run's CVs are.
"""

from __future__ import annotations

import numpy as np

from ml_headcount.config import DesignOptimism, ListSettings

DRAWS = 20_000


def new_sample_interval(
    sensitivities: list[float],
    specificities: list[float],
    class_cvs: tuple[int, int],
    cvs: int,
    list_settings: ListSettings,
    list_name: str,
) -> dict:
    """The `list_settings.interval` prediction interval of each rate on a new sample of `cvs` rated CVs, from the
    per-fold-seed cross-validated rates of a list (`list_name`: whose design optimism applies) learned from
    `class_cvs` (in the category, outside) CVs."""
    optimism = list_settings.design_optimism.get(list_name, DesignOptimism())
    rng = np.random.default_rng(list_settings.seed)
    n_positive, n_negative = class_cvs
    new_positive = min(max(round(cvs * n_positive / (n_positive + n_negative)), 1), cvs - 1)
    observed = []
    for per_seed, n, offset, new in (
        (sensitivities, n_positive, optimism.sensitivity, new_positive),
        (specificities, n_negative, optimism.specificity, cvs - new_positive),
    ):
        mean = float(np.mean(per_seed))
        between_seeds = float(np.var(per_seed, ddof=1)) / len(per_seed) if len(per_seed) > 1 else 0.0
        sd = np.sqrt(mean * (1 - mean) / n + between_seeds + optimism.sd**2)
        rate = np.clip(rng.normal(mean - offset, sd, DRAWS), 0.0, 1.0)
        observed.append(rng.binomial(new, rate) / new)
    tails = [0.5 - list_settings.interval / 2, 0.5 + list_settings.interval / 2]

    def interval(values: np.ndarray) -> list[float]:
        return [round(float(v), 4) for v in np.quantile(values, tails)]

    return {
        "cvs": cvs,
        "level": list_settings.interval,
        "sensitivity": interval(observed[0]),
        "specificity": interval(observed[1]),
        "balanced_accuracy": interval((observed[0] + observed[1]) / 2),
        "design_optimism": optimism.model_dump(),  # what the estimate's keyword rates move by (new_sample_rates)
        "source": f"cross-validation over {len(sensitivities)} fold seeds (mean, binomial and between-seed noise) "
        f"+ design-selection optimism (sensitivity -{optimism.sensitivity:g}, specificity -{optimism.specificity:g}, "
        f"sd {optimism.sd:g}: {optimism.source or 'none set'}) + binomial noise of {new_positive} + "
        f"{cvs - new_positive} new CVs",
    }
