"""Where keywords occur in texts, fast, with exactly the tokenisation extraction uses.

A keyword is what extraction's CountVectorizer makes of a text: lowercase,
token pattern, stop words removed, then n-grams of the remaining tokens.
Building every n-gram string of every text is the slow part of counting them
that way, so `KeywordCounter` does the same in integers: each batch's tokens
become ids (0 for a token no keyword uses; stop words dropped first, as the
vectorizer does); an n-token window is split into two halves of at most
ceil(n/2) tokens, each half's ids are packed into one integer and ranked among
the keywords' halves, and one hash lookup of the pair's code finds the
keyword. The counts equal `CountVectorizer(vocabulary=...).transform` (a test
compares them on real CVs). `KeywordMatcher` says which keyword lists a text
matches: a text matches a list when it contains any of the list's keywords.
"""

from __future__ import annotations

import math
from itertools import chain

import numpy as np
import pandas as pd
from scipy import sparse

from ml_headcount.config import ExtractionSettings
from ml_headcount.extraction.candidates import TextTokens
from ml_headcount.scoring.keyword_list import exclusions_of


class _Halves:
    """Exact codes of n-token windows: (rank of the first half, rank of the second half) among the keywords' halves."""

    def __init__(self, token_ids: np.ndarray, base: int):
        self.n, self.split, self.base = token_ids.shape[1], (token_ids.shape[1] + 1) // 2, base
        first, second = self._pack(token_ids[:, : self.split]), self._pack(token_ids[:, self.split :])
        # hash tables of the keywords' halves: one lookup per window half
        self.firsts, self.seconds = pd.Index(np.unique(first)), pd.Index(np.unique(second))
        self.codes = self._code(first, second)

    def _pack(self, ids: np.ndarray) -> np.ndarray:
        code = np.zeros(len(ids), dtype=np.int64)
        for column in range(ids.shape[1]):
            code = code * self.base + ids[:, column]
        return code

    def _code(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """The pair's code, or -1 where a half is no keyword's half."""
        first_rank, second_rank = self.firsts.get_indexer(first), self.seconds.get_indexer(second)
        return np.where((first_rank >= 0) & (second_rank >= 0), first_rank * len(self.seconds) + second_rank, -1)

    def window_codes(self, ids: np.ndarray, windows: np.ndarray) -> np.ndarray:
        """Codes of the windows starting at `windows` in the id sequence."""
        tokens = np.stack([ids[windows + offset] for offset in range(self.n)], axis=1)
        return self._code(self._pack(tokens[:, : self.split]), self._pack(tokens[:, self.split :]))


class KeywordCounter:
    """Occurrences of a fixed vocabulary of keywords in texts, as extraction's CountVectorizer counts them."""

    def __init__(self, vocabulary: list[str], extraction: ExtractionSettings):
        tokens = TextTokens(extraction)
        self.vocabulary = list(vocabulary)
        self._preprocess, self._tokenize, stop = tokens.preprocess, tokens.tokenize, tokens.stop
        token_lists = [k.split(" ") for k in self.vocabulary]
        # a keyword with a stop word, or with a length outside the n-gram range, is never an n-gram of a text
        countable = [
            i
            for i, t in enumerate(token_lists)
            if extraction.ngram_min <= len(t) <= extraction.ngram_max and not stop.intersection(t)
        ]
        # id per keyword token from 1; 0: a token no keyword uses; -1: a stop word
        self._token_id = {w: -1 for w in stop}
        self._token_id.update(
            {t: i for i, t in enumerate(sorted({t for k in countable for t in token_lists[k]}), start=1)}
        )
        base = len(self._token_id) + 1
        # in logarithms: settings read from a run's manifest need not be this code's, and an exact power of a
        # tampered ngram_max (100000000) would never finish
        if (extraction.ngram_max + 1) // 2 * math.log2(base) >= 63:
            raise ValueError(
                f"{base - 1} distinct keyword tokens: too many to pack half an {extraction.ngram_max}-gram into 64 bits"
            )
        self._by_length: dict[int, tuple[_Halves, pd.Index, np.ndarray]] = {}  # n -> halves, keyword codes, keywords
        for n in sorted({len(token_lists[k]) for k in countable}):
            keywords = np.array([k for k in countable if len(token_lists[k]) == n], dtype=np.int64)
            halves = _Halves(
                np.array([[self._token_id[t] for t in token_lists[k]] for k in keywords], dtype=np.int64), base
            )
            self._by_length[n] = (halves, pd.Index(halves.codes), keywords)

    def counts(self, texts: list[str]) -> sparse.csr_matrix:
        """(len(texts), len(vocabulary)) int32 occurrences of each keyword in each text."""
        docs, keywords = self._occurrences(texts)
        counts = sparse.csr_matrix(
            (np.ones(len(docs), dtype=np.int32), (docs, keywords)),
            shape=(len(texts), len(self.vocabulary)),
            dtype=np.int32,
        )
        counts.sum_duplicates()
        return counts

    def _occurrences(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(text, keyword) of every occurrence."""
        tokens = [self._tokenize(self._preprocess(text)) for text in texts]
        # each distinct token looked up once (a hash factorisation), not every occurrence
        codes, distinct = pd.factorize(
            np.fromiter(chain.from_iterable(tokens), dtype=object, count=sum(map(len, tokens)))
        )
        token_id = self._token_id.get
        ids = np.fromiter((token_id(t, 0) for t in distinct), dtype=np.int64, count=len(distinct))[codes]
        doc = np.repeat(np.arange(len(texts)), [len(t) for t in tokens])
        kept = ids >= 0  # stop words (-1) leave the sequence before n-grams form, as in the vectorizer
        ids, doc = ids[kept], doc[kept]
        found_docs, found_keywords = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
        for n, (halves, codes, keywords) in self._by_length.items():
            if len(ids) < n:
                continue
            starts = np.arange(len(ids) - n + 1)
            useful = doc[starts] == doc[starts + n - 1]  # the window lies within one text
            for offset in range(n):
                useful &= ids[starts + offset] > 0
            starts = starts[useful]
            position = codes.get_indexer(halves.window_codes(ids, starts))
            found = position >= 0
            found_docs.append(doc[starts[found]])
            found_keywords.append(keywords[position[found]])
        return np.concatenate(found_docs), np.concatenate(found_keywords)


class KeywordMatcher:
    """Built from named keyword lists (`"<category>/<list>"` -> keywords, a `KeywordList` with its exclusions)
    and the run's extraction settings."""

    def __init__(self, lists: dict[str, list[str]], extraction: ExtractionSettings):
        self.names = list(lists)
        keywords = sorted({k for words in lists.values() for k in [*words, *exclusions_of(words)]})
        self._counter = KeywordCounter(keywords, extraction)
        position = {k: i for i, k in enumerate(keywords)}

        def incidence(members: list[list[str]]) -> sparse.csr_matrix:
            pairs = [(position[k], j) for j, words in enumerate(members) for k in set(words)]
            rows, cols = zip(*pairs) if pairs else ((), ())
            return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(keywords), len(self.names)))

        self._keyword_lists = incidence(list(lists.values()))
        self._exclusions = incidence([exclusions_of(words) for words in lists.values()])

    def match(self, texts: list[str]) -> np.ndarray:
        """(len(texts), len(names)) bool: whether each text contains any keyword of each list and none of its
        exclusions."""
        if not self._keyword_lists.shape[0] or not len(texts):
            return np.zeros((len(texts), len(self.names)), dtype=bool)
        counts = self._counter.counts(texts)
        return ((counts @ self._keyword_lists).toarray() > 0) & ~((counts @ self._exclusions).toarray() > 0)
