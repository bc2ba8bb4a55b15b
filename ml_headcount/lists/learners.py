"""Keyword lists learned from a set of CVs: the study's thresholds, or lists selected by inner cross-validation.

A list is a filter: a CV matches when its cleaned text contains any of the
list's keywords (as `scoring.keyword_counts` finds them). `learn` is the one
path from CVs and their extracted keywords to scores and lists; a run calls it
on all its CVs, cross-validation (`filter_quality`) on each training fold.

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
swapped; how many (none: the plain OR list) is chosen by the same inner folds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd
from scipy import sparse

from ml_headcount.config import (
    ExtractionSettings,
    FilterSettings,
    ScoringSettings,
    Settings,
)
from ml_headcount.corpus import employers
from ml_headcount.lists.folds import stratified_folds
from ml_headcount.scoring import discriminative as scoring
from ml_headcount.scoring.keyword_list import KeywordList
from ml_headcount.scoring.phrase_matching import phrase_presence

LIST_NAMES = ("strict", "broad")
Lists = dict[str, dict[str, list[str]]]  # category -> list name -> keywords


@dataclass(frozen=True)
class Corpus:
    """CVs, their extracted keywords, and where every extracted keyword occurs in every CV."""

    cvs: pd.DataFrame  # cv_id, category, text; row i is row i of the matrices
    keywords: pd.DataFrame  # cv_id, keyword, score, rank
    vocabulary: list[str]  # sorted, every extracted keyword
    counts: sparse.csr_matrix  # occurrences in the text, as scoring counts them
    extracted: sparse.csr_matrix  # 1 where KeyBERT extracted the keyword from the CV
    parts: sparse.csr_matrix  # (keyword x part) 1 where the part (a run of the keyword's tokens) is in the keyword
    part_present: sparse.csr_matrix  # (CV x part) 1 where the part occurs in the text
    part_in_company: sparse.csr_matrix  # (CV x part) 1 where it occurs inside a company field of Experiences
    employers: np.ndarray  # current employer per CV; a CV without one is its own employer
    phrase_present: sparse.csr_matrix  # 1 where phrase search of the keyword (a search tool's matcher) finds it


def build_corpus(cvs: pd.DataFrame, keywords: pd.DataFrame, extraction: ExtractionSettings) -> Corpus:
    cvs = cvs.reset_index(drop=True)
    texts = cvs["text"].tolist()
    vocabulary = sorted(keywords["keyword"].unique())
    counts = scoring.keyword_counts(texts, vocabulary, extraction)
    row_of = pd.Series(np.arange(len(cvs)), index=cvs["cv_id"])
    known = keywords[keywords["cv_id"].isin(row_of.index)]
    extracted = sparse.csr_matrix(
        (np.ones(len(known)), (row_of[known["cv_id"]].to_numpy(), np.searchsorted(vocabulary, known["keyword"]))),
        shape=(len(cvs), len(vocabulary)),
    )
    extracted.data[:] = 1.0  # a keyword listed twice for one CV is still one CV
    tokens = [keyword.split(" ") for keyword in vocabulary]
    part_names = sorted({" ".join(t[i:j]) for t in tokens for i in range(len(t)) for j in range(i + 1, len(t) + 1)})
    part_column = {part: i for i, part in enumerate(part_names)}
    incidence = [
        (row, part_column[" ".join(t[i:j])])
        for row, t in enumerate(tokens)
        for i in range(len(t))
        for j in range(i + 1, len(t) + 1)
    ]
    parts = sparse.csr_matrix(
        (np.ones(len(incidence)), tuple(np.array(incidence).T)), shape=(len(vocabulary), len(part_names))
    )
    parts.data[:] = 1.0
    part_present = (scoring.keyword_counts(texts, part_names, extraction) > 0).astype(np.float64).tocsr()
    fields = [employers.company_fields(text) for text in texts]
    owner = np.repeat(np.arange(len(texts)), [len(f) for f in fields])
    part_in_company = sparse.csr_matrix((len(texts), len(part_names)))
    if len(owner):
        per_field = (scoring.keyword_counts([c for f in fields for c in f], part_names, extraction) > 0).astype(
            np.float64
        )
        to_cv = sparse.csr_matrix((np.ones(len(owner)), (owner, np.arange(len(owner)))), shape=(len(texts), len(owner)))
        part_in_company = ((to_cv @ per_field) > 0).astype(np.float64).tocsr()
    current = np.array([f[0] if f else f"cv:{cv_id}" for f, cv_id in zip(fields, cvs["cv_id"])], dtype=object)
    return Corpus(
        cvs,
        keywords,
        vocabulary,
        counts,
        extracted.tocsr(),
        parts.tocsr(),
        part_present,
        part_in_company,
        current,
        phrase_presence(texts, vocabulary),
    )


def learn(corpus: Corpus, rows: np.ndarray | None, settings: Settings) -> Lists:
    """The lists learned from the corpus's CVs at `rows` (all when None), exactly as a run learns them."""
    rows = np.arange(len(corpus.cvs)) if rows is None else np.asarray(rows)
    cvs = corpus.cvs.iloc[rows].reset_index(drop=True)
    keywords = corpus.keywords[corpus.keywords["cv_id"].isin(set(cvs["cv_id"]))]
    vocabulary = sorted(keywords["keyword"].unique())
    columns = np.searchsorted(corpus.vocabulary, vocabulary)
    if settings.filters.method == "study":
        stats = scoring.category_keyword_stats(cvs, keywords)
        counts = corpus.counts[rows][:, columns]
        return study_lists(
            scoring.discriminative_keywords(cvs, stats, counts, vocabulary, settings.scoring), settings.scoring
        )
    return selected_lists(corpus_evidence(corpus, rows, columns), cvs["cv_id"].to_numpy(), vocabulary, settings)


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


