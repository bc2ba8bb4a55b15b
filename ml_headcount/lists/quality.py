"""How well keyword lists find a category's CVs: in-sample, and on CVs the lists never saw.

Extraction does not look at labels, so cross-validation needs no model work:
the CVs are split into stratified folds (`folds.stratified_folds`), the lists
are learned on all folds but one by `learners.learn` (the run's own
code and settings) and matched against the held-out fold, and the held-out
matches of all folds are pooled. A CV's held-out match therefore never depends
on its own label. Every list is matched twice: by the product's matcher and
by phrase search of its query (`search_queries.list_query`, the matcher of a
search tool); the whole cross-validation is repeated over `lists.cv_repeats`
fold seeds, and each keyword's stability is the share of the fold lists that
chose it.

Intervals: Wilson score intervals for sensitivity and specificity; for
balanced accuracy a stratified percentile bootstrap (each class resampled
on its own, which for 0/1 outcomes is one binomial draw per class). They treat
the pooled held-out matches as independent, which cross-validation only
approximates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from ml_headcount.config import ListSettings, ScoringSettings
from ml_headcount.errors import InputError
from ml_headcount.lists import text_classifier
from ml_headcount.lists.eligibility import organisation_name_share
from ml_headcount.lists.evidence import Corpus
from ml_headcount.lists.folds import stratified_folds
from ml_headcount.lists.intervals import bootstrap_balanced_accuracy, wilson_interval
from ml_headcount.lists.learners import LIST_NAMES, Lists, learn
from ml_headcount.lists.new_sample import new_sample_interval
from ml_headcount.lists.queries import list_query
from ml_headcount.scoring.keyword_list import list_column
from ml_headcount.scoring.matching import exclusions_of
from ml_headcount.scoring.phrase_matching import PhraseMatcher

INTERVAL_METHOD = "Wilson score (sensitivity, specificity); stratified percentile bootstrap (balanced accuracy)"


MATCHERS = ("product", "phrase")


@dataclass(frozen=True)
class CrossValidation:
    """What cross-validating a corpus's lists found: held-out matches, pooled quality, spread over seeds, stability."""

    folds: np.ndarray  # fold of each CV, in the corpus's row order (the first fold seed's)
    heldout_matches: pd.DataFrame  # cv_id, then one int8 0/1 column per "<category>/<list>" and per "...@phrase"
    quality: dict[str, dict[str, dict]]  # category -> list name -> cross-validated figures (product's matcher)
    phrase_quality: dict[str, dict[str, dict]]  # the same with phrase search (the queries' matcher)
    seeds: dict[str, dict[str, dict]]  # category -> list name -> fold seeds and balanced accuracy per seed and matcher
    stability: dict[str, dict[str, dict[str, float]]]  # category -> list name -> keyword -> share of fold lists with it
    exclusion_stability: dict[str, dict[str, dict[str, float]]]  # the same for the lists' exclusions (AND NOT)
    classifier_quality: dict[str, dict]  # category -> the TF-IDF classifier's cross-validated figures (when learned)
    classifier_skipped: str | None = None  # why the TF-IDF classifier could not be learned, when it could not


def phrase_list_matches(texts: list[str], keywords: list[str]) -> np.ndarray:
    """Whether each text matches the list's query (the linted list) with phrase search; False for an empty query."""
    return PhraseMatcher({"list": list_query(keywords)}).match(texts)[:, 0]


def list_matches(corpus: Corpus, rows: np.ndarray, keywords: list[str]) -> np.ndarray:
    """Whether each CV at `rows` contains any of the keywords and none of their exclusions (`KeywordList`; all of them
    must be in the corpus's vocabulary)."""
    if not keywords:
        return np.zeros(len(rows), dtype=bool)

    def any_of(terms: list[str]) -> np.ndarray:
        columns = np.searchsorted(corpus.vocabulary, terms)
        return np.asarray((corpus.counts[rows][:, columns] > 0).sum(axis=1)).ravel() > 0

    excluded = exclusions_of(keywords)
    return any_of(keywords) & ~any_of(excluded) if excluded else any_of(keywords)


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
            phrase = phrase_list_matches(corpus.cvs["text"].tolist(), keywords)
            result[category][name] = {
                "in_sample_sensitivity": round(float(matched[inside].mean()), 4) if inside.any() else None,
                "in_sample_specificity": round(float((~matched[~inside]).mean()), 4) if (~inside).any() else None,
                "matched_cvs": int(matched.sum()),
                "in_sample_phrase_sensitivity": round(float(phrase[inside].mean()), 4) if inside.any() else None,
                "in_sample_phrase_specificity": round(float((~phrase[~inside]).mean()), 4) if (~inside).any() else None,
            }
    return result


