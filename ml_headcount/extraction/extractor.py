"""Keyword extraction: KeyBERT's keywords over a sentence-transformers model, one vocabulary per shard.

Candidates are KeyBERT's (the same CountVectorizer: ml_headcount.extraction.candidates); selection is KeyBERT's
MMR (ml_headcount.extraction.mmr) on embeddings a `KeywordExtractor` controls: cached
across shards, screened in reduced precision and decided in the configured
precision (exact mode), or static vectors of the candidates distilled from the
model's tokens (fast mode: the transformer embeds only the CVs). The extractor
owns its encoders, phrase caches and static vectors: one per process (local
backend) or per Modal container.
sentence-transformers and the inference backends cost seconds to import, so
they are imported inside the functions that need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ml_headcount.config import ExtractionSettings
from ml_headcount.errors import UserError
from ml_headcount.extraction import encoders, mmr, static_vectors
from ml_headcount.extraction.candidates import candidate_vectorizer
from ml_headcount.extraction.embedding_cache import EmbeddingCache

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

KEYWORD_COLUMNS = ["cv_id", "keyword", "score", "rank"]


class ModelTooLargeError(UserError):
    """A model too large to run on this machine's CPU in any useful time."""


def default_device() -> str:
    """The local backend's torch device when none is configured: the GPU when there is one."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def reference_model(settings: ExtractionSettings, device: str | None = None) -> SentenceTransformer:
    """The plain sentence-transformers model KeyBERT gets in the study's loop: the reference of benchmarks and tests.

    On a GPU it runs in the precision that decides (float16 for large models), so
    exact mode is compared with KeyBERT on the same model.
    """
    from sentence_transformers import SentenceTransformer

    device = device or settings.device or default_device()
    model = SentenceTransformer(encoders.model_path(settings.model), device=device)
    model.max_seq_length = settings.max_seq_length
    if settings.precision == "float16":
        model.half()
    return model


class KeywordExtractor:
    """Extracts keywords shard by shard with the same loaded model; embeds phrases for clustering with it too.

    `device` overrides the settings' (a Modal container passes its GPU: the
    client's device and CPU backend never decide where a container runs).
    """

    def __init__(self, settings: ExtractionSettings, device: str | None = None):
        self.settings = settings
        self.device = device or settings.device or default_device()
        self.backend = encoders.resolved_backend(settings.inference_backend, self.device)
        if settings.precision == "float16" and self.device == "cpu":
            raise UserError("extraction.precision float16 is for GPUs; on CPU use float32")
        self.screen_precision = encoders.screening_precision(self.device, self.backend, settings.precision)
        if self.device == "cpu":
            size = encoders.weights_gb(encoders.model_path(settings.model))
            if size > settings.max_cpu_weights_gb:
                raise ModelTooLargeError(
                    f"model {settings.model!r} has {size:.1f} GB of weights: on CPU it would run for hours. Run it on "
                    "a GPU (--backend modal, see docs/modal.md) or raise extraction.max_cpu_weights_gb"
                )
        self._encoders: dict[str, encoders.Encoder] = {}
        self._phrase_caches: dict[str, EmbeddingCache] = {}
        self._token_vectors: np.ndarray | None = None  # fast mode's static vectors of the model's vocabulary
        self.fallbacks = 0  # shards decided without screening because the measured screening error exceeded the margin

    @property
    def label(self) -> str:
        """Where and how the model runs, for manifests and logs."""
        return f"{self.device}/{self.backend}/{self.settings.precision}"

    def load(self) -> KeywordExtractor:
        """Load every encoder now (a Modal container does this once, in @modal.enter)."""
        for precision in {self.settings.precision, self.screen_precision}:
            self._encoder(precision)
        if self.settings.mode == "fast":
            self._static_tokens()
        return self

    def extract(self, texts: list[str]) -> list[list[tuple[str, float]]]:
        """Top-n keywords with their similarity to the CV, for each text, as KeyBERT returns them.

        One vocabulary and one embedding pass per shard; see docs/performance.md
        for how exact mode reproduces KeyBERT's keywords and what fast mode gives up.
        """
        if not texts:
            return []
        vectorizer = candidate_vectorizer(self.settings)
        try:
            counts = vectorizer.fit_transform(list(texts)).tocsr()
        except ValueError:  # no candidate in any text (all stop words): KeyBERT returns nothing per text
            return [[] for _ in texts]
        counts.sort_indices()  # candidates in vocabulary order, as KeyBERT visits them
        vocabulary = vectorizer.get_feature_names_out().tolist()
        candidates = [counts.indices[counts.indptr[i] : counts.indptr[i + 1]] for i in range(len(texts))]
        select = self._fast_selection if self.settings.mode == "fast" else self._exact_selection
        return [
            [(vocabulary[j], round(float(similarity), 4)) for j, similarity in zip(*picked)]
            for picked in select(list(texts), candidates, vocabulary)
        ]

    def embed(self, phrases: list[str]) -> np.ndarray:
        """L2-normalised embeddings in the deciding precision, so euclidean distance orders like cosine distance."""
        if not phrases:
            return np.zeros((0, 0), dtype=np.float32)
        return self._encoder(self.settings.precision).encode(list(phrases))

    def _exact_selection(self, texts, candidates, vocabulary):
        """Reduced-precision embeddings screen every candidate; the deciding precision picks
        (ml_headcount.extraction.mmr).

        The screening margin is an assumption about the reduced precision's
        error; every shard measures that error on the candidates it re-embeds and,
        where it exceeds the margin, decides again without screening.
        """
        doc_vectors = self._encoder(self.settings.precision).encode(texts)
        exact = self._phrases(self.settings.precision)
        if self.screen_precision == self.settings.precision:  # nothing cheaper to screen with here
            return self._select(doc_vectors, candidates, vocabulary, exact.embed(vocabulary), None, 0.0)[0]
        screen = self._phrases(self.screen_precision).embed(vocabulary)
        margin = self.settings.screen_margin
        picked, error = self._select(doc_vectors, candidates, vocabulary, screen, exact, margin)
        if error <= margin:
            return picked
        self.fallbacks += 1
        return self._select(doc_vectors, candidates, vocabulary, exact.embed(vocabulary), None, 0.0)[0]

    def _fast_selection(self, texts, candidates, vocabulary):
        """MMR on static phrase vectors (ml_headcount.extraction.static_vectors) against the transformer's CV vectors.

        The transformer embeds each CV once and no candidate: what a user gets
        from these keywords (the cross-validated quality of the keyword lists) is
        measured against exact mode's in benchmarks/extraction.py.
        """
        doc_vectors = self._encoder(self.screen_precision).encode(texts)
        phrase_words, words = static_vectors.phrase_word_matrix(vocabulary)
        tokenizer, token_vectors = self._static_tokens()
        static = static_vectors.static_phrase_vectors(
            phrase_words, static_vectors.word_vectors(words, tokenizer, token_vectors)
        )
        return self._select(doc_vectors, candidates, vocabulary, static, None, 0.0)[0]

    def _select(self, doc_vectors, candidates, vocabulary, vectors, refine: EmbeddingCache | None, margin: float):
        """Each CV's selection on `vectors`, a shard's at once; with `refine`, the candidates that may be picked are
        re-embedded by it. Returns the picks and the largest similarity error measured on the re-embedded
        candidates: |(screened - refined) . u| for u the CV's vector and the other re-embedded candidates, the
        quantity the margin bounds."""
        screened = refine is not None
        s = self.settings
        if s.use_mmr:
            selections = [
                mmr.mmr_selection(doc_vectors[i], vectors[c], s.top_n, s.diversity, screened, margin)
                for i, c in enumerate(candidates)
            ]
        else:
            selections = [
                mmr.top_similar_selection(doc_vectors[i], vectors[c], s.top_n, screened, margin)
                for i, c in enumerate(candidates)
            ]
        largest_error = 0.0

        def embed(asked: list[tuple[int, np.ndarray]]) -> list[np.ndarray]:
            nonlocal largest_error
            rows = np.concatenate([candidates[cv][local] for cv, local in asked])
            refined = np.split(
                refine.embed([vocabulary[j] for j in rows]), np.cumsum([len(local) for _, local in asked])[:-1]
            )
            for (cv, local), exact in zip(asked, refined):
                difference = exact - vectors[candidates[cv][local]]
                directions = np.vstack([doc_vectors[cv][None, :], exact])
                largest_error = max(largest_error, float(np.abs(difference @ directions.T).max()))
            return refined

        picked = [
            (candidates[cv][local], similarity)
            for cv, (local, similarity) in enumerate(mmr.run_together(selections, embed))
        ]
        return picked, largest_error

    def _encoder(self, precision: encoders.Precision):
        if precision not in self._encoders:
            s = self.settings
            self._encoders[precision] = encoders.load_encoder(
                s.model, s.max_seq_length, self.device, self.backend, precision, s.model_cache_dir, s.cpu_threads
            )
        return self._encoders[precision]

    def _static_tokens(self):
        """The model's tokenizer and its static token vectors, computed once per model and machine (kept on disk)."""
        encoder = self._encoder(self.screen_precision)
        if self._token_vectors is None:
            s = self.settings
            path = encoders.derived_model_file(
                encoders.model_path(s.model),
                "static-vectors",
                f"{self.backend}-{self.screen_precision}",
                "tokens.npy",
                s.model_cache_dir,
            )
            self._token_vectors = static_vectors.token_vectors(path, encoder.encode, encoder.tokenizer)
        return encoder.tokenizer, self._token_vectors

    def _phrases(self, precision: encoders.Precision) -> EmbeddingCache:
        """Phrase embeddings computed in this precision, kept across shards (a phrase's embedding is its text's)."""
        if precision not in self._phrase_caches:
            self._phrase_caches[precision] = EmbeddingCache(
                self._encoder(precision).encode, self.settings.embedding_cache_size
            )
        return self._phrase_caches[precision]


def keywords_table(cv_ids: list[str], results: list[list[tuple[str, float]]]) -> pd.DataFrame:
    """KeyBERT's (keyword, score) lists as one table (KEYWORD_COLUMNS), ranked from 1 within each CV."""
    rows = [
        (cv_id, keyword, float(score), rank)
        for cv_id, keywords in zip(cv_ids, results, strict=True)
        for rank, (keyword, score) in enumerate(keywords, start=1)
    ]
    table = pd.DataFrame(rows, columns=KEYWORD_COLUMNS)
    return table.astype({"cv_id": str, "keyword": str, "score": "float64", "rank": "int64"})
