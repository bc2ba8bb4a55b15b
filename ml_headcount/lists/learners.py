"""Keyword lists learned from a set of CVs: the study's thresholds, or lists selected by inner cross-validation.

A list is a filter: a CV matches when its cleaned text contains any of the
list's keywords (as `scoring.keyword_counts` finds them). `learn` is the one
path from CVs and their extracted keywords to scores and lists; a run calls it
on all its CVs, cross-validation (`quality`) on each training fold.

The `selected` learner grows each list greedily: the next keyword is the one
whose not-yet-matched CVs add the most found CVs of the category minus `w`
times the false matches (each side as a share of its class), so w = 1
maximises balanced accuracy on the training CVs and larger w trades
sensitivity for specificity; a per-keyword penalty (extra false matches)
keeps out keywords that find only a few CVs. Only keywords of the run's
extracted vocabulary that occur in CVs from several different current
employers and that neither are nor contain organisation names may enter. How
many keywords, which w and which penalty are chosen by cross-validation inside
the training CVs: the broad list maximises balanced accuracy, the strict list
is the most sensitive one whose inner-cross-validated specificity reaches the
target. A list may then end in exclusions (`(A OR B) AND NOT (C)`, a
`matching.KeywordList`), grown by the same rule with the classes' roles
swapped; how many (none: the plain OR list) is chosen by the same inner folds. Last, the strict list is put
inside the broad one (`strict_inside_broad`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml_headcount.config import ListSettings, ScoringSettings
from ml_headcount.lists.eligibility import eligible_keywords
from ml_headcount.lists.evidence import Corpus, KeywordEvidence, corpus_evidence
from ml_headcount.lists.folds import stratified_folds
from ml_headcount.lists.greedy import greedy_path, grow_list
from ml_headcount.lists.intervals import wilson_interval
from ml_headcount.scoring import discriminative as scoring
from ml_headcount.scoring.keyword_list import KeywordList

LIST_NAMES = ("strict", "broad")
Lists = dict[str, dict[str, list[str]]]  # category -> list name -> keywords


def learn(
    corpus: Corpus, rows: np.ndarray | None, list_settings: ListSettings, scoring_settings: ScoringSettings
) -> Lists:
    """The lists learned from the corpus's CVs at `rows` (all when None), exactly as a run learns them."""
    rows = np.arange(len(corpus.cvs)) if rows is None else np.asarray(rows)
    cvs = corpus.cvs.iloc[rows].reset_index(drop=True)
    keywords = corpus.keywords[corpus.keywords["cv_id"].isin(set(cvs["cv_id"]))]
    vocabulary = sorted(keywords["keyword"].unique())
    columns = np.searchsorted(corpus.vocabulary, vocabulary)
    if list_settings.method == "study":
        stats = scoring.category_keyword_stats(cvs, keywords)
        counts = corpus.counts[rows][:, columns]
        return study_lists(
            scoring.discriminative_keywords(cvs, stats, counts, vocabulary, scoring_settings), scoring_settings
        )
    return selected_lists(corpus_evidence(corpus, rows, columns), cvs["cv_id"].to_numpy(), vocabulary, list_settings)


def study_lists(discriminative: pd.DataFrame, scoring_settings: ScoringSettings) -> Lists:
    """The study's rule: total frequency, score and specificity thresholds on the discriminative keywords."""
    thresholds = {
        "strict": (scoring_settings.strict_score, scoring_settings.strict_specificity),
        "broad": (scoring_settings.broad_score, scoring_settings.broad_specificity),
    }
    lists: Lists = {}
    for category, group in discriminative.groupby("category", sort=True):
        lists[str(category)] = {
            name: group[
                (group["score"] >= min_score)
                & (group["specificity"] >= min_specificity)
                & (group["total_frequency"] >= scoring_settings.list_min_frequency)
            ]["keyword"].tolist()
            for name, (min_score, min_specificity) in thresholds.items()
        }
    return lists


def selected_lists(
    evidence: KeywordEvidence, cv_ids: np.ndarray, vocabulary: list[str], list_settings: ListSettings
) -> Lists:
    """Strict and broad lists per category, grown greedily; cost, size and exclusions chosen by inner
    cross-validation (no exclusions: the plain OR list)."""
    inner = stratified_folds(cv_ids, evidence.labels, list_settings.inner_folds, list_settings.seed)
    lists: Lists = {}
    for category in sorted(set(evidence.labels.tolist())):
        choice = _inner_choice(evidence, inner, category, vocabulary, list_settings)
        exclusions = _inner_exclusions(evidence, inner, category, vocabulary, list_settings, choice)
        grown = {}
        for name in LIST_NAMES:
            path, excluded = grow_list(evidence, category, vocabulary, list_settings, choice[name], exclusions[name])
            grown[name] = KeywordList([vocabulary[j] for j in path], [vocabulary[j] for j in excluded])
        lists[str(category)] = strict_inside_broad(grown["strict"], grown["broad"])
    return lists


def strict_inside_broad(strict: KeywordList, broad: KeywordList) -> dict[str, KeywordList]:
    """The two lists made so that every text the strict list matches, the broad one matches, under either matcher:
    the broad list also holds the strict list's keywords, the strict list also the broad list's exclusions. (Grown
    apart, a strict keyword the broad list lacks, or a broad exclusion, let a CV match strict and not broad.)"""
    return {
        "strict": KeywordList(
            list(strict), strict.exclusions + [e for e in broad.exclusions if e not in strict.exclusions]
        ),
        "broad": KeywordList(list(broad) + [k for k in strict if k not in broad], broad.exclusions),
    }