def cross_validate(
    corpus: Corpus, list_settings: ListSettings, scoring_settings: ScoringSettings, folds: np.ndarray | None = None
) -> CrossValidation:
    """Held-out matches of every list for every CV, and the pooled quality per category, list and matcher.

    The folds are the seeded stratified ones of the settings unless given
    (to compare methods on the very same folds). The whole cross-validation
    is repeated with `lists.cv_repeats` fold seeds (seed, seed + 1, ...):
    the first seed's folds give the held-out matches and the pooled figures,
    every seed its balanced accuracy, and every fold's training list counts in
    the keywords' stability.
    """
    labels = corpus.cvs["category"].to_numpy().astype(str)
    ids = corpus.cvs["cv_id"].to_numpy()
    fold_seeds = [list_settings.seed + i for i in range(list_settings.cv_repeats if folds is None else 1)]
    per_seed = [stratified_folds(ids, labels, list_settings.folds, s) for s in fold_seeds] if folds is None else [folds]
    repeats = [_heldout(corpus, f, list_settings, scoring_settings) for f in per_seed]
    matches, first_folds = repeats[0].matches, repeats[0].folds
    categories = sorted(set(labels.tolist()))
    classifier_quality, classifier_skipped = {}, None
    if list_settings.text_classifier:  # on the first seed's folds, beside the lists' held-out matches
        try:
            decided = text_classifier.heldout_decisions(
                corpus.cvs["text"].tolist(), labels, first_folds, list_settings.seed
            )
        except text_classifier.Unfittable as reason:
            decided, classifier_skipped = {}, str(reason)
        matches = matches.assign(**{text_classifier.column(c): (d >= 0).astype(np.int8) for c, d in decided.items()})
        classifier_quality = {
            c: list_quality(matches[text_classifier.column(c)].to_numpy() > 0, labels == c, list_settings)
            for c in categories
            if c in decided
        }
    fold_lists = [lists for repeat in repeats for lists in repeat.fold_lists]
    seed_matches = [repeat.matches for repeat in repeats]
    return CrossValidation(
        first_folds,
        matches,
        _pooled_quality(seed_matches, labels, "product", list_settings),
        _pooled_quality(seed_matches, labels, "phrase", list_settings),
        _seed_accuracies(seed_matches, labels, fold_seeds),
        _stability(fold_lists, categories, list),
        _stability(fold_lists, categories, exclusions_of),
        classifier_quality,
        classifier_skipped,
    )


def _pooled_quality(repeats: list[pd.DataFrame], labels: np.ndarray, matcher: str, list_settings: ListSettings) -> dict:
    """Per category and list, the quality of its pooled held-out matches by `matcher`, averaged over fold seeds."""
    return {
        c: {
            name: _design_labelled(
                list_quality(
                    [m[list_column(c, name, matcher)].to_numpy() > 0 for m in repeats], labels == c, list_settings
                )
            )
            for name in LIST_NAMES
        }
        for c in sorted(set(labels.tolist()))
    }


def _design_labelled(quality: dict) -> dict:
    """A list's figures, saying that the learner's design was chosen on the study's rated CVs."""
    design = "nested; the learner's design was chosen on the study's rated CVs (optimistic on them: see new_sample)"
    return {**quality, "figures": f"{quality['figures']}, {design}"}


def _seed_accuracies(repeats: list[pd.DataFrame], labels: np.ndarray, fold_seeds: list[int]) -> dict:
    """Per category and list, the fold seeds and each seed's held-out balanced accuracy, sensitivity and specificity
    per matcher."""
    result: dict = {}
    for c in sorted(set(labels.tolist())):
        positive = labels == c
        result[c] = {}
        for name in LIST_NAMES:
            seeds: dict = {"fold_seeds": fold_seeds}
            for matcher in MATCHERS:
                matched = [m[list_column(c, name, matcher)].to_numpy() > 0 for m in repeats]
                seeds[f"{matcher}_balanced_accuracy"] = [_balanced(m, positive) for m in matched]
                rates = [_rates(m, positive) for m in matched]
                seeds[f"{matcher}_sensitivity"] = [r[0] for r in rates]
                seeds[f"{matcher}_specificity"] = [r[1] for r in rates]
            result[c][name] = seeds
    return result


def _stability(fold_lists: list[Lists], categories: list[str], terms: Callable[[list[str]], list[str]]) -> dict:
    """Per category and list, each term's share of the fold lists (`terms` of a list: its keywords, or exclusions)."""
    return {
        c: {name: _shares([terms(lists.get(c, {}).get(name, [])) for lists in fold_lists]) for name in LIST_NAMES}
        for c in categories
    }


