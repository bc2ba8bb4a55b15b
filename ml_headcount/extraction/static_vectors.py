"""Static phrase vectors: a cheap stand-in for embedding every candidate n-gram with the transformer.

Distilled once per model, in the spirit of Model2Vec: every token of the
model's vocabulary is embedded alone by the model itself, and the vectors are
kept on disk. A word's vector is the mean of its tokens' vectors, a phrase's
the normalised mean of its words' vectors. A shard's ~25k candidate n-grams
then cost a tokenisation of their ~4k distinct words and two sparse products,
instead of ~25k transformer passes; fast mode picks keywords on these vectors.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import sparse


def phrase_word_matrix(phrases: list[str]) -> tuple[sparse.csr_matrix, list[str]]:
    """(phrases x words) matrix of each word's share in the phrase, and the words (CountVectorizer joins n-grams with
    spaces)."""
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


def token_texts(tokenizer) -> list[str]:
    """Every vocabulary token as a text to embed alone: WordPiece's continuation mark dropped (`##ing` -> `ing`)."""
    tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    return [token.removeprefix("##") for token in tokens]


def token_vectors(path: Path, encode: Callable[[list[str]], np.ndarray], tokenizer) -> np.ndarray:
    """(vocabulary size, dim) vectors of the model's tokens, read from `path` or computed there once (~20 s on 2
    cores)."""
    if path.exists():
        return np.load(path)
    vectors = encode(token_texts(tokenizer)).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.stem}.{os.getpid()}.npy")
    np.save(partial, vectors)
    partial.replace(path)  # atomic: a concurrent reader sees no file or a complete one
    return vectors


def word_vectors(words: list[str], tokenizer, vectors: np.ndarray) -> np.ndarray:
    """Each word's mean token vector, as the model's tokenizer splits it (a word it cannot split gets zeros)."""
    ids = tokenizer(list(words), add_special_tokens=False)["input_ids"]
    lengths = np.fromiter((len(i) for i in ids), dtype=np.int64, count=len(ids))
    shares = np.repeat(1.0 / np.maximum(lengths, 1), lengths)
    matrix = sparse.csr_matrix(
        (shares, np.concatenate(ids or [[]]).astype(np.int64), np.concatenate([[0], np.cumsum(lengths)])),
        shape=(len(words), len(vectors)),
        dtype=np.float32,
    )
    return np.asarray(matrix @ vectors, dtype=np.float32)
