"""Which keywords separate the categories: discriminative scores over a whole corpus, exact keyword and phrase
matching."""

__all__ = [
    "corpus",
    "discriminative",
    "keyword_list",
    "matching",
    "phrase_matching",
    "stage",
]