class _HeldOut(NamedTuple):
    """One cross-validation over `folds`: the held-out matches and the lists learned for each fold."""

    matches: pd.DataFrame
    fold_lists: list[Lists]
    folds: np.ndarray


def heldout_matches(
    corpus: Corpus, folds: np.ndarray, list_settings: ListSettings, scoring_settings: ScoringSettings
) -> pd.DataFrame:
    """cv_id and, per category and list, whether the CV matches the list learned without its fold (int8 0/1): with the
    product's matcher (`<category>/<list>`) and with phrase search of the list's query (`<category>/<list>@phrase`)."""
    return _heldout(corpus, folds, list_settings, scoring_settings).matches


def _heldout(
    corpus: Corpus, folds: np.ndarray, list_settings: ListSettings, scoring_settings: ScoringSettings
) -> _HeldOut:
    """The held-out matches, the lists learned for each fold, and the folds."""
    labels = corpus.cvs["category"].to_numpy().astype(str)
    texts = corpus.cvs["text"].tolist()
    matches = {
        list_column(c, name, matcher): np.zeros(len(labels), dtype=np.int8)
        for matcher in MATCHERS
        for c in sorted(set(labels.tolist()))
        for name in LIST_NAMES
    }
    per_fold = []
    for fold in np.unique(folds):
        held = np.flatnonzero(folds == fold)
        per_fold.append(learn(corpus, np.flatnonzero(folds != fold), list_settings, scoring_settings))
        for category, by_name in per_fold[-1].items():
            for name, keywords in by_name.items():
                matches[list_column(category, name)][held] = list_matches(corpus, held, keywords)
                phrase = phrase_list_matches([texts[i] for i in held], keywords)
                matches[list_column(category, name, "phrase")][held] = phrase
    return _HeldOut(pd.DataFrame({"cv_id": corpus.cvs["cv_id"].to_numpy(), **matches}), per_fold, folds)


def _rates(matched: np.ndarray, positive: np.ndarray) -> tuple[float | None, float | None]:
    """(sensitivity, specificity) of matches, None where a class is empty."""
    sensitivity = round(float(matched[positive].mean()), 4) if positive.any() else None
    specificity = round(float((~matched[~positive]).mean()), 4) if (~positive).any() else None
    return sensitivity, specificity


def _balanced(matched: np.ndarray, positive: np.ndarray) -> float | None:
    if positive.all() or not positive.any():
        return None
    return round(float((matched[positive].mean() + (~matched[~positive]).mean()) / 2), 4)


def _shares(lists: list[list[str]]) -> dict[str, float]:
    """Per keyword, the share of the lists that hold it, most stable first."""
    counts = pd.Series([k for keywords in lists for k in set(keywords)], dtype=object).value_counts()
    return {str(k): round(float(n) / max(len(lists), 1), 4) for k, n in counts.items()}


def positive_category(labels: np.ndarray, list_settings: ListSettings) -> str:
    """The category the lists are for: `lists.positive`, else `1` where it is a category, else the least frequent
    (ties: the first by name)."""
    values, counts = np.unique(np.asarray(labels).astype(str), return_counts=True)
    if list_settings.positive is not None and list_settings.positive not in values:
        raise InputError(f"lists.positive {list_settings.positive!r} is not a category ({', '.join(values)})")
    if list_settings.positive is not None:
        return list_settings.positive
    return "1" if "1" in values else str(values[np.argmin(counts)])


def keyword_lists_document(
    corpus: Corpus, lists: Lists, cross_validation: CrossValidation, list_settings: ListSettings
) -> dict:
    """keyword_lists.json: per category (the positive one first) and list, the keywords with in-sample and
    cross-validated quality, and the interval a new sample of rated CVs will see."""
    in_sample = in_sample_quality(corpus, lists)
    labels = corpus.cvs["category"].to_numpy().astype(str)
    positive = positive_category(labels, list_settings)
    order = sorted(lists, key=lambda c: (c != positive, c))
    other = f"complement of {positive}" if len(lists) == 2 else "other"
    roles = {c: "positive" if c == positive else other for c in lists}
    return {
        category: {
            name: {
                "method": list_settings.method,
                "role": roles[category],
                "keywords": list(keywords),
                "exclusions": exclusions_of(keywords),
                **in_sample[category][name],
                "organisation_name_share": organisation_name_share(corpus, keywords, list_settings),
                "cross_validated": cross_validation.quality.get(category, {}).get(name),
                "cross_validated_phrase": cross_validation.phrase_quality.get(category, {}).get(name),
                "cross_validated_seeds": _seed_spread(cross_validation.seeds.get(category, {}).get(name)),
                "new_sample": _new_sample(
                    cross_validation.seeds.get(category, {}).get(name), labels == category, name, list_settings
                ),
                "stability": {
                    k: cross_validation.stability.get(category, {}).get(name, {}).get(k, 0.0) for k in keywords
                },
                "exclusion_stability": cross_validation.exclusion_stability.get(category, {}).get(name, {}),
            }
            for name, keywords in lists[category].items()
        }
        for category in order
    }


