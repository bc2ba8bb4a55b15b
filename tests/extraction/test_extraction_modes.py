"""Exact mode gives KeyBERT's keywords, fast mode gives well-formed ones, and the cache keys tell them apart.

Speed is measured in benchmarks/extraction.py, never here.
"""

from __future__ import annotations

import numpy as np
import pytest

from ml_headcount.config import ExtractionSettings, IngestSettings
from ml_headcount.corpus.ingest import ingest_table
from ml_headcount.errors import UserError
from ml_headcount.extraction import extractor as keywords
from ml_headcount.extraction import mmr, static_vectors
from ml_headcount.extraction.cache import cache_key
from ml_headcount.extraction.candidates import candidate_vectorizer, stop_words
from ml_headcount.extraction.embedding_cache import EmbeddingCache

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def typical_cvs(rated_cvs) -> list[str]:
    """20 real CVs around the median length, cleaned as the pipeline cleans them: hundreds of candidates each,
    several longer than the model's 256 tokens, so screening and truncation are both exercised."""
    cleaned = ingest_table(rated_cvs.copy(), "rated_cvs.csv", IngestSettings()).cvs
    by_length = cleaned.assign(length=cleaned["text"].str.len()).sort_values("length", ignore_index=True)
    middle = len(by_length) // 2
    return by_length.iloc[middle - 10 : middle + 10]["text"].tolist()


@pytest.fixture(scope="module")
def extractor() -> keywords.KeywordExtractor:
    return keywords.KeywordExtractor(ExtractionSettings())


@pytest.fixture(scope="module")
def keybert_keywords(typical_cvs) -> list[list[tuple[str, float]]]:
    """KeyBERT's own keywords for the typical CVs with the default settings, computed once."""
    return keybert_per_cv(typical_cvs, ExtractionSettings())


def keybert_per_cv(texts: list[str], settings: ExtractionSettings) -> list[list[tuple[str, float]]]:
    """The study's method: one plain KeyBERT call per CV on the sentence-transformers model."""
    from keybert import KeyBERT

    model = KeyBERT(model=keywords.reference_model(settings))
    return [
        model.extract_keywords(
            text,
            keyphrase_ngram_range=(settings.ngram_min, settings.ngram_max),
            stop_words=stop_words(settings),
            top_n=settings.top_n,
            use_mmr=settings.use_mmr,
            diversity=settings.diversity,
        )
        for text in texts
    ]


def assert_same_keywords(got, want, texts=None, extractor=None):
    """Same keywords in the same order with the same 4-decimal scores, as KeyBERT rounds them.

    One exception, checked, not assumed: a score whose exact similarity lies on a rounding tie (within 2e-6 of the
    midpoint between two 4-decimal values) may round to the other side. Float32 sums in another order (another CPU's
    BLAS kernels: on this project's AMD EPYC machines 1 of the 600 scores below) move such a value by ~1e-7, and
    KeyBERT's own score of it is no more exact than ours. Any other difference, or a tie the test cannot verify
    (no `extractor`), fails.
    """
    assert [[k for k, _ in cv] for cv in got] == [[k for k, _ in cv] for cv in want], "the same keywords, in order"
    for index, (ours, theirs) in enumerate(zip(got, want, strict=True)):
        for (keyword, score), (_, reference) in zip(ours, theirs, strict=True):
            if score == reference:
                continue
            assert extractor is not None and abs(score - reference) < 1.5e-4, (keyword, score, reference)
            doc, phrase = extractor.embed([texts[index], keyword])
            exact = float(doc @ phrase)
            assert abs(exact - (score + reference) / 2) < 2e-6, (
                f"{keyword!r}: {score} vs KeyBERT's {reference}, exact {exact}"
            )


def test_exact_mode_equals_keybert_on_typical_cvs(typical_cvs, extractor, keybert_keywords):
    candidates = [len(candidate_vectorizer(extractor.settings).fit([t]).vocabulary_) for t in typical_cvs]
    assert min(candidates) > 5 * extractor.settings.top_n, "each CV has far more candidates than picks"
    tokens = extractor._encoder(extractor.settings.precision).tokenizer(typical_cvs)["input_ids"]
    assert sum(len(t) > 256 for t in tokens) >= 5, "several CVs are truncated by the model, as KeyBERT truncates them"
    assert_same_keywords(extractor.extract(typical_cvs), keybert_keywords, typical_cvs, extractor)
    assert extractor.fallbacks == 0


def test_bfloat16_screening_equals_keybert_and_embeds_few_candidates_in_float32(typical_cvs, keybert_keywords):
    # PyTorch's bfloat16 autocast gives real bfloat16 errors on any CPU (OpenVINO needs bfloat16 units for that)
    extractor = keywords.KeywordExtractor(ExtractionSettings(inference_backend="torch"), device="cpu")
    assert extractor.screen_precision == "bfloat16"
    assert_same_keywords(extractor.extract(typical_cvs[:4]), keybert_keywords[:4])
    decided, screened = extractor._phrases("float32"), extractor._phrases("bfloat16")
    assert decided.misses < screened.misses / 3, "most candidates were only screened, never embedded in float32"
    assert extractor.fallbacks == 0, "the measured screening error stayed within the margin"


