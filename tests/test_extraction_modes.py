"""Exact mode gives KeyBERT's keywords, fast mode gives well-formed ones, and the cache keys tell them apart.

Speed is measured in benchmarks/extraction.py, never here.
"""

from __future__ import annotations

import numpy as np
import pytest

from ml_headcount import keywords, mmr
from ml_headcount.config import ExtractionSettings, IngestSettings
from ml_headcount.embedding_cache import EmbeddingCache
from ml_headcount.ingest import ingest_table


@pytest.fixture(scope="module")
def short_cvs(rated_cvs) -> list[str]:
    """The three shortest real CVs, cleaned as the pipeline cleans them: few candidates, quick to embed."""
    cleaned = ingest_table(rated_cvs.copy(), "rated_cvs.csv", IngestSettings()).cvs
    return cleaned.assign(length=cleaned["text"].str.len()).nsmallest(3, "length")["text"].tolist()


def keybert_per_cv(texts: list[str], settings: ExtractionSettings) -> list[list[tuple[str, float]]]:
    """The study's method: one plain KeyBERT call per CV on the sentence-transformers model."""
    from keybert import KeyBERT

    model = KeyBERT(model=keywords.model_for(settings))
    return [
        model.extract_keywords(
            text, keyphrase_ngram_range=(settings.ngram_min, settings.ngram_max), stop_words=keywords.stop_words(settings),
            top_n=settings.top_n, use_mmr=settings.use_mmr, diversity=settings.diversity,
        )
        for text in texts
    ]


def assert_same_keywords(got, want):
    assert [[k for k, _ in cv] for cv in got] == [[k for k, _ in cv] for cv in want]
    for got_cv, want_cv in zip(got, want):
        np.testing.assert_allclose([s for _, s in got_cv], [s for _, s in want_cv], atol=1.5e-4)


@pytest.mark.parametrize("use_mmr", [True, False], ids=["mmr", "top-n"])
def test_exact_mode_equals_plain_keybert(short_cvs, use_mmr):
    settings = ExtractionSettings(use_mmr=use_mmr, device="cpu")
    assert_same_keywords(keywords.extract_keywords(short_cvs, settings), keybert_per_cv(short_cvs, settings))


def test_fast_mode_returns_top_n_of_each_cvs_candidates(short_cvs):
    settings = ExtractionSettings(mode="fast", top_n=10, device="cpu")
    for text, found in zip(short_cvs, keywords.extract_keywords(short_cvs, settings), strict=True):
        candidates = set(keywords.candidate_vectorizer(settings).fit([text]).get_feature_names_out())
        words = [k for k, _ in found]
        scores = [s for _, s in found]
        assert len(words) == min(10, len(candidates)) and len(set(words)) == len(words)
        assert set(words) <= candidates
        assert scores == sorted(scores, reverse=True) and all(-1 <= s <= 1 for s in scores)


def test_cache_key_differs_between_modes_and_ignores_the_other_modes_knob():
    exact, fast = ExtractionSettings(), ExtractionSettings(mode="fast")
    assert exact.cache_key() != fast.cache_key()
    assert ExtractionSettings(fast_margin=0.3).cache_key() == exact.cache_key()
    assert ExtractionSettings(mode="fast", screen_margin=0.3).cache_key() == fast.cache_key()
    assert ExtractionSettings(mode="fast", fast_margin=0.3).cache_key() != fast.cache_key()
    assert ExtractionSettings(inference_backend="torch", embedding_cache_size=10).cache_key() == exact.cache_key()


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("seed", range(5))
def test_vectorised_mmr_equals_keyberts(seed):
    from keybert._mmr import mmr as keybert_mmr

    rng = np.random.default_rng(seed)
    vectors, doc = unit(rng.normal(size=(300, 16))), unit(rng.normal(size=(1, 16)))
    words = [f"w{i}" for i in range(300)]
    indices, similarity = mmr.mmr(doc[0], vectors, top_n=30, diversity=0.5)
    assert [(words[i], round(float(s), 4)) for i, s in zip(indices, similarity)] == keybert_mmr(doc, vectors, words, 30, 0.5)


@pytest.mark.parametrize("seed", range(5))
def test_screened_mmr_picks_what_exact_vectors_pick_and_embeds_few(seed):
    rng = np.random.default_rng(seed)
    exact, doc = unit(rng.normal(size=(400, 16))), unit(rng.normal(size=(1, 16)))[0]
    approximate = unit(exact + rng.normal(scale=0.002, size=exact.shape))
    error = float(np.linalg.norm(approximate - exact, axis=1).max())
    embedded: list[int] = []

    def embed_exactly(indices: np.ndarray) -> np.ndarray:
        embedded.extend(indices.tolist())
        return exact[indices]

    want = mmr.mmr(doc, exact, top_n=20, diversity=0.5)
    got = mmr.mmr(doc, approximate, top_n=20, diversity=0.5, exact=embed_exactly, margin=error)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], atol=1e-6)  # a row-subset matmul may differ in the last bit
    assert len(embedded) == len(set(embedded)) < 400


def test_embedding_cache_encodes_each_phrase_once_and_stays_bounded():
    encoded: list[str] = []

    def encode(phrases):
        encoded.extend(phrases)
        return np.array([[len(p), 1.0] for p in phrases], dtype=np.float32)

    cache = EmbeddingCache(encode, max_entries=3)
    np.testing.assert_array_equal(cache.embed(["ab", "abc", "ab"])[:, 0], [2, 3, 2])
    cache.embed(["abc", "abcd"])
    assert encoded == ["ab", "abc", "abcd"]
    cache.embed(["x", "ab"])  # "x" evicts the least recently used, "abc"
    cache.embed(["abc"])
    assert encoded == ["ab", "abc", "abcd", "x", "abc"]
