"""What counts as a candidate keyword of a text: an n-gram of its tokens, stop words removed, as KeyBERT's
CountVectorizer makes them.

Extraction picks keywords among a text's candidates (`candidate_vectorizer`), scoring finds keywords in texts by the
same tokens (`TextTokens`), and the extraction cache checks that a stored keyword is a candidate of its CV
(`CandidateText`): one definition for all three.
"""

from __future__ import annotations

import re

from ml_headcount.config import ExtractionSettings
from ml_headcount.extraction.stopwords import study_stop_words

_DEFAULT_TOKEN_PATTERN = r"(?u)\b\w\w+\b"
_RUNS_OF_TWO_OR_MORE = re.compile(r"\w\w+")


def stop_words(settings: ExtractionSettings) -> list[str] | None:
    """The stop words candidates may not contain (sorted), or None for none: the chosen set plus the extra ones."""
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


class TextTokens:
    """The candidate vectorizer's preprocessing, tokenizer and stop words, the tokenizer a plain regex where the
    vectorizer's default token pattern allows (the same tokens, maximal runs of 2+ word characters, faster)."""

    def __init__(self, extraction: ExtractionSettings):
        vectorizer = candidate_vectorizer(extraction)
        self.preprocess = vectorizer.build_preprocessor()
        self.tokenize = vectorizer.build_tokenizer()
        if vectorizer.token_pattern == _DEFAULT_TOKEN_PATTERN:
            self.tokenize = _RUNS_OF_TWO_OR_MORE.findall
        self.stop = frozenset(vectorizer.get_stop_words() or ())


class CandidateText:
    """A text as extraction's CountVectorizer sees it: its tokens after stop words, joined by single spaces.

    Every keyword extraction can pick from a text is an n-gram of those tokens,
    so it occurs in `joined(text)` between spaces (`holds`), and a text with
    fewer than `ngram_min` of them has no candidate at all: what the extraction
    cache checks a cached keyword against."""

    def __init__(self, extraction: ExtractionSettings):
        tokens = TextTokens(extraction)
        self._preprocess, self._tokenize, self._stop = tokens.preprocess, tokens.tokenize, tokens.stop
        self.ngram_min, self.ngram_max = extraction.ngram_min, extraction.ngram_max

    def joined(self, text: str) -> str:
        """' token token ... ' (leading and trailing space); ' ' when the text has no candidate."""
        stop = self._stop
        tokens = [t for t in self._tokenize(self._preprocess(text)) if t not in stop]
        return f" {' '.join(tokens)} " if len(tokens) >= self.ngram_min else " "

    def holds(self, joined: str, keyword: str) -> bool:
        """Whether `keyword` is a candidate of the text `joined` came from."""
        return self.ngram_min <= keyword.count(" ") + 1 <= self.ngram_max and f" {keyword} " in joined
