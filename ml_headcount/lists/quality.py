"""How well keyword lists find a category's CVs: in-sample, and on CVs the lists never saw.

Extraction does not look at labels, so cross-validation needs no model work:
the CVs are split into stratified folds (`folds.stratified_folds`), the lists
are learned on all folds but one by `keyword_filters.learn` (the run's own
code and settings) and matched against the held-out fold, and the held-out
matches of all folds are pooled. A CV's held-out match therefore never depends
on its own label.

Intervals: Wilson score intervals for sensitivity and specificity; for
balanced accuracy a stratified percentile bootstrap (each class resampled
on its own, which for 0/1 outcomes is one binomial draw per class). They treat
the pooled held-out matches as independent, which cross-validation only
approximates.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from ml_headcount.config import FilterSettings, Settings
from ml_headcount.lists.folds import stratified_folds
from ml_headcount.lists.learners import LIST_NAMES, Corpus, Lists, build_corpus, learn, organisation_name_share

INTERVAL_METHOD = "Wilson score (sensitivity, specificity); stratified percentile bootstrap (balanced accuracy)"


@dataclass(frozen=True)
class CrossValidation:
    folds: np.ndarray  # fold of each CV, in the corpus's row order
    heldout_matches: pd.DataFrame  # cv_id, then one int8 0/1 column per "<category>/<list>"
    quality: dict[str, dict[str, dict]]  # category -> list name -> cross-validated figures


def match_column(category: str, name: str) -> str:
    return f"{category}/{name}"


def list_matches(corpus: Corpus, rows: np.ndarray, keywords: list[str]) -> np.ndarray:
    """Whether each CV at `rows` contains any of the keywords (all of them must be in the corpus's vocabulary)."""
    if not keywords:
        return np.zeros(len(rows), dtype=bool)
    columns = np.searchsorted(corpus.vocabulary, keywords)
    return np.asarray((corpus.counts[rows][:, columns] > 0).sum(axis=1)).ravel() > 0


def in_sample_quality(corpus: Corpus, lists: Lists) -> dict[str, dict[str, dict]]:
    """Sensitivity and specificity of each list on the CVs it was learned from (optimistic)."""
    rows = np.arange(len(corpus.cvs))
    labels = corpus.cvs["category"].to_numpy().astype(str)
    result: dict[str, dict[str, dict]] = {}
    for category, by_name in lists.items():
        inside = labels == category
        result[category] = {}
        for name, keywords in by_name.items():
            matched = list_matches(corpus, rows, keywords)
            result[category][name] = {
                "in_sample_sensitivity": round(float(matched[inside].mean()), 4) if inside.any() else None,
                "in_sample_specificity": round(float((~matched[~inside]).mean()), 4) if (~inside).any() else None,
                "matched_cvs": int(matched.sum()),
            }
    return result


def cross_validate(corpus: Corpus, settings: Settings, folds: np.ndarray | None = None) -> CrossValidation:
    """Held-out matches of every list for every CV, and the pooled quality per category and list.

    The folds are the seeded stratified ones of the settings unless given
    (to compare methods on the very same folds).
    """
    labels = corpus.cvs["category"].to_numpy().astype(str)
    if folds is None:
        folds = stratified_folds(corpus.cvs["cv_id"].to_numpy(), labels, settings.filters.folds, settings.filters.seed)
    matches = heldout_matches(corpus, folds, settings)
    quality = {
        c: {name: list_quality(matches[match_column(c, name)].to_numpy() > 0, labels == c, settings.filters) for name in LIST_NAMES}
        for c in sorted(set(labels.tolist()))
    }
    return CrossValidation(folds, matches, quality)


def heldout_matches(corpus: Corpus, folds: np.ndarray, settings: Settings) -> pd.DataFrame:
    """cv_id and, per category and list, whether the CV matches the list learned without its fold (int8 0/1)."""
    labels = corpus.cvs["category"].to_numpy().astype(str)
    matches = {match_column(c, name): np.zeros(len(labels), dtype=np.int8) for c in sorted(set(labels.tolist())) for name in LIST_NAMES}
    for fold in np.unique(folds):
        held = np.flatnonzero(folds == fold)
        for category, by_name in learn(corpus, np.flatnonzero(folds != fold), settings).items():
            for name, keywords in by_name.items():
                matches[match_column(category, name)][held] = list_matches(corpus, held, keywords)
    return pd.DataFrame({"cv_id": corpus.cvs["cv_id"].to_numpy(), **matches})


def keyword_lists_document(corpus: Corpus, lists: Lists, cross_validation: CrossValidation, settings: Settings) -> dict:
    """keyword_lists.json: per category and list, the keywords with in-sample and cross-validated quality."""
    in_sample = in_sample_quality(corpus, lists)
    return {
        category: {
            name: {
                "method": settings.filters.method,
                "keywords": keywords,
                **in_sample[category][name],
                "organisation_name_share": organisation_name_share(corpus, keywords, settings.filters),
                "cross_validated": cross_validation.quality.get(category, {}).get(name),
            }
            for name, keywords in by_name.items()
        }
        for category, by_name in lists.items()
    }


def cross_validated_quality(cvs: pd.DataFrame, keywords: pd.DataFrame, settings: Settings) -> CrossValidation:
    """The whole measurement from a run's `cvs.parquet` and `keywords.parquet` tables."""
    return cross_validate(build_corpus(cvs, keywords, settings.extraction), settings)


def list_quality(matched: np.ndarray, positive: np.ndarray, filters: FilterSettings) -> dict:
    """Pooled held-out sensitivity, specificity and balanced accuracy with their intervals, or why there are none."""
    n_positive, n_negative = int(positive.sum()), int((~positive).sum())
    base = {"folds": filters.folds, "interval": f"{filters.interval:.0%} {INTERVAL_METHOD}", "cvs": [n_positive, n_negative]}
    if min(n_positive, n_negative) < filters.folds:
        return {**base, "note": f"too few CVs for {filters.folds}-fold cross-validation "
                                f"({n_positive} in the category, {n_negative} outside)"}
    found, rejected = int(matched[positive].sum()), int((~matched[~positive]).sum())
    sensitivity, specificity = found / n_positive, rejected / n_negative
    return {
        **base,
        "sensitivity": round(sensitivity, 4),
        "sensitivity_interval": _rounded(wilson_interval(found, n_positive, filters.interval)),
        "specificity": round(specificity, 4),
        "specificity_interval": _rounded(wilson_interval(rejected, n_negative, filters.interval)),
        "balanced_accuracy": round((sensitivity + specificity) / 2, 4),
        "balanced_accuracy_interval": _rounded(bootstrap_balanced_accuracy(
            sensitivity, n_positive, specificity, n_negative, filters.interval, filters.bootstrap_resamples, filters.seed)),
    }


def wilson_interval(successes: int, n: int, level: float) -> tuple[float, float]:
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


def bootstrap_balanced_accuracy(sensitivity: float, n_positive: int, specificity: float, n_negative: int,
                                level: float, resamples: int, seed: int) -> tuple[float, float]:
    """Percentile interval of balanced accuracy over class-stratified resamples of the CVs."""
    rng = np.random.default_rng(seed)
    resampled = (rng.binomial(n_positive, sensitivity, resamples) / n_positive
                 + rng.binomial(n_negative, specificity, resamples) / n_negative) / 2
    low, high = np.quantile(resampled, [0.5 - level / 2, 0.5 + level / 2])
    return float(low), float(high)


def _rounded(interval: tuple[float, float]) -> list[float]:
    return [round(interval[0], 4), round(interval[1], 4)]
