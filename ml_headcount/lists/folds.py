"""Stratified, seeded fold assignment that does not depend on row order."""

from __future__ import annotations

import numpy as np


def stratified_folds(ids: np.ndarray, labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold number (0..k-1) of each row: within each label the ids are shuffled and dealt round-robin.

    Dealing continues from one label to the next, so fold sizes differ by at
    most one; shuffling the sorted ids makes the assignment independent of the
    input's row order.
    """
    ids = np.asarray(ids)
    labels = np.asarray(labels)
    folds = np.empty(len(ids), dtype=np.int64)
    rng = np.random.default_rng(seed)
    dealt = 0
    for label in sorted(set(labels.tolist())):
        members = np.flatnonzero(labels == label)
        members = members[np.argsort(ids[members], kind="stable")]
        members = members[rng.permutation(len(members))]
        folds[members] = (dealt + np.arange(len(members))) % k
        dealt += len(members)
    return folds


def stratified_sample(ids: np.ndarray, labels: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    """Rows (sorted) of a seeded sample of at most `max_rows`, stratified: one of ceil(n / max_rows) stratified folds;
    every row when there are no more than `max_rows`."""
    k = -(-len(ids) // max_rows)
    if k <= 1:
        return np.arange(len(ids))
    return np.flatnonzero(stratified_folds(ids, labels, k, seed) == 0)
