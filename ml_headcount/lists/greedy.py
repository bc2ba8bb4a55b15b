"""The greedy growth of one keyword list and its exclusions.

The next keyword is the one whose not-yet-matched CVs add the most found CVs
of the category minus `w` times the false matches (each side as a share of its
class); a per-keyword penalty (extra false matches) keeps out keywords that
find only a few CVs. Exclusions grow by the same rule with the classes' roles
swapped.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import sparse

from ml_headcount.config import ListSettings
from ml_headcount.lists.eligibility import eligible_keywords
from ml_headcount.lists.evidence import KeywordEvidence


def grow_list(
    evidence: KeywordEvidence,
    category: str,
    vocabulary: list[str],
    list_settings: ListSettings,
    choice: tuple[float, float, int],
    max_exclusions: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Columns of a list's keywords and of its exclusions, learned from all of `evidence`'s CVs.

    Exclusions are grown by the same greedy rule with the roles of the classes swapped, over the CVs the
    keywords match: the next one removes the most false matches (times w) minus the found CVs it loses."""
    weight, penalty, size = choice
    columns = eligible_keywords(evidence, category, vocabulary, list_settings)
    positive = evidence.labels == category
    candidates = evidence.present[:, columns].tocsc()
    path = columns[greedy_path(candidates, positive, weight, size, penalty)]
    if not max_exclusions or not len(path):
        return path, path[:0]
    matched = np.asarray(evidence.present[:, path].sum(axis=1)).ravel() > 0
    complement = dataclasses.replace(evidence, labels=np.where(positive, "in", "out"))
    others = np.setdiff1d(eligible_keywords(complement, "out", vocabulary, list_settings), path)
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
