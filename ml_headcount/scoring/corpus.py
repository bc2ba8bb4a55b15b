"""A run's keyword scores over all its CVs, in memory that follows the vocabulary, not the number of CVs.

Two passes over the run's tables, a batch at a time (`scoring` defines every term):
1. the extracted keywords: per category, the CVs each keyword was extracted
   from and their mean score (`scoring.keyword_tallies`); the vocabulary is every
   extracted keyword;
2. the CV texts: each batch's keyword counts (`KeywordCounter`, in worker
   processes when there are several batches) are added to `scoring.TextTotals`
   and kept on local disk, sparse, because the TF-IDF sums need the idf of the
   whole corpus: they are a pass over those counts, not over the texts again.

Each pass reports its CVs done, CVs/s and ETA through `log` (ml_headcount.progress).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

from ml_headcount.config import ExtractionSettings, ScoringSettings
from ml_headcount.io.parallel import ordered_map
from ml_headcount.progress import HEARTBEAT_S, Progress, reported
from ml_headcount.scoring import discriminative as scoring
from ml_headcount.scoring.matching import KeywordCounter

_TALLIES_SUMMED_EVERY = 16  # batches of keyword tallies held before they are summed into one
_worker_counter: KeywordCounter | None = None  # one per process that counts, built once by `_start_worker`


def corpus_scores(
    cv_batches: Iterable[pd.DataFrame],
    keyword_batches: Iterable[pd.DataFrame],
    category_of: pd.Series,
    extraction: ExtractionSettings,
    scoring_settings: ScoringSettings,
    workers: int,
    log: Callable[[str], None] | None = None,
    every: float = HEARTBEAT_S,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(category_keyword_stats, discriminative_keywords) of every CV.

    `cv_batches` yield columns text and category; `keyword_batches` the run's
    extracted keywords (cv_id, keyword, score), a CV's rows together; `category_of`
    maps every cv_id to its category. `log` hears each pass's progress every `every` s.
    """
    sizes = category_of.value_counts()
    tallies: list[pd.DataFrame] = []
    with reported(Progress("scoring, pass 1/2 (extracted keywords)", len(category_of)), log, every) as progress:
        last_cv = None
        for batch in keyword_batches:
            tallies.append(scoring.keyword_tallies(batch, category_of))
            if len(tallies) == _TALLIES_SUMMED_EVERY:
                tallies = [scoring.summed_tallies(tallies)]
            if len(batch):  # a CV whose rows straddle two batches is counted once
                progress.advance(batch["cv_id"].nunique() - int(batch["cv_id"].iloc[0] == last_cv))
                last_cv = batch["cv_id"].iloc[-1]
    stats = scoring.combined_stats(tallies, sizes)
    vocabulary = sorted(stats["keyword"].unique())
    categories = np.asarray(sorted(sizes.index))
    totals = scoring.TextTotals.empty(categories, len(vocabulary))
    with tempfile.TemporaryDirectory(prefix="ml-headcount-counts-") as scratch:
        kept_counts = []
        with reported(Progress("scoring, pass 2/2 (keywords in the texts)", len(category_of)), log, every) as progress:
            for i, (counts, doc_categories) in enumerate(_batch_counts(cv_batches, vocabulary, extraction, workers)):
                totals.add(counts, doc_categories)
                kept_counts.append((Path(scratch, f"{i}.npz"), doc_categories))
                sparse.save_npz(kept_counts[-1][0], counts, compressed=False)
                progress.advance(len(doc_categories))
        kept, idf = totals.tfidf_columns(scoring_settings)
        tfidf_sum = np.zeros((len(categories), len(kept)))
        for path, doc_categories in kept_counts:  # local, sparse counts: seconds where the texts took minutes
            tfidf_sum += scoring.tfidf_sums(sparse.load_npz(path), doc_categories, categories, kept, idf)
    return stats, scoring.discriminative_table(stats, totals, kept, tfidf_sum, vocabulary, scoring_settings)


def _batch_counts(
    cv_batches: Iterable[pd.DataFrame], vocabulary: list[str], extraction: ExtractionSettings, workers: int
) -> Iterator[tuple[sparse.csr_matrix, np.ndarray]]:
    """(keyword counts, categories) of each batch, in order."""
    stream = ((b["text"].tolist(), b["category"].to_numpy()) for b in cv_batches)
    yield from ordered_map(_count_in_worker, stream, workers, _start_worker, (vocabulary, extraction))


def _start_worker(vocabulary: list[str], extraction: ExtractionSettings) -> None:
    global _worker_counter
    _worker_counter = KeywordCounter(vocabulary, extraction)


def _count_in_worker(item: tuple[list[str], np.ndarray]) -> tuple[sparse.csr_matrix, np.ndarray]:
    texts, doc_categories = item
    return _worker_counter.counts(texts), doc_categories
