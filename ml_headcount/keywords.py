"""Keyword extraction: KeyBERT's keywords over a sentence-transformers model, one vocabulary per shard.

Candidates are KeyBERT's (the same CountVectorizer); selection is KeyBERT's
MMR (ml_headcount.mmr) on embeddings this module controls: cached across
shards, screened in bfloat16 and decided in float32 (exact mode), or computed
only for the candidates that cheap static vectors make near-picks (fast mode).
sentence-transformers and the inference backends cost seconds to import, so
they are imported inside the functions that need them.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ml_headcount import encoders, mmr, static_vectors
from ml_headcount.config import DEFAULT_MODEL, ExtractionSettings
from ml_headcount.embedding_cache import EmbeddingCache
from ml_headcount.stopwords import study_stop_words

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# Part of every extraction cache key: bump when the same settings would give other keywords.
EXTRACTION_VERSION = "2"

KEYWORD_COLUMNS = ["cv_id", "keyword", "score", "rank"]


def resolve_device(requested: str | None) -> str:
    import torch

    return requested or ("cuda" if torch.cuda.is_available() else "cpu")


@functools.lru_cache(maxsize=2)
def load_model(name: str = DEFAULT_MODEL, device: str | None = None, max_seq_length: int = 256) -> "SentenceTransformer":
    """The plain sentence-transformers model, fp16 on CUDA: the study's reference (benchmarks, tests).

    The pipeline itself embeds through `ml_headcount.encoders` (see `load_encoders`).
    """
    from sentence_transformers import SentenceTransformer

    device = resolve_device(device)
    model = SentenceTransformer(encoders.model_path(name), device=device)
    model.max_seq_length = max_seq_length
    if device.startswith("cuda"):
        model.half()
    return model


def model_for(settings: ExtractionSettings) -> "SentenceTransformer":
    return load_model(settings.model, settings.device, settings.max_seq_length)


def load_encoders(settings: ExtractionSettings) -> None:
    """Load (once per process, so once per Modal container) every encoder extraction and clustering use."""
    for precision in ("float32", "bfloat16"):
        _encoder(settings, precision)


def stop_words(settings: ExtractionSettings) -> list[str] | None:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    base = {"study": study_stop_words(), "english": frozenset(ENGLISH_STOP_WORDS), "none": frozenset()}
    words = base[settings.stop_words] | {w.lower() for w in settings.extra_stop_words}
    return sorted(words) or None


def candidate_vectorizer(settings: ExtractionSettings, vocabulary=None):
    """The tokenisation that defines what a keyword is; scoring reuses it to find keywords in texts."""
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer(
        ngram_range=(settings.ngram_min, settings.ngram_max),
        stop_words=stop_words(settings),
        vocabulary=vocabulary,
    )


def extract_keywords(texts: list[str], settings: ExtractionSettings) -> list[list[tuple[str, float]]]:
    """Top-n keywords with their similarity to the CV, for each text, as KeyBERT returns them.

    One vocabulary and one embedding pass per shard; see docs/performance.md for
    how exact mode reproduces KeyBERT's keywords and what fast mode gives up.
    """
    if not texts:
        return []
    vectorizer = candidate_vectorizer(settings)
    try:
        counts = vectorizer.fit_transform(list(texts)).tocsr()
    except ValueError:  # no candidate in any text (all stop words): KeyBERT returns nothing per text
        return [[] for _ in texts]
    counts.sort_indices()  # candidates in vocabulary order, as KeyBERT visits them
    vocabulary = vectorizer.get_feature_names_out().tolist()
    candidates = [counts.indices[counts.indptr[i] : counts.indptr[i + 1]] for i in range(len(texts))]
    select = _fast_selection if settings.mode == "fast" else _exact_selection
    return [
        [(vocabulary[j], round(float(similarity), 4)) for j, similarity in zip(*picked)]
        for picked in select(list(texts), candidates, vocabulary, settings)
    ]


def _select_all(doc_vectors, vectors_per_cv, candidates, vocabulary, settings: ExtractionSettings, cache: EmbeddingCache, margin: float):
    """Each CV's keyword selection, screened: the candidates it may pick are embedded by `cache`, a shard's at once."""
    if settings.use_mmr:
        selections = [mmr.mmr_selection(d, v, settings.top_n, settings.diversity, True, margin) for d, v in zip(doc_vectors, vectors_per_cv)]
    else:
        selections = [mmr.top_similar_selection(d, v, settings.top_n, True, margin) for d, v in zip(doc_vectors, vectors_per_cv)]

    def embed(asked: list[tuple[int, np.ndarray]]) -> list[np.ndarray]:
        sizes = [len(local) for _, local in asked]
        phrases = [vocabulary[j] for cv, local in asked for j in candidates[cv][local]]
        return np.split(cache.embed(phrases), np.cumsum(sizes)[:-1])

    return [(candidates[cv][local], similarity) for cv, (local, similarity) in enumerate(mmr.run_together(selections, embed))]


def _exact_selection(texts, candidates, vocabulary, settings: ExtractionSettings):
    """bfloat16 embeddings screen every candidate; float32 ones decide (ml_headcount.mmr)."""
    doc_vectors = _encoder(settings, "float32").encode(texts)
    screen = phrase_embeddings(settings, "bfloat16").embed(vocabulary)
    exact = phrase_embeddings(settings, "float32")
    return _select_all(doc_vectors, [screen[c] for c in candidates], candidates, vocabulary, settings, exact, settings.screen_margin)


def _fast_selection(texts, candidates, vocabulary, settings: ExtractionSettings):
    """Static word-mean vectors screen every candidate; bfloat16 ones embed only near-picks (ml_headcount.static_vectors)."""
    transformer = phrase_embeddings(settings, "bfloat16")
    doc_vectors = _encoder(settings, "bfloat16").encode(texts)
    phrase_words, words = static_vectors.phrase_word_matrix(vocabulary)
    static = static_vectors.static_phrase_vectors(phrase_words, transformer.embed(words))
    # the margin is a heuristic here, not a bound: static vectors err by far more
    return _select_all(doc_vectors, [static[c] for c in candidates], candidates, vocabulary, settings, transformer, settings.fast_margin)


def _encoder(settings: ExtractionSettings, precision: encoders.Precision) -> encoders.Encoder:
    return encoders.encoder_for(settings, precision, resolve_device(settings.device))


_PHRASE_CACHES: dict[tuple[str, str], EmbeddingCache] = {}


def phrase_embeddings(settings: ExtractionSettings, precision: encoders.Precision) -> EmbeddingCache:
    """The process's phrase-embedding cache for these settings (their cache key) and precision."""
    key = (settings.cache_key(), precision)
    if key not in _PHRASE_CACHES:
        _PHRASE_CACHES[key] = EmbeddingCache(_encoder(settings, precision).encode, settings.embedding_cache_size)
    return _PHRASE_CACHES[key]


def keywords_table(cv_ids: list[str], results: list[list[tuple[str, float]]]) -> pd.DataFrame:
    rows = [
        (cv_id, keyword, float(score), rank)
        for cv_id, keywords in zip(cv_ids, results, strict=True)
        for rank, (keyword, score) in enumerate(keywords, start=1)
    ]
    table = pd.DataFrame(rows, columns=KEYWORD_COLUMNS)
    return table.astype({"cv_id": str, "keyword": str, "score": "float64", "rank": "int64"})


def embed_phrases(phrases: list[str], settings: ExtractionSettings) -> np.ndarray:
    """L2-normalised embeddings, so euclidean distance orders like cosine distance."""
    if not phrases:
        return np.zeros((0, 0), dtype=np.float32)
    # the float32 encoder extraction decides with: one loaded model serves both stages
    return _encoder(settings, "float32").encode(list(phrases))
