"""KeyBERT's keywords per CV, batched per shard: the extractor, encoders, MMR, fast mode's vectors, the keyword cache.

What other packages use, by module; imported on first use, so importing the package does no work.
"""

from ml_headcount._exports import exported

__all__, __getattr__ = exported(
    __name__,
    {
        "cache": ["Shard", "cache_prefix"],
        "encoders": ["model_digest"],
        "extractor": ["KeywordExtractor", "candidate_vectorizer", "keywords_table"],
    },
)
