"""Which keyword lists a text matches, fast, with exactly the tokenisation scoring uses.

`scoring.keyword_counts` finds keywords with the extraction's CountVectorizer:
lowercase, token pattern, stop words removed, then n-grams of the remaining
tokens. Building every n-gram string of every text is the slow part of that,
so the matcher does the same in integers: each chunk's tokens become ids
(0 for a token no keyword uses; stop words dropped first, as the vectorizer
does), the ids of each n-token window are packed into one integer, and one
sorted lookup of all windows of the chunk finds the keywords. A text matches a
list when it contains any of the list's keywords.
"""

from __future__ import annotations

import re
from itertools import chain

import numpy as np
from scipy import sparse

from ml_headcount.config import ExtractionSettings
from ml_headcount.keywords import candidate_vectorizer

_DEFAULT_TOKEN_PATTERN = r"(?u)\b\w\w+\b"
_RUNS_OF_TWO_OR_MORE = re.compile(r"\w\w+")


class KeywordMatcher:
    """Built from named keyword lists (`"<category>/<list>"` -> keywords) and the run's extraction settings."""

    def __init__(self, lists: dict[str, list[str]], extraction: ExtractionSettings):
        vectorizer = candidate_vectorizer(extraction)
        self.names = list(lists)
        self._preprocess = vectorizer.build_preprocessor()
        self._tokenize = vectorizer.build_tokenizer()
        if vectorizer.token_pattern == _DEFAULT_TOKEN_PATTERN:
            self._tokenize = _RUNS_OF_TWO_OR_MORE.findall  # the same tokens (maximal runs of 2+ word characters), faster
        keywords = sorted({k for words in lists.values() for k in words})
        token_lists = [k.split(" ") for k in keywords]
        # id per keyword token from 1; 0: a token no keyword uses; -1: a stop word
        self._token_id = {w: -1 for w in vectorizer.get_stop_words() or []}
        self._token_id.update({t: i for i, t in enumerate(sorted({t for tokens in token_lists for t in tokens}), start=1)})
        self._base = max(self._token_id.values(), default=0) + 1
        if keywords and self._base ** max(len(t) for t in token_lists) >= 2**63:
            raise ValueError("too many distinct keyword tokens to pack an n-gram into 64 bits")
        codes = np.array([self._pack([self._token_id[t] for t in tokens]) for tokens in token_lists], dtype=np.int64)
        order = np.argsort(codes)
        self._codes, self._keyword_of_code = codes[order], order
        self._lengths = sorted({len(t) for t in token_lists if extraction.ngram_min <= len(t) <= extraction.ngram_max})
        position = {k: i for i, k in enumerate(keywords)}
        membership = [(position[k], j) for j, words in enumerate(lists.values()) for k in set(words)]
        rows, cols = zip(*membership) if membership else ((), ())
        self._keyword_lists = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(keywords), len(self.names)))

    def _pack(self, ids: np.ndarray) -> int:
        code = 0
        for token_id in ids:
            code = code * self._base + int(token_id)
        return code

    def match(self, texts: list[str]) -> np.ndarray:
        """(len(texts), len(names)) bool: whether each text contains any keyword of each list."""
        if not len(self._codes) or not len(texts):
            return np.zeros((len(texts), len(self.names)), dtype=bool)
        tokens = [self._tokenize(self._preprocess(text)) for text in texts]
        token_id = self._token_id.get
        ids = np.fromiter((token_id(t, 0) for t in chain.from_iterable(tokens)), dtype=np.int64)
        doc = np.repeat(np.arange(len(texts)), [len(t) for t in tokens])
        kept = ids >= 0  # stop words (-1) leave the sequence before n-grams form, as in the vectorizer
        ids, doc = ids[kept], doc[kept]
        hit_docs, hit_keywords = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
        for n in self._lengths:
            if len(ids) < n:
                continue
            windows = len(ids) - n + 1
            code = ids[:windows].copy()
            useful = code > 0
            for offset in range(1, n):
                code = code * self._base + ids[offset : offset + windows]
                useful &= ids[offset : offset + windows] > 0
            useful &= doc[:windows] == doc[n - 1 :]  # the window lies within one text
            candidates = np.flatnonzero(useful)
            position = np.searchsorted(self._codes, code[candidates])
            position[position == len(self._codes)] = 0
            found = self._codes[position] == code[candidates]
            hit_docs.append(doc[candidates[found]])
            hit_keywords.append(self._keyword_of_code[position[found]])
        docs, keywords = np.concatenate(hit_docs), np.concatenate(hit_keywords)
        contains = sparse.csr_matrix((np.ones(len(docs)), (docs, keywords)), shape=(len(texts), self._keyword_lists.shape[0]))
        return (contains @ self._keyword_lists).toarray() > 0
