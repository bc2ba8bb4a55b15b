"""Keyword lists: learned with cross-validated quality, written as search queries, applied to any table."""

__all__ = [
    "apply",
    "documents",
    "eligibility",
    "evidence",
    "figure_text",
    "folds",
    "greedy",
    "intervals",
    "learners",
    "new_sample",
    "quality",
    "quality_table",
    "queries",
    "run_lists",
    "stage",
    "text_classifier",
]