@dataclass(frozen=True)
class Evidence:
    """What the selected learner sees of a set of CVs: labels and 0/1 (CV x keyword) matrices."""

    labels: np.ndarray
    present: sparse.csc_matrix  # keyword in the text
    extracted: sparse.csc_matrix  # keyword extracted from the CV
    parts: sparse.csr_matrix  # (keyword x part) incidence
    part_present: sparse.csr_matrix  # part in the text
    part_in_company: sparse.csr_matrix  # part inside a company field
    employers: np.ndarray
    phrase_present: sparse.csc_matrix  # keyword found by phrase search

    def rows(self, rows: np.ndarray) -> Evidence:
        return Evidence(
            self.labels[rows],
            self.present[rows],
            self.extracted[rows],
            self.parts,
            self.part_present[rows],
            self.part_in_company[rows],
            self.employers[rows],
            self.phrase_present[rows],
        )


def corpus_evidence(corpus: Corpus, rows: np.ndarray, columns: np.ndarray) -> Evidence:
    return Evidence(
        labels=corpus.cvs["category"].to_numpy()[rows],
        present=(corpus.counts[rows][:, columns] > 0).astype(np.float64).tocsc(),
        extracted=corpus.extracted[rows][:, columns].tocsc(),
        parts=corpus.parts[columns],
        part_present=corpus.part_present[rows],
        part_in_company=corpus.part_in_company[rows],
        employers=corpus.employers[rows],
        phrase_present=corpus.phrase_present[rows][:, columns].tocsc(),
    )


def organisation_name_share(corpus: Corpus, keywords: list[str], filters: FilterSettings) -> float | None:
    """Share of a list's keywords that are organisation names, judged on all the corpus's CVs (None for an empty list)."""
    if not keywords:
        return None
    evidence = corpus_evidence(corpus, np.arange(len(corpus.cvs)), np.searchsorted(corpus.vocabulary, keywords))
    return round(float(organisation_names(evidence, keywords, filters).mean()), 4)


