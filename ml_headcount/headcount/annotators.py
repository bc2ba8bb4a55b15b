"""Annotators as correlated noisy classifiers: their joint response pattern per class.

An annotator is any 0/1 label source (an LLM column, a keyword list). Its
values are encoded as int8: 1, 0, or MISSING (-1). The value rule: only 0 and 1
(also written 0.0/1.0, true/false as booleans) are values; everything else
(`REJECT`, `ERROR`, blank, any other string) is MISSING and is marginalised,
never imputed.

The model does not assume the annotators err independently. For the k chosen
annotators it keeps, per true class c, a distribution theta_c over all 2^k joint
response patterns. With little validation data most patterns are never seen,
so theta_c has a Dirichlet prior centred on the conditional-independence model
(the product of the per-annotator rates) with concentration `smoothing`:
posterior mean theta_c = (joint counts + smoothing * independent_c) / (n_c + smoothing).
Few data: close to independence; much data: the empirical joint. Validation
rows with missing values contribute fractionally (EM over the missing entries,
within their known class).

A profile whose annotators are partly missing has the likelihood of its
*ternary* pattern (each annotator 0, 1 or missing): the sum of theta_c over the
full patterns it is compatible with. Ternary codes are sum_j d_j * 3^j with d_j
in {0, 1, 2 = missing}.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

MISSING = -1
_TRUE_STRINGS = {"1", "1.0", "true"}
_FALSE_STRINGS = {"0", "0.0", "false"}
EM_ITERATIONS = 40


def annotator_values(column: pd.Series) -> np.ndarray:
    """The value rule: 0/1 (also 0.0/1.0, booleans, "true"/"false") are values; anything else is MISSING."""
    text = column.map(lambda v: "" if v is None or (isinstance(v, float) and v != v) else str(v).strip().lower())
    values = np.full(len(column), MISSING, dtype=np.int8)
    values[text.isin(_TRUE_STRINGS).to_numpy()] = 1
    values[text.isin(_FALSE_STRINGS).to_numpy()] = 0
    return values


@dataclass(frozen=True)
class PatternSpace:
    """The 2^k full and 3^k ternary response patterns of k annotators."""

    k: int

    @property
    def full(self) -> np.ndarray:
        """(2^k, k) bits of each full pattern; pattern index = sum_j bit_j * 2^j."""
        return ((np.arange(2**self.k)[:, None] >> np.arange(self.k)) & 1).astype(np.int8)

    @property
    def digits(self) -> np.ndarray:
        """(3^k, k) digits of each ternary code: 0, 1, or 2 = missing."""
        return (
            np.array(list(itertools.product(range(3), repeat=self.k)), dtype=np.int8)[:, ::-1]
            if self.k
            else np.zeros((1, 0), np.int8)
        )

    def compatible(self) -> np.ndarray:
        """(3^k, 2^k) 1.0 where the full pattern agrees with the ternary code on every observed annotator."""
        digits, full = self.digits, self.full
        agree = (digits[:, None, :] == 2) | (digits[:, None, :] == full[None, :, :])
        return agree.all(axis=2).astype(np.float64)

    def codes(self, values: np.ndarray) -> np.ndarray:
        """Ternary code of each row of an (n, k) int8 value matrix (MISSING -> digit 2)."""
        digits = np.where(values == MISSING, 2, values).astype(np.int64)
        return digits @ (3 ** np.arange(self.k, dtype=np.int64))

    @property
    def all_missing(self) -> int:
        return 3**self.k - 1


def fit_joint(space: PatternSpace, code_counts: np.ndarray, smoothing: float) -> np.ndarray:
    """theta: (draws, 2^k) posterior-mean joint pattern distribution of one class from (draws, 3^k) code counts."""
    compatible = space.compatible()
    digits = space.digits
    observed = code_counts @ (digits != 2)  # (draws, k)
    ones = code_counts @ (digits == 1)
    rate = (ones + 0.5) / (observed + 1.0)  # per-annotator rate, Jeffreys-smoothed
    bits = space.full.astype(np.float64)
    independent = np.exp(np.log(rate) @ bits.T + np.log1p(-rate) @ (1 - bits).T)  # (draws, 2^k)
    total = code_counts.sum(axis=1, keepdims=True)
    theta = independent.copy()
    for _ in range(EM_ITERATIONS):
        compatible_mass = theta @ compatible.T  # (draws, 3^k)
        ratio = np.divide(code_counts, compatible_mass, out=np.zeros_like(code_counts), where=code_counts > 0)
        expected = theta * (ratio @ compatible)  # fractional counts per full pattern
        theta = (expected + smoothing * independent) / (total + smoothing)
    return theta


def code_likelihoods(space: PatternSpace, theta: np.ndarray) -> np.ndarray:
    """(draws, 3^k) P(ternary code | class): theta summed over the compatible full patterns (marginalises MISSING)."""
    return theta @ space.compatible().T


def leave_one_out_score(space: PatternSpace, labels: np.ndarray, codes: np.ndarray, smoothing: float) -> float:
    """Mean leave-one-out log probability of each validation row's true class given its pattern.

    Removing one row removes exactly one unit of fractional count from the cells
    compatible with its code, so, with the EM responsibilities held fixed, its
    left-out likelihood is ((n_c + s) * L_c(t) - 1) / (n_c - 1 + s).
    """
    n_codes = 3**space.k
    likelihood, sizes = {}, {}
    for cls in (0, 1):
        counts = np.bincount(codes[labels == cls], minlength=n_codes).astype(np.float64)[None, :]
        likelihood[cls] = code_likelihoods(space, fit_joint(space, counts, smoothing))[0]
        sizes[cls] = counts.sum()
    scores = np.zeros(len(labels))
    for cls in (0, 1):
        rows = labels == cls
        n, s = sizes[cls], smoothing
        own = np.maximum(((n + s) * likelihood[cls][codes[rows]] - 1.0) / (n - 1.0 + s), 1e-12)
        other = likelihood[1 - cls][codes[rows]]
        prior_own = (n - 1) / (sizes[0] + sizes[1] - 1)
        scores[rows] = np.log(prior_own * own) - np.log(prior_own * own + (1 - prior_own) * other)
    return float(scores.mean())


def choose_annotators(
    labels: np.ndarray, values: np.ndarray, max_joint: int, smoothing: float, displaced: list | None = None
) -> list[int]:
    """Greedy forward selection of at most `max_joint` columns by leave-one-out class log probability.

    A joint pattern model over many annotators is not estimable from a few
    hundred labelled CVs (2^22 patterns), so it models the subset that predicts
    the label best out of sample; adding a column stops when it no longer helps.
    A column displaced by one it is nested with (`displaced`: displaced_by's answer, by default on the validation
    rows alone) is no candidate.
    """
    displaced = displaced_by(labels, values) if displaced is None else displaced
    candidates = [j for j in range(values.shape[1]) if displaced[j] is None]
    chosen: list[int] = []
    best = -np.inf
    while len(chosen) < min(max_joint, len(candidates)):
        scored = []
        for j in (j for j in candidates if j not in chosen):
            space = PatternSpace(len(chosen) + 1)
            scored.append((leave_one_out_score(space, labels, space.codes(values[:, chosen + [j]]), smoothing), j))
        score, column = max(scored)
        if score <= best + 1e-4:
            break
        chosen.append(column)
        best = score
    return chosen


def displaced_by(labels: np.ndarray, values: np.ndarray, shown_apart: np.ndarray | None = None) -> list[int | None]:
    """Per column, the column it is nested with (nested_annotators: a strict keyword list inside a broad one) whose
    prevalence a shift of its false-positive rate moves less (_shift_sensitivity), or None. `shown_apart` (k, k):
    pairs the population shows not to be nested (each matched a profile the other did not), which are not.

    Nested columns' false matches are the same people's, so an organisation whose rate differs from the
    population's shifts both, and where nothing else identifies the rates the model read the shift twice, as
    experts (docs/calibration.md, f). Of them the model holds the one least moved by such a shift. Nested on the
    validation rows alone is not enough where the population shows otherwise: a few hundred rows leave many pairs of
    LLMs nested by chance.
    """
    k = values.shape[1]
    apart = np.zeros((k, k), bool) if shown_apart is None else shown_apart
    moved = _shift_sensitivity(labels, values)
    order = sorted(range(k), key=lambda j: (moved[j], j))
    displaced: list[int | None] = [None] * k
    for rank, j in enumerate(order):
        displaced[j] = next(
            (c for c in order[:rank] if not apart[c, j] and nested_annotators(values[:, [c, j]]).any()), None
        )
    return displaced


def shown_apart(values: np.ndarray) -> np.ndarray:
    """(k, k) the pairs of columns that `values` (rows, k) show not to be nested: each said 1 on a row where the
    other said 0."""
    ones, zeros = (values == 1).astype(np.float32), (values == 0).astype(np.float32)
    one_only = ones.T @ zeros > 0
    return one_only & one_only.T


def _shift_sensitivity(labels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(k,) how far a column's prevalence, (share - f) / (s - f), moves per logit of shift in its false-positive rate
    f: f (1 - f) / (s - f), at the validation rates (infinite where it does not separate the classes)."""
    rated = values != MISSING
    s, f = (
        (((values == 1) & rated & rows).sum(axis=0) + 0.5) / ((rated & rows).sum(axis=0) + 1.0)
        for rows in (labels[:, None], ~labels[:, None])
    )
    return np.where(s > f, f * (1 - f) / np.maximum(s - f, 1e-12), np.inf)


