"""What the learners see of a set of CVs: where every extracted keyword occurs in every CV, as sparse matrices.

`build_corpus` finds every keyword (and every run of its tokens) in every text
once; `corpus_evidence` takes the rows and keyword columns a learner works on,
so a training fold is a slice of the corpus, never a recount.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from ml_headcount.config import ExtractionSettings
from ml_headcount.corpus import employers
from ml_headcount.scoring import discriminative as scoring
from ml_headcount.scoring.phrase_matching import phrase_presence


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
    """The corpus of these CVs and their extracted keywords: each keyword, and each run of its tokens, in each text."""
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


@dataclass(frozen=True)
class KeywordEvidence:
    """What the selected learner sees of a set of CVs: labels and 0/1 (CV x keyword) matrices."""

    labels: np.ndarray
    present: sparse.csc_matrix  # keyword in the text
    extracted: sparse.csc_matrix  # keyword extracted from the CV
    parts: sparse.csr_matrix  # (keyword x part) incidence
    part_present: sparse.csr_matrix  # part in the text
    part_in_company: sparse.csr_matrix  # part inside a company field
    employers: np.ndarray
    phrase_present: sparse.csc_matrix  # keyword found by phrase search

    def rows(self, rows: np.ndarray) -> KeywordEvidence:
        """The evidence of the CVs at `rows` only (a training fold)."""
        return KeywordEvidence(
            self.labels[rows],
            self.present[rows],
            self.extracted[rows],
            self.parts,
            self.part_present[rows],
            self.part_in_company[rows],
            self.employers[rows],
            self.phrase_present[rows],
        )


def corpus_evidence(corpus: Corpus, rows: np.ndarray, columns: np.ndarray) -> KeywordEvidence:
    """What a learner sees of the corpus's CVs at `rows` and of its vocabulary's keywords at `columns`."""
    return KeywordEvidence(
        labels=corpus.cvs["category"].to_numpy()[rows],
        present=(corpus.counts[rows][:, columns] > 0).astype(np.float64).tocsc(),
        extracted=corpus.extracted[rows][:, columns].tocsc(),
        parts=corpus.parts[columns],
        part_present=corpus.part_present[rows],
        part_in_company=corpus.part_in_company[rows],
        employers=corpus.employers[rows],
        phrase_present=corpus.phrase_present[rows][:, columns].tocsc(),
    )
