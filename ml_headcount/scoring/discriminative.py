"""Which extracted keywords separate one category of CVs from the others.

Discriminative score of keyword k in category c (the study's formula; docs/usage.md, "How keywords are scored"):

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

Every term is a per-category sum over CVs, so scores need nothing per CV:
`keyword_tallies` and `TextTotals` add up batches of CVs, and a run of any
size is scored in memory that follows the vocabulary, not the CVs
(`corpus_scores` streams a run's tables through them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from ml_headcount.config import ExtractionSettings, ScoringSettings
from ml_headcount.scoring.matching import KeywordCounter

DISCRIMINATIVE_COLUMNS = [
    "category",
    "keyword",
    "score",
    "frequency_share",
    "tfidf_share",
    "specificity",
    "frequency",
    "total_frequency",
    "mean_score",
    "rank",
]


def keyword_tallies(keywords: pd.DataFrame, category_of: pd.Series) -> pd.DataFrame:
    """Per (category, keyword) of a batch of extracted keywords: CVs it was extracted from and the sum of their scores.

    `category_of` maps cv_id to category; keywords of other CVs are left out.
    """
    joined = keywords.assign(category=keywords["cv_id"].map(category_of)).dropna(subset=["category"])
    joined = joined.drop_duplicates(["cv_id", "keyword"])  # a keyword listed twice for one CV is still one CV
    return joined.groupby(["category", "keyword"], as_index=False).agg(
        frequency=("cv_id", "size"), score_sum=("score", "sum")
    )


def summed_tallies(tallies: list[pd.DataFrame]) -> pd.DataFrame:
    """Tallies of several batches as one (a running total keeps memory at the vocabulary's size)."""
    tallies = tallies or [pd.DataFrame(columns=["category", "keyword", "frequency", "score_sum"])]
    return pd.concat(tallies).groupby(["category", "keyword"], as_index=False)[["frequency", "score_sum"]].sum()


def combined_stats(tallies: list[pd.DataFrame], sizes: pd.Series) -> pd.DataFrame:
    """Per (category, keyword): CVs it was extracted from, their share of the category (`sizes`: CVs per category),
    mean score."""
    total = summed_tallies(tallies)
    total["mean_score"] = total.pop("score_sum") / total["frequency"]
    total["rate"] = total["frequency"] / total["category"].map(sizes)
    return total.sort_values(["category", "frequency", "keyword"], ascending=[True, False, True], ignore_index=True)


def category_keyword_stats(cvs: pd.DataFrame, keywords: pd.DataFrame) -> pd.DataFrame:
    """`combined_stats` of CVs and keywords held in memory."""
    return combined_stats(
        [keyword_tallies(keywords, cvs.set_index("cv_id")["category"])], cvs.groupby("category").size()
    )


def keyword_counts(texts: list[str], vocabulary: list[str], extraction: ExtractionSettings) -> sparse.csr_matrix:
    """Occurrences of each vocabulary keyword in each text, tokenised exactly as extraction did."""
    return KeywordCounter(vocabulary, extraction).counts(texts)


def _category_rows(doc_categories: np.ndarray, categories: np.ndarray) -> sparse.csr_matrix:
    """(n_categories x n_docs) 0/1: which category each document belongs to (sums over a category's documents)."""
    rows = np.searchsorted(categories, doc_categories)
    return sparse.csr_matrix((np.ones(len(rows)), (rows, np.arange(len(rows)))), shape=(len(categories), len(rows)))


@dataclass
class TextTotals:
    """What scores need of the CVs' texts, summed over batches of CVs: per category, the CVs containing each keyword;
    per keyword, the CVs containing it and its occurrences."""

    categories: np.ndarray  # sorted labels
    sizes: np.ndarray  # CVs per category
    present: np.ndarray  # (n_categories, n_keywords)
    doc_freq: np.ndarray
    term_freq: np.ndarray
    n_docs: int = 0

    @classmethod
    def empty(cls, categories: np.ndarray, n_keywords: int) -> TextTotals:
        return cls(
            categories,
            np.zeros(len(categories)),
            np.zeros((len(categories), n_keywords)),
            np.zeros(n_keywords),
            np.zeros(n_keywords),
        )

    def add(self, counts: sparse.csr_matrix, doc_categories: np.ndarray) -> None:
        present = (counts > 0).astype(np.float64)
        in_category = _category_rows(doc_categories, self.categories)
        self.sizes += np.asarray(in_category.sum(axis=1)).ravel()
        self.present += (in_category @ present).toarray()
        self.doc_freq += np.asarray(present.sum(axis=0)).ravel()
        self.term_freq += np.asarray(counts.sum(axis=0, dtype=np.float64)).ravel()
        self.n_docs += counts.shape[0]

    def tfidf_columns(self, scoring: ScoringSettings) -> tuple[np.ndarray, np.ndarray]:
        """The TF-IDF vocabulary (scikit-learn's min_df / max_df / max_features rules) and its smooth idf."""
        max_df = scoring.tfidf_max_df * self.n_docs if isinstance(scoring.tfidf_max_df, float) else scoring.tfidf_max_df
        eligible = np.flatnonzero((self.doc_freq >= scoring.tfidf_min_df) & (self.doc_freq <= max_df))
        # max_features keeps the most frequent terms, ties broken by column order, as scikit-learn does
        order = eligible[np.argsort(-self.term_freq[eligible], kind="stable")]
        kept = np.sort(order[: scoring.tfidf_max_features])
        return kept, np.log((1 + self.n_docs) / (1 + self.doc_freq[kept])) + 1


def tfidf_sums(
    counts: sparse.csr_matrix, doc_categories: np.ndarray, categories: np.ndarray, kept: np.ndarray, idf: np.ndarray
) -> np.ndarray:
    """(n_categories, len(kept)): sums over a batch's documents of their l2-normalised TF-IDF, as scikit-learn's
    TfidfTransformer computes it (raw counts, smooth idf)."""
    weighted = counts[:, kept].astype(np.float64).multiply(idf[None, :]).tocsr()
    norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
    weighted = sparse.diags(np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)) @ weighted
    return (_category_rows(doc_categories, categories) @ weighted).toarray()


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
    """`discriminative_table` of CVs held in memory, their `counts` of the vocabulary in hand."""
    categories = np.asarray(sorted(cvs["category"].unique()))
    doc_categories = cvs["category"].to_numpy()
    totals = TextTotals.empty(categories, len(vocabulary))
    totals.add(counts, doc_categories)
    kept, idf = totals.tfidf_columns(scoring)
    return discriminative_table(
        stats, totals, kept, tfidf_sums(counts, doc_categories, categories, kept, idf), vocabulary, scoring
    )


