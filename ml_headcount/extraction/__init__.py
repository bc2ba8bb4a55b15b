"""KeyBERT's keywords per CV, batched per shard: the extractor, encoders, MMR, fast mode's vectors, the keyword
cache."""

__all__ = ["candidates", "embedding_cache", "encoders", "extractor", "mmr", "static_vectors", "stopwords", "cache"]