def organisation_names(evidence: Evidence, vocabulary: list[str], filters: FilterSettings) -> np.ndarray:
    """Keywords that name an organisation, or contain a name: a run of their tokens that is found inside a
    company field of Experiences in more than `max_organisation_share` of the CVs containing it, or on the stop list."""
    containing = np.asarray(evidence.part_present.sum(axis=0)).ravel()
    inside = np.asarray(evidence.part_in_company.sum(axis=0)).ravel()
    share = np.divide(inside, containing, out=np.zeros(len(containing)), where=containing > 0)
    named = np.asarray(evidence.parts @ (share > filters.max_organisation_share).astype(np.float64)).ravel() > 0
    stopped = [f" {name.lower().strip()} " for name in filters.organisation_stop_list if name.strip()]
    listed = np.array([any(name in f" {keyword} " for name in stopped) for keyword in vocabulary], dtype=bool)
    return named | listed


def eligible_keywords(evidence: Evidence, category: str, vocabulary: list[str], settings: Settings) -> np.ndarray:
    """Columns a list of `category` may use: extracted from and found in several of its CVs, at several employers, no organisation names."""
    filters = settings.filters
    positive = evidence.labels == category
    extracted = np.asarray(evidence.extracted[positive].sum(axis=0)).ravel()
    inside = evidence.present[positive].tocsc()
    found = np.asarray(inside.sum(axis=0)).ravel()
    ok = (
        (extracted >= filters.min_extracted)
        & (found >= filters.min_cvs)
        & (phrase_agreement(evidence) >= filters.min_phrase_agreement)
    )
    columns = np.flatnonzero(ok & ~organisation_names(evidence, vocabulary, filters))
    return columns[distinct_employers(inside[:, columns], evidence.employers[positive]) >= filters.min_employers]


def phrase_agreement(evidence: Evidence) -> np.ndarray:
    """Per keyword: of the CVs that either matcher finds it in, the share both find it in (1 when neither does).

    A keyword the product finds where phrase search does not (`doctor philosophy phd` in "doctor of philosophy
    (phd)", stop words being removed before n-grams) would make a query that a search tool runs differently."""
    product, phrase = evidence.present > 0, evidence.phrase_present > 0
    both = np.asarray(product.multiply(phrase).sum(axis=0)).ravel()
    either = np.asarray((product + phrase).sum(axis=0)).ravel() - both
    return np.divide(both, either, out=np.ones(len(both)), where=either > 0)


def distinct_employers(present: sparse.csc_matrix, employer_of: np.ndarray) -> np.ndarray:
    """Per column: how many different employers the CVs (rows) containing it have."""
    _, employer = np.unique(employer_of, return_inverse=True)
    employs = sparse.csr_matrix(
        (np.ones(len(employer)), (employer, np.arange(len(employer)))),
        shape=(employer.max(initial=-1) + 1, len(employer)),
    )
    return np.asarray(((employs @ present) > 0).sum(axis=0)).ravel()


def selected_lists(evidence: Evidence, cv_ids: np.ndarray, vocabulary: list[str], settings: Settings) -> Lists:
    """Strict and broad lists per category, grown greedily; cost, size and exclusions chosen by inner
    cross-validation (no exclusions: the plain OR list)."""
    filters = settings.filters
    inner = stratified_folds(cv_ids, evidence.labels, filters.inner_folds, filters.seed)
    lists: Lists = {}
    for category in sorted(set(evidence.labels.tolist())):
        choice = _inner_choice(evidence, inner, category, vocabulary, settings)
        exclusions = _inner_exclusions(evidence, inner, category, vocabulary, settings, choice)
        lists[str(category)] = {}
        for name in LIST_NAMES:
            path, excluded = grow_list(evidence, category, vocabulary, settings, choice[name], exclusions[name])
            lists[str(category)][name] = KeywordList([vocabulary[j] for j in path], [vocabulary[j] for j in excluded])
    return lists