def discriminative_table(
    stats: pd.DataFrame,
    totals: TextTotals,
    kept: np.ndarray,
    tfidf_sum: np.ndarray,
    vocabulary: list[str],
    scoring: ScoringSettings,
) -> pd.DataFrame:
    """Score every (category, keyword) and keep the discriminative ones, best first.

    `tfidf_sum` holds the TF-IDF sums of the `kept` columns per category (`tfidf_sums` over all batches).
    """
    categories = totals.categories
    column = {k: i for i, k in enumerate(vocabulary)}
    rates = np.zeros((len(categories), len(vocabulary)))
    frequency = np.zeros_like(rates)
    mean_score = np.zeros_like(rates)
    rows = np.searchsorted(categories, stats["category"].to_numpy())
    cols = stats["keyword"].map(column).to_numpy()
    rates[rows, cols] = stats["rate"].to_numpy()
    frequency[rows, cols] = stats["frequency"].to_numpy()
    mean_score[rows, cols] = stats["mean_score"].to_numpy()

    sizes = np.maximum(totals.sizes, 1)[:, None]
    tfidf = np.zeros_like(rates)
    tfidf[:, kept] = tfidf_sum / sizes
    frequency_share = _share(rates)
    tfidf_share = _other_share(tfidf)
    score = scoring.frequency_weight * frequency_share + (1 - scoring.frequency_weight) * tfidf_share
    specificity = _share(totals.present / sizes)
    total_frequency = frequency.sum(axis=0)

    table = pd.DataFrame(
        {
            "category": np.repeat(categories, len(vocabulary)),
            "keyword": np.tile(np.asarray(vocabulary, dtype=object), len(categories)),
            "score": score.ravel(),
            "frequency_share": frequency_share.ravel(),
            "tfidf_share": tfidf_share.ravel(),
            "specificity": specificity.ravel(),
            "frequency": frequency.ravel().astype(int),
            "total_frequency": np.tile(total_frequency, len(categories)).astype(int),
            "mean_score": mean_score.ravel(),
        }
    )
    table = table[(table["frequency"] >= scoring.min_frequency) & (table["score"] > scoring.threshold)]
    table = table.sort_values(
        ["category", "score", "frequency", "keyword"], ascending=[True, False, False, True], ignore_index=True
    )
    table = table.groupby("category", sort=True).head(scoring.max_per_category).reset_index(drop=True)
    table["rank"] = table.groupby("category").cumcount() + 1
    return table[DISCRIMINATIVE_COLUMNS].round(
        {c: 4 for c in ["score", "frequency_share", "tfidf_share", "specificity", "mean_score"]}
    )
