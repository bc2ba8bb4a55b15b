"""Which extracted keywords separate one category of CVs from the others.

Discriminative score of keyword k in category c (DESIGN.md §1):

    w * freq_c(k) / sum_c' freq_c'(k)  +  (1 - w) * tfidf_c(k) / (tfidf_c(k) + mean_{c' != c} tfidf_c'(k))

- freq_c(k): share of category c's CVs from which k was extracted. Shares, not
  counts, so that a large category does not win every keyword by its size.
- tfidf_c(k): mean TF-IDF of k over category c's CV texts. The TF-IDF
  vocabulary is the extracted keywords themselves, filtered with the study's
  min_df / max_df / max_features; a keyword outside it has a TF-IDF share of 0
  (as in the study, where only the most frequent n-grams had a TF-IDF column).
- specificity_c(k): of the CVs whose text contains k (extracted or not), the
  class-balanced share that belongs to c. It is what a keyword filter built
  from k would see, which the score alone does not say.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from ml_headcount.config import ExtractionSettings, ScoringSettings
from ml_headcount.keywords import candidate_vectorizer

DISCRIMINATIVE_COLUMNS = [
    "category", "keyword", "score", "frequency_share", "tfidf_share", "specificity",
    "frequency", "total_frequency", "mean_score", "rank",
]


def category_keyword_stats(cvs: pd.DataFrame, keywords: pd.DataFrame) -> pd.DataFrame:
    """Per (category, keyword): CVs it was extracted from, their share of the category, mean score."""
    sizes = cvs.groupby("category").size()
    joined = keywords.merge(cvs[["cv_id", "category"]], on="cv_id", how="inner", validate="many_to_one")
    stats = (
        joined.groupby(["category", "keyword"])
        .agg(frequency=("cv_id", "nunique"), mean_score=("score", "mean"))
        .reset_index()
    )
    stats["rate"] = stats["frequency"] / stats["category"].map(sizes)
    return stats.sort_values(["category", "frequency", "keyword"], ascending=[True, False, True], ignore_index=True)


def keyword_counts(texts: list[str], vocabulary: list[str], extraction: ExtractionSettings) -> sparse.csr_matrix:
    """Occurrences of each vocabulary keyword in each text, tokenised exactly as extraction did."""
    return candidate_vectorizer(extraction, vocabulary=vocabulary).transform(texts).tocsr()


def category_tfidf(counts: sparse.csr_matrix, categories: np.ndarray, scoring: ScoringSettings) -> np.ndarray:
    """Mean TF-IDF of each keyword per category: array (n_categories, n_keywords), 0 outside the TF-IDF vocabulary."""
    from sklearn.feature_extraction.text import TfidfTransformer

    n_docs, n_terms = counts.shape
    doc_freq = np.asarray((counts > 0).sum(axis=0)).ravel()
    max_df = scoring.tfidf_max_df * n_docs if isinstance(scoring.tfidf_max_df, float) else scoring.tfidf_max_df
    eligible = np.flatnonzero((doc_freq >= scoring.tfidf_min_df) & (doc_freq <= max_df))
    term_freq = np.asarray(counts.sum(axis=0)).ravel()
    # max_features keeps the most frequent terms, ties broken by column order, as scikit-learn does
    order = eligible[np.argsort(-term_freq[eligible], kind="stable")]
    kept = np.sort(order[: scoring.tfidf_max_features])

    result = np.zeros((len(np.unique(categories)), n_terms))
    if kept.size == 0:
        return result
    tfidf = TfidfTransformer().fit_transform(counts[:, kept])
    for row, category in enumerate(np.unique(categories)):
        result[row, kept] = np.asarray(tfidf[categories == category].mean(axis=0)).ravel()
    return result


def _other_share(values: np.ndarray) -> np.ndarray:
    """v_c / (v_c + mean of v over the other categories); 0 where both are 0."""
    n = values.shape[0]
    others = (values.sum(axis=0, keepdims=True) - values) / max(n - 1, 1)
    denominator = values + others
    return np.divide(values, denominator, out=np.zeros_like(values, dtype=float), where=denominator > 0)


def _share(values: np.ndarray) -> np.ndarray:
    """v_c / sum_c' v_c'; 0 where the sum is 0."""
    total = values.sum(axis=0, keepdims=True)
    return np.divide(values, total, out=np.zeros_like(values, dtype=float), where=total > 0)


def discriminative_keywords(
    cvs: pd.DataFrame,
    stats: pd.DataFrame,
    counts: sparse.csr_matrix,
    vocabulary: list[str],
    scoring: ScoringSettings,
) -> pd.DataFrame:
    """Score every (category, keyword) and keep the discriminative ones, best first."""
    categories = np.asarray(sorted(cvs["category"].unique()))
    doc_categories = cvs["category"].to_numpy()
    column = {k: i for i, k in enumerate(vocabulary)}
    sizes = np.array([(doc_categories == c).sum() for c in categories], dtype=float)

    rates = np.zeros((len(categories), len(vocabulary)))
    frequency = np.zeros_like(rates)
    mean_score = np.zeros_like(rates)
    row_of = {c: i for i, c in enumerate(categories)}
    rows = stats["category"].map(row_of).to_numpy()
    cols = stats["keyword"].map(column).to_numpy()
    rates[rows, cols] = stats["rate"].to_numpy()
    frequency[rows, cols] = stats["frequency"].to_numpy()
    mean_score[rows, cols] = stats["mean_score"].to_numpy()

    present = (counts > 0).astype(np.float64)
    text_rates = np.vstack([np.asarray(present[doc_categories == c].sum(axis=0)).ravel() for c in categories])
    text_rates /= sizes[:, None]

    frequency_share = _share(rates)
    tfidf_share = _other_share(category_tfidf(counts, doc_categories, scoring))
    score = scoring.frequency_weight * frequency_share + (1 - scoring.frequency_weight) * tfidf_share
    specificity = _share(text_rates)
    total_frequency = frequency.sum(axis=0)

    table = pd.DataFrame({
        "category": np.repeat(categories, len(vocabulary)),
        "keyword": np.tile(np.asarray(vocabulary, dtype=object), len(categories)),
        "score": score.ravel(),
        "frequency_share": frequency_share.ravel(),
        "tfidf_share": tfidf_share.ravel(),
        "specificity": specificity.ravel(),
        "frequency": frequency.ravel().astype(int),
        "total_frequency": np.tile(total_frequency, len(categories)).astype(int),
        "mean_score": mean_score.ravel(),
    })
    table = table[(table["frequency"] >= scoring.min_frequency) & (table["score"] > scoring.threshold)]
    table = table.sort_values(
        ["category", "score", "frequency", "keyword"], ascending=[True, False, False, True], ignore_index=True
    )
    table = table.groupby("category", sort=True).head(scoring.max_per_category).reset_index(drop=True)
    table["rank"] = table.groupby("category").cumcount() + 1
    return table[DISCRIMINATIVE_COLUMNS].round({c: 4 for c in ["score", "frequency_share", "tfidf_share", "specificity", "mean_score"]})
