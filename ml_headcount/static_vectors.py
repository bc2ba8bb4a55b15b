"""Static phrase vectors: a cheap stand-in for embedding every candidate n-gram with the transformer.

A phrase's static vector is the normalised mean of its words' vectors, each
word embedded once by the real model (a word-level static embedding distilled
on the fly from the same model, cached across CVs and shards, in the spirit of
Model2Vec). A shard's ~25k candidate n-grams have only ~4k distinct words, so
this costs a fraction of embedding every n-gram; fast mode screens MMR with
these vectors and embeds with the transformer only the candidates it picks.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse


def phrase_word_matrix(phrases: list[str]) -> tuple[sparse.csr_matrix, list[str]]:
    """(phrases x words) matrix of each word's share in the phrase, and the words (CountVectorizer joins n-grams with spaces)."""
    word_index: dict[str, int] = {}
    rows, cols, weights = [], [], []
    for row, phrase in enumerate(phrases):
        words = phrase.split(" ")
        for word in words:
            rows.append(row)
            cols.append(word_index.setdefault(word, len(word_index)))
            weights.append(1.0 / len(words))
    matrix = sparse.csr_matrix((weights, (rows, cols)), shape=(len(phrases), len(word_index)), dtype=np.float32)
    return matrix, list(word_index)


def static_phrase_vectors(phrase_words: sparse.csr_matrix, word_vectors: np.ndarray) -> np.ndarray:
    """Unit vectors: each phrase's mean word vector."""
    vectors = np.asarray(phrase_words @ word_vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