def test_a_margin_below_the_measured_error_falls_back_and_stays_exact(typical_cvs, keybert_keywords):
    # 1e-6 is far below bfloat16's error: screening with it could pick wrongly, so the shard is decided again unscreened
    extractor = keywords.KeywordExtractor(
        ExtractionSettings(screen_margin=1e-6, inference_backend="torch"), device="cpu"
    )
    got = extractor.extract(typical_cvs[:4])
    assert extractor.fallbacks == 1
    assert_same_keywords(got, keybert_keywords[:4])


def test_top_n_without_mmr_equals_keybert(typical_cvs):
    settings = ExtractionSettings(use_mmr=False)
    texts = typical_cvs[:4]
    assert_same_keywords(keywords.KeywordExtractor(settings).extract(texts), keybert_per_cv(texts, settings))


def test_fast_mode_returns_top_n_of_each_cvs_candidates_without_embedding_any(typical_cvs):
    # which candidates it picks is judged by the lists learned from them (benchmarks/extraction.py), not here
    settings = ExtractionSettings(mode="fast")
    texts = typical_cvs[:4]
    extractor = keywords.KeywordExtractor(settings)
    for text, found in zip(texts, extractor.extract(texts), strict=True):
        candidates = set(candidate_vectorizer(settings).fit([text]).get_feature_names_out())
        words = [k for k, _ in found]
        scores = [s for _, s in found]
        assert len(words) == settings.top_n and len(set(words)) == len(words)
        assert set(words) <= candidates
        assert scores == sorted(scores, reverse=True) and all(-1 <= s <= 1 for s in scores)
    assert not extractor._phrase_caches, "no candidate went through the transformer"


def test_static_phrase_vectors_are_near_the_models_own(extractor):
    phrases = ["machine learning", "deep neural networks", "project management", "customer service"]
    tokenizer, tokens = extractor._static_tokens()
    phrase_words, words = static_vectors.phrase_word_matrix(phrases)
    static = static_vectors.static_phrase_vectors(phrase_words, static_vectors.word_vectors(words, tokenizer, tokens))
    similarity = static @ extractor.embed(phrases).T
    assert (np.argmax(similarity, axis=1) == np.arange(len(phrases))).all(), "each phrase is nearest its own embedding"
    assert similarity.diagonal().min() > 0.6


def test_token_vectors_are_computed_once_and_then_read_from_disk(tmp_path, extractor):
    tokenizer = extractor._encoder(extractor.settings.precision).tokenizer
    calls = []

    def encode(texts):
        calls.append(len(texts))
        return np.ones((len(texts), 3), dtype=np.float32)

    path = tmp_path / "tokens.npy"
    first = static_vectors.token_vectors(path, encode, tokenizer)
    second = static_vectors.token_vectors(path, encode, tokenizer)
    assert calls == [len(tokenizer)] and first.shape == (len(tokenizer), 3)
    np.testing.assert_array_equal(first, second)
    assert [p.name for p in tmp_path.iterdir()] == ["tokens.npy"], "no partial file is left behind"


def test_a_model_too_large_for_cpu_is_refused_up_front():
    with pytest.raises(keywords.ModelTooLargeError, match="on CPU it would run for hours"):
        keywords.KeywordExtractor(ExtractionSettings(max_cpu_weights_gb=0.01), device="cpu")
    with pytest.raises(UserError, match="float16 is for GPUs"):
        keywords.KeywordExtractor(ExtractionSettings(precision="float16"), device="cpu")


def test_cache_key_differs_between_modes_and_ignores_the_other_modes_knob():
    exact, fast = ExtractionSettings(), ExtractionSettings(mode="fast")
    assert cache_key(exact) != cache_key(fast)
    assert cache_key(ExtractionSettings(mode="fast", screen_margin=0.3)) == cache_key(fast)
    assert cache_key(ExtractionSettings(screen_margin=0.3)) != cache_key(exact)
    assert cache_key(ExtractionSettings(inference_backend="torch", embedding_cache_size=10)) == cache_key(exact)
    assert cache_key(ExtractionSettings(mode="fast", top_n=10)) != cache_key(fast)


def test_changing_fast_mode_leaves_exact_modes_cache_key(monkeypatch):
    exact, fast = cache_key(ExtractionSettings()), cache_key(ExtractionSettings(mode="fast"))
    monkeypatch.setattr("ml_headcount.extraction.cache._shards.FAST_MODE_VERSION", "next")
    assert cache_key(ExtractionSettings()) == exact
    assert cache_key(ExtractionSettings(mode="fast")) != fast


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("seed", range(5))
def test_vectorised_mmr_equals_keyberts(seed):
    from keybert._mmr import mmr as keybert_mmr

    rng = np.random.default_rng(seed)
    vectors, doc = unit(rng.normal(size=(300, 16))), unit(rng.normal(size=(1, 16)))
    words = [f"w{i}" for i in range(300)]
    indices, similarity = mmr.mmr(doc[0], vectors, top_n=30, diversity=0.5)
    assert [(words[i], round(float(s), 4)) for i, s in zip(indices, similarity)] == keybert_mmr(
        doc, vectors, words, 30, 0.5
    )


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