def _inner_exclusions(
    evidence: KeywordEvidence,
    inner: np.ndarray,
    category: str,
    vocabulary: list[str],
    list_settings: ListSettings,
    choice: dict[str, tuple[float, float, int]],
) -> dict[str, int]:
    """How many exclusions each list takes (0: the plain OR list), by inner cross-validation of its chosen
    (cost, penalty, size) with 0 to `lists.max_exclusions` exclusions."""
    positive = evidence.labels == category
    never = np.iinfo(np.int64).max
    # matched[name][i]: CV i contains a keyword of the list learned without its inner fold; first_excluded: the
    # position of the first of that list's exclusions it contains
    matched = {name: np.zeros(len(positive), dtype=bool) for name in LIST_NAMES}
    first_excluded = {name: np.full(len(positive), never) for name in LIST_NAMES}
    for fold in np.unique(inner) if list_settings.max_exclusions else ():
        train, held = np.flatnonzero(inner != fold), np.flatnonzero(inner == fold)
        for name in LIST_NAMES:
            path, excluded = grow_list(
                evidence.rows(train), category, vocabulary, list_settings, choice[name], list_settings.max_exclusions
            )
            matched[name][held] = np.asarray(evidence.present[held][:, path].sum(axis=1)).ravel() > 0
            if len(excluded):
                hits = evidence.present[held][:, excluded].toarray() > 0
                first_excluded[name][held] = np.where(hits.any(axis=1), hits.argmax(axis=1), never)
    negatives, counts = int((~positive).sum()), range(list_settings.max_exclusions + 1)
    chosen = {}
    for name in LIST_NAMES:
        results = [(k, *_rates(matched[name] & (first_excluded[name] >= k), positive)) for k in counts]
        chosen[name] = _preferred(results, name == "strict", negatives, list_settings, lambda r: (-r[0],))[0]
    return chosen


def _rates(matched: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """(sensitivity, specificity) of matches."""
    sensitivity = float(matched[positive].mean()) if positive.any() else 0.0
    specificity = float(1 - matched[~positive].mean()) if (~positive).any() else 1.0
    return sensitivity, specificity


def _preferred(results: list[tuple], strict: bool, negatives: int, list_settings: ListSettings, simpler) -> tuple:
    """The preferred of (..., sensitivity, specificity) options, `simpler(option)` breaking ties (larger: simpler).

    Broad: the best balanced accuracy. Strict: the most sensitive option whose specificity reaches the target with
    room for the inner folds' optimism (the lower end of its Wilson interval), else the most specific one."""
    if not strict:
        return max(results, key=lambda r: (r[-2] + r[-1], *simpler(r)))
    reaching = [
        r
        for r in results
        if negatives
        and wilson_interval(round(r[-1] * negatives), negatives, list_settings.interval)[0]
        >= list_settings.strict_specificity
    ]
    if reaching:
        return max(reaching, key=lambda r: (r[-2], r[-1], *simpler(r)))
    return max(results, key=lambda r: (r[-1], r[-2], *simpler(r)))


def _inner_choice(
    evidence: KeywordEvidence, inner: np.ndarray, category: str, vocabulary: list[str], list_settings: ListSettings
) -> dict[str, tuple[float, float, int]]:
    """(cost, penalty, size) per list, from the pooled inner-fold predictions of every candidate."""
    options = [
        (w, p)
        for w in sorted(set(list_settings.broad_weights) | set(list_settings.strict_weights))
        for p in list_settings.penalties
    ]
    positive = evidence.labels == category
    # first_hit[o][i]: position in option o's path (learned without CV i's inner fold) of the first keyword
    # CV i contains
    first_hit = {o: np.full(len(positive), np.iinfo(np.int64).max) for o in options}
    for fold in np.unique(inner):
        train, held = np.flatnonzero(inner != fold), np.flatnonzero(inner == fold)
        part = evidence.rows(train)
        columns = eligible_keywords(part, category, vocabulary, list_settings)
        candidates = part.present[:, columns].tocsc()
        by_row = candidates.tocsr()
        for w, p in options:
            path = columns[greedy_path(candidates, positive[train], w, list_settings.max_keywords, p, by_row)]
            if len(path):
                hits = evidence.present[held][:, path].toarray() > 0
                first_hit[w, p][held] = np.where(hits.any(axis=1), hits.argmax(axis=1), np.iinfo(np.int64).max)
    sizes = np.arange(1, list_settings.max_keywords + 1)
    results = []  # (weight, penalty, size, sensitivity, specificity)
    for w, p in options:
        matched = first_hit[w, p][None, :] < sizes[:, None]
        sensitivity = matched[:, positive].mean(axis=1) if positive.any() else np.zeros(len(sizes))
        specificity = 1 - matched[:, ~positive].mean(axis=1) if (~positive).any() else np.ones(len(sizes))
        results += [(w, p, int(s), float(se), float(sp)) for s, se, sp in zip(sizes, sensitivity, specificity)]
    negatives = int((~positive).sum())
    broad = _preferred(
        [r for r in results if r[0] in list_settings.broad_weights],
        False,
        negatives,
        list_settings,
        lambda r: (-r[2], -r[0], -r[1]),
    )
    strict = _preferred(
        [r for r in results if r[0] in list_settings.strict_weights], True, negatives, list_settings, lambda r: (-r[2],)
    )
    return {"broad": broad[:3], "strict": strict[:3]}
