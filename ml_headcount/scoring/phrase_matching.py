"""Whole-word phrase search, as a search engine's index runs a quoted phrase: the instrument behind the queries.

A people-search tool does not see the product's n-grams. It splits a text into
tokens (runs of letters and digits; every other character separates), folds
case, keeps every token (no stop words, no minimum length) and matches a
quoted phrase when its tokens occur consecutively. `search_tokens` is that
tokenisation: a token is a run of letters and digits (Unicode categories L and
N), folded as SQLite FTS5's `unicode61` tokenizer folds (BMP characters only,
and not where the lowercase is two characters, U+0130). FTS5 with
`remove_diacritics 0 categories 'L* N*'` and every other character a separator
gives the same tokens (a test compares them on every rated CV); unconfigured,
engines differ in corners such as emoji (FTS5 keeps some inside tokens,
Lucene's StandardTokenizer makes each its own token). So
`"learning research"` does not match "learning and research", which the
product's matcher (stop words removed before n-grams) does, and `"ai"` matches
"AI" as a token but never "ai" inside "openai".

A `SearchQuery` is `(A OR B ...) AND NOT (C OR D ...)` over phrases; a text
matches when it contains any phrase of `any_of` and none of `none_of`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from scipy import sparse

_TOKEN = re.compile(r"[^\W_]+")  # a run of letters and digits: \w without the underscore


def _fold(token: str) -> str:
    """FTS5's case folding: BMP characters with a one-character lowercase are lowercased, nothing else."""
    if token.isascii():
        return token.lower()
    return "".join(c.lower() if ord(c) < 0x10000 and len(c.lower()) == 1 else c for c in token)


def search_tokens(text: str) -> list[str]:
    """The tokens a search index keeps of a text: letter-and-digit runs, case folded."""
    return [_fold(token) for token in _TOKEN.findall(text)]


def phrase_of(term: str) -> str:
    """A term as the phrase an index searches: its tokens joined by single spaces ('' when it has none)."""
    return " ".join(search_tokens(term))


@dataclass(frozen=True)
class SearchQuery:
    """`(any_of[0] OR any_of[1] ...) AND NOT (none_of[0] OR ...)`; the phrases as `phrase_of` writes them."""

    any_of: tuple[str, ...]
    none_of: tuple[str, ...] = ()

    @property
    def complexity(self) -> dict:
        """How big the query is: phrases, tokens, and the OR/AND/NOT operators it needs."""
        phrases = self.any_of + self.none_of
        operators = max(len(self.any_of) - 1, 0) + (max(len(self.none_of) - 1, 0) + 1 if self.none_of else 0)
        return {
            "phrases": len(phrases),
            "tokens": sum(len(p.split(" ")) for p in phrases),
            "operators": operators,
            "form": "any AND NOT any" if self.none_of else "any",
        }


def _alternation(phrases: tuple[str, ...]) -> re.Pattern | None:
    if not phrases:
        return None
    # longest first: an alternative must not stop a longer one from being tried (no effect on any-match, but clear)
    return re.compile(" (?:" + "|".join(re.escape(p) for p in sorted(set(phrases), key=len, reverse=True)) + ") ")


class PhraseMatcher:
    """Which of several named queries each text matches, with phrase semantics on the text's search tokens."""

    def __init__(self, queries: dict[str, SearchQuery]):
        self.names = list(queries)
        self._patterns = [(_alternation(q.any_of), _alternation(q.none_of)) for q in queries.values()]

    def match(self, texts: list[str]) -> np.ndarray:
        """(len(texts), len(names)) bool."""
        result = np.zeros((len(texts), len(self.names)), dtype=bool)
        for row, text in enumerate(texts):
            indexed = f" {' '.join(search_tokens(text))} "
            for column, (wanted, excluded) in enumerate(self._patterns):
                result[row, column] = (
                    wanted is not None
                    and wanted.search(indexed) is not None
                    and (excluded is None or excluded.search(indexed) is None)
                )
        return result


def phrase_presence(texts: list[str], terms: list[str]) -> sparse.csr_matrix:
    """(len(texts), len(terms)) 0/1: whether phrase search of each term (`phrase_of`) finds it in each text."""
    columns: dict[str, list[int]] = {}
    for j, term in enumerate(terms):
        columns.setdefault(phrase_of(term), []).append(j)
    lengths = sorted({len(p.split(" ")) for p in columns if p})
    rows, cols = [], []
    for i, text in enumerate(texts):
        tokens = search_tokens(text)
        found = {" ".join(tokens[k : k + n]) for n in lengths for k in range(len(tokens) - n + 1)}
        hits = [j for phrase in found.intersection(columns) for j in columns[phrase]]
        rows += [i] * len(hits)
        cols += hits
    return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(texts), len(terms)))
