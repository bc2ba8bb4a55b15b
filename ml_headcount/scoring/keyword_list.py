"""A keyword list as the matchers and the dialects read it: keywords, any of which matches, and exclusions.

A module of its own, importing nothing: writing a query or resolving a run never imports the matchers' scikit-learn.
"""

from __future__ import annotations


class KeywordList(list):
    """A list's keywords, any of which matches, and its `exclusions`: a text containing one of them does not match
    (`(k1 OR k2 ...) AND NOT (e1 OR ...)`). It is the list of its keywords; a plain list has no exclusions."""

    def __init__(self, keywords=(), exclusions=()):
        super().__init__(keywords)
        self.exclusions = list(exclusions)


def exclusions_of(keywords: list[str]) -> list[str]:
    """A list's exclusions: none for a plain list of keywords."""
    return keywords.exclusions if isinstance(keywords, KeywordList) else []


def list_column(category: str, name: str, matcher: str = "product") -> str:
    """The column of a list's matches, wherever lists are matched (held-out matches, apply, the headcount's
    annotators): `<category>/<list>`, and `<category>/<list>@phrase` for phrase search."""
    return f"{category}/{name}" if matcher == "product" else f"{category}/{name}@{matcher}"
