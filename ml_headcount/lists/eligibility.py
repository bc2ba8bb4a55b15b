"""Which keywords a list may use: found at several employers, agreed on by phrase search, naming no organisation."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from ml_headcount.config import ListSettings
from ml_headcount.lists.evidence import Corpus, KeywordEvidence, corpus_evidence


def organisation_name_share(corpus: Corpus, keywords: list[str], list_settings: ListSettings) -> float | None:
    """Share of a list's keywords that are organisation names, judged on all the corpus's CVs (None: an empty list)."""
    if not keywords:
        return None
    evidence = corpus_evidence(corpus, np.arange(len(corpus.cvs)), np.searchsorted(corpus.vocabulary, keywords))
    return round(float(organisation_names(evidence, keywords, list_settings).mean()), 4)


def organisation_names(evidence: KeywordEvidence, vocabulary: list[str], list_settings: ListSettings) -> np.ndarray:
    """Keywords that name an organisation, or contain a name: a run of their tokens that is found inside a
    company field of Experiences in more than `max_organisation_share` of the CVs containing it, or on the stop list."""
    containing = np.asarray(evidence.part_present.sum(axis=0)).ravel()
    inside = np.asarray(evidence.part_in_company.sum(axis=0)).ravel()
    share = np.divide(inside, containing, out=np.zeros(len(containing)), where=containing > 0)
    named = np.asarray(evidence.parts @ (share > list_settings.max_organisation_share).astype(np.float64)).ravel() > 0
    stopped = [f" {name.lower().strip()} " for name in list_settings.organisation_stop_list if name.strip()]
    listed = np.array([any(name in f" {keyword} " for name in stopped) for keyword in vocabulary], dtype=bool)
    return named | listed


def eligible_keywords(
    evidence: KeywordEvidence, category: str, vocabulary: list[str], list_settings: ListSettings
) -> np.ndarray:
    """Columns a list of `category` may use: extracted from and found in several of its CVs, at several employers,
    no organisation names."""
    positive = evidence.labels == category
    extracted = np.asarray(evidence.extracted[positive].sum(axis=0)).ravel()
    inside = evidence.present[positive].tocsc()
    found = np.asarray(inside.sum(axis=0)).ravel()
    ok = (
        (extracted >= list_settings.min_extracted)
        & (found >= list_settings.min_cvs)
        & (phrase_agreement(evidence) >= list_settings.min_phrase_agreement)
    )
    columns = np.flatnonzero(ok & ~organisation_names(evidence, vocabulary, list_settings))
    return columns[distinct_employers(inside[:, columns], evidence.employers[positive]) >= list_settings.min_employers]


def phrase_agreement(evidence: KeywordEvidence) -> np.ndarray:
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
