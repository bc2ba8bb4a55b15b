"""From noisy annotators to per-organisation headcounts with honest uncertainty."""

__all__ = [
    "annotator_columns",
    "annotator_evidence",
    "annotators",
    "columns",
    "counts",
    "estimate",
    "keyword_annotators",
    "model",
    "new_sample_rates",
    "population_rates",
    "predictive_checks",
    "prevalence_batches",
    "prevalence_integral",
    "prevalence_prior",
    "rate_spread",
    "report",
    "results",
]