def nested_annotators(values: np.ndarray) -> np.ndarray:
    """(k,) whether each annotator says 1 only where another says 1, on every validation row rated by both: a strict
    list inside a broad one. Such an annotator adds no second view of a profile: with the other, it is one source."""
    k = values.shape[1]
    nested = np.zeros(k, bool)
    for j, i in itertools.permutations(range(k), 2):
        both = (values[:, j] != MISSING) & (values[:, i] != MISSING)
        nested[j] |= bool(both.any() and not ((values[:, j] == 1) & (values[:, i] == 0) & both).any())
    return nested


def confusion_table(names: list[str], labels: np.ndarray, values: np.ndarray, other_values: list[int]) -> pd.DataFrame:
    """Per annotator: validation confusion counts, sensitivity, specificity, missing and non-0/1 values."""
    rows = []
    for j, name in enumerate(names):
        v = values[:, j]
        tp, fn = int(((v == 1) & labels).sum()), int(((v == 0) & labels).sum())
        tn, fp = int(((v == 0) & ~labels).sum()), int(((v == 1) & ~labels).sum())
        rows.append(
            {
                "annotator": name,
                "true_positive": tp,
                "false_negative": fn,
                "true_negative": tn,
                "false_positive": fp,
                "missing": int((v == MISSING).sum()),
                "other_values": other_values[j],
                "sensitivity": round(tp / (tp + fn), 4) if tp + fn else None,
                "specificity": round(tn / (tn + fp), 4) if tn + fp else None,
            }
        )
    return pd.DataFrame(rows)


def class_correlations(names: list[str], labels: np.ndarray, values: np.ndarray) -> pd.DataFrame:
    """Pairwise phi correlation of the annotators within each true class (rows where both are observed)."""
    rows = []
    for cls, name in ((1, "positive"), (0, "negative")):
        in_class = labels == bool(cls)
        for a, b in itertools.combinations(range(len(names)), 2):
            both = in_class & (values[:, a] != MISSING) & (values[:, b] != MISSING)
            x, y = values[both, a].astype(float), values[both, b].astype(float)
            phi = float(np.corrcoef(x, y)[0, 1]) if both.sum() > 1 and x.std() > 0 and y.std() > 0 else None
            rows.append(
                {
                    "class": name,
                    "annotator_a": names[a],
                    "annotator_b": names[b],
                    "rows": int(both.sum()),
                    "phi": None if phi is None else round(phi, 4),
                }
            )
    return pd.DataFrame(rows, columns=["class", "annotator_a", "annotator_b", "rows", "phi"])