def grow_list(
    evidence: Evidence,
    category: str,
    vocabulary: list[str],
    settings: Settings,
    choice: tuple[float, float, int],
    max_exclusions: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Columns of a list's keywords and of its exclusions, learned from all of `evidence`'s CVs.

    Exclusions are grown by the same greedy rule with the roles of the classes swapped, over the CVs the
    keywords match: the next one removes the most false matches (times w) minus the found CVs it loses."""
    weight, penalty, size = choice
    columns = eligible_keywords(evidence, category, vocabulary, settings)
    positive = evidence.labels == category
    candidates = evidence.present[:, columns].tocsc()
    path = columns[greedy_path(candidates, positive, weight, size, penalty)]
    if not max_exclusions or not len(path):
        return path, path[:0]
    matched = np.asarray(evidence.present[:, path].sum(axis=1)).ravel() > 0
    complement = dataclasses.replace(evidence, labels=np.where(positive, "in", "out"))
    others = np.setdiff1d(eligible_keywords(complement, "out", vocabulary, settings), path)
    class_sizes = (max(int((~positive).sum()), 1), max(int(positive.sum()), 1))
    excluded = greedy_path(
        evidence.present[matched][:, others].tocsc(),
        ~positive[matched],
        1 / weight,
        max_exclusions,
        penalty,
        class_sizes=class_sizes,
    )
    return path, others[excluded]


def _inner_exclusions(
    evidence: Evidence,
    inner: np.ndarray,
    category: str,
    vocabulary: list[str],
    settings: Settings,
    choice: dict[str, tuple[float, float, int]],
) -> dict[str, int]:
    """How many exclusions each list takes (0: the plain OR list), by inner cross-validation of its chosen
    (cost, penalty, size) with 0 to `filters.max_exclusions` exclusions."""
    filters = settings.filters
    positive = evidence.labels == category
    never = np.iinfo(np.int64).max
    # matched[name][i]: CV i contains a keyword of the list learned without its inner fold; first_excluded: the
    # position of the first of that list's exclusions it contains
    matched = {name: np.zeros(len(positive), dtype=bool) for name in LIST_NAMES}
    first_excluded = {name: np.full(len(positive), never) for name in LIST_NAMES}
    for fold in np.unique(inner) if filters.max_exclusions else ():
        train, held = np.flatnonzero(inner != fold), np.flatnonzero(inner == fold)
        for name in LIST_NAMES:
            path, excluded = grow_list(
                evidence.rows(train), category, vocabulary, settings, choice[name], filters.max_exclusions
            )
            matched[name][held] = np.asarray(evidence.present[held][:, path].sum(axis=1)).ravel() > 0
            if len(excluded):
                hits = evidence.present[held][:, excluded].toarray() > 0
                first_excluded[name][held] = np.where(hits.any(axis=1), hits.argmax(axis=1), never)
    negatives, counts = int((~positive).sum()), range(filters.max_exclusions + 1)
    chosen = {}
    for name in LIST_NAMES:
        results = [(k, *_rates(matched[name] & (first_excluded[name] >= k), positive)) for k in counts]
        chosen[name] = _preferred(results, name == "strict", negatives, filters, lambda r: (-r[0],))[0]
    return chosen


def _rates(matched: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """(sensitivity, specificity) of matches."""
    sensitivity = float(matched[positive].mean()) if positive.any() else 0.0
    specificity = float(1 - matched[~positive].mean()) if (~positive).any() else 1.0
    return sensitivity, specificity


def _preferred(results: list[tuple], strict: bool, negatives: int, filters: FilterSettings, simpler) -> tuple:
    """The preferred of (..., sensitivity, specificity) options, `simpler(option)` breaking ties (larger: simpler).

    Broad: the best balanced accuracy. Strict: the most sensitive option whose specificity reaches the target with
    room for the inner folds' optimism (the lower end of its Wilson interval), else the most specific one."""
    if not strict:
        return max(results, key=lambda r: (r[-2] + r[-1], *simpler(r)))
    reaching = [
        r
        for r in results
        if negatives
        and _wilson_low(round(r[-1] * negatives), negatives, filters.interval) >= filters.strict_specificity
    ]
    if reaching:
        return max(reaching, key=lambda r: (r[-2], r[-1], *simpler(r)))
    return max(results, key=lambda r: (r[-1], r[-2], *simpler(r)))


def _inner_choice(
    evidence: Evidence, inner: np.ndarray, category: str, vocabulary: list[str], settings: Settings
) -> dict[str, tuple[float, float, int]]:
    """(cost, penalty, size) per list, from the pooled inner-fold predictions of every candidate."""
    filters = settings.filters
    options = [
        (w, p) for w in sorted(set(filters.broad_weights) | set(filters.strict_weights)) for p in filters.penalties
    ]
    positive = evidence.labels == category
    # first_hit[o][i]: position in option o's path (learned without CV i's inner fold) of the first keyword CV i contains
    first_hit = {o: np.full(len(positive), np.iinfo(np.int64).max) for o in options}
    for fold in np.unique(inner):
        train, held = np.flatnonzero(inner != fold), np.flatnonzero(inner == fold)
        part = evidence.rows(train)
        columns = eligible_keywords(part, category, vocabulary, settings)
        candidates = part.present[:, columns].tocsc()
        by_row = candidates.tocsr()
        for w, p in options:
            path = columns[greedy_path(candidates, positive[train], w, filters.max_keywords, p, by_row)]
            if len(path):
                hits = evidence.present[held][:, path].toarray() > 0
                first_hit[w, p][held] = np.where(hits.any(axis=1), hits.argmax(axis=1), np.iinfo(np.int64).max)
    sizes = np.arange(1, filters.max_keywords + 1)
    results = []  # (weight, penalty, size, sensitivity, specificity)
    for w, p in options:
        matched = first_hit[w, p][None, :] < sizes[:, None]
        sensitivity = matched[:, positive].mean(axis=1) if positive.any() else np.zeros(len(sizes))
        specificity = 1 - matched[:, ~positive].mean(axis=1) if (~positive).any() else np.ones(len(sizes))
        results += [(w, p, int(s), float(se), float(sp)) for s, se, sp in zip(sizes, sensitivity, specificity)]
    negatives = int((~positive).sum())
    broad = _preferred(
        [r for r in results if r[0] in filters.broad_weights],
        False,
        negatives,
        filters,
        lambda r: (-r[2], -r[0], -r[1]),
    )
    strict = _preferred(
        [r for r in results if r[0] in filters.strict_weights], True, negatives, filters, lambda r: (-r[2],)
    )
    return {"broad": broad[:3], "strict": strict[:3]}


def _wilson_low(successes: int, n: int, level: float) -> float:
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p = successes / n
    return float((p + z * z / (2 * n) - z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (1 + z * z / n))


def greedy_path(
    present: sparse.csc_matrix,
    positive: np.ndarray,
    weight: float,
    max_keywords: int,
    penalty: float = 0.0,
    by_row: sparse.csr_matrix | None = None,
    class_sizes: tuple[int, int] | None = None,
) -> list[int]:
    """Columns in the order the greedy rule adds them, while a column still gains.

    `penalty` charges every keyword that many extra false matches, so a keyword
    must find more of the category's CVs to enter (fewer, broader keywords).
    `by_row` is `present` as CSR, when the caller has it (several paths over the same CVs). `class_sizes` (positive,
    negative): what the found and false matches are shares of, when `present` holds only some of the CVs.
    """
    n_positive, n_negative = class_sizes or (max(positive.sum(), 1), max((~positive).sum(), 1))
    present = present.tocsc()
    by_row = present.tocsr() if by_row is None else by_row
    # per column, the not-yet-matched CVs it contains, in and out of the category: exact integer counts, decreased
    # by what each pick newly matches (not recomputed), so that a gain of exactly 0 stays 0
    found = present.T @ positive.astype(np.float64)
    false = present.T @ (~positive).astype(np.float64)
    covered = np.zeros(len(positive), dtype=bool)
    path: list[int] = []
    for _ in range(min(max_keywords, present.shape[1])):
        gain = found / n_positive - weight * (false + penalty) / n_negative
        gain[path] = -np.inf
        best = int(np.argmax(gain))
        if gain[best] <= 0:
            break
        path.append(best)
        rows = present.indices[present.indptr[best] : present.indptr[best + 1]]
        newly = rows[~covered[rows]]
        covered[newly] = True
        found -= by_row[newly].T @ positive[newly].astype(np.float64)
        false -= by_row[newly].T @ (~positive[newly]).astype(np.float64)
    return path
