"""Which keywords separate the categories: discriminative scores over a whole corpus, exact keyword and phrase matching.

What other packages use, by module; imported on first use, so importing the package does no work.
"""

from ml_headcount._exports import exported

__all__, __getattr__ = exported(
    __name__,
    {
        "corpus": ["corpus_scores"],
        "keyword_list": ["KeywordList", "exclusions_of"],
        "matching": ["CandidateText", "KeywordMatcher", "exclusions_of"],
        "phrase_matching": ["PhraseMatcher", "SearchQuery", "phrase_of", "phrase_presence"],
    },
)