def _new_sample(seeds: dict | None, positive: np.ndarray, name: str, list_settings: ListSettings) -> dict | None:
    """The prediction interval of the list's rates on a new sample (`lists.new_sample_cvs`, default as many CVs as
    the lists were learned from), with the run's matcher's per-seed rates; None where a class has too few CVs."""
    class_cvs = int(positive.sum()), int((~positive).sum())
    if not seeds or min(class_cvs) < list_settings.folds:
        return None
    return new_sample_interval(
        seeds[f"{list_settings.matcher}_sensitivity"],
        seeds[f"{list_settings.matcher}_specificity"],
        class_cvs,
        list_settings.new_sample_cvs or len(positive),
        list_settings,
        name,
    )


def classifier_document(
    corpus: Corpus, model: text_classifier.TextClassifier, cross_validation: CrossValidation
) -> dict:
    """text_classifier.json: the model learned on all the corpus's CVs, and per category its in-sample (optimistic)
    and cross-validated (the lists' folds, first seed) sensitivity and specificity."""
    labels = corpus.cvs["category"].to_numpy().astype(str)
    annotated = model.annotate(corpus.cvs["text"].tolist())
    quality = {}
    for category in model.coefficients:
        matched, inside = annotated[text_classifier.column(category)] > 0, labels == category
        quality[category] = {
            "column": text_classifier.column(category),
            "in_sample_sensitivity": round(float(matched[inside].mean()), 4) if inside.any() else None,
            "in_sample_specificity": round(float((~matched[~inside]).mean()), 4) if (~inside).any() else None,
            "matched_cvs": int(matched.sum()),
            "cross_validated": cross_validation.classifier_quality.get(category),
        }
    return {**model.document(), "learning_cvs": len(labels), "quality": quality}


def _seed_spread(seeds: dict | None) -> dict | None:
    """The per-seed balanced accuracies with their spread (max - min) per matcher."""
    if not seeds:
        return None
    spread = {}
    for matcher in MATCHERS:
        values = [v for v in seeds[f"{matcher}_balanced_accuracy"] if v is not None]
        spread[f"{matcher}_spread"] = round(max(values) - min(values), 4) if values else None
    return {**seeds, **spread}


def list_quality(matched: np.ndarray | list[np.ndarray], positive: np.ndarray, list_settings: ListSettings) -> dict:
    """Pooled held-out sensitivity, specificity and balanced accuracy with their intervals, or why there are none.
    `matched`: one cross-validation's held-out matches, or a list of them (one per fold seed): the figures are then
    the mean over the seeds, their intervals those of the mean rates on the CVs there are."""
    per_seed = [matched] if isinstance(matched, np.ndarray) else matched
    n_positive, n_negative = int(positive.sum()), int((~positive).sum())
    base = {
        "figures": f"cross-validated ({list_settings.folds} folds), mean over {len(per_seed)} fold seeds",
        "folds": list_settings.folds,
        "fold_seeds": len(per_seed),
        "interval": f"{list_settings.interval:.0%} {INTERVAL_METHOD}",
        "cvs": [n_positive, n_negative],
    }
    if min(n_positive, n_negative) < list_settings.folds:
        return {
            **base,
            "note": f"too few CVs for {list_settings.folds}-fold cross-validation "
            f"({n_positive} in the category, {n_negative} outside)",
        }
    # mean numbers of found and rejected CVs over the seeds (the intervals read them as counts of one sample)
    found = float(np.mean([m[positive].sum() for m in per_seed]))
    rejected = float(np.mean([(~m[~positive]).sum() for m in per_seed]))
    sensitivity, specificity = found / n_positive, rejected / n_negative
    return {
        **base,
        "sensitivity": round(sensitivity, 4),
        "sensitivity_interval": _rounded(wilson_interval(found, n_positive, list_settings.interval)),
        "specificity": round(specificity, 4),
        "specificity_interval": _rounded(wilson_interval(rejected, n_negative, list_settings.interval)),
        "balanced_accuracy": round((sensitivity + specificity) / 2, 4),
        "balanced_accuracy_interval": _rounded(
            bootstrap_balanced_accuracy(
                sensitivity,
                n_positive,
                specificity,
                n_negative,
                list_settings.interval,
                list_settings.bootstrap_resamples,
                list_settings.seed,
            )
        ),
    }


def _rounded(interval: tuple[float, float]) -> list[float]:
    return [round(interval[0], 4), round(interval[1], 4)]
