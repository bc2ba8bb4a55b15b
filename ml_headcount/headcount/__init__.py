"""From noisy annotators to per-organisation headcounts with honest uncertainty.

What other packages use, by module; imported on first use, so importing the package does no work.
"""

from ml_headcount._exports import exported

__all__, __getattr__ = exported(
    __name__,
    {
        "annotators": ["MISSING", "PatternSpace", "annotator_values", "choose_annotators", "code_likelihoods"],
        "count_tables": ["count_evidence", "read_count_data"],
        "keyword_annotators": ["keyword_values"],
        "evidence": ["PatternEvidence", "group_profiles"],
        "model": ["bootstrap_joints", "headcount_draws", "summarise"],
        "population_rates": ["RateModel"],
        "prevalence_prior": ["Prior"],
        "tables": [
            "Estimate",
            "Population",
            "Validation",
            "estimate",
            "read_counts",
            "read_patterns",
            "read_population",
            "read_validation",
        ],
    },
)
